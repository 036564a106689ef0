/* cache.c - verified tokens by their exact bytes.
 *
 * DESIGN: 4-way set-associative table. The set is chosen by a hash of the
 * token's last 32 characters, which encode its HMAC: only verified tokens
 * are inserted, so an attacker cannot aim many entries at one set. A hit
 * compares the whole token (memcmp) and still checks expiry, key
 * retirement and revocation, so the cache never extends a token's life.
 * Every entry goes when the keyring's generation changes.
 *
 * MEMORY: at most `capacity` tokens and capacity x AI_TOKEN_CACHE_ENTRY_BYTES
 * bytes. A token counts its own allocation plus room for the JSON views
 * its accessors may build later (1.5 x its wire length, more than they
 * take), so a typical token of 700 characters counts about 3.6 KiB and the
 * largest (AI_TOKEN_WIRE_MAX) about 80 KiB. When an insert would pass the
 * byte bound, a clock hand sweeps the table and evicts entries not hit
 * since it last passed them, until the new one fits; a token larger than
 * the whole bound is verified but not kept. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define WAYS 4

typedef struct slot {
    uint64_t hash;
    ai_token *tok;
    uint32_t size; /* what tok counts against max_bytes (at most ~80 KiB) */
    bool hit;      /* hit since the clock hand last passed */
} slot;

struct ai_token_cache {
    slot *slots;
    size_t nsets; /* power of two */
    const ai_keyring *keys;
    uint64_t generation;
    unsigned victim;
    size_t bytes, max_bytes;
    size_t hand; /* the clock: next slot it looks at */
};

static uint64_t hash_tail(const char *wire, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ len, w;
    size_t n = len < 32 ? len : 32;
    const char *p = wire + len - n;

    for (; n >= 8; n -= 8, p += 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; n > 0; n--, p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h ^= h >> 32;
    return h | 1; /* 0 marks an empty slot */
}

ai_token_cache *ai_token_cache_new(size_t capacity)
{
    ai_token_cache *c = ai_calloc(1, sizeof *c);
    size_t sets = 1;

    if (c == NULL)
        return NULL;
    if (capacity < WAYS)
        capacity = WAYS;
    if (capacity > (size_t)1 << 24)
        capacity = (size_t)1 << 24;
    while (sets * WAYS < capacity)
        sets *= 2;
    c->slots = ai_calloc(sets * WAYS, sizeof *c->slots);
    if (c->slots == NULL) {
        ai_free(c);
        return NULL;
    }
    c->nsets = sets;
    c->max_bytes = capacity * AI_TOKEN_CACHE_ENTRY_BYTES;
    return c;
}

static void slot_drop(ai_token_cache *c, slot *s)
{
    ai_token_free(s->tok);
    c->bytes -= s->size;
    memset(s, 0, sizeof *s);
}

/* Evict one entry: the first the clock hand finds not hit since its last
 * pass (it clears the marks it passes). Only with c->bytes > 0, so some
 * slot is taken and the sweep ends within two turns. */
static void evict_one(ai_token_cache *c)
{
    size_t mask = c->nsets * WAYS - 1;

    for (;;) {
        slot *s = &c->slots[c->hand];
        c->hand = (c->hand + 1) & mask;
        if (s->tok == NULL)
            continue;
        if (s->hit) {
            s->hit = false;
            continue;
        }
        slot_drop(c, s);
        return;
    }
}

void ai_token_cache_clear(ai_token_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nsets * WAYS; i++)
        if (c->slots[i].tok != NULL)
            slot_drop(c, &c->slots[i]);
}

void ai_token_cache_free(ai_token_cache *c)
{
    if (c == NULL)
        return;
    ai_token_cache_clear(c);
    ai_free(c->slots);
    ai_free(c);
}

ai_code ai_token_cache_verify(ai_token_cache *c, const ai_verifier *v,
                              const char *wire, size_t len, int64_t now_ms,
                              ai_token **out, ai_err *err)
{
    uint64_t h;
    slot *set;
    ai_token *t;
    ai_code rc;

    ai_err_clear(err); /* callers need not zero it */

    if (c == NULL)
        return ai_token_verify(v, wire, len, now_ms, out, err);
    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *out = NULL;
    if (v == NULL || v->keys == NULL)
        return ai_err_set(err, AI_EINVAL, "verifier has no keys");
    if (wire == NULL || len == 0 || len > AI_TOKEN_WIRE_MAX)
        return ai_token_verify(v, wire, len, now_ms, out, err);
    if (c->keys != v->keys ||
        c->generation != ai_keyring_generation(v->keys)) {
        ai_token_cache_clear(c);
        c->keys = v->keys;
        c->generation = ai_keyring_generation(v->keys);
    }
    h = hash_tail(wire, len);
    set = &c->slots[(h >> 7 & (c->nsets - 1)) * WAYS];
    for (int i = 0; i < WAYS; i++) {
        t = set[i].tok;
        if (set[i].hash != h || t->wire_len != len ||
            memcmp(t->wire, wire, len) != 0)
            continue;
        if (keyring_find(v->keys, t->key_version, now_ms) == NULL)
            rc = ai_err_set(err, AI_ETOKEN,
                            "invalid token: unknown or retired signing key");
        else
            rc = token_check_live(v, t, now_ms, err);
        if (rc != AI_OK) {
            /* Expired, retired or revoked: it may be unrevoked later,
             * and a fresh verification will find it then. */
            slot_drop(c, &set[i]);
            return rc;
        }
        set[i].hit = true;
        *out = ai_token_ref(t);
        return AI_OK;
    }
    rc = ai_token_verify(v, wire, len, now_ms, &t, err);
    if (rc != AI_OK)
        return rc;
    *out = t;
    size_t size = token_footprint(t) + len / 2 * 3;
    if (size > c->max_bytes)
        return AI_OK; /* verified, too large to keep */
    while (c->bytes + size > c->max_bytes)
        evict_one(c);
    int way = -1;
    for (int i = 0; i < WAYS && way < 0; i++)
        if (set[i].tok == NULL)
            way = i;
    if (way < 0) {
        way = (int)(c->victim++ % WAYS);
        slot_drop(c, &set[way]);
    }
    set[way].hash = h;
    set[way].tok = ai_token_ref(t);
    set[way].size = (uint32_t)size;
    c->bytes += size;
    return AI_OK;
}
