/* revview.c - the in-memory revocation view: two string sets (tokenIds,
 * agentIds) with open addressing, so verification asks no SQLite and a
 * lookup costs the same at 1,000,000 entries as at ten.
 *
 * DESIGN: strings live in 64 KiB arena chunks owned by the view; a removed
 * entry leaves a tombstone slot (and its bytes in the arena) until the
 * table grows or the view is rebuilt. Load factor stays under 0.7. */
#include <string.h>

#include "store/db.h"

#define TOMB ((char *)1)
#define CHUNK 65536

typedef struct chunk {
    struct chunk *next;
    size_t used;
    char data[CHUNK];
} chunk;

typedef struct strset {
    char **slots;
    size_t cap, count, tombs; /* cap: power of two or 0 */
} strset;

struct revview {
    strset sets[2]; /* REVOKE_TOKEN, REVOKE_AGENT */
    chunk *chunks;
};

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

revview *revview_new(void)
{
    return ai_calloc(1, sizeof(revview));
}

void revview_free(revview *v)
{
    chunk *c, *next;

    if (v == NULL)
        return;
    for (int i = 0; i < 2; i++)
        ai_free(v->sets[i].slots);
    for (c = v->chunks; c != NULL; c = next) {
        next = c->next;
        ai_free(c);
    }
    ai_free(v);
}

static char *intern(revview *v, const char *s, size_t n)
{
    chunk *c = v->chunks;
    char *p;

    if (n + 1 > CHUNK)
        return NULL;
    if (c == NULL || CHUNK - c->used < n + 1) {
        if ((c = ai_malloc(sizeof *c)) == NULL)
            return NULL;
        c->next = v->chunks;
        c->used = 0;
        v->chunks = c;
    }
    p = c->data + c->used;
    memcpy(p, s, n);
    p[n] = '\0';
    c->used += n + 1;
    return p;
}

/* Slot holding s, or the slot where it would go (first tombstone seen, or
 * the empty slot that ends the probe). */
static size_t find(const strset *t, const char *s, size_t n, bool *found)
{
    size_t mask = t->cap - 1, i = hash(s, n) & mask, tomb = SIZE_MAX;

    for (;;) {
        char *e = t->slots[i];
        if (e == NULL) {
            *found = false;
            return tomb != SIZE_MAX ? tomb : i;
        }
        if (e == TOMB) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (strncmp(e, s, n) == 0 && e[n] == '\0') {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static bool grow(strset *t, size_t want)
{
    size_t cap = 16;
    char **old = t->slots, **slots;
    size_t oldcap = t->cap;

    while (cap * 7 / 10 < want)
        cap *= 2;
    if ((slots = ai_calloc(cap, sizeof *slots)) == NULL)
        return false;
    t->slots = slots;
    t->cap = cap;
    t->tombs = 0;
    for (size_t i = 0; i < oldcap; i++) {
        bool found;
        if (old[i] == NULL || old[i] == TOMB)
            continue;
        slots[find(t, old[i], strlen(old[i]), &found)] = old[i];
    }
    ai_free(old);
    return true;
}

static bool add(revview *v, revoke_target target, const char *s)
{
    strset *t = &v->sets[target];
    size_t n = strlen(s), i;
    bool found;
    char *p;

    if ((t->count + t->tombs + 1) * 10 > t->cap * 7 &&
        !grow(t, t->count + 1))
        return false;
    i = find(t, s, n, &found);
    if (found)
        return true;
    if ((p = intern(v, s, n)) == NULL)
        return false;
    if (t->slots[i] == TOMB)
        t->tombs--;
    t->slots[i] = p;
    t->count++;
    return true;
}

static void remove_id(revview *v, revoke_target target, const char *s)
{
    strset *t = &v->sets[target];
    bool found;
    size_t i;

    if (t->cap == 0)
        return;
    i = find(t, s, strlen(s), &found);
    if (!found)
        return;
    t->slots[i] = TOMB;
    t->count--;
    t->tombs++;
}

bool revview_has(const revview *v, revoke_target target, const char *id)
{
    const strset *t = &v->sets[target];
    bool found;

    if (t->count == 0)
        return false;
    (void)find(t, id, strlen(id), &found);
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
    /* size both sets once, from the counts */
    if ((rc = db_prepare(st,
                         "SELECT target, count(*) FROM revocations "
                         "GROUP BY target",
                         &q, err)) != AI_OK)
        goto fail;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int t = sqlite3_column_int(q, 0);
        if ((t == 0 || t == 1) &&
            !grow(&v->sets[t], (size_t)sqlite3_column_int64(q, 1))) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto fail;
        }
    }
    sqlite3_finalize(q);
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
        if (!add(st->rev, target, id))
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
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
                       kind == AI_REVOKED_AGENT ? REVOKE_AGENT : REVOKE_TOKEN,
                       id);
}

size_t store_revocation_count(const store *st)
{
    return revview_count(st->rev);
}
