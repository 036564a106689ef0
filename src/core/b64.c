/* b64.c - strict unpadded base64url, the alphabet of RFC 4648 section 5. */
#include "core.h"

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

size_t b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = enc[v >> 18];
        *out++ = enc[(v >> 12) & 63];
        *out++ = enc[(v >> 6) & 63];
        *out++ = enc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = enc[v >> 18];
        *out++ = enc[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = enc[v >> 18];
        *out++ = enc[(v >> 12) & 63];
        *out++ = enc[(v >> 6) & 63];
    }
    *out = '\0';
}

bool b64url_decode(const char *in, size_t len, unsigned char *out,
                   size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0, rem = len % 4;

    if (rem == 1)
        return false;
    for (; i + 4 <= len; i += 4) {
        unsigned a = dec[s[i]], b = dec[s[i + 1]], c = dec[s[i + 2]],
                 d = dec[s[i + 3]];
        if ((a | b | c | d) & 0x80)
            return false;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
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
