/* test_time.c - timestamps (DESIGN §2): written as ISO 8601 UTC with
 * milliseconds, read as any RFC 3339 time. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "../tests.h"

static int64_t parse_ok(const char *s)
{
    int64_t ms = -1;

    ck_assert_msg(time_parse(s, strlen(s), &ms), "refused %s", s);
    return ms;
}

static bool parses(const char *s)
{
    int64_t ms;

    return time_parse(s, strlen(s), &ms);
}

START_TEST(test_time_format_epoch_and_now)
{
    char buf[AI_TIME_BUF];

    ai_time_format(0, buf);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    ai_time_format(T_NOW, buf);
    ck_assert_str_eq(buf, "2026-11-30T12:00:00.000Z");
    ai_time_format(T_NOW + 123, buf);
    ck_assert_str_eq(buf, "2026-11-30T12:00:00.123Z");
    ai_time_format(T_NOW + 7 * T_DAY + 5 * T_HOUR + 6 * T_MIN + 7 * T_SEC + 8,
                   buf);
    ck_assert_str_eq(buf, "2026-12-07T17:06:07.008Z");
}
END_TEST

START_TEST(test_time_format_before_epoch)
{
    char buf[AI_TIME_BUF];

    ai_time_format(-1, buf);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    ai_time_format(-T_DAY, buf);
    ck_assert_str_eq(buf, "1969-12-31T00:00:00.000Z");
}
END_TEST

START_TEST(test_time_format_clamps_to_four_digit_years)
{
    char buf[AI_TIME_BUF];

    ai_time_format(INT64_MAX, buf);
    ck_assert_str_eq(buf, "9999-12-31T23:59:59.999Z");
    ai_time_format(INT64_MIN, buf);
    ck_assert_str_eq(buf, "0000-01-01T00:00:00.000Z");
}
END_TEST

START_TEST(test_time_format_leap_day)
{
    char buf[AI_TIME_BUF];

    ai_time_format(parse_ok("2028-02-29T23:59:59.999Z"), buf);
    ck_assert_str_eq(buf, "2028-02-29T23:59:59.999Z");
    ai_time_format(parse_ok("2028-02-29T23:59:59.999Z") + 1, buf);
    ck_assert_str_eq(buf, "2028-03-01T00:00:00.000Z");
}
END_TEST

START_TEST(test_time_parse_utc_forms)
{
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00Z"), T_NOW);
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00.000Z"), T_NOW);
    ck_assert_int_eq(parse_ok("2026-11-30t12:00:00z"), T_NOW);
    ck_assert_int_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
}
END_TEST

START_TEST(test_time_parse_fractions)
{
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00.5Z"), T_NOW + 500);
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00.05Z"), T_NOW + 50);
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00.123Z"), T_NOW + 123);
    /* beyond milliseconds: truncated */
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00.123999999Z"), T_NOW + 123);
    ck_assert(!parses("2026-11-30T12:00:00.Z"));
    ck_assert(!parses("2026-11-30T12:00:00.x5Z"));
}
END_TEST

START_TEST(test_time_parse_offsets)
{
    ck_assert_int_eq(parse_ok("2026-11-30T14:00:00+02:00"), T_NOW);
    ck_assert_int_eq(parse_ok("2026-11-30T06:30:00-05:30"), T_NOW);
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00+00:00"), T_NOW);
    ck_assert_int_eq(parse_ok("2026-11-30T12:00:00-00:00"), T_NOW);
    ck_assert_int_eq(parse_ok("2026-12-01T01:00:00.250+13:00"), T_NOW + 250);
    /* an offset can move the date across a month and a year */
    ck_assert_int_eq(parse_ok("2026-12-31T23:00:00-01:00"),
                     parse_ok("2027-01-01T00:00:00Z"));
}
END_TEST

START_TEST(test_time_parse_leap_days)
{
    ck_assert_int_eq(parse_ok("2024-02-29T00:00:00Z") + T_DAY,
                     parse_ok("2024-03-01T00:00:00Z"));
    ck_assert(parses("2000-02-29T00:00:00Z"));  /* divisible by 400 */
    ck_assert(!parses("1900-02-29T00:00:00Z")); /* by 100, not 400 */
    ck_assert(!parses("2023-02-29T00:00:00Z"));
    ck_assert(!parses("2024-02-30T00:00:00Z"));
}
END_TEST

START_TEST(test_time_parse_refuses_invalid_dates)
{
    static const char *const bad[] = {
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z", "2026-04-31T00:00:00Z", "2026-06-31T00:00:00Z",
        "2026-11-30T24:00:00Z", "2026-11-30T12:60:00Z", "2026-11-30T12:00:61Z",
    };

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!parses(bad[i]), "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_time_parse_refuses_malformed_text)
{
    static const char *const bad[] = {
        "",
        "2026-11-30",
        "2026-11-30T12:00:00",        /* no zone */
        "2026-11-30 12:00:00Z",       /* space */
        "2026-11-30T12:00Z",          /* no seconds */
        "2026-11-30T12:00:00+0200",   /* offset without colon */
        "2026-11-30T12:00:00+02",     /* short offset */
        "2026-11-30T12:00:00+24:00",  /* offset hours */
        "2026-11-30T12:00:00+02:60",  /* offset minutes */
        "2026-11-30T12:00:00Zjunk",
        "2026-11-30T12:00:00ZZ",
        "26-11-30T12:00:00Z",
        "2026/11/30T12:00:00Z",
        "2026-1a-30T12:00:00Z",
        "+2026-11-30T12:00:00Z",
        "2026-11-30T12:00:00.000Z ",
        "Mon, 30 Nov 2026 12:00:00 GMT",
        "1796040000000",
    };

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!parses(bad[i]), "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_time_parse_honours_length)
{
    const char *s = "2026-11-30T12:00:00Zjunk";
    int64_t ms = 0;

    ck_assert(time_parse(s, 20, &ms));
    ck_assert_int_eq(ms, T_NOW);
    ck_assert(!time_parse(s, 19, &ms));
}
END_TEST

START_TEST(test_time_public_parse_reports_einval)
{
    ai_err err = {0};
    int64_t ms = 0;

    ck_assert_int_eq(ai_time_parse("2026-11-30T12:00:00Z", 20, &ms, &err),
                     AI_OK);
    ck_assert_int_eq(ms, T_NOW);
    ck_assert_int_eq(ai_time_parse("yesterday", 9, &ms, &err), AI_EINVAL);
    ck_assert_int_eq(err.code, AI_EINVAL);
    ck_assert(t_has(err.msg, "RFC 3339"));
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_time_parse(NULL, 0, &ms, &err), AI_EINVAL);
}
END_TEST

START_TEST(test_time_format_then_parse_round_trips)
{
    char buf[AI_TIME_BUF];

    /* 1970 .. ~2100, odd steps so every field and millisecond varies. */
    for (int64_t ms = 0; ms < INT64_C(4102444800000);
         ms += INT64_C(3217000000) + 7919) {
        ai_time_format(ms, buf);
        ck_assert_uint_eq(strlen(buf), AI_TIME_BUF - 1);
        ck_assert_int_eq(parse_ok(buf), ms);
    }
}
END_TEST

Suite *suite_core_time(void)
{
    Suite *s = suite_create("core_time");
    TCase *tc = tcase_create("time");

    tcase_add_test(tc, test_time_format_epoch_and_now);
    tcase_add_test(tc, test_time_format_before_epoch);
    tcase_add_test(tc, test_time_format_clamps_to_four_digit_years);
    tcase_add_test(tc, test_time_format_leap_day);
    tcase_add_test(tc, test_time_parse_utc_forms);
    tcase_add_test(tc, test_time_parse_fractions);
    tcase_add_test(tc, test_time_parse_offsets);
    tcase_add_test(tc, test_time_parse_leap_days);
    tcase_add_test(tc, test_time_parse_refuses_invalid_dates);
    tcase_add_test(tc, test_time_parse_refuses_malformed_text);
    tcase_add_test(tc, test_time_parse_honours_length);
    tcase_add_test(tc, test_time_public_parse_reports_einval);
    tcase_add_test(tc, test_time_format_then_parse_round_trips);
    suite_add_tcase(s, tc);
    return s;
}
