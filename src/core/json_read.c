/* json_read.c - a strict JSON reader for signed token bytes.
 *
 * Only bytes whose HMAC has been checked reach it (DESIGN §2), but it is
 * written for hostile input anyway and fuzzed: RFC 8259 syntax, UTF-8
 * validated, no lone surrogates, no duplicate keys at any level, nesting
 * bounded. Strings are unescaped in place (an unescaped string is never
 * longer than its escaped form) so parsing allocates nothing. */
#include <string.h>

#include "core.h"

#define JR_MAX_DEPTH 20
#define JR_MAX_MEMBERS 128 /* per object, for the duplicate-key check */

bool jr_fail(jr *r, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    return false;
}

void jr_ws(jr *r)
{
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

bool jr_peek(jr *r, char c)
{
    jr_ws(r);
    return r->p < r->end && *r->p == c;
}

bool jr_lit(jr *r, char c)
{
    jr_ws(r);
    if (r->p >= r->end || *r->p != c)
        return jr_fail(r, "malformed JSON");
    r->p++;
    return true;
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

bool jr_string(jr *r, char **s, size_t *n)
{
    char *p, *o, *start;

    if (!jr_lit(r, '"'))
        return false;
    start = o = p = r->p;
    /* Fast path: plain ASCII runs need no copying. */
    while (p < r->end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
            break;
        p++;
    }
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
        size_t nk = 0;
        if (++r->depth > JR_MAX_DEPTH)
            return jr_fail(r, "JSON nested too deeply");
        r->p++;
        if (out)
            buf_putc(out, '{');
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
                    if (nk > 1)
                        buf_putc(out, ',');
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
