/*
 * db.h - private to src/store: the handle's layout and the helpers its
 * files share (SQLite statements and transactions, sealing, the
 * changelog, the revocation view). Nothing outside src/store includes it.
 */
#ifndef AI_STORE_DB_H
#define AI_STORE_DB_H

#include <limits.h>

#include <jansson.h>
#include <sqlite3.h>

#include "core/core.h"
#include "store/store.h"

#define STORE_PATH_MAX 4096

typedef struct revview revview;

struct store {
    sqlite3 *db;
    char home[STORE_PATH_MAX];
    unsigned char master[AI_KEY_BYTES];    /* sealing key */
    unsigned char audit_key[AI_KEY_BYTES]; /* derived: audit chain MAC */
    int schema;
    int64_t data_version; /* PRAGMA data_version when views were loaded */
    int64_t seen_seq;     /* changelog seq the views reflect */
    ai_keyring *keys;     /* NULL until loaded */
    revview *rev;
    bool in_entry;        /* in a Raft entry's transaction (entries.c) */
    /* changelog_add's statements, prepared once (changelog.c) */
    sqlite3_stmt *cl_last, *cl_insert;
};

/* ---- SQLite (db.c) ---------------------------------------------------- */

/* AI_ESTORE with "<what>: <sqlite message>". */
ai_code db_fail(store *st, const char *what, ai_err *err);
ai_code db_exec(store *st, const char *sql, ai_err *err);
ai_code db_prepare(store *st, const char *sql, sqlite3_stmt **out,
                   ai_err *err);
/* BEGIN IMMEDIATE (the write lock now, waiting up to busy_timeout), COMMIT,
 * ROLLBACK (never fails the caller: it is the error path). */
ai_code db_begin(store *st, ai_err *err);
ai_code db_commit(store *st, ai_err *err);
void db_rollback(store *st);

/* Copy st's whole database into dst (a connection of the caller's) in
 * one read transaction: under WAL no writer waits for it (backup.c). */
ai_code db_copy_all(store *st, sqlite3 *dst, const char *what, ai_err *err);

/* Forget the in-memory views (the next store_sync loads them again):
 * after a transaction they were updated for was rolled back. */
void drop_views(store *st);

/* Log the change (ref, op: changelog_add), append `audit` (NULL: none)
 * and commit the write transaction the caller began; on failure roll it
 * back. The one ending of every logged change. */
ai_code db_log_commit(store *st, const store_ref *ref, const char *op,
                      int64_t now_ms, const audit_entry *audit, ai_err *err);
/* In one transaction: run `sql` (a DELETE with one parameter, name), log
 * (kind, name, "delete") and append `audit` (NULL: none); AI_ENOTFOUND
 * with `missing` when no row went (nothing written). */
ai_code db_delete_logged(store *st, const char *sql, store_kind kind,
                         const char *name, int64_t now_ms,
                         const audit_entry *audit, const char *missing,
                         ai_err *err);

/* ---- audit (audit.c) -------------------------------------------------- */

/* Append e to the audit chain inside the caller's write transaction
 * (db_begin: the write lock is held, so the last row read is still last
 * at insert), so a change and its audit row commit or roll back together.
 * AI_EINVAL for a missing or oversize field, AI_ESTORE from SQLite: the
 * caller rolls back. Does not clear err. */
ai_code audit_append(store *st, const audit_entry *e, ai_err *err);

/* meta table: small named values. get: AI_ENOTFOUND when absent. */
ai_code meta_get(store *st, const char *key, char **value, ai_err *err);
ai_code meta_set(store *st, const char *key, const char *value, ai_err *err);

/* ---- sealing (seal.c): AES-256-GCM under the master key --------------- */

/* out = nonce(12) || ciphertext || tag(16), bound to aad (what the blob
 * is, e.g. "signing_key:3"): a blob moved to another row fails to open. */
ai_code seal(const store *st, const char *aad, const void *plain, size_t n,
             unsigned char **out, size_t *outlen, ai_err *err);
/* The same under another key. */
ai_code seal_with(const unsigned char key[AI_KEY_BYTES], const char *aad,
                  const void *plain, size_t n, unsigned char **out,
                  size_t *outlen, ai_err *err);
ai_code unseal_with(const unsigned char key[AI_KEY_BYTES], const char *aad,
                    const unsigned char *blob, size_t bloblen,
                    unsigned char **plain, size_t *n, ai_err *err);
/* *plain is ai_malloc'd (n bytes plus a NUL); wipe it before ai_free.
 * A wrong master key or a changed blob is AI_ESTORE, never garbage. */
ai_code unseal(const store *st, const char *aad, const unsigned char *blob,
               size_t bloblen, unsigned char **plain, size_t *n, ai_err *err);

/* ---- changelog (changelog.c) ------------------------------------------ */

/* Within the caller's transaction: one change followers need. */
/* Entity JSON (entity.c): a signing_keys row (version, secret,
 * created_at, verify_until), a revocations row (target, id, reason,
 * revoked_at, prune_after), an API key, a provider config. NULL on error
 * with *rc set (the row builders of revocations only fail for memory). */
json_t *entity_key_row(store *st, sqlite3_stmt *q, ai_code *rc, ai_err *err);
json_t *entity_revocation_row(sqlite3_stmt *q);
json_t *entity_apikey(store *st, const apikey_info *k, ai_code *rc,
                      ai_err *err);
json_t *entity_provider(store *st, const char *name, ai_code *rc, ai_err *err);

/* What the store keeps of API keys and provider configs, checked the same
 * way whether they come from an admin or from a leader (replica.c). */
#define APIKEY_NAME_MAX 64
#define APIKEY_SECRET_MAX 4096
#define APIKEY_URL_MAX 2048
#define APIKEY_TTL_MAX (AI_DEFAULT_ROOT_TTL_MAX_DAYS * 24 * 60)
#define PROVIDER_JSON_MAX 8192
/* AI_EINVAL naming the field (never quoting the secret). */
ai_code apikey_check(const apikey_info *info, const char *secret,
                     ai_err *err);
/* github, google or aws. */
bool provider_known(const char *name);
/* A known provider name and a config object of string, number and boolean
 * members, at most PROVIDER_JSON_MAX bytes. */
ai_code provider_check(const char *name, const char *json, ai_err *err);

/* A changelog row naming ref (its kind and key as store_change_key
 * writes them: AI_EINVAL, nothing written, for a ref that names no valid
 * entity), in the caller's transaction, chained to the one before it
 * (store_change_hash). */
ai_code changelog_add(store *st, const store_ref *ref, const char *op,
                      int64_t now_ms, ai_err *err);
/* At open: chain the rows that have no hash yet (the log of a home made
 * before the chain, or rows written without it), in one transaction.
 * Nothing to do, and nothing read but the newest row, otherwise. */
ai_code changelog_backfill(store *st, ai_err *err);

/* ---- views (keys.c, revview.c) ---------------------------------------- */

/* Reload the keyring from the table (keys.c). */
ai_code keys_load(store *st, int64_t now_ms, ai_err *err);

revview *revview_new(void);
void revview_free(revview *v);
/* Load every row of the revocations table into a fresh view. */
ai_code revview_load(store *st, revview **out, ai_err *err);
/* Re-read one (target, id) from the table into the view. */
ai_code revview_refresh(store *st, revoke_target target, const char *id,
                        ai_err *err);
bool revview_has(const revview *v, revoke_target target, const char *id);
size_t revview_count(const revview *v);

/* Bring this handle's views in step with one committed change (its kind
 * and key as the changelog holds them), whoever committed it: a signing
 * key drops the keyring (the next store_keyring reloads it), a revocation
 * re-reads that one entry (revview_refresh), providers and API keys have
 * no view. *reload: a reset, or a change this code cannot read
 * (store_change_parse), so only reloading the views whole is right; the
 * caller does it. The one routine of store_sync (db.c) and of a replica's
 * batch (replica.c). */
ai_code views_apply(store *st, const char *kind, const char *key,
                    bool *reload, ai_err *err);

/* After this handle replaced the whole state (a snapshot): reload its
 * views as the first sync does (db.c); on failure they are dropped, so
 * the revocation predicate fails closed until the next store_sync. */
ai_code views_reload(store *st, ai_err *err);

/* ---- replica (replica.c) ---------------------------------------------- */

/* Is this home a follower's replica (meta "replica" = "1")? Does not
 * clear err: callable inside another store call. */
ai_code replica_marked(store *st, bool *yes, ai_err *err);

#endif /* AI_STORE_DB_H */
