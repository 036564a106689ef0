/* test_b64.c - strict unpadded base64url (RFC 4648 section 5): known
 * answers, round trips, and every non-canonical form refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "../tests.h"

static bool dec(const char *s, unsigned char *out, size_t *n)
{
    return b64url_decode(s, strlen(s), out, n);
}

START_TEST(test_b64_encodes_rfc4648_vectors_unpadded)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba",
                                     "foobar"};
    static const char *const out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg",
                                      "Zm9vYmE", "Zm9vYmFy"};
    char buf[16];

    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        size_t n = strlen(in[i]);
        ck_assert_uint_eq(b64url_encoded_len(n), strlen(out[i]));
        b64url_encode((const unsigned char *)in[i], n, buf);
        ck_assert_str_eq(buf, out[i]);
    }
}
END_TEST

START_TEST(test_b64_uses_url_alphabet)
{
    const unsigned char in[] = {0xfb, 0xff, 0xbf};
    char buf[8];
    unsigned char back[8];
    size_t n = 0;

    b64url_encode(in, sizeof in, buf);
    ck_assert_str_eq(buf, "-_-_");
    ck_assert(dec("-_-_", back, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(back, in, 3) == 0);
}
END_TEST

START_TEST(test_b64_decodes_rfc4648_vectors)
{
    unsigned char buf[16];
    size_t n = 99;

    ck_assert(dec("", buf, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert(dec("Zm9vYmFy", buf, &n));
    ck_assert_uint_eq(n, 6);
    ck_assert(memcmp(buf, "foobar", 6) == 0);
    ck_assert(dec("Zm9vYmE", buf, &n));
    ck_assert_uint_eq(n, 5);
    ck_assert(memcmp(buf, "fooba", 5) == 0);
    ck_assert(dec("Zg", buf, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(buf[0], 'f');
}
END_TEST

/* Round trips of every length up to 1,000 bytes (the long ones take the
 * vectorised paths), into a buffer of exactly the documented size so a
 * sanitizer sees any overrun. */
START_TEST(test_b64_round_trips_every_length_and_byte)
{
    unsigned char in[1000];
    char enc[1400];
    size_t n;

    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 151 + 7 + (i >> 8));
    for (size_t len = 0; len <= sizeof in; len++) {
        size_t elen = b64url_encoded_len(len);
        unsigned char *back = malloc(elen / 4 * 3 + 2);
        ck_assert_ptr_nonnull(back);
        b64url_encode(in, len, enc);
        ck_assert_uint_eq(strlen(enc), elen);
        ck_assert_ptr_null(strpbrk(enc, "+/="));
        ck_assert(b64url_valid(enc, elen));
        ck_assert_msg(b64url_decode(enc, elen, back, &n), "length %zu", len);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(in, back, len) == 0);
        free(back);
    }
}
END_TEST

/* Every byte outside the alphabet, at every position of a long input, is
 * refused (the vectorised range tests have edges at each letter range). */
START_TEST(test_b64_long_input_refuses_bad_byte_anywhere)
{
    unsigned char in[180], out[260];
    char enc[241];
    size_t n, elen;
    int bad_count = 0;

    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    b64url_encode(in, sizeof in, enc);
    elen = strlen(enc);
    ck_assert_uint_eq(elen, 240);
    for (unsigned c = 0; c < 256; c++) {
        if (memchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_", (int)c, 64) != NULL)
            continue;
        bad_count++;
        for (size_t pos = 0; pos < elen; pos++) {
            char keep = enc[pos];
            enc[pos] = (char)c;
            ck_assert_msg(!b64url_decode(enc, elen, out, &n),
                          "byte 0x%02x at %zu accepted", c, pos);
            ck_assert(!b64url_valid(enc, elen));
            enc[pos] = keep;
        }
    }
    ck_assert_int_eq(bad_count, 256 - 64);
    ck_assert(b64url_decode(enc, elen, out, &n));
}
END_TEST

START_TEST(test_b64_refuses_padding)
{
    unsigned char buf[16];
    size_t n;

    ck_assert(!dec("Zg==", buf, &n));
    ck_assert(!dec("Zm8=", buf, &n));
    ck_assert(!dec("Zm9v====", buf, &n));
    ck_assert(!dec("=", buf, &n));
}
END_TEST

START_TEST(test_b64_refuses_standard_alphabet_and_bad_chars)
{
    static const char *const bad[] = {"Zm9+", "Zm9/", "Zm 9v", "Zm9v\n",
                                      "Zm9.", "Zm9*", "Zm9v\x80", "\xffZm9"};
    unsigned char buf[16];
    size_t n;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!dec(bad[i], buf, &n), "accepted #%zu", i);
    /* an embedded NUL inside the given length */
    ck_assert(!b64url_decode("Zm\0v", 4, buf, &n));
}
END_TEST

START_TEST(test_b64_refuses_impossible_length)
{
    unsigned char buf[16];
    size_t n;

    ck_assert(!dec("Z", buf, &n));
    ck_assert(!dec("Zm9vY", buf, &n));
}
END_TEST

START_TEST(test_b64_refuses_noncanonical_trailing_bits)
{
    unsigned char buf[16];
    size_t n;

    /* "f" is Zg; Zh..Zv carry the same byte with nonzero spare bits. */
    ck_assert(dec("Zg", buf, &n));
    ck_assert(!dec("Zh", buf, &n));
    ck_assert(!dec("Zv", buf, &n));
    /* "fo" is Zm8; Zm9 differs only in the two spare bits. */
    ck_assert(dec("Zm8", buf, &n));
    ck_assert(!dec("Zm9", buf, &n));
    ck_assert(!dec("Zm-", buf, &n));
    ck_assert(!dec("Zm9vZh", buf, &n));
}
END_TEST

Suite *suite_core_b64(void)
{
    Suite *s = suite_create("core_b64");
    TCase *tc = tcase_create("b64");

    tcase_add_test(tc, test_b64_encodes_rfc4648_vectors_unpadded);
    tcase_add_test(tc, test_b64_uses_url_alphabet);
    tcase_add_test(tc, test_b64_decodes_rfc4648_vectors);
    tcase_add_test(tc, test_b64_round_trips_every_length_and_byte);
    tcase_add_test(tc, test_b64_long_input_refuses_bad_byte_anywhere);
    tcase_add_test(tc, test_b64_refuses_padding);
    tcase_add_test(tc, test_b64_refuses_standard_alphabet_and_bad_chars);
    tcase_add_test(tc, test_b64_refuses_impossible_length);
    tcase_add_test(tc, test_b64_refuses_noncanonical_trailing_bits);
    suite_add_tcase(s, tc);
    return s;
}
