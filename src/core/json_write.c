/* json_write.c - compact JSON output escaped exactly as JavaScript's
 * JSON.stringify escapes, so signatures match the Node.js package. */
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
