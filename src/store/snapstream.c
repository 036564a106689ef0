/* snapstream.c - the snapshot as a stream of lines (NDJSON), read in one
 * transaction of a handle of its own: a header {"seq":N,"format":1}, one
 * line per entity {"kind":"key"|"provider"|"apikey"|"revocation",
 * "value":{...}} (a provider's line also has "name"), and a last line
 * {"end":true,"count":M}. Memory stays flat whatever the number of
 * revocations; a reader that never sees the end line knows the stream
 * was cut. Lines hold secrets in clear: callers wipe them. */
#include <string.h>

#include "store/db.h"

typedef enum snap_phase {
    P_HEADER = 0, P_KEYS, P_PROVIDERS, P_APIKEYS, P_REVOCATIONS, P_END,
    P_DONE
} snap_phase;

struct snap_cursor {
    store *st;
    snap_phase phase;
    sqlite3_stmt *q;
    int64_t seq, count;
    char leader_id[STORE_LEADER_ID_LEN + 1];
    char hash[STORE_HASH_HEX + 1]; /* the chain at seq ("": none) */
    json_t *apikeys; /* the API keys, read at the start (few) */
    size_t next_apikey;
    snap_filter_fn filter; /* NULL: every entity as it is */
    void *filter_ud;
};

void store_snapshot_set_filter(snap_cursor *c, snap_filter_fn fn, void *ud)
{
    c->filter = fn;
    c->filter_ud = ud;
}

typedef struct collect {
    store *st;
    json_t *arr;
    ai_code rc;
    ai_err *err;
} collect;

static void collect_apikey(void *ud, const apikey_info *k)
{
    collect *c = ud;
    json_t *o;

    if (c->rc == AI_OK && (o = entity_apikey(c->st, k, &c->rc, c->err)))
        json_array_append_new(c->arr, o);
}

void store_snapshot_close(snap_cursor *c)
{
    if (c == NULL)
        return;
    if (c->q != NULL)
        sqlite3_finalize(c->q);
    if (c->st != NULL) {
        db_rollback(c->st);
        store_close(c->st);
    }
    json_wipe_decref(c->apikeys); /* every API key, in clear */
    ai_free(c);
}

ai_code store_snapshot_open(const char *home, snap_cursor **out, int64_t *seq,
                            ai_err *err)
{
    snap_cursor *c;
    collect col;
    bool found = false;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    if ((c = ai_calloc(1, sizeof *c)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if ((rc = store_open(home, false, &c->st, err)) != AI_OK ||
        (rc = db_exec(c->st, "BEGIN", err)) != AI_OK ||
        (rc = store_changelog_head(c->st, &c->seq, err)) != AI_OK ||
        (rc = store_leader_id(c->st, c->leader_id, err)) != AI_OK ||
        (rc = store_change_hash_at(c->st, c->seq, c->hash, &found, err)) !=
            AI_OK)
        goto fail;
    col.st = c->st;
    col.arr = c->apikeys = json_array();
    col.rc = AI_OK;
    col.err = err;
    if (c->apikeys == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = store_apikey_list(c->st, collect_apikey, &col, err)) != AI_OK ||
        (rc = col.rc) != AI_OK)
        goto fail;
    *seq = c->seq;
    *out = c;
    return AI_OK;
fail:
    store_snapshot_close(c);
    return rc;
}

/* Move to the next phase, preparing its statement. */
static ai_code enter(snap_cursor *c, snap_phase p, ai_err *err)
{
    static const char *const sql[] = {
        [P_KEYS] = "SELECT version, secret, created_at, verify_until FROM "
                   "signing_keys ORDER BY version",
        [P_PROVIDERS] = "SELECT name FROM providers ORDER BY name",
        [P_REVOCATIONS] = "SELECT target, id, reason, revoked_at, "
                          "prune_after FROM revocations"};

    if (c->q != NULL) {
        sqlite3_finalize(c->q);
        c->q = NULL;
    }
    c->phase = p;
    if (p == P_KEYS || p == P_PROVIDERS || p == P_REVOCATIONS)
        return db_prepare(c->st, sql[p], &c->q, err);
    return AI_OK;
}

/* The next entity as a JSON line object, or NULL at the end of a phase
 * (*rc says whether that is an error). */
static json_t *next_entity(snap_cursor *c, ai_code *rc, ai_err *err)
{
    json_t *v = NULL, *line = NULL;
    int step;

    *rc = AI_OK;
    if (c->phase == P_APIKEYS) {
        if (c->next_apikey >= json_array_size(c->apikeys))
            return NULL;
        v = json_incref(json_array_get(c->apikeys, c->next_apikey++));
        return json_pack("{s:s, s:o}", "kind", "apikey", "value", v);
    }
    if ((step = sqlite3_step(c->q)) != SQLITE_ROW) {
        if (step != SQLITE_DONE)
            *rc = db_fail(c->st, "snapshot", err);
        return NULL;
    }
    if (c->phase == P_KEYS) {
        if ((v = entity_key_row(c->st, c->q, rc, err)) != NULL)
            line = json_pack("{s:s, s:o}", "kind", "key", "value", v);
    } else if (c->phase == P_PROVIDERS) {
        const char *name = (const char *)sqlite3_column_text(c->q, 0);
        if ((v = entity_provider(c->st, name, rc, err)) != NULL)
            line = json_pack("{s:s, s:s, s:o}", "kind", "provider", "name",
                             name, "value", v);
    } else if ((v = entity_revocation_row(c->q)) != NULL) {
        line = json_pack("{s:s, s:o}", "kind", "revocation", "value", v);
    }
    if (line == NULL && *rc == AI_OK)
        *rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    return line;
}

ai_code store_snapshot_line(snap_cursor *c, char **line, bool *done,
                            ai_err *err)
{
    json_t *o = NULL;
    ai_code rc = AI_OK;

    ai_err_clear(err);
    *line = NULL;
    *done = false;
    while (o == NULL && rc == AI_OK) {
        switch (c->phase) {
        case P_HEADER:
            o = json_pack("{s:I, s:i, s:s}", "seq", (json_int_t)c->seq,
                          "format", 1, "leaderId", c->leader_id);
            if (o != NULL && c->hash[0] != '\0' &&
                json_object_set_new(o, "hash", json_string(c->hash)) != 0) {
                json_decref(o);
                o = NULL;
            }
            rc = enter(c, P_KEYS, err);
            break;
        case P_END:
            o = json_pack("{s:b, s:I}", "end", 1, "count",
                          (json_int_t)c->count);
            c->phase = P_DONE;
            break;
        case P_DONE:
            *done = true;
            return AI_OK;
        default:
            if ((o = next_entity(c, &rc, err)) != NULL) {
                bool drop = false;
                if (c->filter != NULL &&
                    (rc = c->filter(c->filter_ud, o, &drop, err)) == AI_OK &&
                    drop) {
                    json_wipe_decref(o); /* not counted: never sent */
                    o = NULL;
                } else if (rc == AI_OK) {
                    c->count++;
                }
            } else if (rc == AI_OK)
                rc = enter(c, c->phase + 1, err);
            break;
        }
    }
    if (rc != AI_OK) {
        json_decref(o);
        return rc;
    }
    if (o == NULL || (*line = json_dumps(o, JSON_COMPACT)) == NULL)
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    json_decref(o);
    return rc;
}
