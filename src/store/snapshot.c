/* snapshot.c - the full replicated state of a home as one JSON document,
 * read in one transaction together with the changelog seq it reflects:
 * what a new follower loads before it follows the change feed. It holds
 * secrets in clear (for a TLS connection): callers wipe it. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "store/db.h"

/* A snapshot row as JSON (NULL on error with *rc set). */
typedef json_t *(*row_fn)(store *st, sqlite3_stmt *q, ai_code *rc,
                          ai_err *err);

static json_t *revocation_row(store *st, sqlite3_stmt *q, ai_code *rc,
                              ai_err *err)
{
    json_t *o = entity_revocation_row(q);

    (void)st;
    if (o == NULL)
        *rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    return o;
}

/* Column 0 is the provider's name. */
static json_t *provider_row(store *st, sqlite3_stmt *q, ai_code *rc,
                            ai_err *err)
{
    return entity_provider(st, (const char *)sqlite3_column_text(q, 0), rc,
                           err);
}

/* Each row of `sql` as row() makes it, appended to the array `into` or,
 * into an object, set under the row's column 0. */
static ai_code add_rows(store *st, const char *sql, row_fn row, json_t *into,
                        ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if ((rc = db_prepare(st, sql, &q, err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *o = row(st, q, &rc, err);
        if (o == NULL)
            break;
        if (json_is_array(into))
            json_array_append_new(into, o);
        else
            json_object_set_new(into, (const char *)sqlite3_column_text(q, 0),
                                o);
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
        (rc = add_rows(st,
                       "SELECT version, secret, created_at, verify_until "
                       "FROM signing_keys ORDER BY version",
                       entity_key_row, keys, err)) == AI_OK &&
        (rc = add_rows(st,
                       "SELECT target, id, reason, revoked_at, prune_after "
                       "FROM revocations",
                       revocation_row, revs, err)) == AI_OK &&
        (rc = add_rows(st, "SELECT name FROM providers ORDER BY name",
                       provider_row, provs, err)) == AI_OK &&
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
