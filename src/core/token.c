/* token.c - the token object: allocation in one arena, reference counting,
 * accessors. Tokens are immutable after construction; the lazily built
 * JSON views are published with compare-and-swap, so readers on several
 * threads are safe. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core.h"

struct arena_chunk {
    arena_chunk *next;
    size_t cap, used;
    _Alignas(16) char data[];
};

const char *const tk_cap_names[TK_CAP_BOOLS] = {
    "canSpawn", "canFederate", "canCreateScopes",
    "canMessage", "canReceive", "canObserve"};
const char *const tk_visibility_names[4] = {"public", "scope", "parent-only",
                                            "system"};

ai_token *token_alloc(size_t arena_hint)
{
    size_t head = (sizeof(ai_token) + 15) & ~(size_t)15;
    ai_token *t;
    arena_chunk *c;

    if (arena_hint > (size_t)1 << 30)
        return NULL;
    t = ai_malloc(head + sizeof(arena_chunk) + arena_hint);
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof *t);
    c = (arena_chunk *)((char *)t + head);
    c->next = NULL;
    c->cap = arena_hint;
    c->used = 0;
    t->arena = c;
    t->caps.visibility = -1;
    atomic_init(&t->refs, 1);
    t->views = tk_alloc(t, sizeof *t->views);
    if (t->views == NULL) {
        ai_free(t);
        return NULL;
    }
    atomic_init(&t->views->cons, NULL);
    atomic_init(&t->views->fed, NULL);
    atomic_init(&t->views->caps, NULL);
    atomic_init(&t->views->json, NULL);
    return t;
}

static void *arena_get(ai_token *t, size_t n)
{
    arena_chunk *c = t->arena;
    size_t off = (c->used + 15) & ~(size_t)15;

    if (off <= c->cap && c->cap - off >= n) {
        c->used = off + n;
        return c->data + off;
    }
    size_t cap = n > 2048 ? n : 2048;
    arena_chunk *nc = ai_malloc(sizeof(arena_chunk) + cap);
    if (nc == NULL)
        return NULL;
    nc->cap = cap;
    nc->used = n;
    /* The embedded first chunk stays last in the chain: see token_free. */
    nc->next = c;
    t->arena = nc;
    return nc->data;
}

size_t token_footprint(const ai_token *t)
{
    size_t n = (sizeof(ai_token) + 15) & ~(size_t)15;

    for (const arena_chunk *c = t->arena; c != NULL; c = c->next)
        n += sizeof(arena_chunk) + c->cap;
    return n;
}

void *tk_alloc(ai_token *t, size_t n)
{
    void *p = arena_get(t, n ? n : 1);

    if (p != NULL)
        memset(p, 0, n);
    return p;
}

char *tk_strdup(ai_token *t, const char *s, size_t n)
{
    char *p = arena_get(t, n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

ai_token *ai_token_ref(ai_token *tok)
{
    if (tok != NULL)
        atomic_fetch_add_explicit(&tok->refs, 1, memory_order_relaxed);
    return tok;
}

void ai_token_free(ai_token *t)
{
    arena_chunk *c, *next;
    char *views[4];

    if (t == NULL ||
        atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    views[0] = atomic_load(&t->views->cons);
    views[1] = atomic_load(&t->views->fed);
    views[2] = atomic_load(&t->views->caps);
    views[3] = atomic_load(&t->views->json);
    for (int i = 0; i < 4; i++) {
        if (views[i] != NULL)
            explicit_bzero(views[i], strlen(views[i]));
        ai_free(views[i]);
    }
    /* A serialized token is a bearer credential: wipe it. */
    for (c = t->arena; c != NULL; c = next) {
        next = c->next;
        explicit_bzero(c->data, c->used);
        if (next != NULL)
            ai_free(c);
    }
    ai_free(t);
}

ai_code token_new_id(ai_token *t, ai_err *err)
{
    unsigned char raw[16];

    if (!rand_fill(raw, sizeof raw))
        return ai_err_set(err, AI_EINTERNAL, "random generator failed");
    t->token_id = tk_alloc(t, AI_TOKEN_ID_CHARS + 1);
    if (t->token_id == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    b64url_encode(raw, sizeof raw, t->token_id);
    return AI_OK;
}

bool scope_valid(const char *s, size_t n)
{
    if (n == 0 || n > AI_SCOPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* ---- accessors -------------------------------------------------------- */

bool ai_token_is_verified(const ai_token *t) { return t && t->verified; }
const char *ai_token_agent_id(const ai_token *t) { return t ? t->agent_id : NULL; }
const char *ai_token_parent_id(const ai_token *t) { return t ? t->parent_id : NULL; }
const char *ai_token_id(const ai_token *t) { return t ? t->token_id : NULL; }
uint32_t ai_token_key_version(const ai_token *t) { return t ? t->key_version : 0; }
size_t ai_token_scope_count(const ai_token *t) { return t ? t->nscopes : 0; }
size_t ai_token_ancestor_count(const ai_token *t) { return t ? t->nanc : 0; }
size_t ai_token_ancestor_agent_count(const ai_token *t) { return t ? t->nanc_agents : 0; }
bool ai_token_delegatable(const ai_token *t) { return t && t->delegatable; }
int ai_token_depth(const ai_token *t) { return t ? t->depth : 0; }
int ai_token_max_depth(const ai_token *t) { return t ? t->max_depth : 0; }
int64_t ai_token_expires_at(const ai_token *t) { return t ? t->expires_at : 0; }
int64_t ai_token_max_expires_at(const ai_token *t) { return t ? t->max_expires_at : 0; }
const char *ai_token_identity_json(const ai_token *t) { return t ? t->identity : NULL; }
const char *ai_token_serialize(const ai_token *t) { return t ? t->wire : NULL; }
size_t ai_token_serialized_len(const ai_token *t) { return t ? t->wire_len : 0; }

const char *ai_token_scope(const ai_token *t, size_t i)
{
    return t && i < t->nscopes ? t->scopes[i] : NULL;
}

const char *ai_token_ancestor(const ai_token *t, size_t i)
{
    return t && i < t->nanc ? t->ancestors[i] : NULL;
}

const char *ai_token_ancestor_agent(const ai_token *t, size_t i)
{
    return t && i < t->nanc_agents ? t->ancestor_agents[i] : NULL;
}

/* Build a view once; a racing builder loses the CAS and frees its copy. */
static const char *view(_Atomic(char *) *slot, char *fresh)
{
    char *expected = NULL;

    if (fresh == NULL)
        return atomic_load(slot);
    if (!atomic_compare_exchange_strong(slot, &expected, fresh)) {
        ai_free(fresh);
        return expected;
    }
    return fresh;
}

const char *ai_token_constraints_json(const ai_token *t)
{
    ai_buf b;
    char *cur;

    if (t == NULL)
        return NULL;
    if ((cur = atomic_load(&t->views->cons)) != NULL)
        return cur;
    buf_init(&b);
    token_write_constraints(&b, t);
    return view(&t->views->cons, buf_steal(&b));
}

const char *ai_token_json(const ai_token *t)
{
    char *cur, *fresh;
    size_t n;

    if (t == NULL)
        return NULL;
    if (t->json != NULL)
        return t->json;
    if ((cur = atomic_load(&t->views->json)) != NULL)
        return cur;
    fresh = ai_malloc(t->wire_len / 4 * 3 + 3);
    if (fresh == NULL)
        return NULL;
    if (!b64url_decode(t->wire, t->wire_len, (unsigned char *)fresh, &n)) {
        ai_free(fresh);
        return NULL;
    }
    fresh[n] = '\0';
    return view(&t->views->json, fresh);
}

const char *ai_token_federation_json(const ai_token *t)
{
    ai_buf b;
    char *cur;

    if (t == NULL || !t->has_fed)
        return NULL;
    if ((cur = atomic_load(&t->views->fed)) != NULL)
        return cur;
    buf_init(&b);
    token_write_federation(&b, &t->fed);
    return view(&t->views->fed, buf_steal(&b));
}

size_t ai_token_narrowed_count(const ai_token *t)
{
    return t == NULL ? 0 : t->nnarrowed;
}

const char *ai_token_narrowed(const ai_token *t, size_t i)
{
    return t == NULL || i >= t->nnarrowed ? NULL : t->narrowed[i];
}

const char *ai_token_capabilities_json(const ai_token *t)
{
    ai_buf b;
    char *cur;

    if (t == NULL || !t->has_caps)
        return NULL;
    if ((cur = atomic_load(&t->views->caps)) != NULL)
        return cur;
    buf_init(&b);
    token_write_caps(&b, &t->caps);
    return view(&t->views->caps, buf_steal(&b));
}
