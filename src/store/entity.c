/* entity.c - one replicated entity (a signing key, a revocation, a
 * provider config, an API key) as the JSON object followers apply: the
 * rows of the snapshot and the values of the change feed. Secrets in
 * clear: these objects only travel over TLS, and callers wipe their text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

json_t *entity_key_row(store *st, sqlite3_stmt *q, ai_code *rc, ai_err *err)
{
    uint32_t v = (uint32_t)sqlite3_column_int64(q, 0);
    unsigned char *secret = NULL;
    size_t n = 0;
    char aad[32], b64[64];
    json_t *o;

    snprintf(aad, sizeof aad, "signing_key:%u", (unsigned)v);
    if ((*rc = unseal(st, aad, sqlite3_column_blob(q, 1),
                      (size_t)sqlite3_column_bytes(q, 1), &secret, &n, err)) !=
        AI_OK)
        return NULL;
    b64url_encode(secret, n < 40 ? n : 40, b64);
    explicit_bzero(secret, n);
    ai_free(secret);
    o = json_pack("{s:I, s:s, s:I, s:I}", "version", (json_int_t)v, "secret",
                  b64, "createdAt", (json_int_t)sqlite3_column_int64(q, 2),
                  "verifyUntil", (json_int_t)sqlite3_column_int64(q, 3));
    explicit_bzero(b64, sizeof b64);
    if (o == NULL)
        *rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    return o;
}

json_t *entity_revocation_row(sqlite3_stmt *q)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I}", "target",
                     sqlite3_column_int(q, 0) ? "agent" : "token", "id",
                     (const char *)sqlite3_column_text(q, 1), "reason",
                     (const char *)sqlite3_column_text(q, 2), "revokedAt",
                     (json_int_t)sqlite3_column_int64(q, 3), "pruneAfter",
                     (json_int_t)sqlite3_column_int64(q, 4));
}

json_t *entity_apikey(store *st, const apikey_info *k, ai_code *rc,
                      ai_err *err)
{
    char *secret = NULL;
    json_t *o;

    if ((*rc = store_apikey_secret(st, k->name, &secret, err)) != AI_OK)
        return NULL;
    o = json_pack("{s:s, s:s, s:s, s:i, s:I}", "name", k->name, "provider",
                  k->provider, "secret", secret, "ttlMinutes", k->ttl_minutes,
                  "createdAt", (json_int_t)k->created_at);
    if (o != NULL && k->base_url != NULL &&
        json_object_set_new(o, "baseUrl", json_string(k->base_url)) != 0) {
        json_decref(o);
        o = NULL;
    }
    explicit_bzero(secret, strlen(secret));
    ai_free(secret);
    if (o == NULL)
        *rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    return o;
}

json_t *entity_provider(store *st, const char *name, ai_code *rc, ai_err *err)
{
    char *cfg = NULL;
    json_t *j;

    if ((*rc = store_provider_get(st, name, &cfg, err)) != AI_OK)
        return NULL;
    j = json_loads(cfg, 0, NULL);
    explicit_bzero(cfg, strlen(cfg));
    ai_free(cfg);
    if (j == NULL)
        *rc = ai_err_set(err, AI_ESTORE, "provider %s is damaged", name);
    return j;
}

/* One row of a single-row query, through a row builder. */
static json_t *one_row(store *st, const char *sql, const char *a, int64_t b,
                       bool by_int, int kind, ai_code *rc, ai_err *err)
{
    sqlite3_stmt *q;
    json_t *o = NULL;
    int step;

    if ((*rc = db_prepare(st, sql, &q, err)) != AI_OK)
        return NULL;
    if (by_int) {
        sqlite3_bind_int64(q, 1, b);
    } else {
        sqlite3_bind_int64(q, 1, b);
        sqlite3_bind_text(q, 2, a, -1, SQLITE_STATIC);
    }
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (kind == 0)
            o = entity_key_row(st, q, rc, err);
        else if ((o = entity_revocation_row(q)) == NULL)
            *rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    } else if (step != SQLITE_DONE) {
        *rc = db_fail(st, "change value", err);
    }
    sqlite3_finalize(q);
    return o;
}

typedef struct find_key {
    const char *name;
    store *st;
    json_t *o;
    ai_code rc;
    ai_err *err;
} find_key;

static void match_apikey(void *ud, const apikey_info *k)
{
    find_key *f = ud;

    if (f->o == NULL && f->rc == AI_OK && strcmp(k->name, f->name) == 0)
        f->o = entity_apikey(f->st, k, &f->rc, f->err);
}

ai_code store_change_value(store *st, const char *kind, const char *key,
                           json_t **value, ai_err *err)
{
    ai_code rc = AI_OK;
    store_ref ref;

    ai_err_clear(err);
    *value = NULL;
    if (!store_change_parse(kind, key, &ref) || ref.kind == STORE_KIND_RESET)
        return ai_err_set(err, AI_ESTORE, "changelog: bad change %.16s %.64s",
                          kind, key);
    switch (ref.kind) {
    case STORE_KIND_KEY:
        *value = one_row(st,
                         "SELECT version, secret, created_at, verify_until "
                         "FROM signing_keys WHERE version = ?",
                         NULL, ref.version, true, 0, &rc, err);
        break;
    case STORE_KIND_REVOCATION:
        *value = one_row(st,
                         "SELECT target, id, reason, revoked_at, prune_after "
                         "FROM revocations WHERE target = ? AND id = ?",
                         ref.name, (int64_t)ref.target, false, 1, &rc, err);
        break;
    case STORE_KIND_PROVIDER:
        *value = entity_provider(st, ref.name, &rc, err);
        if (rc == AI_ENOTFOUND) {
            ai_err_clear(err);
            rc = AI_OK;
        }
        break;
    case STORE_KIND_APIKEY: {
        find_key f = {ref.name, st, NULL, AI_OK, err};
        if ((rc = store_apikey_list(st, match_apikey, &f, err)) == AI_OK)
            rc = f.rc;
        *value = f.o;
        break;
    }
    case STORE_KIND_RESET:
        break;
    }
    if (rc != AI_OK) {
        json_decref(*value);
        *value = NULL;
    }
    return rc;
}
