/* test_json.c - the strict JSON reader (RFC 8259, UTF-8, no duplicate
 * keys, bounded nesting, plain integers where integers are required), the
 * JSON.stringify-style writer, and the same rules enforced on signed
 * token bytes by ai_token_verify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "../tests.h"

/* Validate s as one JSON value with nothing after it. *why gets the
 * reader's reason (static text) on failure. */
static bool skip_all(const char *s, size_t n, const char **why)
{
    char *b = malloc(n + 1);
    jr r;
    bool ok;

    ck_assert_ptr_nonnull(b);
    memcpy(b, s, n);
    b[n] = '\0';
    r = (jr){b, b + n, 0, NULL, false, false};
    ok = jr_skip(&r);
    if (ok) {
        jr_ws(&r);
        ok = r.p == r.end;
        if (!ok)
            r.why = "trailing";
    }
    if (why != NULL)
        *why = r.why;
    free(b);
    return ok;
}

static bool valid(const char *s)
{
    return skip_all(s, strlen(s), NULL);
}

/* The reason s is refused (fails the test if it is accepted). */
static const char *refused(const char *s)
{
    const char *why = NULL;

    ck_assert_msg(!skip_all(s, strlen(s), &why), "accepted %s", s);
    ck_assert_ptr_nonnull(why);
    return why;
}

/* Canonical (compact, JS-escaped, JS key order) text of s, malloc'd. */
static char *canon_mode(const char *s, bool input)
{
    char *b = strdup(s);
    ai_buf out;
    jr r;
    char *res;

    ck_assert_ptr_nonnull(b);
    r = (jr){b, b + strlen(b), 0, NULL, input, false};
    buf_init(&out);
    ck_assert_msg(jr_canon(&r, &out), "canon refused %s: %s", s, r.why);
    res = buf_steal(&out);
    free(b);
    ck_assert_ptr_nonnull(res);
    return res;
}

static char *canon(const char *s)
{
    return canon_mode(s, false);
}

/* Is s refused by jr_canon in user-input mode? */
static bool canon_input_refuses(const char *s)
{
    char *b = strdup(s);
    ai_buf out;
    jr r;
    bool ok;

    ck_assert_ptr_nonnull(b);
    r = (jr){b, b + strlen(b), 0, NULL, true, false};
    buf_init(&out);
    ok = jr_canon(&r, &out);
    buf_free(&out);
    free(b);
    return !ok;
}

static char *jw(const char *s, size_t n)
{
    ai_buf b;
    char *res;

    buf_init(&b);
    jw_str(&b, s, n);
    res = buf_steal(&b);
    ck_assert_ptr_nonnull(res);
    return res;
}

/* Read one integer from s within [lo, hi]. */
static bool int_of(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    char *b = strdup(s);
    jr r;
    bool ok;

    ck_assert_ptr_nonnull(b);
    r = (jr){b, b + strlen(b), 0, NULL, false, false};
    ok = jr_int(&r, lo, hi, v);
    free(b);
    return ok;
}

/* ---- reader ----------------------------------------------------------- */

START_TEST(test_json_accepts_rfc8259_values)
{
    ck_assert(valid("{}"));
    ck_assert(valid("[]"));
    ck_assert(valid(" { \"a\" : [ 1 , -2.5e+3 , true , false , null , \"x\" ] } "));
    ck_assert(valid("0"));
    ck_assert(valid("-0.0E-0"));
    ck_assert(valid("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\""));
    ck_assert(valid("{\"a\":{\"b\":{}}}"));
}
END_TEST

START_TEST(test_json_refuses_duplicate_keys_at_any_level)
{
    ck_assert_str_eq(refused("{\"a\":1,\"a\":2}"),
                     "duplicate key in JSON object");
    ck_assert_str_eq(refused("{\"x\":{\"a\":1,\"b\":2,\"a\":3}}"),
                     "duplicate key in JSON object");
    ck_assert_str_eq(refused("[{\"k\":1},{\"k\":1,\"k\":1}]"),
                     "duplicate key in JSON object");
    /* the same key spelled with an escape is still the same key */
    ck_assert_str_eq(refused("{\"a\":1,\"\\u0061\":2}"),
                     "duplicate key in JSON object");
    ck_assert(valid("{\"a\":{\"a\":1},\"b\":{\"a\":1}}"));
}
END_TEST

START_TEST(test_json_refuses_lone_surrogates)
{
    ck_assert_str_eq(refused("\"\\ud800\""), "lone surrogate in string");
    ck_assert_str_eq(refused("\"\\udc00\""), "lone surrogate in string");
    ck_assert_str_eq(refused("\"\\ud800\\u0041\""), "lone surrogate in string");
    ck_assert_str_eq(refused("\"\\ud800x\""), "lone surrogate in string");
    ck_assert_str_eq(refused("\"\\udbff\\udbff\""), "lone surrogate in string");
}
END_TEST

START_TEST(test_json_decodes_surrogate_pairs_to_utf8)
{
    char *c = canon("\"\\ud83d\\ude00\"");

    ck_assert_str_eq(c, "\"\xf0\x9f\x98\x80\"");
    free(c);
}
END_TEST

START_TEST(test_json_refuses_invalid_utf8)
{
    static const char *const bad[] = {
        "\"\x80\"",             /* lone continuation byte */
        "\"\xc3\"",             /* truncated sequence */
        "\"\xc3x\"",            /* bad continuation */
        "\"\xc0\x80\"",         /* overlong NUL */
        "\"\xe0\x80\x80\"",     /* overlong */
        "\"\xed\xa0\x80\"",     /* UTF-16 surrogate encoded */
        "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "\"\xff\"",
        "\"\xfe\"",
    };

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_str_eq(refused(bad[i]), "invalid UTF-8 in string");
    ck_assert(valid("\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\""));
}
END_TEST

START_TEST(test_json_refuses_control_chars_in_strings)
{
    ck_assert_str_eq(refused("\"a\x01z\""), "control character in string");
    ck_assert_str_eq(refused("\"a\nz\""), "control character in string");
    ck_assert_str_eq(refused("\"a\tz\""), "control character in string");
    ck_assert_str_eq(refused("\"\x1f\""), "control character in string");
    /* a raw NUL inside the given length */
    ck_assert(!skip_all("\"a\0b\"", 5, NULL));
    ck_assert(valid("\"a\\u001fz\""));
}
END_TEST

START_TEST(test_json_refuses_bad_escapes_and_nul)
{
    ck_assert_str_eq(refused("\"\\x41\""), "bad escape in string");
    ck_assert_str_eq(refused("\"\\'\""), "bad escape in string");
    ck_assert_str_eq(refused("\"\\u12\""), "bad \\u escape");
    ck_assert_str_eq(refused("\"\\u00G0\""), "bad \\u escape");
    ck_assert_str_eq(refused("\"\\u0000\""), "NUL in string");
    ck_assert_str_eq(refused("\"abc"), "unterminated string");
    ck_assert_str_eq(refused("\"abc\\"), "unterminated string");
}
END_TEST

START_TEST(test_json_refuses_deep_nesting)
{
    char s[20001];
    size_t i;

    /* 20 levels are fine, 21 are not */
    for (i = 0; i < 20; i++)
        s[i] = '[', s[40 - 1 - i] = ']';
    s[40] = '\0';
    ck_assert(valid(s));
    for (i = 0; i < 21; i++)
        s[i] = '[', s[42 - 1 - i] = ']';
    s[42] = '\0';
    ck_assert_str_eq(refused(s), "JSON nested too deeply");
    /* very deep input stops early instead of exhausting the stack */
    for (i = 0; i < 10000; i++)
        s[i] = i % 2 ? '[' : '{';
    s[10000] = '\0';
    ck_assert(!valid(s));
    for (i = 0; i < 10000; i++)
        s[i] = '[';
    s[10000] = '\0';
    ck_assert_str_eq(refused(s), "JSON nested too deeply");
}
END_TEST

START_TEST(test_json_refuses_malformed_syntax)
{
    static const char *const bad[] = {
        "", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\"}", "{\"a\" 1}", "{a:1}",
        "{'a':1}", "[1 2]", "tru", "nul", "falsey", "01", "1.", ".5", "-",
        "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "[1]]", "{\"a\":1}}",
        "\"a\" \"b\"", "[\"a\",]", "{,}", "[,1]",
    };

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!valid(bad[i]), "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_json_refuses_objects_with_too_many_members)
{
    char s[4096];
    size_t o = 0;

    s[o++] = '{';
    for (int i = 0; i < 129; i++)
        o += (size_t)snprintf(s + o, sizeof s - o, "%s\"k%d\":%d",
                              i ? "," : "", i, i);
    s[o++] = '}';
    s[o] = '\0';
    ck_assert_str_eq(refused(s), "JSON object too large");
}
END_TEST

START_TEST(test_json_int_plain_integers_only)
{
    int64_t v = 0;

    ck_assert(int_of("42", 0, 100, &v));
    ck_assert_int_eq(v, 42);
    ck_assert(int_of("0", 0, 100, &v));
    ck_assert_int_eq(v, 0);
    ck_assert(int_of("-5", -10, 10, &v));
    ck_assert_int_eq(v, -5);
    ck_assert(!int_of("1.0", 0, 100, &v));
    ck_assert(!int_of("1.5", 0, 100, &v));
    ck_assert(!int_of("1e2", 0, 1000, &v));
    ck_assert(!int_of("1E2", 0, 1000, &v));
    ck_assert(!int_of("01", 0, 100, &v));
    ck_assert(!int_of("\"1\"", 0, 100, &v));
    ck_assert(!int_of("true", 0, 100, &v));
    ck_assert(!int_of("-", 0, 100, &v));
}
END_TEST

START_TEST(test_json_int_enforces_range)
{
    int64_t v = 0;
    const int64_t max = INT64_C(1) << 31;

    ck_assert(int_of("2147483648", 1, max, &v));
    ck_assert_int_eq(v, max);
    ck_assert(!int_of("2147483649", 1, max, &v));
    ck_assert(!int_of("0", 1, max, &v));
    ck_assert(!int_of("-1", 0, 16, &v));
    ck_assert(!int_of("17", 0, 16, &v));
    ck_assert(!int_of("99999999999999999999999", 0, INT64_MAX, &v));
}
END_TEST

START_TEST(test_json_string_unescapes_in_place)
{
    char b[] = "\"a\\/b\\u00e9\\n\" ";
    jr r = {b, b + sizeof b - 1, 0, NULL, false, false};
    char *s = NULL;
    size_t n = 0;

    ck_assert(jr_string(&r, &s, &n));
    ck_assert_uint_eq(n, 6);
    ck_assert_str_eq(s, "a/b\xc3\xa9\n");
    ck_assert(s >= b && s < b + sizeof b);
}
END_TEST

/* ---- writer ----------------------------------------------------------- */

START_TEST(test_json_writer_escapes_controls_lowercase)
{
    char *s = jw("\x01\x1f\x0b\x7f", 4);

    /* JSON.stringify: lowercase hex, DEL is not escaped */
    ck_assert_str_eq(s, "\"\\u0001\\u001f\\u000b\x7f\"");
    free(s);
    s = jw("a\0b", 3);
    ck_assert_str_eq(s, "\"a\\u0000b\"");
    free(s);
}
END_TEST

START_TEST(test_json_writer_short_escapes)
{
    char *s = jw("\b\f\n\r\t\"\\", 7);

    ck_assert_str_eq(s, "\"\\b\\f\\n\\r\\t\\\"\\\\\"");
    free(s);
}
END_TEST

START_TEST(test_json_writer_keeps_slash_and_non_ascii_raw)
{
    static const char in[] = "a/b \xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80";
    char *s = jw(in, sizeof in - 1);

    ck_assert_str_eq(s, "\"a/b \xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80\"");
    free(s);
}
END_TEST

START_TEST(test_json_writer_matches_node_json_stringify)
{
    /* node -e 'console.log(JSON.stringify(
     *   "\u001f\b\f\n\r\t\u0000\u007f/\u00e9\u2028\""))' */
    static const char in[] = "\x1f\b\f\n\r\t\0\x7f/\xc3\xa9\xe2\x80\xa8\"";
    char *s = jw(in, sizeof in - 1);

    ck_assert_str_eq(s, "\"\\u001f\\b\\f\\n\\r\\t\\u0000\x7f/\xc3\xa9\xe2\x80\xa8\\\"\"");
    free(s);
}
END_TEST

START_TEST(test_json_canon_is_compact_and_js_escaped)
{
    char *c = canon(" { \"a\" : [ 1 , \"x\\u001F\\/\\u00e9\" , { } ] ,\n"
                    "   \"b\" : null , \"c\" : -1.50e+2 } ");

    ck_assert_str_eq(c, "{\"a\":[1,\"x\\u001f/\xc3\xa9\",{}],\"b\":null,"
                        "\"c\":-1.50e+2}");
    free(c);
}
END_TEST

START_TEST(test_json_canon_keeps_member_order)
{
    char *c = canon("{\"z\":1,\"a\":2,\"m\":{\"y\":true,\"b\":false}}");

    ck_assert_str_eq(c, "{\"z\":1,\"a\":2,\"m\":{\"y\":true,\"b\":false}}");
    free(c);
}
END_TEST

START_TEST(test_json_canon_puts_array_index_keys_first)
{
    /* JSON.stringify(JSON.parse(s)) in JavaScript: */
    char *c = canon("{\"b\":1,\"10\":2,\"a\":{\"z\":0,\"1\":0},\"2\":3,"
                    "\"01\":4,\"-1\":5,\"4294967294\":6,\"4294967295\":7}");

    ck_assert_str_eq(c, "{\"2\":3,\"10\":2,\"4294967294\":6,\"b\":1,"
                        "\"a\":{\"1\":0,\"z\":0},\"01\":4,\"-1\":5,"
                        "\"4294967295\":7}");
    free(c);
}
END_TEST

START_TEST(test_json_canon_input_numbers_in_javascript_form)
{
    char *c = canon_mode("[0,-1,1.5,0.000001,123456789012345,-0.25]", true);

    ck_assert_str_eq(c, "[0,-1,1.5,0.000001,123456789012345,-0.25]");
    free(c);
    ck_assert(canon_input_refuses("[1.50]"));
    ck_assert(canon_input_refuses("[1e2]"));
    ck_assert(canon_input_refuses("[1E2]"));
    ck_assert(canon_input_refuses("[-0]"));
    ck_assert(canon_input_refuses("[1.0]"));
    ck_assert(canon_input_refuses("[0.0000001]"));
    ck_assert(canon_input_refuses("[1234567890123456]"));
    /* signed bytes keep their numbers as they are */
    c = canon("[1.50,1e2]");
    ck_assert_str_eq(c, "[1.50,1e2]");
    free(c);
}
END_TEST

START_TEST(test_json_array_index_keys)
{
    uint32_t ix = 0;

    ck_assert(jw_array_index("0", 1, &ix));
    ck_assert_uint_eq(ix, 0);
    ck_assert(jw_array_index("4294967294", 10, &ix));
    ck_assert_uint_eq(ix, UINT32_C(4294967294));
    ck_assert(!jw_array_index("4294967295", 10, &ix));
    ck_assert(!jw_array_index("01", 2, &ix));
    ck_assert(!jw_array_index("-1", 2, &ix));
    ck_assert(!jw_array_index("", 0, &ix));
    ck_assert(!jw_array_index("1a", 2, &ix));
    ck_assert(!jw_array_index("99999999999", 11, &ix));
}
END_TEST

START_TEST(test_json_utf8_valid)
{
    ck_assert(utf8_valid("abc", 3));
    ck_assert(utf8_valid("\xc3\xa9", 2));
    ck_assert(!utf8_valid("a\0b", 3));
    ck_assert(!utf8_valid("\xc3", 1));
    ck_assert(!utf8_valid("\xed\xbf\xbf", 3));
}
END_TEST

/* ---- the same rules on signed token bytes ---------------------------- */

#define BASE                                                               \
    "\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"            \
    "\"delegatable\":true,\"maxDelegationDepth\":3,\"currentDepth\":0,"     \
    "\"expiresAt\":\"2026-12-01T00:00:00.000Z\""

/* Hand-sign J with key 1 and verify it; returns the code, err filled. */
static ai_code verify_json(const char *json, ai_err *err)
{
    ai_keyring *kr = t_keyring();
    char *wire = t_sign(t_key1, json);
    ai_token *t = NULL;
    ai_code rc = t_verify(kr, wire, &t, err);

    if (rc == AI_OK)
        ck_assert_ptr_nonnull(t);
    else
        ck_assert_ptr_null(t);
    ai_token_free(t);
    free(wire);
    ai_keyring_free(kr);
    return rc;
}

/* Expect J to be refused as an invalid token whose reason contains why. */
static void expect_invalid(const char *json, const char *why)
{
    ai_err err;

    ck_assert_msg(verify_json(json, &err) == AI_ETOKEN, "accepted %s", json);
    ck_assert_msg(strncmp(err.msg, "invalid token: ", 15) == 0, "%s", err.msg);
    ck_assert_msg(t_has(err.msg, why), "\"%s\" lacks \"%s\"", err.msg, why);
}

START_TEST(test_json_token_baseline_verifies)
{
    ai_err err;

    ck_assert_int_eq(verify_json("{" BASE "}", &err), AI_OK);
    ck_assert_int_eq(verify_json("{" BASE ",\"extra\":{\"n\":[1,2.5e3]}}", &err),
                     AI_OK);
}
END_TEST

START_TEST(test_json_token_refuses_duplicate_top_level_keys)
{
    expect_invalid("{" BASE ",\"agentId\":\"b\"}", "duplicate key");
    expect_invalid("{" BASE ",\"scopes\":[\"s:y\"]}", "duplicate key");
    expect_invalid("{" BASE ",\"x\":1,\"x\":1}", "duplicate key");
    expect_invalid("{" BASE ",\"agent\\u0049d\":\"b\"}", "duplicate key");
    /* a second signature or keyVersion before the real ones */
    expect_invalid("{" BASE ",\"signature\":"
                   "\"aDCJVeTPlh91vU_1_ritvJywnQiY9QFti6GR21EKaZg\"}",
                   "duplicate key");
    expect_invalid("{" BASE ",\"keyVersion\":1,\"keyVersion\":1}",
                   "duplicate key");
}
END_TEST

START_TEST(test_json_token_refuses_duplicate_nested_keys)
{
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"maxUses\":1,\"maxUses\":2}},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "duplicate key");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{},\"s:x\":{}},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "duplicate key");
    expect_invalid("{" BASE ",\"identity\":{\"tenantId\":\"t\",\"tenantId\":\"u\"}}",
                   "duplicate key");
    expect_invalid("{" BASE ",\"federation\":{\"maxHops\":1,\"maxHops\":2}}",
                   "duplicate key");
    expect_invalid("{" BASE ",\"agentCapabilities\":{\"canSpawn\":true,"
                   "\"canSpawn\":false}}",
                   "duplicate key");
    expect_invalid("{" BASE ",\"agentCapabilities\":{\"custom\":{\"a\":true,"
                   "\"a\":true}}}",
                   "duplicate key");
    expect_invalid("{" BASE ",\"x\":{\"y\":[{\"z\":1,\"z\":2}]}}",
                   "duplicate key");
}
END_TEST

/* Unknown members of federation and agentCapabilities are skipped, but a
 * duplicate is still a duplicate. */
START_TEST(test_json_token_refuses_duplicate_unknown_keys_in_federation)
{
    expect_invalid("{" BASE ",\"federation\":{\"crossSystemAllowed\":false,"
                   "\"note\":1,\"note\":2}}",
                   "duplicate key");
    expect_invalid("{" BASE ",\"federation\":{\"note\":1,\"maxHops\":1,"
                   "\"n\\u006fte\":{}}}",
                   "duplicate key");
}
END_TEST

START_TEST(test_json_token_refuses_duplicate_unknown_keys_in_capabilities)
{
    expect_invalid("{" BASE ",\"agentCapabilities\":{\"note\":1,\"note\":2}}",
                   "duplicate key");
}
END_TEST

START_TEST(test_json_token_accepts_distinct_unknown_keys_in_map_objects)
{
    ai_err err;

    ck_assert_int_eq(verify_json("{" BASE ",\"federation\":{\"a\":1,\"b\":[2],"
                                 "\"crossSystemAllowed\":true},"
                                 "\"agentCapabilities\":{\"x\":{},\"y\":null}}",
                                 &err),
                     AI_OK);
}
END_TEST

START_TEST(test_json_token_refuses_bad_strings)
{
    expect_invalid("{" BASE ",\"x\":\"\\ud800\"}", "lone surrogate");
    expect_invalid("{\"agentId\":\"\\udfff\",\"scopes\":[\"s:x\"],"
                   "\"constraints\":{},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "lone surrogate");
    expect_invalid("{" BASE ",\"x\":\"\xc3\x28\"}", "invalid UTF-8");
    expect_invalid("{" BASE ",\"x\":\"a\x01\"}", "control character");
    expect_invalid("{" BASE ",\"x\":\"\\u0000\"}", "NUL");
}
END_TEST

START_TEST(test_json_token_refuses_control_chars_in_scopes)
{
    /* DEL is a control character too, escaped or raw */
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:\x7f\"],"
                   "\"constraints\":{},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "bad scopes list");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:\\u007f\"],"
                   "\"constraints\":{},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "bad scopes list");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:\\u0001\"],"
                   "\"constraints\":{},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "bad scopes list");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],"
                   "\"constraints\":{\"s:\x7fx\":{}},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "bad constraint key");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],"
                   "\"constraints\":{\"s:\\n\":{}},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "bad constraint key");
}
END_TEST

START_TEST(test_json_token_refuses_deep_nesting)
{
    char json[512];
    char deep[64];
    size_t i;

    for (i = 0; i < 25; i++)
        deep[i] = '[', deep[50 - 1 - i] = ']';
    deep[50] = '\0';
    snprintf(json, sizeof json, "{" BASE ",\"x\":%s}", deep);
    expect_invalid(json, "nested too deeply");
}
END_TEST

START_TEST(test_json_token_refuses_fraction_or_exponent_integers)
{
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3.0,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "plain integer");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0e0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "plain integer");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"maxUses\":1E2}},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "plain integer");
    expect_invalid("{" BASE ",\"keyVersion\":1.0}", "");
    expect_invalid("{" BASE ",\"federation\":{\"maxHops\":2.5}}",
                   "plain integer");
}
END_TEST

START_TEST(test_json_token_enforces_integer_ranges)
{
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":17,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "out of range");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":2,"
                   "\"currentDepth\":3,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "currentDepth exceeds");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"maxUses\":0}},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "out of range");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"maxUses\":2147483649}},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "out of range");
    expect_invalid("{" BASE ",\"federation\":{\"hopCount\":256}}",
                   "out of range");
    expect_invalid("{" BASE ",\"federation\":{\"maxHops\":-1}}",
                   "out of range");
}
END_TEST

START_TEST(test_json_token_accepts_range_limits)
{
    ai_err err;

    ck_assert_int_eq(
        verify_json("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                    "{\"s:x\":{\"maxUses\":2147483648}},\"delegatable\":true,"
                    "\"maxDelegationDepth\":16,\"currentDepth\":16,"
                    "\"expiresAt\":\"2026-12-01T00:00:00Z\",\"federation\":"
                    "{\"crossSystemAllowed\":true,\"hopCount\":255,"
                    "\"maxHops\":0}}",
                    &err),
        AI_OK);
}
END_TEST

START_TEST(test_json_token_refuses_wrong_types)
{
    expect_invalid("{\"agentId\":1,\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":\"s:x\",\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "\"scopes\" must be an array of strings");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":\"yes\",\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "boolean");
    expect_invalid("{" BASE ",\"identity\":\"me\"}", "identity");
    expect_invalid("{" BASE ",\"identity\":{\"tenantId\":5}}", "identity");
    expect_invalid("{" BASE ",\"agentCapabilities\":{\"visibility\":\"world\"}}",
                   "visibility");
    expect_invalid("{" BASE ",\"tokenId\":\"short\"}", "tokenId");
    expect_invalid("{" BASE ",\"ancestors\":[\"not a token id at all!\"]}",
                   "ancestors");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "scopes");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"color\":\"red\"}},\"delegatable\":true,"
                   "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                   "\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "unknown field in constraint");
}
END_TEST

/* ancestorAgents: strings of agentId's rules, at most one a level. */
#define DEPTH2                                                             \
    "\"agentId\":\"a\",\"parentId\":\"p\",\"scopes\":[\"s:x\"],"          \
    "\"constraints\":{},\"delegatable\":true,\"maxDelegationDepth\":16,"  \
    "\"currentDepth\":2,\"expiresAt\":\"2026-12-01T00:00:00.000Z\""

START_TEST(test_json_token_reads_ancestor_agents_strictly)
{
    char big[600], json[1024];
    ai_err err;

    ck_assert_int_eq(
        verify_json("{" DEPTH2 ",\"ancestorAgents\":[\"r\",\"p\"]}", &err),
        AI_OK);
    ck_assert_int_eq(verify_json("{" DEPTH2 ",\"ancestorAgents\":[]}", &err),
                     AI_OK);
    expect_invalid("{" DEPTH2 ",\"ancestorAgents\":[\"r\",\"p\",\"q\"]}",
                   "more ancestorAgents than currentDepth");
    expect_invalid("{" BASE ",\"ancestorAgents\":[\"r\"]}",
                   "more ancestorAgents than currentDepth");
    expect_invalid("{" DEPTH2 ",\"ancestorAgents\":[\"r\",1]}", "");
    expect_invalid("{" DEPTH2 ",\"ancestorAgents\":[\"\"]}",
                   "bad ancestorAgents list");
    expect_invalid("{" DEPTH2 ",\"ancestorAgents\":{\"0\":\"r\"}}",
                   "\"ancestorAgents\" must be an array of strings");
    expect_invalid("{" DEPTH2 ",\"ancestorAgents\":\"r\"}",
                   "\"ancestorAgents\" must be an array of strings");
    expect_invalid("{" DEPTH2 ",\"ancestorAgents\":null}",
                   "\"ancestorAgents\" must be an array of strings");
    expect_invalid("{" DEPTH2 ",\"ancestorAgents\":[\"r\"],"
                   "\"ancestorAgents\":[\"r\"]}",
                   "duplicate key");
    /* an agentId is at most AI_ID_MAX bytes */
    memset(big, 'x', AI_ID_MAX);
    big[AI_ID_MAX] = '\0';
    snprintf(json, sizeof json, "{" DEPTH2 ",\"ancestorAgents\":[\"%s\"]}",
             big);
    ck_assert_int_eq(verify_json(json, &err), AI_OK);
    big[AI_ID_MAX] = 'x';
    big[AI_ID_MAX + 1] = '\0';
    snprintf(json, sizeof json, "{" DEPTH2 ",\"ancestorAgents\":[\"%s\"]}",
             big);
    expect_invalid(json, "bad ancestorAgents list");
    /* at most AI_MAX_DEPTH entries, whatever the depth says */
    snprintf(json, sizeof json,
             "{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
             "\"delegatable\":true,\"maxDelegationDepth\":16,"
             "\"currentDepth\":16,\"expiresAt\":\"2026-12-01T00:00:00.000Z\","
             "\"ancestorAgents\":[%s\"q\"]}",
             "\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\","
             "\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",");
    expect_invalid(json, "too many list entries");
}
END_TEST

START_TEST(test_json_token_refuses_non_rfc3339_times)
{
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01\"}",
                   "RFC 3339");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":1796040000000}",
                   "");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"notBefore\":\"2026-02-30T00:00:00Z\"}},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "RFC 3339");
}
END_TEST

START_TEST(test_json_token_refuses_missing_required_fields)
{
    expect_invalid("{\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "missing agentId");
    expect_invalid("{\"agentId\":\"a\",\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "missing scopes");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "missing constraints");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0}",
                   "no expiresAt");
}
END_TEST

START_TEST(test_json_token_refuses_trailing_bytes_after_object)
{
    /* J = {...}{"x":1}: the HMAC covers it, the parser must not stop at
     * the first object. */
    expect_invalid("{" BASE "}{\"x\":1}", "trailing bytes");
}
END_TEST

START_TEST(test_json_token_budgets_shape)
{
    char json[8192];
    size_t o;

    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"budgets\":[{\"id\":\"b\",\"maxUses\":1}]}},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "budgets without maxUses");
    expect_invalid("{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":"
                   "{\"s:x\":{\"maxUses\":1,\"budgets\":[{\"id\":\"b\"}]}},"
                   "\"delegatable\":true,\"maxDelegationDepth\":3,"
                   "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}",
                   "bad budget entry");
    /* 18 budgets: one too many */
    o = (size_t)snprintf(json, sizeof json,
                         "{\"agentId\":\"a\",\"scopes\":[\"s:x\"],"
                         "\"constraints\":{\"s:x\":{\"maxUses\":1,"
                         "\"budgets\":[");
    for (int i = 0; i < 18; i++)
        o += (size_t)snprintf(json + o, sizeof json - o,
                              "%s{\"id\":\"b%d\",\"maxUses\":1}", i ? "," : "",
                              i);
    snprintf(json + o, sizeof json - o,
             "]}},\"delegatable\":true,\"maxDelegationDepth\":3,"
             "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\"}");
    expect_invalid(json, "too many budgets");
    /* an id longer than 200 bytes */
    o = (size_t)snprintf(json, sizeof json,
                         "{\"agentId\":\"a\",\"scopes\":[\"s:x\"],"
                         "\"constraints\":{\"s:x\":{\"maxUses\":1,"
                         "\"budgets\":[{\"id\":\"");
    memset(json + o, 'x', 201);
    o += 201;
    snprintf(json + o, sizeof json - o,
             "\",\"maxUses\":1}]}},\"delegatable\":true,"
             "\"maxDelegationDepth\":3,\"currentDepth\":0,"
             "\"expiresAt\":\"2026-12-01T00:00:00Z\"}");
    expect_invalid(json, "bad budget id");
}
END_TEST

Suite *suite_core_json(void)
{
    Suite *s = suite_create("core_json");
    TCase *rd = tcase_create("reader");
    TCase *wr = tcase_create("writer");
    TCase *tk = tcase_create("token");

    tcase_add_test(rd, test_json_accepts_rfc8259_values);
    tcase_add_test(rd, test_json_refuses_duplicate_keys_at_any_level);
    tcase_add_test(rd, test_json_refuses_lone_surrogates);
    tcase_add_test(rd, test_json_decodes_surrogate_pairs_to_utf8);
    tcase_add_test(rd, test_json_refuses_invalid_utf8);
    tcase_add_test(rd, test_json_refuses_control_chars_in_strings);
    tcase_add_test(rd, test_json_refuses_bad_escapes_and_nul);
    tcase_add_test(rd, test_json_refuses_deep_nesting);
    tcase_add_test(rd, test_json_refuses_malformed_syntax);
    tcase_add_test(rd, test_json_refuses_objects_with_too_many_members);
    tcase_add_test(rd, test_json_int_plain_integers_only);
    tcase_add_test(rd, test_json_int_enforces_range);
    tcase_add_test(rd, test_json_string_unescapes_in_place);
    tcase_add_test(rd, test_json_utf8_valid);
    suite_add_tcase(s, rd);

    tcase_add_test(wr, test_json_writer_escapes_controls_lowercase);
    tcase_add_test(wr, test_json_writer_short_escapes);
    tcase_add_test(wr, test_json_writer_keeps_slash_and_non_ascii_raw);
    tcase_add_test(wr, test_json_writer_matches_node_json_stringify);
    tcase_add_test(wr, test_json_canon_is_compact_and_js_escaped);
    tcase_add_test(wr, test_json_canon_keeps_member_order);
    tcase_add_test(wr, test_json_canon_puts_array_index_keys_first);
    tcase_add_test(wr, test_json_canon_input_numbers_in_javascript_form);
    tcase_add_test(wr, test_json_array_index_keys);
    suite_add_tcase(s, wr);

    tcase_add_test(tk, test_json_token_baseline_verifies);
    tcase_add_test(tk, test_json_token_refuses_duplicate_top_level_keys);
    tcase_add_test(tk, test_json_token_refuses_duplicate_nested_keys);
    tcase_add_test(tk, test_json_token_refuses_duplicate_unknown_keys_in_federation);
    tcase_add_test(tk, test_json_token_refuses_duplicate_unknown_keys_in_capabilities);
    tcase_add_test(tk, test_json_token_accepts_distinct_unknown_keys_in_map_objects);
    tcase_add_test(tk, test_json_token_refuses_bad_strings);
    tcase_add_test(tk, test_json_token_refuses_control_chars_in_scopes);
    tcase_add_test(tk, test_json_token_refuses_deep_nesting);
    tcase_add_test(tk, test_json_token_refuses_fraction_or_exponent_integers);
    tcase_add_test(tk, test_json_token_enforces_integer_ranges);
    tcase_add_test(tk, test_json_token_accepts_range_limits);
    tcase_add_test(tk, test_json_token_refuses_wrong_types);
    tcase_add_test(tk, test_json_token_reads_ancestor_agents_strictly);
    tcase_add_test(tk, test_json_token_refuses_non_rfc3339_times);
    tcase_add_test(tk, test_json_token_refuses_missing_required_fields);
    tcase_add_test(tk, test_json_token_refuses_trailing_bytes_after_object);
    tcase_add_test(tk, test_json_token_budgets_shape);
    suite_add_tcase(s, tk);
    return s;
}
