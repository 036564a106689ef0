/*
 * cache.c - the provider credential cache: credentials per provider +
 * scope + resource, reused until 5 minutes before they expire, and
 * cred_result_clear.
 *
 * THREADS: one mutex guards the whole table; every call may come from any
 * thread. Credentials are copied in (put) and out (get), so no caller ever
 * holds a pointer into the table. The table is bounded (CACHE_MAX
 * entries): a put into a full table drops the entry that expires soonest
 * (an expired one, if any). Every dropped credential is wiped.
 */
#include <pthread.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "providers/providers.h"

#define CACHE_MAX 1024
#define CACHE_MARGIN_MS (INT64_C(5) * 60000)

typedef struct entry {
    uint64_t hash;
    char *provider, *scope, *resource;
    cred_result cred;
} entry;

struct cred_cache {
    pthread_mutex_t mu;
    entry *tab; /* CACHE_MAX slots, the first n used */
    size_t n;
};

/* See providers.h. */
void cred_result_clear(cred_result *r)
{
    if (r == NULL)
        return;
    if (r->credential != NULL) {
        OPENSSL_cleanse(r->credential, strlen(r->credential));
        ai_free(r->credential);
    }
    memset(r, 0, sizeof *r);
}

/* Copy src into *dst (dst cleared first); false on out of memory. */
static bool copy_cred(cred_result *dst, const cred_result *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->credential != NULL &&
        (dst->credential = ai_strdup(src->credential)) == NULL)
        return false;
    memcpy(dst->type, src->type, sizeof dst->type);
    dst->type[sizeof dst->type - 1] = '\0';
    dst->expires_at = src->expires_at;
    return true;
}

/* FNV-1a over the three parts, each with its terminating NUL. */
static uint64_t key_hash(const char *provider, const char *scope,
                         const char *resource)
{
    const char *parts[3] = {provider, scope, resource};
    uint64_t h = UINT64_C(14695981039346656037);

    for (int i = 0; i < 3; i++) {
        const unsigned char *p = (const unsigned char *)parts[i];
        do {
            h ^= *p;
            h *= UINT64_C(1099511628211);
        } while (*p++ != '\0');
    }
    return h;
}

static void entry_drop(cred_cache *c, size_t i)
{
    entry *e = &c->tab[i];

    cred_result_clear(&e->cred);
    ai_free(e->provider);
    ai_free(e->scope);
    ai_free(e->resource);
    c->tab[i] = c->tab[--c->n];
    memset(&c->tab[c->n], 0, sizeof c->tab[c->n]);
}

static bool live(const entry *e, int64_t now_ms)
{
    return e->cred.expires_at - CACHE_MARGIN_MS > now_ms;
}

static ssize_t find(const cred_cache *c, uint64_t h, const char *provider,
                    const char *scope, const char *resource)
{
    for (size_t i = 0; i < c->n; i++) {
        const entry *e = &c->tab[i];
        if (e->hash == h && strcmp(e->provider, provider) == 0 &&
            strcmp(e->scope, scope) == 0 &&
            strcmp(e->resource, resource) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* See providers.h. NULL on out of memory. */
cred_cache *cred_cache_new(void)
{
    cred_cache *c = ai_calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    if ((c->tab = ai_calloc(CACHE_MAX, sizeof *c->tab)) == NULL ||
        pthread_mutex_init(&c->mu, NULL) != 0) {
        ai_free(c->tab);
        ai_free(c);
        return NULL;
    }
    return c;
}

/* See providers.h. Wipes every credential; NULL is fine. */
void cred_cache_free(cred_cache *c)
{
    if (c == NULL)
        return;
    while (c->n > 0)
        entry_drop(c, c->n - 1);
    pthread_mutex_destroy(&c->mu);
    ai_free(c->tab);
    ai_free(c);
}

/* See providers.h. An entry found past its margin is dropped. *out is
 * cleared when nothing is returned (and on out of memory). */
bool cred_cache_get(cred_cache *c, const char *provider, const char *scope,
                    const char *resource, int64_t now_ms, cred_result *out)
{
    uint64_t h;
    ssize_t i;
    bool hit = false;

    memset(out, 0, sizeof *out);
    if (c == NULL || provider == NULL || scope == NULL)
        return false;
    if (resource == NULL)
        resource = "";
    h = key_hash(provider, scope, resource);
    pthread_mutex_lock(&c->mu);
    if ((i = find(c, h, provider, scope, resource)) >= 0) {
        if (!live(&c->tab[i], now_ms))
            entry_drop(c, (size_t)i);
        else if (copy_cred(out, &c->tab[i].cred))
            hit = true;
        else
            cred_result_clear(out);
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* See providers.h. Credentials without an expiry, or already within the
 * margin, are not kept (no way to know when they go stale); out of memory
 * just leaves the entry out. */
void cred_cache_put(cred_cache *c, const char *provider, const char *scope,
                    const char *resource, const cred_result *r)
{
    entry e;
    uint64_t h;
    ssize_t i;

    if (c == NULL || provider == NULL || scope == NULL || r == NULL ||
        r->credential == NULL || r->expires_at <= 0)
        return;
    if (resource == NULL)
        resource = "";
    memset(&e, 0, sizeof e);
    e.hash = h = key_hash(provider, scope, resource);
    if ((e.provider = ai_strdup(provider)) == NULL ||
        (e.scope = ai_strdup(scope)) == NULL ||
        (e.resource = ai_strdup(resource)) == NULL || !copy_cred(&e.cred, r)) {
        ai_free(e.provider);
        ai_free(e.scope);
        ai_free(e.resource);
        cred_result_clear(&e.cred);
        return;
    }
    pthread_mutex_lock(&c->mu);
    if ((i = find(c, h, provider, scope, resource)) >= 0)
        entry_drop(c, (size_t)i);
    if (c->n == CACHE_MAX) {
        /* put has no clock: the soonest-expiring entry is the victim,
         * which is an expired one whenever there is one. */
        size_t victim = 0;
        for (size_t j = 1; j < c->n; j++)
            if (c->tab[j].cred.expires_at < c->tab[victim].cred.expires_at)
                victim = j;
        entry_drop(c, victim);
    }
    c->tab[c->n++] = e;
    pthread_mutex_unlock(&c->mu);
}
