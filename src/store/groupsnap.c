/* groupsnap.c - the snapshot a leader group's voter gives libraft, and its
 * restore on another voter (DESIGN §9).
 *
 * DESIGN: a snapshot is the voter's whole database, copied in one read
 * transaction (the online backup API into memory, then serialized): under
 * WAL it blocks no writer, so it may be taken on a thread of its own while
 * the voter goes on applying entries. Its meta raft_applied says which
 * entry it holds, which may be later than the index libraft gives the
 * snapshot: a restore sets the voter's applied index from it, and the
 * entries libraft replays after the snapshot are skipped up to there.
 *
 * A restore replaces the replicated tables of the voter's home (keys,
 * revocations, providers, API keys, uses, followers, the changelog and the
 * request ids) in one transaction, with an audit row; the audit log and
 * the home's local meta stay. The snapshot must come from the same group:
 * its leader id is the group's (an HMAC of master.key, store_group_id),
 * so a snapshot of another group, or of homes with another master.key, is
 * refused, and so is one of another schema. Secrets travel sealed under
 * the group's master.key, as they lie in every voter's home. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"

static const char *const replicated[] = {
    "signing_keys", "revocations", "providers", "api_keys",
    "uses",         "followers",   "changelog", "raft_requests"};

/* sqlite3 error of a connection that is not a store's. */
static ai_code conn_fail(sqlite3 *db, const char *what, ai_err *err)
{
    if (db != NULL && sqlite3_errcode(db) == SQLITE_NOMEM)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    return ai_err_set(err, AI_ESTORE, "%s: %s", what,
                      db ? sqlite3_errmsg(db) : "cannot open");
}

ai_code store_group_snapshot(store *st, unsigned char **out, size_t *len,
                             ai_err *err)
{
    sqlite3 *mem = NULL;
    sqlite3_int64 n = 0;
    unsigned char *p = NULL;
    ai_code rc = AI_OK;

    ai_err_clear(err);
    *out = NULL;
    *len = 0;
    if (sqlite3_open_v2(":memory:", &mem,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = conn_fail(mem, "snapshot", err);
        goto done;
    }
    if ((rc = db_copy_all(st, mem, "snapshot", err)) != AI_OK)
        goto done;
    if ((p = sqlite3_serialize(mem, "main", &n, 0)) == NULL || n <= 0) {
        rc = ai_err_set(err, AI_ENOMEM, "snapshot: out of memory");
        goto done;
    }
    if ((*out = ai_malloc((size_t)n)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(*out, p, (size_t)n);
    *len = (size_t)n;
done:
    sqlite3_free(p);
    sqlite3_close(mem);
    return rc;
}

/* One text value of the attached snapshot's meta ("" when absent). */
static ai_code snap_meta(store *st, const char *key, char *out, size_t cap,
                         ai_err *err)
{
    sqlite3_stmt *q = NULL;
    ai_code rc;

    out[0] = '\0';
    if ((rc = db_prepare(st, "SELECT value FROM snap.meta WHERE key = ?", &q,
                         err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return AI_OK;
}

/* Whether the attached snapshot is this group's, of this schema, and
 * later than what the home holds; *skip when it is not later. */
static ai_code snap_check(store *st, uint64_t have, uint64_t *at, bool *skip,
                          ai_err *err)
{
    char group[STORE_LEADER_ID_LEN + 1], theirs[80], applied[32];
    int64_t schema = 0;
    sqlite3_stmt *q = NULL;
    ai_code rc;

    *skip = false;
    if ((rc = db_prepare(st, "SELECT max(version) FROM snap.schema_version",
                         &q, err)) != AI_OK)
        return ai_err_set(err, AI_EINVAL, "not a snapshot of a home");
    if (sqlite3_step(q) == SQLITE_ROW)
        schema = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (schema != store_schema_version(st))
        return ai_err_set(err, AI_EINVAL,
                          "the snapshot has schema %lld, this home %d: run "
                          "one version of agent-iam on every voter",
                          (long long)schema, store_schema_version(st));
    if ((rc = store_group_id(st, group, err)) != AI_OK ||
        (rc = snap_meta(st, "leader_id", theirs, sizeof theirs, err)) !=
            AI_OK ||
        (rc = snap_meta(st, "raft_applied", applied, sizeof applied, err)) !=
            AI_OK)
        return rc;
    if (strcmp(group, theirs) != 0)
        return ai_err_set(err, AI_EINVAL,
                          "the snapshot is not this group's (another "
                          "master.key?)");
    *at = strtoull(applied, NULL, 10);
    *skip = *at <= have;
    return AI_OK;
}

ai_code store_group_restore(store *st, const void *buf, size_t len,
                            int64_t now_ms, uint64_t *applied, ai_err *err)
{
    char path[STORE_PATH_MAX + 32], sql[160], why[64];
    audit_entry e = {0, now_ms, "cluster", "snapshot-restore", NULL, NULL,
                     "ok", why};
    uint64_t have = 0, at = 0;
    bool attached = false, skip = false;
    ai_code rc;
    FILE *f;
    int fd;

    ai_err_clear(err);
    *applied = 0;
    if ((rc = store_entry_applied(st, &have, err)) != AI_OK)
        return rc;
    *applied = have;
    /* the snapshot as a file beside the home's database, 0600, attached */
    snprintf(path, sizeof path, "%s/snapshot.XXXXXX", st->home);
    if ((fd = mkstemp(path)) < 0)
        return ai_err_set(err, AI_ESTORE, "snapshot: cannot make a file in "
                                          "%s",
                          st->home);
    if ((f = fdopen(fd, "wb")) == NULL ||
        fwrite(buf, 1, len, f) != len || fflush(f) != 0) {
        if (f != NULL)
            fclose(f);
        else
            close(fd);
        unlink(path);
        return ai_err_set(err, AI_ESTORAGE_FULL, "snapshot: cannot write "
                                                 "%s",
                          path);
    }
    fclose(f);
    {
        sqlite3_stmt *q = NULL;
        if ((rc = db_prepare(st, "ATTACH DATABASE ? AS snap", &q, err)) ==
            AI_OK) {
            sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE)
                rc = db_fail(st, "snapshot", err);
            else
                attached = true;
        }
        sqlite3_finalize(q);
    }
    if (rc != AI_OK)
        goto done;
    if ((rc = snap_check(st, have, &at, &skip, err)) != AI_OK || skip)
        goto done;
    if ((rc = db_begin(st, err)) != AI_OK)
        goto done;
    for (size_t i = 0; i < sizeof replicated / sizeof *replicated; i++) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM main.%s; INSERT INTO main.%s SELECT * FROM "
                 "snap.%s",
                 replicated[i], replicated[i], replicated[i]);
        if ((rc = db_exec(st, sql, err)) != AI_OK)
            goto rollback;
    }
    snprintf(why, sizeof why, "the group's state at entry %" PRIu64, at);
    if ((rc = db_exec(st,
                      "DELETE FROM main.sqlite_sequence WHERE name = "
                      "'changelog'; INSERT INTO main.sqlite_sequence "
                      "SELECT * FROM snap.sqlite_sequence WHERE name = "
                      "'changelog'",
                      err)) != AI_OK ||
        (rc = meta_set(st, "raft_applied",
                       (snprintf(sql, sizeof sql, "%" PRIu64, at), sql),
                       err)) != AI_OK ||
        (rc = audit_append(st, &e, err)) != AI_OK ||
        (rc = db_commit(st, err)) != AI_OK)
        goto rollback;
    *applied = at;
    drop_views(st);
    goto done;
rollback:
    db_rollback(st);
done:
    if (attached)
        (void)sqlite3_exec(st->db, "DETACH DATABASE snap", NULL, NULL, NULL);
    unlink(path);
    return rc;
}
