/* revocations.c - revoking tokens (with their descendants, through the
 * ancestors every token carries) and agents, durably, logged for the
 * followers, and kept in the handle's view at once. */
#include <stdio.h>
#include <string.h>

#include "store/db.h"

#define REASON_MAX 512

static ai_code check_id(const char *id, const char *reason, ai_err *err)
{
    size_t n = id ? strlen(id) : 0;

    if (n == 0 || n > AI_ID_MAX || !utf8_valid(id, n))
        return ai_err_set(err, AI_EINVAL,
                          "an id is 1 to %d bytes of UTF-8", AI_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return ai_err_set(err, AI_EINVAL,
                              "an id has no control characters");
    if (reason != NULL &&
        (strlen(reason) > REASON_MAX || !utf8_valid(reason, strlen(reason))))
        return ai_err_set(err, AI_EINVAL,
                          "a reason is at most %d bytes of UTF-8", REASON_MAX);
    return AI_OK;
}

int64_t store_prune_time(revoke_target target, int64_t valid_until_ms,
                         int64_t now_ms)
{
    if (target == REVOKE_AGENT)
        return INT64_MAX;
    if (valid_until_ms > 0)
        return valid_until_ms;
    return now_ms > INT64_MAX - STORE_DEFAULT_PRUNE_MS
               ? INT64_MAX
               : now_ms + STORE_DEFAULT_PRUNE_MS;
}

/* Revoke (set: with reason and prune_after_ms) or unrevoke target:id in
 * one transaction, logged, then the handle's view; AI_ENOTFOUND when an
 * unrevoke finds nothing. */
static ai_code write_revocation(store *st, revoke_target target,
                                const char *id, bool set, const char *reason,
                                int64_t prune_after_ms, int64_t now_ms,
                                const audit_entry *audit, ai_err *err)
{
    store_ref ref = {.kind = STORE_KIND_REVOCATION, .target = target,
                     .name = id};
    sqlite3_stmt *q = NULL;
    ai_code rc;

    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = db_prepare(st,
                         set ? "INSERT INTO revocations (target, id, reason, "
                               "revoked_at, prune_after) VALUES (?, ?, ?, ?, "
                               "?) ON CONFLICT (target, id) DO UPDATE SET "
                               "reason = excluded.reason, "
                               "revoked_at = excluded.revoked_at, "
                               "prune_after = max(prune_after, "
                               "excluded.prune_after)"
                             : "DELETE FROM revocations WHERE target = ? "
                               "AND id = ?",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_int(q, 1, (int)target);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    if (set) {
        sqlite3_bind_text(q, 3, reason ? reason : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, now_ms);
        sqlite3_bind_int64(q, 5, prune_after_ms);
    }
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, set ? "revoke" : "unrevoke", err);
        goto fail;
    }
    if (!set && sqlite3_changes(st->db) == 0) {
        rc = ai_err_set(err, AI_ENOTFOUND, "%s \"%s\" is not revoked",
                        target == REVOKE_AGENT ? "agent" : "token", id);
        goto fail;
    }
    sqlite3_finalize(q);
    if ((rc = db_log_commit(st, &ref, set ? "set" : "delete", now_ms, audit,
                            err)) != AI_OK)
        return rc;
    return revview_refresh(st, target, id, err);
fail:
    sqlite3_finalize(q);
    db_rollback(st);
    return rc;
}

ai_code store_revoke(store *st, revoke_target target, const char *id,
                     const char *reason, int64_t valid_until_ms,
                     int64_t now_ms, const audit_entry *audit, ai_err *err)
{
    ai_code rc;

    ai_err_clear(err);
    if ((rc = check_id(id, reason, err)) != AI_OK)
        return rc;
    return write_revocation(st, target, id, true, reason,
                            store_prune_time(target, valid_until_ms, now_ms),
                            now_ms, audit, err);
}

ai_code store_unrevoke(store *st, revoke_target target, const char *id,
                       int64_t now_ms, const audit_entry *audit, ai_err *err)
{
    ai_code rc;

    ai_err_clear(err);
    if ((rc = check_id(id, NULL, err)) != AI_OK)
        return rc;
    return write_revocation(st, target, id, false, NULL, 0, now_ms, audit,
                            err);
}

ai_code store_prune(store *st, int64_t now_ms, size_t *pruned, ai_err *err)
{
    sqlite3_stmt *q = NULL;
    ai_code rc;
    size_t n = 0;
    int step;

    ai_err_clear(err);
    if (pruned != NULL)
        *pruned = 0;
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    /* Past prune_after the token could no longer be valid anyway
     * (store_prune_time). Each home prunes by the same times, the leader
     * and its followers alike, so nothing is logged. */
    if ((rc = db_prepare(st,
                         "DELETE FROM revocations WHERE prune_after < ? "
                         "RETURNING target, id",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_int64(q, 1, now_ms);
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        n++;
    if (step != SQLITE_DONE) {
        rc = db_fail(st, "prune", err);
        goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = db_commit(st, err)) != AI_OK)
        goto fail;
    if (n > 0 && st->rev != NULL) {
        /* rebuild: simpler than replaying each deleted row */
        revview *v = NULL;
        if ((rc = revview_load(st, &v, err)) != AI_OK)
            return rc;
        revview_free(st->rev);
        st->rev = v;
    }
    if (pruned != NULL)
        *pruned = n;
    return AI_OK;
fail:
    sqlite3_finalize(q);
    db_rollback(st);
    return rc;
}
