/* glob.c - resource globs: `*` any run of bytes, `?` one byte, every other
 * byte literal. Matching, and containment (is every string of one glob
 * matched by another), which delegation uses to refuse wider resources.
 *
 * DESIGN (containment): inner ⊆ outer is decided exactly by walking the
 * product of inner's pattern positions with the set of outer's positions
 * (a subset construction over outer) for every byte class that matters:
 * each literal of either glob, plus one byte that is in neither. A
 * reachable pair where inner has matched its whole pattern but outer's
 * set lacks its end is a string in inner and not in outer. The walk is
 * bounded; past the bound the answer is "not contained" (fail closed). */
#include <stdlib.h>
#include <string.h>

#include "core.h"

bool ai_glob_matches(const char *p, const char *s)
{
    const char *star = NULL, *retry = NULL;

    if (p == NULL || s == NULL)
        return false;
    while (*s != '\0') {
        if (*p == '*') {
            star = p++;
            retry = s;
        } else if (*p != '\0' && (*p == '?' || *p == *s)) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star + 1;
            s = ++retry;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

#define WORDS ((AI_PATTERN_MAX + 1 + 63) / 64)
#define MAX_PAIRS 4096
#define FIRST_PAIRS 64 /* grown by doubling: most walks stay small */

typedef struct bset {
    uint64_t w[WORDS];
} bset;

typedef struct pair {
    size_t i; /* position in inner */
    bset s;   /* positions in outer */
} pair;

typedef struct walk {
    const char *a, *b;
    size_t na, nb;
    pair *pairs;
    size_t npairs, next, cap; /* slots: 2 * cap entries */
    int32_t *slots;
    bool overflow;
} walk;

static bool has(const bset *s, size_t j) { return s->w[j / 64] >> (j % 64) & 1; }
static void add(bset *s, size_t j) { s->w[j / 64] |= UINT64_C(1) << (j % 64); }

static void closure(const walk *w, bset *s)
{
    for (size_t j = 0; j < w->nb; j++)
        if (w->b[j] == '*' && has(s, j))
            add(s, j + 1);
}

static void step(const walk *w, const bset *s, unsigned char c, bset *out)
{
    memset(out, 0, sizeof *out);
    for (size_t j = 0; j < w->nb; j++) {
        if (!has(s, j))
            continue;
        if (w->b[j] == '*')
            add(out, j);
        else if (w->b[j] == '?' || (unsigned char)w->b[j] == c)
            add(out, j + 1);
    }
    closure(w, out);
}

static uint64_t hash_pair(size_t i, const bset *s)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ i;

    for (size_t k = 0; k < WORDS; k++) {
        h ^= s->w[k];
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    return h;
}

/* Double the pair array and rebuild the hash index. */
static bool grow(walk *w)
{
    size_t cap = w->cap ? w->cap * 2 : FIRST_PAIRS;
    pair *pairs = realloc(w->pairs, cap * sizeof *pairs);
    int32_t *slots;

    if (pairs == NULL)
        return false;
    w->pairs = pairs;
    slots = malloc(2 * cap * sizeof *slots);
    if (slots == NULL)
        return false;
    memset(slots, 0xff, 2 * cap * sizeof *slots);
    for (size_t k = 0; k < w->npairs; k++) {
        size_t slot = hash_pair(pairs[k].i, &pairs[k].s) & (2 * cap - 1);
        while (slots[slot] >= 0)
            slot = (slot + 1) & (2 * cap - 1);
        slots[slot] = (int32_t)k;
    }
    free(w->slots);
    w->slots = slots;
    w->cap = cap;
    return true;
}

/* Queue (i, s) unless seen; also queue inner's empty-star successor. */
static void visit(walk *w, size_t i, const bset *s)
{
    for (;;) {
        if (w->npairs == w->cap &&
            (w->cap == MAX_PAIRS || !grow(w))) {
            w->overflow = true; /* too big, or out of memory: fail closed */
            return;
        }
        size_t mask = 2 * w->cap - 1, slot = hash_pair(i, s) & mask;
        bool seen = false;
        while (w->slots[slot] >= 0) {
            const pair *p = &w->pairs[w->slots[slot]];
            if (p->i == i && memcmp(&p->s, s, sizeof *s) == 0) {
                seen = true;
                break;
            }
            slot = (slot + 1) & mask;
        }
        if (seen)
            return;
        w->slots[slot] = (int32_t)w->npairs;
        w->pairs[w->npairs].i = i;
        w->pairs[w->npairs].s = *s;
        w->npairs++;
        if (i < w->na && w->a[i] == '*')
            i++; /* the star may match nothing */
        else
            return;
    }
}

static bool has_wild(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

bool ai_glob_within(const char *inner, const char *outer)
{
    unsigned char classes[257];
    bool used[256] = {false};
    size_t nclass = 0;
    walk w;
    bset start;
    bool ok = false;

    if (inner == NULL || outer == NULL)
        return false;
    w.na = strlen(inner);
    w.nb = strlen(outer);
    if (w.na > AI_PATTERN_MAX || w.nb > AI_PATTERN_MAX)
        return false;
    /* The cases delegation meets most, decided directly. */
    if (strcmp(inner, outer) == 0 || strcmp(outer, "*") == 0)
        return true;
    if (!has_wild(inner))
        return ai_glob_matches(outer, inner);
    if (!has_wild(outer))
        return false;

    for (size_t k = 0; k < w.na; k++)
        used[(unsigned char)inner[k]] = true;
    for (size_t k = 0; k < w.nb; k++)
        used[(unsigned char)outer[k]] = true;
    used['*'] = used['?'] = false;
    for (unsigned c = 1; c < 256; c++)
        if (used[c])
            classes[nclass++] = (unsigned char)c;
    for (unsigned c = 1; c < 256; c++)
        if (!used[c] && c != '*' && c != '?') {
            classes[nclass++] = (unsigned char)c; /* "any other byte" */
            break;
        }

    w.a = inner;
    w.b = outer;
    w.npairs = w.next = w.cap = 0;
    w.overflow = false;
    w.pairs = NULL;
    w.slots = NULL;
    memset(&start, 0, sizeof start);
    add(&start, 0);
    closure(&w, &start);
    visit(&w, 0, &start);
    while (w.next < w.npairs && !w.overflow) {
        pair cur = w.pairs[w.next++];
        if (cur.i == w.na) {
            if (!has(&cur.s, w.nb))
                goto done; /* a string of inner that outer rejects */
            continue;
        }
        char a = inner[cur.i];
        for (size_t k = 0; k < nclass && !w.overflow; k++) {
            unsigned char c = classes[k];
            bset nx;
            if (a != '*' && a != '?' && (unsigned char)a != c)
                continue;
            step(&w, &cur.s, c, &nx);
            visit(&w, a == '*' ? cur.i : cur.i + 1, &nx);
        }
    }
    ok = !w.overflow;
done:
    free(w.pairs);
    free(w.slots);
    return ok;
}
