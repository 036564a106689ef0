/* b64.c - strict unpadded base64url, the alphabet of RFC 4648 section 5. */
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define B64_SIMD 1
#endif

#include "core.h"
#include "b64_tables.h"

static const char enc[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for alphabet bytes, 0xff for every other byte. */
static const unsigned char dec[256] = {
#define X 0xff
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, 62, X, X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, 63,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
#undef X
};

bool b64url_valid(const char *s, size_t n)
{
    unsigned char bad = 0;

    for (size_t i = 0; i < n; i++)
        bad |= dec[(unsigned char)s[i]];
    return (bad & 0x80) == 0;
}

size_t b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0, o = 0;

    /* Three bytes to four characters: two lookups of 12 bits each. */
    for (; i + 3 <= n; i += 3, o += 4) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        memcpy(out + o, b64_etab2 + 2 * (v >> 12), 2);
        memcpy(out + o + 2, b64_etab2 + 2 * (v & 0xfff), 2);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = enc[v >> 18];
        out[o++] = enc[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = enc[v >> 18];
        out[o++] = enc[(v >> 12) & 63];
        out[o++] = enc[(v >> 6) & 63];
    }
    out[o] = '\0';
}

#ifdef B64_SIMD
/* Sixteen characters to twelve bytes per step with SSSE3, after Mula and
 * Lemire's base64 decoder, with tables for the base64url alphabet.
 * Validity: each high nibble class has a bit (lut_hi); lut_lo lists, for
 * each low nibble, the classes in which that nibble is not a letter of the
 * alphabet; a byte is valid when the two share no bit (bytes of 0x80 and
 * above fall in a class with no valid low nibble). The value is the byte
 * plus an offset chosen by its high nibble ('_' needs its own). Writes 16
 * bytes per step, so it stops while 8 characters (6 bytes) remain.
 * Returns the characters consumed; *bad is set on a byte outside the
 * alphabet. */
__attribute__((target("ssse3"))) static size_t
decode_ssse3(const unsigned char *s, size_t len, unsigned char *out,
             bool *bad)
{
    const __m128i lut_lo = _mm_setr_epi8(0x25, 0x21, 0x21, 0x21, 0x21, 0x21,
                                         0x21, 0x21, 0x21, 0x21, 0x23, 0x3b,
                                         0x3b, 0x3a, 0x3b, 0x33);
    const __m128i lut_hi = _mm_setr_epi8(0x20, 0x20, 0x01, 0x02, 0x04, 0x08,
                                         0x04, 0x10, 0x20, 0x20, 0x20, 0x20,
                                         0x20, 0x20, 0x20, 0x20);
    const __m128i lut_roll = _mm_setr_epi8(0, 0, 17, 4, -65, -65, -71, -71,
                                           0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i nib = _mm_set1_epi8(0x0f);
    const __m128i pack1 = _mm_set1_epi32(0x01400140);
    const __m128i pack2 = _mm_set1_epi32(0x00011000);
    const __m128i order =
        _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    __m128i errs = _mm_setzero_si128();
    size_t i = 0;

    for (; i + 24 <= len; i += 16, out += 12) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hi = _mm_and_si128(_mm_srli_epi32(x, 4), nib);
        __m128i lo = _mm_and_si128(x, nib);
        errs = _mm_or_si128(errs, _mm_and_si128(_mm_shuffle_epi8(lut_lo, lo),
                                                _mm_shuffle_epi8(lut_hi, hi)));
        __m128i roll = _mm_add_epi8(
            _mm_shuffle_epi8(lut_roll, hi),
            _mm_and_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('_')),
                          _mm_set1_epi8(33)));
        __m128i v = _mm_add_epi8(x, roll);
        __m128i w = _mm_madd_epi16(_mm_maddubs_epi16(v, pack1), pack2);
        _mm_storeu_si128((__m128i *)(void *)out, _mm_shuffle_epi8(w, order));
    }
    *bad = _mm_movemask_epi8(_mm_cmpeq_epi8(errs, _mm_setzero_si128())) !=
           0xffff;
    return i;
}
#endif

bool b64url_decode(const char *in, size_t len, unsigned char *out,
                   size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0, rem = len % 4;
    uint32_t acc = 0;

    if (rem == 1)
        return false;
#ifdef B64_SIMD
    if (len >= 24 && __builtin_cpu_supports("ssse3")) {
        bool bad;
        i = decode_ssse3(s, len, out, &bad);
        if (bad)
            return false;
        o = i / 4 * 3;
    }
#endif
    const uint32_t(*t)[256] = b64_dtab;
    /* Eight characters to six bytes per step, stored as one 8-byte word
     * whose last two bytes the next step overwrites: run it only while
     * at least four more characters (three more bytes) follow. */
    for (; i + 12 <= len; i += 8) {
        uint32_t v = t[0][s[i]] | t[1][s[i + 1]] | t[2][s[i + 2]] |
                     t[3][s[i + 3]];
        uint32_t w = t[0][s[i + 4]] | t[1][s[i + 5]] | t[2][s[i + 6]] |
                     t[3][s[i + 7]];
        uint64_t six = ((uint64_t)v << 40 | (uint64_t)w << 16);
        acc |= v | w;
        six = __builtin_bswap64(six);
        memcpy(out + o, &six, 8);
        o += 6;
    }
    for (; i + 4 <= len; i += 4) {
        uint32_t v = t[0][s[i]] | t[1][s[i + 1]] | t[2][s[i + 2]] |
                     t[3][s[i + 3]];
        acc |= v;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
        o += 3;
    }
    if (acc >> 31)
        return false;
    if (rem == 2) {
        unsigned a = dec[s[i]], b = dec[s[i + 1]];
        if ((a | b) & 0x80 || (b & 0x0f) != 0)
            return false;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
    } else if (rem == 3) {
        unsigned a = dec[s[i]], b = dec[s[i + 1]], c = dec[s[i + 2]];
        if ((a | b | c) & 0x80 || (c & 0x03) != 0)
            return false;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
        out[o++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
    }
    *outlen = o;
    return true;
}
