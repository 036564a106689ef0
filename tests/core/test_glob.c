/* test_glob.c - resource globs (DESIGN §2): `*` any run, `?` one
 * character, everything else literal; and exact glob containment, which
 * delegation uses to refuse wider resources. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests.h"
#include "core/core.h"

START_TEST(test_glob_star_matches_any_run_including_empty)
{
    ck_assert(ai_glob_matches("*", ""));
    ck_assert(ai_glob_matches("*", "anything/at/all"));
    ck_assert(ai_glob_matches("myorg/*", "myorg/"));
    ck_assert(ai_glob_matches("myorg/*", "myorg/frontend"));
    ck_assert(ai_glob_matches("myorg/*", "myorg/a/b/c"));
    ck_assert(ai_glob_matches("*end", "frontend"));
    ck_assert(ai_glob_matches("a*b*c", "abc"));
    ck_assert(ai_glob_matches("a*b*c", "axxbyyc"));
    ck_assert(ai_glob_matches("a**b", "ab"));
    ck_assert(!ai_glob_matches("myorg/*", "myorg"));
    ck_assert(!ai_glob_matches("myorg/*", "other/frontend"));
    ck_assert(!ai_glob_matches("a*b*c", "acb"));
}
END_TEST

START_TEST(test_glob_question_matches_exactly_one_char)
{
    ck_assert(ai_glob_matches("?", "a"));
    ck_assert(!ai_glob_matches("?", ""));
    ck_assert(!ai_glob_matches("?", "ab"));
    ck_assert(ai_glob_matches("repo-?", "repo-1"));
    ck_assert(!ai_glob_matches("repo-?", "repo-12"));
    ck_assert(ai_glob_matches("??*", "ab"));
    ck_assert(!ai_glob_matches("??*", "a"));
}
END_TEST

START_TEST(test_glob_literal_requires_exact_string)
{
    ck_assert(ai_glob_matches("myorg/frontend", "myorg/frontend"));
    ck_assert(!ai_glob_matches("myorg/frontend", "myorg/frontend2"));
    ck_assert(!ai_glob_matches("myorg/frontend", "myorg/fronten"));
    ck_assert(!ai_glob_matches("myorg/frontend", "MYORG/frontend"));
    ck_assert(ai_glob_matches("", ""));
    ck_assert(!ai_glob_matches("", "a"));
}
END_TEST

START_TEST(test_glob_regex_specials_are_literal)
{
    ck_assert(ai_glob_matches("a.b", "a.b"));
    ck_assert(!ai_glob_matches("a.b", "axb"));
    ck_assert(ai_glob_matches("a+b", "a+b"));
    ck_assert(!ai_glob_matches("a+b", "aab"));
    ck_assert(ai_glob_matches("(x)[y]{z}", "(x)[y]{z}"));
    ck_assert(!ai_glob_matches("[ab]", "a"));
    ck_assert(ai_glob_matches("^a$|b\\", "^a$|b\\"));
    ck_assert(!ai_glob_matches("a|b", "a"));
    ck_assert(ai_glob_matches("bucket/*.json", "bucket/x.json"));
    ck_assert(!ai_glob_matches("bucket/*.json", "bucket/xjson"));
    ck_assert(ai_glob_matches("*.+()", "x.+()"));
}
END_TEST

START_TEST(test_glob_matches_refuses_null)
{
    ck_assert(!ai_glob_matches(NULL, "a"));
    ck_assert(!ai_glob_matches("*", NULL));
}
END_TEST

START_TEST(test_glob_matches_backtracking_is_fast)
{
    char pat[AI_PATTERN_MAX + 1], s[4097];

    /* *a*a*a...*b against aaaa...: exponential for naive recursion. */
    for (size_t i = 0; i < AI_PATTERN_MAX - 1; i += 2)
        pat[i] = '*', pat[i + 1] = 'a';
    pat[AI_PATTERN_MAX - 2] = '*';
    pat[AI_PATTERN_MAX - 1] = 'b';
    pat[AI_PATTERN_MAX] = '\0';
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    ck_assert(!ai_glob_matches(pat, s)); /* the tcase timeout guards time */
}
END_TEST

/* Reference matcher: dynamic programming over (pattern, string) prefixes. */
static bool ref_match(const char *p, const char *s)
{
    size_t pn = strlen(p), sn = strlen(s);
    bool *row = calloc(sn + 1, sizeof *row), *next = calloc(sn + 1, sizeof *next);
    bool ok;

    row[0] = true;
    for (size_t i = 0; i < pn; i++) {
        for (size_t j = 0; j <= sn; j++) {
            if (p[i] == '*')
                next[j] = row[j] || (j > 0 && next[j - 1]);
            else
                next[j] = j > 0 && row[j - 1] && (p[i] == '?' || p[i] == s[j - 1]);
        }
        bool *t = row;
        row = next;
        next = t;
    }
    ok = row[sn];
    free(row);
    free(next);
    return ok;
}

/* Long inputs go through the set walk; it agrees with the reference on
 * random patterns and strings over a small alphabet (so matches happen),
 * as does ai_glob_matches whichever path it takes. */
START_TEST(test_glob_set_matcher_agrees_with_reference)
{
    static const char pat_alpha[] = "ab*?";
    static const char str_alpha[] = "abc";
    unsigned seed = 12345;
    char p[40], str[700];

    for (int iter = 0; iter < 3000; iter++) {
        size_t pn = 1 + (seed = seed * 1103515245 + 12345) % 30;
        size_t sn = (seed = seed * 1103515245 + 12345) % 600;
        for (size_t i = 0; i < pn; i++)
            p[i] = pat_alpha[(seed = seed * 1103515245 + 12345) >> 16 & 3];
        p[pn] = '\0';
        for (size_t i = 0; i < sn; i++)
            str[i] = str_alpha[((seed = seed * 1103515245 + 12345) >> 16) % 3];
        str[sn] = '\0';
        bool want = ref_match(p, str);
        ck_assert_msg(glob_match_sets(p, pn, str) == want,
                      "sets: \"%s\" vs %zu chars: want %d", p, sn, want);
        ck_assert_msg(ai_glob_matches(p, str) == want,
                      "matches: \"%s\" vs %zu chars: want %d", p, sn, want);
    }
}
END_TEST

START_TEST(test_glob_within_identical_and_literal)
{
    ck_assert(ai_glob_within("myorg/frontend", "myorg/frontend"));
    ck_assert(ai_glob_within("myorg/frontend", "myorg/*"));
    ck_assert(ai_glob_within("myorg/frontend", "*"));
    ck_assert(ai_glob_within("myorg/frontend", "myorg/front???"));
    ck_assert(!ai_glob_within("myorg/frontend", "myorg/back*"));
    ck_assert(!ai_glob_within("myorg/frontend", "myorg/frontend2"));
    ck_assert(ai_glob_within("*", "*"));
    ck_assert(ai_glob_within("a*b", "a*b"));
}
END_TEST

START_TEST(test_glob_within_narrower_prefix)
{
    ck_assert(ai_glob_within("myorg/front*", "myorg/*"));
    ck_assert(ai_glob_within("myorg/*", "*"));
    ck_assert(ai_glob_within("myorg/*/x", "myorg/*"));
    ck_assert(ai_glob_within("partner/shared-*", "partner/*"));
}
END_TEST

START_TEST(test_glob_within_refuses_wider)
{
    ck_assert(!ai_glob_within("myorg/*", "myorg/front*"));
    ck_assert(!ai_glob_within("*", "myorg/*"));
    ck_assert(!ai_glob_within("my*", "myorg/*"));
    ck_assert(!ai_glob_within("myorg/*", "myorg/?*"));   /* "myorg/" */
    ck_assert(!ai_glob_within("*/frontend", "myorg/*"));
    ck_assert(!ai_glob_within("myorg/*", "myorg/*x"));
}
END_TEST

START_TEST(test_glob_within_multiple_stars)
{
    ck_assert(ai_glob_within("a*b*c", "a*c"));
    ck_assert(!ai_glob_within("a*c", "a*b*c"));
    ck_assert(ai_glob_within("a*b*c", "*b*"));
    ck_assert(ai_glob_within("*ab*", "*a*"));
    ck_assert(!ai_glob_within("*a*", "*ab*"));
    ck_assert(ai_glob_within("abc*abc", "a*c"));
}
END_TEST

START_TEST(test_glob_within_question_versus_star)
{
    ck_assert(ai_glob_within("?", "*"));
    ck_assert(!ai_glob_within("*", "?"));
    ck_assert(ai_glob_within("*a", "?*"));      /* every match is 1+ long */
    ck_assert(!ai_glob_within("*", "?*"));      /* "" */
    ck_assert(ai_glob_within("??", "?*"));
    ck_assert(ai_glob_within("?*", "*?"));
    ck_assert(ai_glob_within("*?", "?*"));
    ck_assert(!ai_glob_within("?*", "??*"));
    ck_assert(!ai_glob_within("a?", "?a*"));
    ck_assert(ai_glob_within("a", "?"));
    ck_assert(!ai_glob_within("?", "a"));
    ck_assert(ai_glob_within("x?y", "x*y"));
    ck_assert(!ai_glob_within("x*y", "x?y"));
}
END_TEST

START_TEST(test_glob_within_literal_star_char_is_not_special_in_strings)
{
    /* A string may contain '*': "a*" the glob matches it, "a?" too. */
    ck_assert(ai_glob_matches("a?", "a*"));
    ck_assert(ai_glob_within("a?", "a*"));
    ck_assert(!ai_glob_within("a*", "a?"));
}
END_TEST

START_TEST(test_glob_within_refuses_null_and_oversized)
{
    char big[AI_PATTERN_MAX + 2];

    ck_assert(!ai_glob_within(NULL, "*"));
    ck_assert(!ai_glob_within("a", NULL));
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert(!ai_glob_within(big, "*"));
    ck_assert(!ai_glob_within("a", big));
}
END_TEST

/* Containment is exact: for every pair of globs of up to 3 symbols over
 * {a, b, *, ?}, ai_glob_within says yes exactly when no string of up to 7
 * characters over {a, b, c} is matched by the first and not the second
 * (a shortest counterexample is never longer than the two globs plus one). */
#define NPAT (1 + 4 + 16 + 64)
#define NSTR (1 + 3 + 9 + 27 + 81 + 243 + 729 + 2187)

static size_t enumerate(const char *alpha, size_t na, size_t maxlen,
                        char (*out)[8])
{
    size_t n = 0;

    for (size_t len = 0; len <= maxlen; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= na;
        for (size_t k = 0; k < total; k++) {
            size_t v = k;
            for (size_t i = 0; i < len; i++, v /= na)
                out[n][i] = alpha[v % na];
            out[n][len] = '\0';
            n++;
        }
    }
    return n;
}

START_TEST(test_glob_within_is_exact_on_small_globs)
{
    static char pats[NPAT][8], strs[NSTR][8];
    static unsigned char m[NPAT][NSTR];
    size_t np = enumerate("ab*?", 4, 3, pats);
    size_t ns = enumerate("abc", 3, 7, strs);

    ck_assert_uint_eq(np, NPAT);
    ck_assert_uint_eq(ns, NSTR);
    for (size_t i = 0; i < np; i++)
        for (size_t k = 0; k < ns; k++)
            m[i][k] = ai_glob_matches(pats[i], strs[k]);
    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < np; j++) {
            bool counter = false;
            for (size_t k = 0; k < ns && !counter; k++)
                counter = m[i][k] && !m[j][k];
            ck_assert_msg(ai_glob_within(pats[i], pats[j]) == !counter,
                          "\"%s\" within \"%s\": expected %d", pats[i],
                          pats[j], !counter);
        }
}
END_TEST

START_TEST(test_glob_within_pathological_is_bounded_and_fails_closed)
{
    char inner[AI_PATTERN_MAX + 1], outer[AI_PATTERN_MAX + 1];
    size_t i;

    /* Alternating stars and many distinct literals make the subset walk
     * explode; the answer must come quickly and never be a wrong "yes". */
    for (i = 0; i < AI_PATTERN_MAX - 1; i += 2) {
        inner[i] = '*';
        inner[i + 1] = (char)('a' + (i / 2) % 20);
    }
    inner[i] = '\0';
    for (i = 0; i < AI_PATTERN_MAX - 3; i += 2) {
        outer[i] = '*';
        outer[i + 1] = (char)('a' + (i / 2) % 19);
    }
    outer[i] = 'z'; /* inner never contains a 'z': not contained */
    outer[i + 1] = '*';
    outer[i + 2] = '\0';
    ck_assert(!ai_glob_within(inner, outer));
    for (i = 0; i < AI_PATTERN_MAX; i++)
        inner[i] = i % 2 ? '?' : '*';
    inner[AI_PATTERN_MAX] = '\0';
    for (i = 0; i < AI_PATTERN_MAX; i++)
        outer[i] = i % 3 ? 'a' : '*';
    outer[AI_PATTERN_MAX] = '\0';
    ck_assert(!ai_glob_within(inner, outer));
}
END_TEST

/* (ab*)^k ab is within (a?*)^k a?. Small k is decided exactly; large k
 * needs more states than the walk may visit (docs/decisions.md),
 * and the answer is then "not contained": delegation refuses, never
 * allows. A wider inner of the same shape is refused either way. */
static void blocks(char *in, char *out, int k, const char *tail)
{
    size_t n = (size_t)(3 * k + 2), i;

    for (i = 0; i < n; i++) {
        in[i] = "ab*"[i % 3];
        out[i] = "a?*"[i % 3];
    }
    in[n] = out[n] = '\0';
    strcat(in, tail);
}

START_TEST(test_glob_within_over_budget_fails_closed)
{
    char inner[AI_PATTERN_MAX + 8], outer[AI_PATTERN_MAX + 8];

    blocks(inner, outer, 5, "");
    ck_assert(ai_glob_within(inner, outer));
    blocks(inner, outer, 5, "c");
    ck_assert(!ai_glob_within(inner, outer));
    blocks(inner, outer, 80, "");
    ck_assert_uint_le(strlen(inner), AI_PATTERN_MAX);
    ck_assert(!ai_glob_within(inner, outer)); /* contained, undecided */
    blocks(inner, outer, 80, "c");
    ck_assert(!ai_glob_within(inner, outer));
}
END_TEST

Suite *suite_core_glob(void)
{
    Suite *s = suite_create("core_glob");
    TCase *tc = tcase_create("glob");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_glob_star_matches_any_run_including_empty);
    tcase_add_test(tc, test_glob_question_matches_exactly_one_char);
    tcase_add_test(tc, test_glob_literal_requires_exact_string);
    tcase_add_test(tc, test_glob_regex_specials_are_literal);
    tcase_add_test(tc, test_glob_matches_refuses_null);
    tcase_add_test(tc, test_glob_matches_backtracking_is_fast);
    tcase_add_test(tc, test_glob_set_matcher_agrees_with_reference);
    tcase_add_test(tc, test_glob_within_identical_and_literal);
    tcase_add_test(tc, test_glob_within_narrower_prefix);
    tcase_add_test(tc, test_glob_within_refuses_wider);
    tcase_add_test(tc, test_glob_within_multiple_stars);
    tcase_add_test(tc, test_glob_within_question_versus_star);
    tcase_add_test(tc, test_glob_within_literal_star_char_is_not_special_in_strings);
    tcase_add_test(tc, test_glob_within_refuses_null_and_oversized);
    tcase_add_test(tc, test_glob_within_is_exact_on_small_globs);
    tcase_add_test(tc, test_glob_within_pathological_is_bounded_and_fails_closed);
    tcase_add_test(tc, test_glob_within_over_budget_fails_closed);
    suite_add_tcase(s, tc);
    return s;
}
