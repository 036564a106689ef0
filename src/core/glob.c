/* glob.c - resource globs: `*` any run of bytes, `?` one byte, every other
 * byte literal. Matching, and containment (is every string of one glob
 * matched by another), which delegation uses to refuse wider resources.
 *
 * DESIGN (containment): inner ⊆ outer is decided exactly by walking the
 * product of inner's pattern positions with the set of outer's positions
 * (a subset construction over outer) for every byte class that matters:
 * each literal of either glob, plus one byte that is in neither. A
 * reachable pair where inner has matched its whole pattern but outer's
 * set lacks its end is a string in inner and not in outer. Sets are
 * bitsets and a step is a few word operations. The work is bounded (in
 * states and in steps, per call and per caller's budget); past the bound
 * the answer is "not contained": delegation refuses, never allows. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"


bool ai_glob_matches(const char *p, const char *s)
{
    const char *star = NULL, *retry = NULL, *wild;
    size_t pn;

    if (p == NULL || s == NULL)
        return false;
    /* The shapes of most resource lists, "org/repo" and "org/" + star, are a
     * string and a prefix comparison. */
    pn = strlen(p);
    wild = strpbrk(p, "*?");
    if (wild == NULL)
        return strcmp(p, s) == 0;
    if (wild == p + pn - 1 && *wild == '*')
        return strncmp(p, s, pn - 1) == 0;
    /* Backtracking is linear in the usual case but O(|s| * |p|) at worst
     * ("*a*a*...b" against "aaaa..."); past a small product, walk sets. */
    if (pn <= AI_PATTERN_MAX && strlen(s) * pn > 4096)
        return glob_match_sets(p, pn, s);
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
#define MAX_PAIRS 1024
#define FIRST_PAIRS 64 /* grown by doubling: most walks stay small */

typedef struct bset {
    uint64_t w[WORDS];
} bset;

typedef struct pair {
    size_t i; /* position in inner */
    bset s;   /* positions in outer */
} pair;

/* A glob as bitsets over its positions, for the subset walks below. A
 * pattern of at most 256 bytes holds at most 253 distinct literals (no
 * NUL, `*` or `?`), so classes fit a byte. */
typedef struct gpat {
    size_t n;
    bset star, any;          /* positions holding `*`, `?` */
    unsigned char cls[256];  /* byte -> class; 0 is "not in the pattern" */
    size_t nclass;
    bset lit[AI_PATTERN_MAX + 2]; /* by class: positions of that literal */
} gpat;

typedef struct walk {
    const char *a;
    size_t na;
    gpat g;                  /* the outer pattern */
    pair *pairs;
    size_t npairs, next, cap; /* slots: 2 * cap entries */
    int32_t *slots;
    uint64_t *budget;
    bool overflow; /* a bound was reached */
    bool oom;
} walk;

static bool has(const bset *s, size_t j) { return s->w[j / 64] >> (j % 64) & 1; }
static void add(bset *s, size_t j) { s->w[j / 64] |= UINT64_C(1) << (j % 64); }

/* out = (in & m) shifted up one position */
static void shl1_and(const bset *in, const bset *m, bset *out)
{
    uint64_t carry = 0;

    for (size_t k = 0; k < WORDS; k++) {
        uint64_t x = in->w[k] & m->w[k];
        out->w[k] = x << 1 | carry;
        carry = x >> 63;
    }
}

static void gpat_init(gpat *g, const char *p, size_t n)
{
    /* Only the sets in use need zeroing: lit[] is cleared as it is used. */
    memset(g, 0, offsetof(gpat, lit));
    memset(&g->lit[0], 0, sizeof g->lit[0]);
    g->n = n;
    g->nclass = 1;
    for (size_t j = 0; j < n; j++) {
        unsigned char c = (unsigned char)p[j];
        if (c == '*') {
            add(&g->star, j);
        } else if (c == '?') {
            add(&g->any, j);
        } else {
            if (g->cls[c] == 0) {
                g->cls[c] = (unsigned char)g->nclass;
                memset(&g->lit[g->nclass], 0, sizeof g->lit[0]);
                g->nclass++;
            }
            add(&g->lit[g->cls[c]], j);
        }
    }
}

/* A star may match nothing: whoever stands on one also stands after it. */
static void closure(const gpat *g, bset *s)
{
    for (;;) {
        bset nx;
        uint64_t grew = 0;
        shl1_and(s, &g->star, &nx);
        for (size_t k = 0; k < WORDS; k++) {
            grew |= nx.w[k] & ~s->w[k];
            s->w[k] |= nx.w[k];
        }
        if (grew == 0)
            return;
    }
}

/* The pattern's positions after reading one byte of class c from s. */
static void step(const gpat *g, const bset *s, size_t c, bset *out)
{
    bset m;

    for (size_t k = 0; k < WORDS; k++)
        m.w[k] = g->any.w[k] | g->lit[c].w[k];
    shl1_and(s, &m, out);
    for (size_t k = 0; k < WORDS; k++)
        out->w[k] |= s->w[k] & g->star.w[k];
    closure(g, out);
}

/* Match by walking the set of pattern positions: O(|s| * |p| / 64), for
 * the inputs where backtracking could take O(|s| * |p|). Out of memory
 * gives false (deny). */
bool glob_match_sets(const char *p, size_t pn, const char *s)
{
    gpat *g = ai_malloc(sizeof *g);
    bset cur, nx;
    bool ok = false;

    if (g == NULL)
        return false;
    gpat_init(g, p, pn);
    memset(&cur, 0, sizeof cur);
    add(&cur, 0);
    closure(g, &cur);
    for (; *s != '\0'; s++) {
        uint64_t any = 0;
        step(g, &cur, g->cls[(unsigned char)*s], &nx);
        for (size_t k = 0; k < WORDS; k++)
            any |= nx.w[k];
        if (any == 0)
            goto done;
        cur = nx;
    }
    ok = has(&cur, pn);
done:
    ai_free(g);
    return ok;
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
    pair *pairs = ai_malloc(cap * sizeof *pairs);
    int32_t *slots;

    if (pairs == NULL)
        return false;
    if (w->npairs > 0)
        memcpy(pairs, w->pairs, w->npairs * sizeof *pairs);
    ai_free(w->pairs);
    w->pairs = pairs;
    slots = ai_malloc(2 * cap * sizeof *slots);
    if (slots == NULL)
        return false;
    memset(slots, 0xff, 2 * cap * sizeof *slots);
    for (size_t k = 0; k < w->npairs; k++) {
        size_t slot = hash_pair(pairs[k].i, &pairs[k].s) & (2 * cap - 1);
        while (slots[slot] >= 0)
            slot = (slot + 1) & (2 * cap - 1);
        slots[slot] = (int32_t)k;
    }
    ai_free(w->slots);
    w->slots = slots;
    w->cap = cap;
    return true;
}

/* Queue (i, s) unless seen; also queue inner's empty-star successor. */
static void visit(walk *w, size_t i, const bset *s)
{
    for (;;) {
        if (w->npairs == w->cap) {
            if (w->cap == MAX_PAIRS || !grow(w)) {
                /* too big, or out of memory: fail closed */
                w->oom = w->cap < MAX_PAIRS;
                w->overflow = true;
                return;
            }
        }
        size_t mask = 2 * w->cap - 1, slot = hash_pair(i, s) & mask;
        while (w->slots[slot] >= 0) {
            const pair *p = &w->pairs[w->slots[slot]];
            if (p->i == i && memcmp(&p->s, s, sizeof *s) == 0)
                return; /* seen */
            slot = (slot + 1) & mask;
        }
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

int glob_within_budget(const char *inner, const char *outer,
                       uint64_t *budget)
{
    walk *w;
    bset start;
    size_t na, nb;
    int ok = 0;

    if (inner == NULL || outer == NULL)
        return 0;
    na = strlen(inner);
    nb = strlen(outer);
    if (na > AI_PATTERN_MAX || nb > AI_PATTERN_MAX)
        return 0;
    /* The cases delegation meets most, decided directly. */
    if (strcmp(inner, outer) == 0 || strcmp(outer, "*") == 0)
        return 1;
    if (!has_wild(inner)) {
        /* matching costs at most one step a byte of inner */
        if (*budget < na + 1)
            return -1;
        *budget -= na + 1;
        return ai_glob_matches(outer, inner);
    }
    if (!has_wild(outer))
        return 0;

    if ((w = ai_malloc(sizeof *w)) == NULL)
        return -2;
    gpat_init(&w->g, outer, nb);
    w->pairs = NULL;
    w->slots = NULL;
    w->npairs = w->next = w->cap = 0;
    w->overflow = false;
    w->oom = false;
    w->budget = budget;
    w->a = inner;
    w->na = na;
    memset(&start, 0, sizeof start);
    add(&start, 0);
    closure(&w->g, &start);
    visit(w, 0, &start);
    while (w->next < w->npairs && !w->overflow) {
        pair cur = w->pairs[w->next++];
        if (cur.i == na) {
            if (!has(&cur.s, nb))
                goto done; /* a string of inner that outer rejects */
            continue;
        }
        char a = inner[cur.i];
        /* A literal of inner reads its own class; a wildcard reads every
         * class outer tells apart, "other" (class 0) included. */
        size_t lo = 0, hi = w->g.nclass;
        if (a != '*' && a != '?')
            lo = w->g.cls[(unsigned char)a], hi = lo + 1;
        for (size_t c = lo; c < hi && !w->overflow; c++) {
            bset nx;
            if (*w->budget == 0) {
                w->overflow = true;
                break;
            }
            (*w->budget)--;
            step(&w->g, &cur.s, c, &nx);
            visit(w, a == '*' ? cur.i : cur.i + 1, &nx);
        }
    }
    ok = w->oom ? -2 : w->overflow ? -1 : 1;
done:
    ai_free(w->pairs);
    ai_free(w->slots);
    ai_free(w);
    return ok;
}

bool ai_glob_within(const char *inner, const char *outer)
{
    uint64_t budget = GLOB_STEP_BUDGET;

    return glob_within_budget(inner, outer, &budget) == 1;
}
