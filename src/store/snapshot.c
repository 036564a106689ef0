/* snapshot.c - the full replicated state of a home as one JSON document,
 * read in one transaction together with the changelog seq it reflects:
 * what a new follower loads before it follows the change feed. It holds
 * secrets in clear (for a TLS connection): callers wipe it. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "store/db.h"

static ai_code add_keys(store *st, json_t *arr, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if ((rc = db_prepare(st,
                         "SELECT version, secret, created_at, verify_until "
                         "FROM signing_keys ORDER BY version",
                         &q, err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *o = entity_key_row(st, q, &rc, err);
        if (o == NULL)
            break;
        json_array_append_new(arr, o);
    }
    if (rc == AI_OK && step != SQLITE_DONE)
        rc = db_fail(st, "snapshot", err);
    sqlite3_finalize(q);
    return rc;
}

static ai_code add_revocations(store *st, json_t *arr, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if ((rc = db_prepare(st,
                         "SELECT target, id, reason, revoked_at, prune_after "
                         "FROM revocations",
                         &q, err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *o = entity_revocation_row(q);
        if (o == NULL) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            break;
        }
        json_array_append_new(arr, o);
    }
    if (rc == AI_OK && step != SQLITE_DONE)
        rc = db_fail(st, "snapshot", err);
    sqlite3_finalize(q);
    return rc;
}

static ai_code add_providers(store *st, json_t *obj, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if ((rc = db_prepare(st, "SELECT name FROM providers ORDER BY name", &q,
                         err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        json_t *j = entity_provider(st, name, &rc, err);
        if (j == NULL)
            break;
        json_object_set_new(obj, name, j);
    }
    if (rc == AI_OK && step != SQLITE_DONE)
        rc = db_fail(st, "snapshot", err);
    sqlite3_finalize(q);
    return rc;
}

typedef struct keys_ctx {
    store *st;
    json_t *arr;
    ai_code rc;
    ai_err *err;
} keys_ctx;

static void add_apikey(void *ud, const apikey_info *k)
{
    keys_ctx *c = ud;
    json_t *o;

    if (c->rc != AI_OK)
        return;
    if ((o = entity_apikey(c->st, k, &c->rc, c->err)) != NULL)
        json_array_append_new(c->arr, o);
}

ai_code store_snapshot(store *st, char **json, ai_err *err)
{
    json_t *doc, *keys, *revs, *provs, *apikeys;
    keys_ctx kc;
    int64_t head = 0;
    ai_code rc;

    ai_err_clear(err);
    *json = NULL;
    doc = json_object();
    keys = json_array();
    revs = json_array();
    provs = json_object();
    apikeys = json_array();
    kc.st = st;
    kc.arr = apikeys;
    kc.rc = AI_OK;
    kc.err = err;
    if ((rc = db_exec(st, "BEGIN", err)) != AI_OK)
        goto done;
    if ((rc = store_changelog_head(st, &head, err)) == AI_OK &&
        (rc = add_keys(st, keys, err)) == AI_OK &&
        (rc = add_revocations(st, revs, err)) == AI_OK &&
        (rc = add_providers(st, provs, err)) == AI_OK &&
        (rc = store_apikey_list(st, add_apikey, &kc, err)) == AI_OK)
        rc = kc.rc;
    db_rollback(st); /* read only */
    if (rc != AI_OK)
        goto done;
    json_object_set_new(doc, "seq", json_integer(head));
    json_object_set(doc, "keys", keys);
    json_object_set(doc, "revocations", revs);
    json_object_set(doc, "providers", provs);
    json_object_set(doc, "apiKeys", apikeys);
    {
        char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        size_t n = text ? strlen(text) : 0;
        if (text == NULL || (*json = ai_malloc(n + 1)) == NULL)
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        else
            memcpy(*json, text, n + 1);
        if (text != NULL) {
            explicit_bzero(text, n);
            ai_free(text); /* jansson allocates through ai_set_alloc_funcs too */
        }
    }
done:
    json_decref(keys);
    json_decref(revs);
    json_decref(provs);
    json_decref(apikeys);
    json_decref(doc);
    return rc;
}
