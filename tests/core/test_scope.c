/* test_scope.c - scope patterns (DESIGN §2): matching segment by segment,
 * containment of one pattern in another, and overlap. */
#include <stdio.h>
#include <string.h>

#include "../tests.h"

START_TEST(test_scope_star_alone_matches_any_scope)
{
    ck_assert(ai_scope_matches("*", "github:repo:read"));
    ck_assert(ai_scope_matches("*", "github"));
    ck_assert(ai_scope_matches("*", "system:token:refresh"));
    ck_assert(ai_scope_matches("*", "a:b:c:d:e"));
}
END_TEST

START_TEST(test_scope_exact_matches_itself_only)
{
    ck_assert(ai_scope_matches("github:repo:read", "github:repo:read"));
    ck_assert(!ai_scope_matches("github:repo:read", "github:repo:write"));
    ck_assert(!ai_scope_matches("github:repo:read", "github:repo"));
    ck_assert(!ai_scope_matches("github:repo:read", "github:repo:read:x"));
    ck_assert(!ai_scope_matches("github:repo:read", "github:repo:rea"));
    ck_assert(!ai_scope_matches("github:repo", "github:repo:read"));
}
END_TEST

START_TEST(test_scope_final_star_matches_one_or_more_segments)
{
    ck_assert(ai_scope_matches("github:*", "github:repo"));
    ck_assert(ai_scope_matches("github:*", "github:repo:read"));
    ck_assert(ai_scope_matches("github:*", "github:repo:read:extra"));
    ck_assert(ai_scope_matches("github:repo:*", "github:repo:write"));
    ck_assert(ai_scope_matches("openai:chat:*", "openai:chat:completions"));
}
END_TEST

START_TEST(test_scope_final_star_needs_at_least_one_segment)
{
    ck_assert(!ai_scope_matches("github:*", "github"));
    ck_assert(!ai_scope_matches("github:repo:*", "github:repo"));
    ck_assert(!ai_scope_matches("github:*", "gitlab:repo:read"));
    ck_assert(!ai_scope_matches("github:*", "githubx:repo"));
}
END_TEST

START_TEST(test_scope_middle_star_matches_exactly_one_segment)
{
    ck_assert(ai_scope_matches("github:*:read", "github:repo:read"));
    ck_assert(ai_scope_matches("github:*:read", "github:issues:read"));
    ck_assert(!ai_scope_matches("github:*:read", "github:repo:write"));
    ck_assert(!ai_scope_matches("github:*:read", "github:a:b:read"));
    ck_assert(!ai_scope_matches("github:*:read", "github:read"));
    ck_assert(ai_scope_matches("*:repo:read", "github:repo:read"));
    ck_assert(!ai_scope_matches("*:repo:read", "repo:read"));
}
END_TEST

START_TEST(test_scope_star_is_a_whole_segment_not_a_glob)
{
    /* "re*" is a literal segment, not a prefix pattern. */
    ck_assert(!ai_scope_matches("github:re*", "github:repo"));
    ck_assert(ai_scope_matches("github:re*", "github:re*"));
    ck_assert(!ai_scope_matches("github:*x", "github:ax"));
}
END_TEST

START_TEST(test_scope_system_refresh_covered_by_wildcards)
{
    ck_assert(ai_scope_matches("system:token:refresh", "system:token:refresh"));
    ck_assert(ai_scope_matches("system:token:*", "system:token:refresh"));
    ck_assert(ai_scope_matches("system:*", "system:token:refresh"));
    ck_assert(ai_scope_matches("*", "system:token:refresh"));
    ck_assert(!ai_scope_matches("system:token:read", "system:token:refresh"));
}
END_TEST

START_TEST(test_scope_matches_refuses_empty_and_null)
{
    ck_assert(!ai_scope_matches("", ""));
    ck_assert(!ai_scope_matches("*", ""));
    ck_assert(!ai_scope_matches("", "a"));
    ck_assert(!ai_scope_matches(NULL, "a"));
    ck_assert(!ai_scope_matches("*", NULL));
}
END_TEST

START_TEST(test_scope_empty_segments_are_literal)
{
    ck_assert(ai_scope_matches("a::b", "a::b"));
    ck_assert(!ai_scope_matches("a::b", "a:x:b"));
    ck_assert(ai_scope_matches("a:*:b", "a::b"));
    ck_assert(ai_scope_matches("a:*", "a:"));
    ck_assert(!ai_scope_matches("a:", "a"));
}
END_TEST

START_TEST(test_scope_longest_scopes_handled)
{
    char big[AI_SCOPE_MAX + 1], pat[AI_SCOPE_MAX + 1];

    /* "bb:a:a:...:a", 64 segments in 128 bytes; the pattern ends in ":*" */
    big[0] = pat[0] = 'b';
    for (size_t i = 1; i < AI_SCOPE_MAX; i++)
        big[i] = pat[i] = i % 2 ? (i == 1 ? 'b' : 'a') : ':';
    big[AI_SCOPE_MAX] = pat[AI_SCOPE_MAX] = '\0';
    pat[AI_SCOPE_MAX - 1] = '*';
    ck_assert_uint_eq(strlen(big), AI_SCOPE_MAX);
    ck_assert(ai_scope_matches(big, big));
    ck_assert(ai_scope_matches(pat, big));
    ck_assert(ai_scope_within(big, pat));
    ck_assert(!ai_scope_within(pat, big));
    ck_assert(ai_scope_overlaps(pat, big));
    ck_assert(ai_scope_within(big, "*"));
    ck_assert(ai_scope_within(big, "bb:*"));
    ck_assert(!ai_scope_within(big, "b:*"));
}
END_TEST

START_TEST(test_scope_within_exact_and_wildcards)
{
    ck_assert(ai_scope_within("github:repo:read", "github:repo:read"));
    ck_assert(ai_scope_within("github:repo:read", "github:repo:*"));
    ck_assert(ai_scope_within("github:repo:read", "github:*"));
    ck_assert(ai_scope_within("github:repo:read", "*"));
    ck_assert(ai_scope_within("github:repo:*", "github:*"));
    ck_assert(ai_scope_within("github:repo:*", "github:repo:*"));
    ck_assert(ai_scope_within("github:*", "*"));
    ck_assert(ai_scope_within("*", "*"));
    ck_assert(!ai_scope_within("github:repo:write", "github:repo:read"));
}
END_TEST

START_TEST(test_scope_within_refuses_wider_final_star)
{
    /* github:* covers github:issues:read, which github:repo:* does not. */
    ck_assert(!ai_scope_within("github:*", "github:repo:*"));
    ck_assert(!ai_scope_within("*", "github:*"));
    ck_assert(!ai_scope_within("*", "github:repo:read"));
    ck_assert(!ai_scope_within("github:repo:*", "github:repo:read"));
}
END_TEST

START_TEST(test_scope_within_middle_star)
{
    ck_assert(ai_scope_within("github:repo:read", "github:*:read"));
    ck_assert(ai_scope_within("github:*:read", "github:*:read"));
    ck_assert(ai_scope_within("github:*:read", "github:*:*"));
    ck_assert(ai_scope_within("github:*:read", "github:*"));
    ck_assert(!ai_scope_within("github:*:read", "github:repo:read"));
    ck_assert(!ai_scope_within("github:*:read", "github:repo:*"));
    ck_assert(!ai_scope_within("github:repo:write", "github:*:read"));
    /* github:*:* (3+ segments) does not cover github:x (2 segments) */
    ck_assert(!ai_scope_within("github:*", "github:*:*"));
    ck_assert(ai_scope_within("github:repo:*", "github:*:*"));
}
END_TEST

START_TEST(test_scope_within_final_star_not_within_fixed_length)
{
    /* github:repo:* matches github:repo:a:b, which github:repo:* only
     * gets from a final star; a fixed-length pattern never covers it. */
    ck_assert(!ai_scope_within("github:repo:*", "github:*:*:x"));
    ck_assert(!ai_scope_within("github:repo:*", "github:repo:read"));
    ck_assert(!ai_scope_within("a:*", "a:b"));
}
END_TEST

START_TEST(test_scope_within_refuses_null_and_empty)
{
    ck_assert(!ai_scope_within(NULL, "*"));
    ck_assert(!ai_scope_within("a", NULL));
    ck_assert(!ai_scope_within("", "*"));
}
END_TEST

START_TEST(test_scope_overlaps_when_some_scope_matches_both)
{
    ck_assert(ai_scope_overlaps("github:repo:*", "github:repo:read"));
    ck_assert(ai_scope_overlaps("github:repo:read", "github:repo:*"));
    ck_assert(ai_scope_overlaps("github:*", "github:repo:*"));
    ck_assert(ai_scope_overlaps("*", "anything:at:all"));
    ck_assert(ai_scope_overlaps("github:*:read", "github:repo:*"));
    ck_assert(ai_scope_overlaps("*:repo:read", "github:*:read"));
    ck_assert(ai_scope_overlaps("a:*", "a:b:c:*"));
    ck_assert(ai_scope_overlaps("github:repo:read", "github:repo:read"));
}
END_TEST

START_TEST(test_scope_overlaps_false_when_disjoint)
{
    ck_assert(!ai_scope_overlaps("github:repo:read", "github:repo:write"));
    ck_assert(!ai_scope_overlaps("github:*", "openai:*"));
    ck_assert(!ai_scope_overlaps("github:*", "github"));
    ck_assert(!ai_scope_overlaps("github:*:read", "github:repo:write"));
    ck_assert(!ai_scope_overlaps("a:b:*", "a:c:d:*"));
    ck_assert(!ai_scope_overlaps("a:*:c", "a:b"));
    ck_assert(!ai_scope_overlaps("a:b", "a:b:c"));
    ck_assert(!ai_scope_overlaps(NULL, "*"));
}
END_TEST

START_TEST(test_scope_overlaps_is_symmetric)
{
    static const char *const pats[] = {
        "*", "github:*", "github:repo:*", "github:*:read", "github:repo:read",
        "github:repo:write", "openai:chat:*", "a:b:*", "a:*:c", "a:b"};
    size_t n = sizeof pats / sizeof *pats;

    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(ai_scope_overlaps(pats[i], pats[j]) ==
                              ai_scope_overlaps(pats[j], pats[i]),
                          "%s / %s", pats[i], pats[j]);
}
END_TEST

/* Containment agrees with matching on a sample of concrete scopes: if
 * inner is within outer, every sample scope inner matches, outer matches. */
START_TEST(test_scope_within_implies_matching_on_samples)
{
    static const char *const pats[] = {
        "*", "github:*", "github:repo:*", "github:*:read", "github:repo:read",
        "github:*:*", "*:repo:read", "github:repo:write", "openai:*"};
    static const char *const scopes[] = {
        "github", "github:repo", "github:repo:read", "github:repo:write",
        "github:issues:read", "github:repo:read:x", "openai:chat:x",
        "gitlab:repo:read"};

    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
        for (size_t j = 0; j < sizeof pats / sizeof *pats; j++) {
            if (!ai_scope_within(pats[i], pats[j]))
                continue;
            for (size_t k = 0; k < sizeof scopes / sizeof *scopes; k++)
                if (ai_scope_matches(pats[i], scopes[k]))
                    ck_assert_msg(ai_scope_matches(pats[j], scopes[k]),
                                  "%s within %s but %s", pats[i], pats[j],
                                  scopes[k]);
        }
}
END_TEST

/* All strings of 1..maxn segments drawn from segs ("a:b:*", ...). */
static size_t all_scopes(const char *segs, size_t ns, size_t maxn,
                         char (*out)[16])
{
    size_t count = 0;

    for (size_t n = 1; n <= maxn; n++) {
        size_t total = 1;
        for (size_t i = 0; i < n; i++)
            total *= ns;
        for (size_t k = 0; k < total; k++) {
            size_t v = k, o = 0;
            for (size_t i = 0; i < n; i++, v /= ns) {
                if (i)
                    out[count][o++] = ':';
                out[count][o++] = segs[v % ns];
            }
            out[count][o] = '\0';
            count++;
        }
    }
    return count;
}

/* within and overlaps are exact: on every pair of patterns of up to three
 * segments from {a, b, *}, they agree with matching over every scope of
 * up to four segments from {a, b, c} (enough for a witness). */
START_TEST(test_scope_within_and_overlaps_exact_on_small_patterns)
{
    static char pats[3 + 9 + 27][16], scopes[3 + 9 + 27 + 81][16];
    size_t np = all_scopes("ab*", 3, 3, pats);
    size_t ns = all_scopes("abc", 3, 4, scopes);

    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < np; j++) {
            bool counter = false, common = false;
            for (size_t k = 0; k < ns; k++) {
                bool mi = ai_scope_matches(pats[i], scopes[k]);
                bool mj = ai_scope_matches(pats[j], scopes[k]);
                counter |= mi && !mj;
                common |= mi && mj;
            }
            ck_assert_msg(ai_scope_within(pats[i], pats[j]) == !counter,
                          "within(%s, %s)", pats[i], pats[j]);
            ck_assert_msg(ai_scope_overlaps(pats[i], pats[j]) == common,
                          "overlaps(%s, %s)", pats[i], pats[j]);
        }
}
END_TEST

Suite *suite_core_scope(void)
{
    Suite *s = suite_create("core_scope");
    TCase *tc = tcase_create("scope");

    tcase_add_test(tc, test_scope_star_alone_matches_any_scope);
    tcase_add_test(tc, test_scope_exact_matches_itself_only);
    tcase_add_test(tc, test_scope_final_star_matches_one_or_more_segments);
    tcase_add_test(tc, test_scope_final_star_needs_at_least_one_segment);
    tcase_add_test(tc, test_scope_middle_star_matches_exactly_one_segment);
    tcase_add_test(tc, test_scope_star_is_a_whole_segment_not_a_glob);
    tcase_add_test(tc, test_scope_system_refresh_covered_by_wildcards);
    tcase_add_test(tc, test_scope_matches_refuses_empty_and_null);
    tcase_add_test(tc, test_scope_empty_segments_are_literal);
    tcase_add_test(tc, test_scope_longest_scopes_handled);
    tcase_add_test(tc, test_scope_within_exact_and_wildcards);
    tcase_add_test(tc, test_scope_within_refuses_wider_final_star);
    tcase_add_test(tc, test_scope_within_middle_star);
    tcase_add_test(tc, test_scope_within_final_star_not_within_fixed_length);
    tcase_add_test(tc, test_scope_within_refuses_null_and_empty);
    tcase_add_test(tc, test_scope_overlaps_when_some_scope_matches_both);
    tcase_add_test(tc, test_scope_overlaps_false_when_disjoint);
    tcase_add_test(tc, test_scope_overlaps_is_symmetric);
    tcase_add_test(tc, test_scope_within_implies_matching_on_samples);
    tcase_add_test(tc, test_scope_within_and_overlaps_exact_on_small_patterns);
    suite_add_tcase(s, tc);
    return s;
}
