/* scope.c - scope patterns: provider:resource:action, segment by segment.
 * `*` alone matches any scope; a final `*` segment matches one or more
 * remaining segments; a `*` elsewhere matches exactly one segment. */
#include <string.h>

#include "core.h"

/* One segment of a scope: [s, s + n); `last` when no ':' follows. */
typedef struct seg {
    const char *s;
    size_t n;
    bool last;
} seg;

static const char *next_seg(const char *p, seg *g)
{
    const char *e = strchr(p, ':');

    g->s = p;
    g->n = e ? (size_t)(e - p) : strlen(p);
    g->last = e == NULL;
    return e ? e + 1 : NULL;
}

static bool star(const seg *g)
{
    return g->n == 1 && g->s[0] == '*';
}

static bool same(const seg *a, const seg *b)
{
    return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
}

/* One pass, no splitting: this runs for every permission check. The two
 * common shapes, no `*` at all and a single final `*`, are a string and a
 * prefix comparison. */
bool ai_scope_matches(const char *p, const char *s)
{
    size_t pn;
    const char *star;

    if (p == NULL || s == NULL || *p == '\0' || *s == '\0')
        return false;
    pn = strlen(p);
    star = memchr(p, '*', pn);
    if (star == NULL)
        return strcmp(p, s) == 0;
    if (star == p + pn - 1 && (pn == 1 || p[pn - 2] == ':'))
        return strncmp(p, s, pn - 1) == 0; /* "a:b:*" = "a:b:" + any */
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

bool ai_scope_within(const char *inner, const char *outer)
{
    const char *c = inner, *p = outer;
    seg cs, ps;

    if (c == NULL || p == NULL || *c == '\0' || *p == '\0')
        return false;
    for (;;) {
        p = next_seg(p, &ps);
        c = next_seg(c, &cs);
        if (star(&ps) && ps.last)
            return true; /* outer takes this and any further segments */
        if (star(&cs) && cs.last)
            return false; /* inner is open-ended here, outer is not */
        if (!star(&ps) && (star(&cs) || !same(&ps, &cs)))
            return false;
        if (ps.last || cs.last)
            return ps.last && cs.last;
    }
}

bool ai_scope_overlaps(const char *a, const char *b)
{
    const char *x = a, *y = b;
    seg xs, ys;

    if (x == NULL || y == NULL || *x == '\0' || *y == '\0')
        return false;
    for (;;) {
        x = next_seg(x, &xs);
        y = next_seg(y, &ys);
        if ((star(&xs) && xs.last) || (star(&ys) && ys.last))
            return true; /* an open end meets any remaining segments */
        if (!star(&xs) && !star(&ys) && !same(&xs, &ys))
            return false;
        if (xs.last || ys.last)
            return xs.last && ys.last;
    }
}

bool scope_concrete(const char *s)
{
    for (const char *p = s;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 1 && *p == '*')
            return false;
        if (e == NULL)
            return true;
        p = e + 1;
    }
}

bool word_valid(const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max + 1) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}
