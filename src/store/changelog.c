/* changelog.c - the replication log: one row per change followers need,
 * written in the same transaction as the change, with an increasing seq.
 * Rows name the entity; readers fetch its current state. */
#include <stdio.h>
#include <string.h>

#include "store/db.h"

ai_code changelog_add(store *st, const char *kind, const char *key,
                      const char *op, int64_t now_ms, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    if ((rc = db_prepare(st,
                         "INSERT INTO changelog (at, kind, key, op) "
                         "VALUES (?, ?, ?, ?)",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, now_ms);
    sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, op, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_changelog_head(store *st, int64_t *seq, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    *seq = 0;
    if ((rc = db_prepare(st, "SELECT coalesce(max(seq), 0) FROM changelog",
                         &q, err)) != AI_OK)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW)
        *seq = sqlite3_column_int64(q, 0);
    else
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_changes(store *st, int64_t since, size_t limit, change_fn fn,
                      void *ud, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if ((rc = db_prepare(st,
                         "SELECT seq, kind, key, op FROM changelog "
                         "WHERE seq > ? ORDER BY seq LIMIT ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, since);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)limit);
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        fn(ud, sqlite3_column_int64(q, 0),
           (const char *)sqlite3_column_text(q, 1),
           (const char *)sqlite3_column_text(q, 2),
           (const char *)sqlite3_column_text(q, 3));
    if (step != SQLITE_DONE)
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_changelog_oldest(store *st, int64_t *seq, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    ai_err_clear(err);
    *seq = 0;
    if ((rc = db_prepare(st, "SELECT coalesce(min(seq), 0) FROM changelog",
                         &q, err)) != AI_OK)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW)
        *seq = sqlite3_column_int64(q, 0);
    else
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_changelog_trim(store *st, int64_t keep, int64_t min_age_ms,
                             int64_t now_ms, int64_t *removed, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    ai_err_clear(err);
    *removed = 0;
    if ((rc = db_prepare(st,
                         "DELETE FROM changelog WHERE seq <= "
                         "(SELECT coalesce(max(seq), 0) FROM changelog) - ? "
                         "AND at < ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, keep < 1 ? 1 : keep);
    sqlite3_bind_int64(q, 2, now_ms - min_age_ms);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, "changelog trim", err);
    else
        *removed = sqlite3_changes(st->db);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_leader_id(store *st, char out[STORE_LEADER_ID_LEN + 1],
                        ai_err *err)
{
    unsigned char raw[STORE_LEADER_ID_LEN / 2];
    char *v = NULL;
    ai_code rc;

    ai_err_clear(err);
    if ((rc = meta_get(st, "leader_id", &v, err)) == AI_OK && v != NULL &&
        strlen(v) == STORE_LEADER_ID_LEN) {
        memcpy(out, v, STORE_LEADER_ID_LEN + 1);
        ai_free(v);
        return AI_OK;
    }
    ai_free(v);
    if (rc != AI_OK && rc != AI_ENOTFOUND)
        return rc;
    ai_err_clear(err);
    if (!rand_fill(raw, sizeof raw))
        return ai_err_set(err, AI_EINTERNAL, "random generator failed");
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return meta_set(st, "leader_id", out, err);
}
