/* json_read.c - a strict JSON reader for signed token bytes.
 *
 * Only bytes whose HMAC has been checked reach it (DESIGN §2), but it is
 * written for hostile input anyway and fuzzed: RFC 8259 syntax, UTF-8
 * validated, no lone surrogates, no duplicate keys at any level, nesting
 * bounded. Strings are unescaped in place (an unescaped string is never
 * longer than its escaped form) so parsing allocates nothing. */
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core.h"

#define JR_MAX_DEPTH 20
#define JR_MAX_MEMBERS 128 /* per object, for the duplicate-key check */

bool jr_fail(jr *r, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_u4(jr *r, const char *s, unsigned *u)
{
    int a, b, c, d;

    if (r->end - s < 4)
        return false;
    a = hexval(s[0]), b = hexval(s[1]), c = hexval(s[2]), d = hexval(s[3]);
    if ((a | b | c | d) < 0)
        return false;
    *u = (unsigned)(a << 12 | b << 8 | c << 4 | d);
    return true;
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), 0 if bad. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    size_t n;
    unsigned min, cp;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Bytes that end the plain run of a string: '"', '\\', controls, 0x80+. */
static const unsigned char special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

bool jr_string_rest(jr *r, char *start, char *p, char **s, size_t *n)
{
    char *o;

    while (p < r->end && !special[(unsigned char)*p])
        p++;
    o = p;
    while (p < r->end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *o = '\0'; /* o <= p: the quote itself or earlier */
            *s = start;
            *n = (size_t)(o - start);
            r->p = p + 1;
            return true;
        }
        if (c < 0x20)
            return jr_fail(r, "control character in string");
        r->esc = true; /* not plain ASCII: callers re-check content */
        if (c >= 0x80) {
            size_t k = utf8_len((const unsigned char *)p,
                                (const unsigned char *)r->end);
            if (k == 0)
                return jr_fail(r, "invalid UTF-8 in string");
            memmove(o, p, k);
            o += k, p += k;
            continue;
        }
        if (c != '\\') {
            *o++ = *p++;
            continue;
        }
        if (r->end - p < 2)
            break;
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned u, lo;
            if (!read_u4(r, p + 2, &u))
                return jr_fail(r, "bad \\u escape");
            p += 6;
            if (u >= 0xdc00 && u <= 0xdfff)
                return jr_fail(r, "lone surrogate in string");
            if (u >= 0xd800 && u <= 0xdbff) {
                if (r->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                    !read_u4(r, p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return jr_fail(r, "lone surrogate in string");
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            if (u == 0)
                return jr_fail(r, "NUL in string");
            o = put_utf8(o, u);
            continue;
        }
        default:
            return jr_fail(r, "bad escape in string");
        }
        p += 2;
    }
    return jr_fail(r, "unterminated string");
}

bool jr_bool(jr *r, bool *v)
{
    jr_ws(r);
    if (r->end - r->p >= 4 && memcmp(r->p, "true", 4) == 0) {
        r->p += 4;
        *v = true;
        return true;
    }
    if (r->end - r->p >= 5 && memcmp(r->p, "false", 5) == 0) {
        r->p += 5;
        *v = false;
        return true;
    }
    return jr_fail(r, "expected a boolean");
}

bool jr_int(jr *r, int64_t lo, int64_t hi, int64_t *v)
{
    bool neg = false;
    int64_t x = 0;
    char *p;

    jr_ws(r);
    p = r->p;
    if (p < r->end && *p == '-')
        neg = true, p++;
    if (p >= r->end || *p < '0' || *p > '9')
        return jr_fail(r, "expected an integer");
    if (*p == '0' && p + 1 < r->end && p[1] >= '0' && p[1] <= '9')
        return jr_fail(r, "integer with a leading zero");
    for (; p < r->end && *p >= '0' && *p <= '9'; p++) {
        if (x > (INT64_C(1) << 40))
            return jr_fail(r, "integer out of range");
        x = x * 10 + (*p - '0');
    }
    if (p < r->end && (*p == '.' || *p == 'e' || *p == 'E'))
        return jr_fail(r, "expected a plain integer");
    if (neg)
        x = -x;
    if (x < lo || x > hi)
        return jr_fail(r, "integer out of range");
    r->p = p;
    *v = x;
    return true;
}

/* Any JSON number, validated; its text is [*s, *s + *n). */
static bool read_number(jr *r, char **s, size_t *n)
{
    char *p = r->p;

    *s = p;
    if (p < r->end && *p == '-')
        p++;
    if (p >= r->end || *p < '0' || *p > '9')
        return jr_fail(r, "malformed JSON");
    if (*p == '0')
        p++;
    else
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    if (p < r->end && *p == '.') {
        p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return jr_fail(r, "malformed number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return jr_fail(r, "malformed number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    *n = (size_t)(p - *s);
    r->p = p;
    return true;
}

typedef struct span {
    const char *s;
    size_t n;
} span;

/* Is the number text s[0..n) (already validated) exactly what JavaScript's
 * JSON.stringify writes for its value? Conservative: no exponent, no
 * trailing fraction zeros, no -0, at most 15 significant digits (so it is
 * its own shortest round trip), at least 1e-6 in magnitude. User input is
 * held to it because the Node.js verify re-serializes what it parsed. */
static bool js_number_text(const char *s, size_t n)
{
    size_t i = 0, digits = 0, lead = 0;
    bool zero_int;

    if (i < n && s[i] == '-')
        i++;
    zero_int = i < n && s[i] == '0';
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits += !zero_int;
    if (i < n && s[i] == '.') {
        if (s[n - 1] == '0')
            return false;
        for (i++; i < n && s[i] == '0' && zero_int; i++)
            lead++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (lead > 5)
            return false;
    } else if (zero_int && s[0] == '-') {
        return false; /* -0 */
    }
    return i == n && digits <= 15;
}

/* Member j of the object copied to tmp (see js_reorder), appended to out. */
static void put_member(ai_buf *out, const char *tmp, size_t obj, size_t len,
                       const uint32_t *start, size_t n, size_t j, bool comma)
{
    size_t a = start[j] - obj;
    size_t e = j + 1 < n ? start[j + 1] - obj - 1 : len; /* before ',' */

    if (comma)
        buf_putc(out, ',');
    buf_put(out, tmp + a, e - a);
}

/* Rewrite the members of an object just written to out (from offset obj,
 * after its '{', to the end; member i starts at start[i]) in JavaScript's
 * key order: array indexes (idx[i]; UINT32_MAX for other keys) ascending
 * first, then the rest as they came. The length does not change. */
static bool js_reorder(ai_buf *out, size_t obj, const uint32_t *start,
                       const uint32_t *idx, size_t n)
{
    size_t len = out->len - obj, done = 0;
    uint64_t floor = 0;
    char *tmp = ai_malloc(len);

    if (tmp == NULL)
        return false;
    memcpy(tmp, out->p + obj, len);
    out->len = obj;
    for (;;) {
        size_t i = n;
        for (size_t j = 0; j < n; j++)
            if (idx[j] != UINT32_MAX && idx[j] >= floor &&
                (i == n || idx[j] < idx[i]))
                i = j;
        if (i == n)
            break;
        floor = (uint64_t)idx[i] + 1;
        put_member(out, tmp, obj, len, start, n, i, done++ > 0);
    }
    for (size_t j = 0; j < n; j++)
        if (idx[j] == UINT32_MAX)
            put_member(out, tmp, obj, len, start, n, j, done++ > 0);
    ai_free(tmp);
    return true;
}

/* Validate one value; when out is non-NULL also write it compactly. */
static bool value(jr *r, ai_buf *out)
{
    char *s;
    size_t n;
    bool b;

    jr_ws(r);
    if (r->p >= r->end)
        return jr_fail(r, "malformed JSON");
    switch (*r->p) {
    case '{': {
        span keys[JR_MAX_MEMBERS];
        uint32_t mstart[JR_MAX_MEMBERS], midx[JR_MAX_MEMBERS];
        size_t nk = 0, obj = 0;
        bool other_key = false, reorder = false;
        if (++r->depth > JR_MAX_DEPTH)
            return jr_fail(r, "JSON nested too deeply");
        r->p++;
        if (out) {
            buf_putc(out, '{');
            obj = out->len;
        }
        if (jr_peek(r, '}')) {
            r->p++;
        } else {
            for (;;) {
                if (!jr_string(r, &s, &n))
                    return false;
                if (nk == JR_MAX_MEMBERS)
                    return jr_fail(r, "JSON object too large");
                for (size_t i = 0; i < nk; i++)
                    if (keys[i].n == n && memcmp(keys[i].s, s, n) == 0)
                        return jr_fail(r, "duplicate key in JSON object");
                keys[nk].s = s, keys[nk].n = n, nk++;
                if (out) {
                    uint32_t ix;
                    if (nk > 1)
                        buf_putc(out, ',');
                    mstart[nk - 1] = (uint32_t)out->len;
                    if (jw_array_index(s, n, &ix)) {
                        midx[nk - 1] = ix;
                        if (other_key || (nk > 1 && midx[nk - 2] > ix))
                            reorder = true;
                    } else {
                        midx[nk - 1] = UINT32_MAX;
                        other_key = true;
                    }
                    jw_str(out, s, n);
                    buf_putc(out, ':');
                }
                if (!jr_lit(r, ':') || !value(r, out))
                    return false;
                if (jr_peek(r, ',')) {
                    r->p++;
                    continue;
                }
                if (!jr_lit(r, '}'))
                    return false;
                break;
            }
        }
        if (out && reorder && !out->oom &&
            !js_reorder(out, obj, mstart, midx, nk))
            return jr_fail(r, "out of memory");
        if (out)
            buf_putc(out, '}');
        r->depth--;
        return true;
    }
    case '[': {
        size_t count = 0;
        if (++r->depth > JR_MAX_DEPTH)
            return jr_fail(r, "JSON nested too deeply");
        r->p++;
        if (out)
            buf_putc(out, '[');
        if (jr_peek(r, ']')) {
            r->p++;
        } else {
            for (;;) {
                if (out && count++ > 0)
                    buf_putc(out, ',');
                if (!value(r, out))
                    return false;
                if (jr_peek(r, ',')) {
                    r->p++;
                    continue;
                }
                if (!jr_lit(r, ']'))
                    return false;
                break;
            }
        }
        if (out)
            buf_putc(out, ']');
        r->depth--;
        return true;
    }
    case '"':
        if (!jr_string(r, &s, &n))
            return false;
        if (out)
            jw_str(out, s, n);
        return true;
    case 't':
    case 'f':
        if (!jr_bool(r, &b))
            return false;
        if (out)
            buf_puts(out, b ? "true" : "false");
        return true;
    case 'n':
        if (r->end - r->p < 4 || memcmp(r->p, "null", 4) != 0)
            return jr_fail(r, "malformed JSON");
        r->p += 4;
        if (out)
            buf_puts(out, "null");
        return true;
    default:
        if (!read_number(r, &s, &n))
            return false;
        if (out && r->input && !js_number_text(s, n))
            return jr_fail(r, "number not as JavaScript writes it (no "
                              "exponent, no trailing zeros, -0 or leading "
                              "zeros; 15 digits at most, 1e-6 at least)");
        if (out)
            buf_put(out, s, n);
        return true;
    }
}

bool jr_skip(jr *r)
{
    return value(r, NULL);
}

bool jr_canon(jr *r, ai_buf *out)
{
    return value(r, out);
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;

    while (p < end) {
        if (*p == 0)
            return false;
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_len(p, end);
        if (k == 0)
            return false;
        p += k;
    }
    return true;
}
