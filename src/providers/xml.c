/*
 * xml.c - a small, bounded, non-validating XML reader for the answers of
 * AWS's Query APIs (STS): checks that the whole document is well formed
 * and returns the text of one element found by its path.
 *
 * DESIGN: one pass over the bytes, no allocation, no recursion (an
 * explicit stack of XML_MAX_DEPTH names). DOCTYPE, CDATA and processing
 * instructions other than the leading XML declaration are refused, so no
 * entity expansion can happen; only the five predefined entities and
 * character references are decoded.
 */
#include <string.h>

#include "core/core.h"
#include "providers/sigv4.h"

typedef struct xr {
    const char *p, *end;
    const char *why;
} xr;

static bool fail(xr *x, const char *why)
{
    if (x->why == NULL)
        x->why = why;
    return false;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == ':' || c >= 0x80;
}

static bool name_char(unsigned char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool starts(const xr *x, const char *lit)
{
    size_t n = strlen(lit);

    return (size_t)(x->end - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

static void skip_ws(xr *x)
{
    while (x->p < x->end && is_ws(*x->p))
        x->p++;
}

/* Advance past the next occurrence of lit; false if there is none. */
static bool skip_past(xr *x, const char *lit)
{
    size_t n = strlen(lit);

    for (const char *q = x->p; (size_t)(x->end - q) >= n; q++)
        if (memcmp(q, lit, n) == 0) {
            x->p = q + n;
            return true;
        }
    return false;
}

static bool read_name(xr *x, const char **name, size_t *len)
{
    const char *s = x->p;

    if (x->p >= x->end || !name_start((unsigned char)*x->p))
        return fail(x, "bad element name");
    while (x->p < x->end && name_char((unsigned char)*x->p))
        x->p++;
    *name = s;
    *len = (size_t)(x->p - s);
    return *len <= 256 || fail(x, "name too long");
}

/* Comments are skipped; any other "<!" (DOCTYPE, CDATA) is refused. */
static bool skip_misc(xr *x)
{
    for (;;) {
        skip_ws(x);
        if (starts(x, "<!--")) {
            x->p += 4;
            if (!skip_past(x, "-->"))
                return fail(x, "unterminated comment");
        } else if (starts(x, "<!")) {
            return fail(x, "DOCTYPE and CDATA are not accepted");
        } else if (starts(x, "<?")) {
            return fail(x, "processing instruction");
        } else {
            return true;
        }
    }
}

/* Append a code point as UTF-8 to out (bounded). */
static void put_cp(unsigned long cp, char *out, size_t cap, size_t *n,
                   bool *overflow)
{
    unsigned char u[4];
    size_t k;

    if (cp < 0x80)
        u[0] = (unsigned char)cp, k = 1;
    else if (cp < 0x800)
        u[0] = (unsigned char)(0xc0 | cp >> 6),
        u[1] = (unsigned char)(0x80 | (cp & 0x3f)), k = 2;
    else if (cp < 0x10000)
        u[0] = (unsigned char)(0xe0 | cp >> 12),
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
        u[2] = (unsigned char)(0x80 | (cp & 0x3f)), k = 3;
    else
        u[0] = (unsigned char)(0xf0 | cp >> 18),
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f)),
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
        u[3] = (unsigned char)(0x80 | (cp & 0x3f)), k = 4;
    if (out == NULL)
        return;
    if (*n + k >= cap) {
        *overflow = true;
        return;
    }
    memcpy(out + *n, u, k);
    *n += k;
}

/* An entity or character reference at x->p ('&'); its value goes to out
 * when out is not NULL. */
static bool entity(xr *x, char *out, size_t cap, size_t *n, bool *overflow)
{
    static const struct {
        const char *lit;
        char c;
    } ents[] = {{"&amp;", '&'},
                {"&lt;", '<'},
                {"&gt;", '>'},
                {"&quot;", '"'},
                {"&apos;", '\''}};
    unsigned long cp = 0;
    int digits = 0;

    for (size_t i = 0; i < sizeof ents / sizeof *ents; i++)
        if (starts(x, ents[i].lit)) {
            x->p += strlen(ents[i].lit);
            put_cp((unsigned char)ents[i].c, out, cap, n, overflow);
            return true;
        }
    if (!starts(x, "&#"))
        return fail(x, "unknown entity");
    x->p += 2;
    if (x->p < x->end && *x->p == 'x') {
        x->p++;
        for (; x->p < x->end && *x->p != ';'; x->p++, digits++) {
            char c = *x->p;
            int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (v < 0 || digits >= 6)
                return fail(x, "bad character reference");
            cp = cp * 16 + (unsigned long)v;
        }
    } else {
        for (; x->p < x->end && *x->p != ';'; x->p++, digits++) {
            if (!(*x->p >= '0' && *x->p <= '9') || digits >= 7)
                return fail(x, "bad character reference");
            cp = cp * 10 + (unsigned long)(*x->p - '0');
        }
    }
    if (x->p >= x->end || digits == 0 || cp == 0 || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return fail(x, "bad character reference");
    x->p++; /* ';' */
    put_cp(cp, out, cap, n, overflow);
    return true;
}

/* Attributes up to '>' or "/>"; *empty tells which. */
static bool attributes(xr *x, bool *empty)
{
    for (;;) {
        const char *nm;
        size_t nl;
        bool ws = x->p < x->end && is_ws(*x->p);
        char q;

        skip_ws(x);
        if (x->p >= x->end)
            return fail(x, "unterminated tag");
        if (*x->p == '>') {
            x->p++;
            *empty = false;
            return true;
        }
        if (starts(x, "/>")) {
            x->p += 2;
            *empty = true;
            return true;
        }
        if (!ws)
            return fail(x, "malformed attribute");
        if (!read_name(x, &nm, &nl))
            return false;
        skip_ws(x);
        if (x->p >= x->end || *x->p != '=')
            return fail(x, "malformed attribute");
        x->p++;
        skip_ws(x);
        if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
            return fail(x, "malformed attribute");
        q = *x->p++;
        while (x->p < x->end && *x->p != q) {
            if (*x->p == '<')
                return fail(x, "'<' in attribute");
            if (*x->p == '&') {
                if (!entity(x, NULL, 0, NULL, NULL))
                    return false;
            } else {
                x->p++;
            }
        }
        if (x->p >= x->end)
            return fail(x, "unterminated attribute");
        x->p++;
    }
}

static bool local_is(const char *nm, size_t nl, const char *want)
{
    const char *colon = memchr(nm, ':', nl);

    if (colon != NULL) {
        nl -= (size_t)(colon + 1 - nm);
        nm = colon + 1;
    }
    return strlen(want) == nl && memcmp(nm, want, nl) == 0;
}

ai_code xml_text(const char *doc, size_t len, const char *const *path,
                 size_t npath, char *out, size_t outcap, const char **why)
{
    xr x = {doc, doc + len, NULL};
    const char *names[XML_MAX_DEPTH];
    size_t lens[XML_MAX_DEPTH];
    bool matched[XML_MAX_DEPTH];
    size_t depth = 0, n = 0;
    bool found = false, capturing = false, children = false,
         overflow = false, root_done = false;

    if (outcap > 0)
        out[0] = '\0';
    *why = NULL;
    if (doc == NULL || len == 0) {
        *why = "empty document";
        return AI_EINVAL;
    }
    if (len > XML_MAX_LEN) {
        *why = "document too large";
        return AI_EINVAL;
    }
    if (memchr(doc, '\0', len) != NULL) {
        *why = "NUL byte";
        return AI_EINVAL;
    }
    if (npath == 0 || npath > XML_MAX_DEPTH || outcap == 0) {
        *why = "bad path";
        return AI_EINVAL;
    }
    if (starts(&x, "\xef\xbb\xbf"))
        x.p += 3;
    if (starts(&x, "<?xml") && x.p + 5 < x.end && is_ws(x.p[5]) &&
        !skip_past(&x, "?>")) {
        fail(&x, "unterminated XML declaration");
        goto bad;
    }
    if (!skip_misc(&x))
        goto bad;
    if (x.p >= x.end || *x.p != '<') {
        fail(&x, "not an XML document");
        goto bad;
    }
    while (x.p < x.end) {
        if (depth == 0 && root_done) {
            if (!skip_misc(&x))
                goto bad;
            if (x.p < x.end) {
                fail(&x, "content after the root element");
                goto bad;
            }
            break;
        }
        if (*x.p == '<') {
            if (starts(&x, "<!--") || starts(&x, "<!") || starts(&x, "<?")) {
                if (!skip_misc(&x))
                    goto bad;
                continue;
            }
            if (starts(&x, "</")) {
                const char *nm;
                size_t nl;

                x.p += 2;
                if (!read_name(&x, &nm, &nl))
                    goto bad;
                skip_ws(&x);
                if (x.p >= x.end || *x.p != '>') {
                    fail(&x, "malformed end tag");
                    goto bad;
                }
                x.p++;
                if (depth == 0 || lens[depth - 1] != nl ||
                    memcmp(names[depth - 1], nm, nl) != 0) {
                    fail(&x, "mismatched end tag");
                    goto bad;
                }
                if (capturing && depth == npath) {
                    capturing = false;
                    found = true;
                }
                depth--;
                if (depth == 0)
                    root_done = true;
                continue;
            }
            {
                const char *nm;
                size_t nl;
                bool empty;

                x.p++;
                if (!read_name(&x, &nm, &nl) || !attributes(&x, &empty))
                    goto bad;
                if (depth == XML_MAX_DEPTH) {
                    fail(&x, "nested too deeply");
                    goto bad;
                }
                if (capturing)
                    children = true;
                matched[depth] = (depth == 0 || matched[depth - 1]) &&
                                 depth < npath &&
                                 local_is(nm, nl, path[depth]);
                names[depth] = nm;
                lens[depth] = nl;
                if (matched[depth] && depth == npath - 1 && !found &&
                    !capturing && !children) {
                    capturing = !empty;
                    found = empty;
                }
                if (!empty)
                    depth++;
                else if (depth == 0)
                    root_done = true;
            }
            continue;
        }
        /* character data */
        if (depth == 0) {
            fail(&x, "text outside the root element");
            goto bad;
        }
        while (x.p < x.end && *x.p != '<') {
            bool cap = capturing && depth == npath;

            if (*x.p == '&') {
                if (!entity(&x, cap ? out : NULL, outcap, &n, &overflow))
                    goto bad;
            } else if (*x.p == '>' && x.p - doc >= 2 && x.p[-1] == ']' &&
                       x.p[-2] == ']') {
                fail(&x, "']]>' in text");
                goto bad;
            } else {
                if (cap) {
                    if (n + 1 >= outcap)
                        overflow = true;
                    else
                        out[n++] = *x.p;
                }
                x.p++;
            }
        }
    }
    if (depth != 0 || !root_done) {
        fail(&x, "truncated document");
        goto bad;
    }
    if (!found || children || overflow) {
        memset(out, 0, n < outcap ? n + 1 : outcap); /* may be a secret */
        return overflow && found && !children ? AI_ENOBUFS : AI_ENOTFOUND;
    }
    out[n] = '\0';
    return AI_OK;
bad:
    *why = x.why != NULL ? x.why : "malformed XML";
    memset(out, 0, n < outcap ? n + 1 : outcap);
    return AI_EINVAL;
}
