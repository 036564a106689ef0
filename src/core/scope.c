/* scope.c - scope patterns: provider:resource:action, segment by segment.
 * `*` alone matches any scope; a final `*` segment matches one or more
 * remaining segments; a `*` elsewhere matches exactly one segment. */
#include <string.h>

#include "core.h"

#define MAX_SEGS (AI_SCOPE_MAX + 1)

typedef struct segs {
    const char *s[MAX_SEGS];
    unsigned char n[MAX_SEGS];
    size_t count;
    bool final; /* last segment is `*` */
} segs;

static bool split(const char *str, segs *g)
{
    const char *p = str, *start = str;
    size_t len = strlen(str);

    if (len == 0 || len > AI_SCOPE_MAX)
        return false;
    g->count = 0;
    for (;; p++) {
        if (*p == ':' || *p == '\0') {
            g->s[g->count] = start;
            g->n[g->count] = (unsigned char)(p - start);
            g->count++;
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    g->final = g->n[g->count - 1] == 1 && g->s[g->count - 1][0] == '*';
    return true;
}

static bool is_star(const segs *g, size_t i)
{
    return g->n[i] == 1 && g->s[i][0] == '*';
}

static bool same(const segs *a, size_t i, const segs *b, size_t j)
{
    return a->n[i] == b->n[j] && memcmp(a->s[i], b->s[j], a->n[i]) == 0;
}

/* One pass, no splitting: this runs for every permission check. */
bool ai_scope_matches(const char *p, const char *s)
{
    if (p == NULL || s == NULL || *p == '\0' || *s == '\0')
        return false;
    for (;;) {
        /* at the start of a segment in both */
        if (p[0] == '*' && (p[1] == ':' || p[1] == '\0')) {
            if (p[1] == '\0')
                return true; /* final `*`: this and any further segments */
            while (*s != '\0' && *s != ':')
                s++;
            if (*s == '\0')
                return false;
            p += 2;
            s++;
            continue;
        }
        while (*p != '\0' && *p != ':' && *p == *s)
            p++, s++;
        if (*p == ':' && *s == ':') {
            p++, s++;
            continue;
        }
        return *p == '\0' && *s == '\0';
    }
}

/* Does outer segment i cover every value of inner segment i? */
static bool covers(const segs *outer, const segs *inner, size_t i)
{
    return is_star(outer, i) || (!is_star(inner, i) && same(outer, i, inner, i));
}

bool ai_scope_within(const char *inner, const char *outer)
{
    segs c, p;
    size_t fixed;

    if (inner == NULL || outer == NULL || !split(inner, &c) ||
        !split(outer, &p))
        return false;
    if (p.final) {
        if (c.count < p.count)
            return false;
        fixed = p.count - 1;
    } else {
        if (c.final || c.count != p.count)
            return false;
        fixed = p.count;
    }
    for (size_t i = 0; i < fixed; i++)
        if (!covers(&p, &c, i))
            return false;
    return true;
}

bool ai_scope_overlaps(const char *a, const char *b)
{
    segs x, y;
    size_t fixed;

    if (a == NULL || b == NULL || !split(a, &x) || !split(b, &y))
        return false;
    if (x.final && y.final) {
        fixed = (x.count < y.count ? x.count : y.count) - 1;
    } else if (x.final || y.final) {
        const segs *open = x.final ? &x : &y, *closed = x.final ? &y : &x;
        if (closed->count < open->count)
            return false;
        fixed = open->count - 1;
    } else {
        if (x.count != y.count)
            return false;
        fixed = x.count;
    }
    for (size_t i = 0; i < fixed; i++)
        if (!is_star(&x, i) && !is_star(&y, i) && !same(&x, i, &y, i))
            return false;
    return true;
}
