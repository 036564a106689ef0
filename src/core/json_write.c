/* json_write.c - compact JSON output escaped exactly as JavaScript's
 * JSON.stringify escapes, so signatures match the Node.js package. */
#include <string.h>

#include "core.h"

static const char hex[] = "0123456789abcdef";

void jw_str(ai_buf *b, const char *s, size_t n)
{
    size_t run = 0;

    if (!buf_reserve(b, n + 2))
        return;
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
            u[4] = hex[c >> 4], u[5] = hex[c & 15];
            buf_put(b, u, 6);
            continue;
        }
        buf_puts(b, esc);
    }
    buf_put(b, s + run, n - run);
    buf_putc(b, '"');
}

void jw_key(ai_buf *b, const char *k, bool first)
{
    if (!first)
        buf_putc(b, ',');
    buf_putc(b, '"');
    buf_puts(b, k);
    buf_put(b, "\":", 2);
}

void jw_time(ai_buf *b, int64_t ms)
{
    char t[AI_TIME_BUF];

    ai_time_format(ms, t);
    buf_putc(b, '"');
    buf_puts(b, t);
    buf_putc(b, '"');
}

/* JavaScript enumerates an object's array-index keys (the canonical
 * decimal forms of 0 .. 2^32 - 2) first, in ascending order, and the other
 * keys after them in insertion order; JSON.parse + JSON.stringify (what the
 * Node.js verify re-signs) therefore moves "2" before "b". Objects written
 * here with keys from users follow that order. */
bool jw_array_index(const char *k, size_t n, uint32_t *idx)
{
    uint64_t v = 0;

    if (n == 0 || n > 10 || (n > 1 && k[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v > UINT64_C(0xfffffffe))
        return false;
    *idx = (uint32_t)v;
    return true;
}

/* Rank in JavaScript property order: indexes by value, then position. */
static uint64_t js_rank(const void *base, size_t stride, size_t name_off,
                        size_t i)
{
    const char *k;
    uint32_t idx;

    memcpy(&k, (const char *)base + i * stride + name_off, sizeof k);
    return jw_array_index(k, strlen(k), &idx) ? idx
                                               : (UINT64_C(1) << 32) + i;
}

size_t jw_js_next(const void *base, size_t n, size_t stride, size_t name_off,
                  size_t prev)
{
    uint64_t floor = prev < n ? js_rank(base, stride, name_off, prev) : 0;
    uint64_t best_rank = UINT64_MAX;
    size_t best = n;

    for (size_t i = 0; i < n; i++) {
        uint64_t r = js_rank(base, stride, name_off, i);
        if ((prev >= n || r > floor) && r < best_rank)
            best = i, best_rank = r;
    }
    return best;
}
