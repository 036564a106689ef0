/* entries.c - a leader group's voter applying Raft entries (DESIGN §9):
 * each entry's changes, its index and its request id commit in one
 * transaction, so that a restart knows exactly what it applied and a
 * retried request is answered from its first result. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

#define APPLIED "raft_applied"
/* Request ids are kept for this many entries after theirs: a client's
 * retries come within seconds. */
#define KEEP_REQUESTS 100000

ai_code store_entry_begin(store *st, ai_err *err)
{
    ai_code rc;

    ai_err_clear(err);
    if (st->in_entry)
        return ai_err_set(err, AI_EINTERNAL, "an entry is already open");
    if ((rc = db_exec(st, "BEGIN IMMEDIATE", err)) == AI_OK)
        st->in_entry = true;
    return rc;
}

void store_entry_abort(store *st)
{
    if (!st->in_entry)
        return;
    st->in_entry = false;
    db_rollback(st);
    /* the views may hold what the entry wrote */
    drop_views(st);
}

ai_code store_entry_commit(store *st, uint64_t index,
                           const unsigned char req_id[STORE_REQ_ID_BYTES],
                           const char *result, ai_err *err)
{
    char v[24];
    sqlite3_stmt *q = NULL;
    ai_code rc;

    ai_err_clear(err);
    if (!st->in_entry)
        return ai_err_set(err, AI_EINTERNAL, "no entry is open");
    snprintf(v, sizeof v, "%" PRIu64, index);
    if ((rc = meta_set(st, APPLIED, v, err)) != AI_OK)
        goto fail;
    if ((rc = db_prepare(st,
                         "INSERT INTO raft_requests (req_id, idx, result) "
                         "VALUES (?, ?, ?) ON CONFLICT (req_id) DO NOTHING",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_blob(q, 1, req_id, STORE_REQ_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)index);
    sqlite3_bind_text(q, 3, result, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "raft requests", err);
        goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (index % 1000 == 0 && index > KEEP_REQUESTS) {
        if ((rc = db_prepare(st, "DELETE FROM raft_requests WHERE idx < ?",
                             &q, err)) != AI_OK)
            goto fail;
        sqlite3_bind_int64(q, 1, (sqlite3_int64)(index - KEEP_REQUESTS));
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = db_fail(st, "raft requests", err);
            goto fail;
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    st->in_entry = false;
    if ((rc = db_exec(st, "COMMIT", err)) == AI_OK)
        return AI_OK;
    st->in_entry = true;
fail:
    sqlite3_finalize(q);
    store_entry_abort(st);
    return rc;
}

ai_code store_entry_sync_relaxed(store *st, ai_err *err)
{
    ai_err_clear(err);
    return db_exec(st, "PRAGMA synchronous = NORMAL", err);
}

ai_code store_entry_applied(store *st, uint64_t *index, ai_err *err)
{
    char *v = NULL;
    ai_code rc;

    ai_err_clear(err);
    *index = 0;
    rc = meta_get(st, APPLIED, &v, err);
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc == AI_OK)
        *index = strtoull(v, NULL, 10);
    ai_free(v);
    return rc;
}

ai_code store_entry_find(store *st,
                         const unsigned char req_id[STORE_REQ_ID_BYTES],
                         uint64_t *index, char **result, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    ai_err_clear(err);
    *result = NULL;
    *index = 0;
    if ((rc = db_prepare(st,
                         "SELECT idx, result FROM raft_requests "
                         "WHERE req_id = ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_blob(q, 1, req_id, STORE_REQ_ID_BYTES, SQLITE_STATIC);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 1);
        *index = (uint64_t)sqlite3_column_int64(q, 0);
        if ((*result = ai_strdup(r ? r : "")) == NULL)
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    } else if (step == SQLITE_DONE) {
        rc = ai_err_set(err, AI_ENOTFOUND, "no such request");
    } else {
        rc = db_fail(st, "raft requests", err);
    }
    sqlite3_finalize(q);
    return rc;
}
