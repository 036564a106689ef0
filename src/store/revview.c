/* revview.c - the in-memory revocation view: two string sets (tokenIds,
 * agentIds) with open addressing, so verification asks no SQLite and a
 * lookup makes the same few probes at 1,000,000 entries as at ten.
 *
 * DESIGN: each set is a table of one control byte per slot (empty,
 * removed, or 7 bits of the string's hash) beside a table of 32-bit
 * offsets into the set's arena, where the strings lie back to back, each
 * NUL-terminated. A lookup of an id that is not revoked - what nearly
 * every verification asks, three times - reads only control bytes (2 MiB
 * of them at 1,000,000 entries, usually one cache line), where a table of
 * string pointers would read 16 MiB of pointers and, for each probe, a
 * string in another page. One probe in 128 matches the hash fragment by
 * chance and compares the string. Linear probing, load factor under 0.7.
 * A removed entry leaves a "removed" control byte (and its bytes in the
 * arena) until the table is rebuilt: when live plus removed slots pass
 * the load factor, the table and the arena are rebuilt from the live
 * entries only. If a revocation cannot be added (out of memory), the view
 * fails closed: every lookup answers "revoked" until it is replaced.
 * bench/revocations measures it (bench/README.md). */
#include <string.h>

#include "store/db.h"

#define EMPTY 0x80   /* control byte of a free slot (ends a probe) */
#define REMOVED 0xfe /* of a removed entry (a probe goes on) */

typedef struct strset {
    uint8_t *ctrl;   /* cap bytes: EMPTY, REMOVED or hash >> 57 */
    uint32_t *offs;  /* cap offsets of the strings in arena */
    size_t cap;      /* power of two, or 0 before the first add */
    size_t count;    /* live entries */
    size_t removed;  /* REMOVED slots */
    char *arena;     /* the strings, NUL-terminated */
    size_t used, size;
} strset;

struct revview {
    strset sets[2]; /* REVOKE_TOKEN, REVOKE_AGENT */
    bool broken;    /* a revocation could not be added: fail closed */
};

/* Offsets are 32 bits: 4 GiB of ids (over 16 million of the longest). */
#define ARENA_MAX ((size_t)UINT32_MAX)

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;

    for (; n >= 8; n -= 8, s += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    for (; n > 0; n--, s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 32);
}

/* The low bits pick the slot; the top 7 (independent of them up to 2^57
 * slots) are the control byte. */
static uint8_t tag_of(uint64_t h)
{
    return (uint8_t)(h >> 57);
}

revview *revview_new(void)
{
    return ai_calloc(1, sizeof(revview));
}

static void set_free(strset *t)
{
    ai_free(t->ctrl);
    ai_free(t->offs);
    ai_free(t->arena);
    memset(t, 0, sizeof *t);
}

void revview_free(revview *v)
{
    if (v == NULL)
        return;
    for (int i = 0; i < 2; i++)
        set_free(&v->sets[i]);
    ai_free(v);
}

/* Slot holding s, or the slot where it would go (the first removed slot
 * seen, or the empty slot that ends the probe). */
static size_t find(const strset *t, const char *s, size_t n, uint64_t h,
                   bool *found)
{
    size_t mask = t->cap - 1, i = (size_t)h & mask, spare = SIZE_MAX;
    uint8_t tag = tag_of(h);

    for (;;) {
        uint8_t c = t->ctrl[i];
        if (c == tag) {
            const char *e = t->arena + t->offs[i];
            if (strncmp(e, s, n) == 0 && e[n] == '\0') {
                *found = true;
                return i;
            }
        } else if (c == EMPTY) {
            *found = false;
            return spare != SIZE_MAX ? spare : i;
        } else if (c == REMOVED && spare == SIZE_MAX) {
            spare = i;
        }
        i = (i + 1) & mask;
    }
}

/* Room for n more bytes in the arena (doubling; the allocation hook has
 * no realloc, so the strings are copied). */
static bool reserve(strset *t, size_t n)
{
    size_t size = t->size ? t->size : 4096;
    char *p;

    if (t->used + n <= t->size)
        return true;
    if (n > ARENA_MAX - t->used)
        return false;
    while (size < t->used + n)
        size = size > ARENA_MAX / 2 ? ARENA_MAX : size * 2;
    if ((p = ai_malloc(size)) == NULL)
        return false;
    if (t->used > 0)
        memcpy(p, t->arena, t->used);
    ai_free(t->arena);
    t->arena = p;
    t->size = size;
    return true;
}

/* Rebuild with room for `want` live entries (and arena_hint bytes of
 * strings): the live entries only, their strings packed into a new
 * arena. On failure the set is unchanged. */
static bool rebuild(strset *t, size_t want, size_t arena_hint)
{
    strset n = {0};
    size_t cap = 16;

    if (want > SIZE_MAX / 32)
        return false;
    while (cap * 7 / 10 < want)
        cap *= 2;
    if ((n.ctrl = ai_malloc(cap)) == NULL ||
        (n.offs = ai_malloc(cap * sizeof *n.offs)) == NULL)
        goto fail;
    memset(n.ctrl, EMPTY, cap);
    n.cap = cap;
    if (!reserve(&n, arena_hint > t->used ? arena_hint : t->used + 1))
        goto fail;
    for (size_t i = 0; i < t->cap; i++) {
        const char *s;
        size_t len, j;
        uint64_t h;
        if (t->ctrl[i] == EMPTY || t->ctrl[i] == REMOVED)
            continue;
        s = t->arena + t->offs[i];
        len = strlen(s);
        h = hash(s, len);
        /* all distinct: the first empty slot is its place */
        for (j = (size_t)h & (cap - 1); n.ctrl[j] != EMPTY;
             j = (j + 1) & (cap - 1))
            ;
        n.ctrl[j] = tag_of(h);
        n.offs[j] = (uint32_t)n.used;
        memcpy(n.arena + n.used, s, len + 1);
        n.used += len + 1;
        n.count++;
    }
    set_free(t);
    *t = n;
    return true;
fail:
    set_free(&n);
    return false;
}

static bool add(revview *v, revoke_target target, const char *s)
{
    strset *t = &v->sets[target];
    size_t n = strlen(s), i;
    uint64_t h = hash(s, n);
    bool found;

    if ((t->count + t->removed + 1) * 10 > t->cap * 7 &&
        !rebuild(t, t->count + 1, 0))
        return false;
    i = find(t, s, n, h, &found);
    if (found)
        return true;
    if (!reserve(t, n + 1))
        return false;
    if (t->ctrl[i] == REMOVED)
        t->removed--;
    t->ctrl[i] = tag_of(h);
    t->offs[i] = (uint32_t)t->used;
    memcpy(t->arena + t->used, s, n + 1);
    t->used += n + 1;
    t->count++;
    return true;
}

static void remove_id(revview *v, revoke_target target, const char *s)
{
    strset *t = &v->sets[target];
    size_t n = strlen(s), i;
    bool found;

    if (t->count == 0)
        return;
    i = find(t, s, n, hash(s, n), &found);
    if (!found)
        return;
    t->ctrl[i] = REMOVED;
    t->count--;
    t->removed++;
}

bool revview_has(const revview *v, revoke_target target, const char *id)
{
    const strset *t = &v->sets[target];
    size_t n;
    bool found;

    if (v->broken)
        return true;
    if (t->count == 0)
        return false;
    n = strlen(id);
    (void)find(t, id, n, hash(id, n), &found);
    return found;
}

size_t revview_count(const revview *v)
{
    return v ? v->sets[0].count + v->sets[1].count : 0;
}

ai_code revview_load(store *st, revview **out, ai_err *err)
{
    revview *v = revview_new();
    sqlite3_stmt *q = NULL;
    ai_code rc;
    int step;

    *out = NULL;
    if (v == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    /* size both sets once, from the counts (tokenIds are 22 characters) */
    if ((rc = db_prepare(st,
                         "SELECT target, count(*) FROM revocations "
                         "GROUP BY target",
                         &q, err)) != AI_OK)
        goto fail;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int t = sqlite3_column_int(q, 0);
        size_t n = (size_t)sqlite3_column_int64(q, 1);
        if ((t == 0 || t == 1) &&
            !rebuild(&v->sets[t], n, n < ARENA_MAX / 24 ? n * 24 : 0)) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(st, "revocations", err);
        goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = db_prepare(st, "SELECT target, id FROM revocations", &q,
                         err)) != AI_OK)
        goto fail;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int t = sqlite3_column_int(q, 0);
        const char *id = (const char *)sqlite3_column_text(q, 1);
        if ((t != 0 && t != 1) || id == NULL)
            continue;
        if (!add(v, (revoke_target)t, id)) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(st, "revocations", err);
        goto fail;
    }
    sqlite3_finalize(q);
    *out = v;
    return AI_OK;
fail:
    sqlite3_finalize(q);
    revview_free(v);
    return rc;
}

ai_code revview_refresh(store *st, revoke_target target, const char *id,
                        ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if (st->rev == NULL)
        return AI_OK;
    if ((rc = db_prepare(st,
                         "SELECT 1 FROM revocations WHERE target = ? AND "
                         "id = ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int(q, 1, (int)target);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        /* A view without this revocation would let its tokens through:
         * from now on it answers "revoked" to everything, until a
         * reload replaces it. */
        if (!add(st->rev, target, id)) {
            st->rev->broken = true;
            rc = ai_err_set(err, AI_ENOMEM,
                            "out of memory: every token counts as revoked "
                            "until the revocation view is reloaded");
        }
    } else if (step == SQLITE_DONE) {
        remove_id(st->rev, target, id);
    } else {
        rc = db_fail(st, "revocations", err);
    }
    sqlite3_finalize(q);
    return rc;
}

bool store_revoked(void *ud, ai_revoke_kind kind, const char *id)
{
    const store *st = ud;

    /* No view loaded means no store_sync yet: fail closed. */
    if (st == NULL || st->rev == NULL)
        return true;
    return revview_has(st->rev,
                       kind == AI_REVOKED_AGENT ||
                               kind == AI_REVOKED_ANCESTOR_AGENT
                           ? REVOKE_AGENT
                           : REVOKE_TOKEN,
                       id);
}

size_t store_revocation_count(const store *st)
{
    return revview_count(st->rev);
}
