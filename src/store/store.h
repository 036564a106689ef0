/*
 * store.h - the durable state of a broker home (DESIGN §3), for the
 * modules above it (cli, leader, follower, runtime).
 *
 * A home is a directory (0700) holding agent-iam.db (SQLite, WAL,
 * synchronous=FULL) and master.key (32 random bytes, 0600). Signing keys,
 * provider secrets and API keys are sealed with AES-256-GCM under the
 * master key. Every change followers need is written in the same
 * transaction as a changelog row with an increasing seq. The audit log is
 * an HMAC-SHA256 chain (key derived from the master key).
 *
 * THREADS: a store handle owns one SQLite connection and is used by one
 * thread at a time. Open one handle per thread (SQLite's rule); they see
 * each other's commits, and those of other processes, through
 * store_sync().
 *
 * Errors: every call returns an ai_code and fills ai_err; SQLite failures
 * are AI_ESTORE with SQLite's message and the operation, and
 * AI_ESTORAGE_FULL when a write failed for lack of room on the disk.
 */
#ifndef AI_STORE_H
#define AI_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_iam.h"

typedef struct store store;

/* One row of the audit log (audit.c, below): the write functions take
 * one to append in their own transaction. */
typedef struct audit_entry {
    int64_t id;         /* filled when read */
    int64_t at;         /* ms */
    const char *actor;  /* "cli", "admin", an agentId, a follower id */
    const char *action; /* "revoke", "rotate-key", "delegate", "credential" */
    const char *token_id; /* may be NULL */
    const char *agent_id; /* may be NULL */
    const char *decision; /* "allow", "deny", "ok" */
    const char *reason;   /* may be NULL */
} audit_entry;

/* ---- home and handle (home.c, db.c) ----------------------------------- */

#define STORE_DB_FILE "agent-iam.db"
#define STORE_KEY_FILE "master.key"

/* The home to use: `flag` (--home) if set, else $AGENT_IAM_HOME, else
 * $HOME/.agent-iam. Writes a NUL-terminated path into out. */
ai_code store_home_path(const char *flag, char *out, size_t cap, ai_err *err);

/* Open (creating on first use, when create is true) the home at `home`:
 * directory 0700, master.key 0600, agent-iam.db migrated to the current
 * schema. Refuses a home or key file readable by group or others, a
 * master key that does not match the database, and a file that is not an
 * agent-iam database (which is never overwritten). *out is NULL on error. */
ai_code store_open(const char *home, bool create, store **out, ai_err *err);
void store_close(store *st);

/* Free what a store call allocated for its caller (lists, secrets: wipe
 * secrets first). */
void store_free(void *p);

/* The directory this handle was opened on. */
const char *store_home(const store *st);

/* Schema version of the open database. */
int store_schema_version(const store *st);

/* Bring the in-memory views (keys, revocations) up to date with commits
 * made by other handles or processes: cheap when nothing changed (one
 * PRAGMA data_version). */
ai_code store_sync(store *st, ai_err *err);

/* SQLite's data_version of this connection: it changes when another
 * connection (thread or process) commits. One PRAGMA, no views touched. */
ai_code store_data_version(store *st, int64_t *dv, ai_err *err);

/* ---- signing keys (keys.c) -------------------------------------------- */

typedef enum key_state {
    KEY_SIGNING = 0, /* the current key: signs and verifies */
    KEY_VERIFYING,   /* older: verifies until its grace period ends */
    KEY_RETIRED      /* grace period over: verifies nothing */
} key_state;

typedef struct key_info {
    uint32_t version;
    key_state state;
    int64_t created_at;   /* ms */
    int64_t verify_until; /* ms; 0: no limit */
} key_info;

/* Default grace period of an older key: the longest root TTL. */
#define STORE_DEFAULT_GRACE_MS (INT64_C(90) * 86400000)

/* The keyring of the store as of the last sync (borrowed: valid until the
 * next store_sync or store change on this handle), as it is: a home with
 * no key yet (a new home, a replica before its first sync) has a keyring
 * with no signing key (ai_keyring_signing_version 0), which verifies
 * nothing. Writes nothing. */
ai_code store_keyring(store *st, const ai_keyring **out, ai_err *err);

/* A home's first signing key: key as version 1 when the home has none
 * (its changelog row and the audit row, *made true), nothing when it has
 * one (*made false, AI_OK), in one transaction so that two first uses at
 * once make one. A replica never makes one: AI_ENOTFOUND "no signing key
 * yet (replica not synced)" until its first sync. Through
 * BROKER_KEY_FIRST (broker_signing_keyring) only. */
ai_code store_first_key(store *st, const unsigned char key[AI_KEY_BYTES],
                        int64_t now_ms, const audit_entry *audit,
                        bool *made, ai_err *err);

/* Audit rows of changes: every write function below that takes a `const
 * audit_entry *audit` appends it to the audit chain (see "audit log") in
 * the same SQLite transaction as the change and its changelog row, so
 * both commit or neither does (NULL: no row). A row refused (a field over
 * its limit) fails the change. In-memory views change after the commit. */

/* Add version N+1 with the secret `key` (the caller draws it, so that the
 * same call gives the same state anywhere), which signs from now on;
 * every older unretired key verifies until now + grace_ms (grace_ms < 0:
 * the default). The audit row's reason, when NULL, is "new signing key
 * version N" (N is known only under the write lock). */
ai_code store_rotate_key(store *st, int64_t grace_ms,
                         const unsigned char key[AI_KEY_BYTES],
                         int64_t now_ms, const audit_entry *audit,
                         uint32_t *version, ai_err *err);

/* Import a raw 32-byte secret as version 1: only into a home that has
 * signed no token yet (no key, or only an unused version 1), unless force. */
ai_code store_import_key(store *st, const unsigned char key[AI_KEY_BYTES],
                         bool force, int64_t now_ms, const audit_entry *audit,
                         ai_err *err);

/* Copy the secret of `version` into out (the caller wipes it). */
ai_code store_export_key(store *st, uint32_t version,
                         unsigned char out[AI_KEY_BYTES], ai_err *err);

/* All versions, oldest first (*list: free with store_free). */
ai_code store_list_keys(store *st, int64_t now_ms, key_info **list, size_t *n,
                        ai_err *err);

/* Remember that the signing key has signed a token (import refuses then). */
ai_code store_note_signed(store *st, ai_err *err);

/* ---- revocations (revocations.c, revview.c) --------------------------- */

typedef enum revoke_target {
    REVOKE_TOKEN = 0, /* a tokenId: revokes it and its descendants */
    REVOKE_AGENT = 1  /* an agentId: every token of that agent */
} revoke_target;

/* The longest root TTL (the configured maximum): no token minted before
 * a revocation is valid past the revocation time plus this. */
#define STORE_DEFAULT_PRUNE_MS \
    ((int64_t)AI_DEFAULT_ROOT_TTL_MAX_DAYS * 86400000)

/* When may a revocation made at now_ms be pruned (DESIGN §8)? Only after
 * the latest time the token could still be valid: valid_until_ms when it
 * is known from a token this process verified (its maxExpiresAt, which
 * refresh can reach, or its expiresAt when it has none), else (0) now_ms +
 * STORE_DEFAULT_PRUNE_MS. Never from an expiry a client sends: that bounds
 * nothing (a refresh moves it). An agent's revocation is never pruned
 * (INT64_MAX): it stays until unrevoked. store_revoke asks this, so every
 * path that revokes (CLI, broker, leader admin API) prunes by one rule,
 * and followers, which keep the leader's times, prune by it too. */
int64_t store_prune_time(revoke_target target, int64_t valid_until_ms,
                         int64_t now_ms);

/* Revoke (idempotent: revoking again updates reason and times). The entry
 * can be pruned after store_prune_time(target, valid_until_ms, now_ms)
 * (valid_until_ms: 0 unless known as said there). Durable when it
 * returns. */
ai_code store_revoke(store *st, revoke_target target, const char *id,
                     const char *reason, int64_t valid_until_ms,
                     int64_t now_ms, const audit_entry *audit, ai_err *err);

/* Remove a revocation; AI_ENOTFOUND if there was none. */
ai_code store_unrevoke(store *st, revoke_target target, const char *id,
                       int64_t now_ms, const audit_entry *audit, ai_err *err);

/* The in-memory view (as of the last sync): O(1), no SQLite. Matches
 * ai_revoked_fn, so `ai_verifier v = {keys, store_revoked, st}` works. */
bool store_revoked(void *st, ai_revoke_kind kind, const char *id);

/* Number of revocations in the view. */
size_t store_revocation_count(const store *st);

/* Delete entries whose prune time has passed; returns how many. The
 * leader and each follower call it on their own watcher, at start and
 * then every STORE_PRUNE_EVERY_MS: the times are the leader's, so they
 * agree on what is revoked. */
ai_code store_prune(store *st, int64_t now_ms, size_t *pruned, ai_err *err);
#define STORE_PRUNE_EVERY_MS (INT64_C(3600) * 1000)

/* ---- use counters (uses.c) -------------------------------------------- */

/* Consume one use of each budget, atomically across processes: granted
 * only if every budget has room (used < max), and then all are counted.
 * *remaining is the smallest room left after the use (0 when refused). */
ai_code store_consume(store *st, const ai_budget_ref *budgets, size_t n,
                      int64_t now_ms, bool *granted, uint32_t *remaining,
                      ai_err *err);

/* ---- audit log (audit.c) ---------------------------------------------- */

/* audit_entry: see the top of this file (changes take one). */

/* Append one row, chained to the previous one, in a transaction of its
 * own (the rows of the changes above are written in theirs). Never pass
 * secrets or whole tokens. */
ai_code store_audit(store *st, const audit_entry *e, ai_err *err);

/* Walk the chain: AI_OK when intact; AI_EDENIED with *bad_id the first
 * row that was edited, inserted or follows a deleted one. */
ai_code store_audit_verify(store *st, int64_t *bad_id, ai_err *err);

/* The last n rows, oldest first, to a callback (strings borrowed for the
 * call). */
typedef void (*audit_fn)(void *ud, const audit_entry *e);
ai_code store_audit_tail(store *st, size_t n, audit_fn fn, void *ud,
                         ai_err *err);

/* Retention: delete the rows older than cutoff_ms (by their `at`) from
 * the start of the log, at most max_rows of them, in one write
 * transaction, so the write lock is held briefly; *more: call again, the
 * batch was full of old rows. The chain still verifies afterwards (the
 * start of the log is recorded under the audit key, see audit.c); rows
 * that do not verify are never deleted (AI_EDENIED naming the first, and
 * nothing deleted in this call). */
#define STORE_AUDIT_RETAIN_BATCH 500
#define STORE_AUDIT_RETAIN_DEFAULT_MS (INT64_C(90) * 86400000)
ai_code store_audit_retain(store *st, int64_t cutoff_ms, size_t max_rows,
                           size_t *removed, bool *more, ai_err *err);

/* ---- disk upkeep (db.c) ----------------------------------------------- */

/* The WAL's limit (journal_size_limit): every handle checkpoints once
 * its commit leaves the WAL past 512 KiB, and a WAL grown past this (by
 * one large transaction, or by readers holding checkpoints back) is cut
 * back to it when it starts over. A plain number: db.c pastes it into
 * SQL. */
#define STORE_WAL_LIMIT_BYTES 1048576

/* Copy what the WAL holds into the database file without waiting for
 * readers or writers (a passive checkpoint), so the WAL can start over
 * and shrink to its limit on the next write. Busy is not an error: the
 * next call does what this one could not. */
ai_code store_checkpoint(store *st, ai_err *err);

/* One small write transaction (meta "write_probe" = now_ms): AI_OK when
 * the store can write, AI_ESTORAGE_FULL while its disk is full or has
 * less than 1 MiB left for the home's files (a write that fits in the
 * slack of a grown file does not end a full disk). */
ai_code store_write_probe(store *st, int64_t now_ms, ai_err *err);

/* The size of the home's WAL file in bytes (0: none; -1: unknown). */
int64_t store_wal_bytes(store *st);

/* ---- providers and API keys (providers.c, apikeys.c) ------------------ */

/* A provider's config (github, google, aws) as a JSON object; the secret
 * members are sealed at rest. set replaces the whole config. */
ai_code store_provider_set(store *st, const char *name, const char *json,
                           int64_t now_ms, const audit_entry *audit,
                           ai_err *err);
/* *json (free with store_free after wiping) with secrets in clear; or
 * AI_ENOTFOUND. */
ai_code store_provider_get(store *st, const char *name, char **json,
                           ai_err *err);
ai_code store_provider_delete(store *st, const char *name, int64_t now_ms,
                              const audit_entry *audit, ai_err *err);

typedef struct apikey_info {
    const char *name;
    const char *provider;
    const char *base_url; /* may be NULL */
    int ttl_minutes;      /* 0: default */
    int64_t created_at;
} apikey_info;

ai_code store_apikey_add(store *st, const apikey_info *info,
                         const char *secret, int64_t now_ms,
                         const audit_entry *audit, ai_err *err);
/* The secret (wipe, then store_free) or AI_ENOTFOUND. */
ai_code store_apikey_secret(store *st, const char *name, char **secret,
                            ai_err *err);
ai_code store_apikey_remove(store *st, const char *name, int64_t now_ms,
                            const audit_entry *audit, ai_err *err);
typedef void (*apikey_fn)(void *ud, const apikey_info *info);
ai_code store_apikey_list(store *st, apikey_fn fn, void *ud, ai_err *err);

/* ---- followers registered on a leader (followers.c) --------------------
 * Each follower has its own credential: the leader keeps its SHA-256 (to
 * know the follower by it) and its transport key sealed under the master
 * key (what the follower's secrets travel under, store_seal_text). A
 * registration is not replicated to followers. */
#define STORE_FOLLOWER_PROVIDERS_MAX 512
#define STORE_FOLLOWER_DIGEST_BYTES 32 /* SHA-256 of a credential */
typedef struct follower_info {
    char id[65];
    char providers[STORE_FOLLOWER_PROVIDERS_MAX + 1]; /* "a,b", "*" or "" */
    int64_t created_at;
} follower_info;
/* A new follower credential, "aif1_" and 32 random bytes in base64url
 * (*secret_out: ai_malloc'd, wipe it; shown once), with what the leader
 * keeps of it: its SHA-256 (digest) and its transport key
 * (store_transport_key; wipe it). */
ai_code store_follower_credential(char **secret_out,
                                  unsigned char digest[STORE_FOLLOWER_DIGEST_BYTES],
                                  unsigned char transport[AI_KEY_BYTES],
                                  ai_err *err);
/* Register id with the credential whose SHA-256 is digest and whose
 * transport key is transport (store_follower_credential): the caller
 * draws it, so the same call gives the same state anywhere. providers:
 * names of [A-Za-z0-9._-] separated by commas, "*" for every provider,
 * "" for none. AI_EINVAL for a bad id or list; an id already registered
 * is replaced (a new credential; the old one stops working). */
ai_code store_follower_add(store *st, const char *id, const char *providers,
                           const unsigned char digest[STORE_FOLLOWER_DIGEST_BYTES],
                           const unsigned char transport[AI_KEY_BYTES],
                           int64_t now_ms, const audit_entry *audit,
                           ai_err *err);
/* AI_ENOTFOUND when id is not registered (nothing written). */
ai_code store_follower_remove(store *st, const char *id,
                              const audit_entry *audit, ai_err *err);
typedef void (*follower_fn)(void *ud, const follower_info *info);
ai_code store_follower_list(store *st, follower_fn fn, void *ud, ai_err *err);
/* The follower whose credential is secret (n bytes), with its transport
 * key: AI_ENOTFOUND when none is. */
ai_code store_follower_find(store *st, const char *secret, size_t n,
                            follower_info *out,
                            unsigned char transport[AI_KEY_BYTES],
                            ai_err *err);
/* Whether id is a registered follower's. */
ai_code store_follower_registered(store *st, const char *id, bool *yes,
                                  ai_err *err);
/* Whether a comma list of grants ("*" for all) grants provider. */
bool store_follower_grants(const char *providers, const char *provider);

/* ---- in transit (seal.c) ----------------------------------------------- */

/* The transport key of a follower credential: HMAC-SHA256 of a fixed label
 * keyed by the credential, so the leader (which keeps it sealed) and the
 * follower (which derives it) agree, and the SHA-256 the leader keeps to
 * recognise the credential does not give it. */
void store_transport_key(const char *secret, size_t n,
                         unsigned char key[AI_KEY_BYTES]);
/* AES-256-GCM under key bound to aad, as base64url text (ai_malloc'd). */
ai_code store_seal_text(const unsigned char key[AI_KEY_BYTES],
                        const char *aad, const void *plain, size_t n,
                        char **out, ai_err *err);
/* *plain: ai_malloc'd, n bytes plus a NUL (wipe it); AI_ESTORE when the
 * text was not sealed under key for aad. */
ai_code store_unseal_text(const unsigned char key[AI_KEY_BYTES],
                          const char *aad, const char *text,
                          unsigned char **plain, size_t *n, ai_err *err);

/* Sealed under the home's own master key and bound to aad (*out:
 * ai_malloc'd, nonce || ciphertext || tag): what only homes sharing one
 * master.key (the voters of a leader group) can open. unseal: *plain is
 * ai_malloc'd (n bytes plus a NUL; wipe it), AI_ESTORE when the key, the
 * aad or the blob differ. */
ai_code store_seal_own(const store *st, const char *aad, const void *plain,
                       size_t n, unsigned char **out, size_t *outlen,
                       ai_err *err);
ai_code store_unseal_own(const store *st, const char *aad,
                         const unsigned char *blob, size_t bloblen,
                         unsigned char **plain, size_t *n, ai_err *err);

/* ---- changelog and snapshot (changelog.c) ----------------------------- */

/* The seq of the last change (0 when none). */
ai_code store_changelog_head(store *st, int64_t *seq, ai_err *err);

/* One row of the changelog. kind is "key", "revocation", "provider",
 * "apikey" (or, in a replica's own log, "reset"); key names the entity; op
 * is "set" or "delete"; at is when it was written (ms). hash is the
 * running SHA-256 of the log up to and including this row (the chain):
 * hash = SHA-256(previous row's hash | seq | at | kind NUL key), seq and
 * at as 8-byte big-endian (store_change_hash); 64 lowercase hex
 * characters. The op is left out: a leader sends some sets as deletes
 * (entities a follower may not hold). */
#define STORE_HASH_BYTES 32
#define STORE_HASH_HEX (2 * STORE_HASH_BYTES)
typedef struct store_change {
    int64_t seq, at;
    const char *kind, *key, *op;
    char hash[STORE_HASH_HEX + 1];
} store_change;

/* What a change names, read from its kind and key (store_change_parse)
 * or to be written as them (store_change_key). The key of a change is:
 * a signing key's version in decimal ("3": 1 to 2^31, no sign, no leading
 * zero); a revocation's "<target>:<id>" (target 0 a token, 1 an agent;
 * the id 1 to AI_ID_MAX bytes of UTF-8 without control characters, as
 * store_revoke takes it); a provider's name (github, google, aws); an API
 * key's name (1 to 64 of A-Z a-z 0-9 . _ -); "" for a replica's reset. */
typedef enum store_kind {
    STORE_KIND_KEY = 0,
    STORE_KIND_REVOCATION,
    STORE_KIND_PROVIDER,
    STORE_KIND_APIKEY,
    STORE_KIND_RESET
} store_kind;
typedef struct store_ref {
    store_kind kind;
    uint32_t version;     /* KEY */
    revoke_target target; /* REVOCATION */
    const char *name;     /* REVOCATION: the id; PROVIDER, APIKEY: the name
                             (borrowed: the parsed key, or the caller's) */
} store_ref;
#define STORE_CHANGE_KEY_CAP (AI_ID_MAX + 3) /* "1:", the id, NUL */
/* "key", "revocation", "provider", "apikey", "reset"; NULL for no kind. */
const char *store_kind_name(store_kind kind);
/* The key of ref into out: false (out "") when ref names no valid entity,
 * so nothing the parser would refuse is ever written. */
bool store_change_key(const store_ref *ref, char out[STORE_CHANGE_KEY_CAP]);
/* A change's kind and key, strictly: false for an unknown kind, a key
 * that is not exactly the form above (an empty or bad id, a target other
 * than 0 or 1, a version out of range or with a sign, a name that is not
 * one), or NULL. out->name points into key. */
bool store_change_parse(const char *kind, const char *key, store_ref *out);

/* The chain's step: prev is the previous row's hash (all zero before the
 * first row ever); out receives this row's, as raw bytes. */
void store_change_hash(const unsigned char prev[STORE_HASH_BYTES],
                       const store_change *c,
                       unsigned char out[STORE_HASH_BYTES]);
/* Raw bytes as 64 lowercase hex characters and back (false: not that). */
void store_hash_hex(const unsigned char raw[STORE_HASH_BYTES],
                    char hex[STORE_HASH_HEX + 1]);
bool store_hash_parse(const char *hex, unsigned char raw[STORE_HASH_BYTES]);

/* Changes after `since`, up to limit, in seq order, to a callback that
 * returns false to stop. Followers read the entity's current state to
 * apply it. */
typedef bool (*change_fn)(void *ud, const store_change *c);
ai_code store_changes(store *st, int64_t since, size_t limit, change_fn fn,
                      void *ud, ai_err *err);

/* The hash of the row at seq: *found false when the log no longer (or
 * never) held it. */
ai_code store_change_hash_at(store *st, int64_t seq,
                             char hex[STORE_HASH_HEX + 1], bool *found,
                             ai_err *err);

/* The identity of this home's changelog as a leader: 32 hex characters,
 * made on first use and kept in the home. Followers keep the id of the
 * leader they replicate and reload the snapshot when it changes (a home
 * replaced or restored at the same URL). */
#define STORE_LEADER_ID_LEN 32
/* Make the home's leader id a leader group's: the same on every voter
 * (derived from master.key, which they share, as they share their
 * changelogs), so a follower moving from one voter to another keeps its
 * replica. Written to the home: store_leader_id gives it after. */
ai_code store_group_id(store *st, char out[STORE_LEADER_ID_LEN + 1],
                       ai_err *err);
ai_code store_leader_id(store *st, char out[STORE_LEADER_ID_LEN + 1],
                        ai_err *err);

/* The oldest seq still in the log (0 when the log is empty): a reader at
 * `since` missed changes when since + 1 < oldest. */
ai_code store_changelog_oldest(store *st, int64_t *seq, ai_err *err);

/* Keep the newest `keep` rows (at least 1) and those younger than
 * min_age_ms; *removed says how many went. */
ai_code store_changelog_trim(store *st, int64_t keep, int64_t min_age_ms,
                             int64_t now_ms, int64_t *removed, ai_err *err);

/* The current state of the entity a change names, as followers apply it
 * (the objects of the snapshot's arrays; a provider's config object):
 * *value is NULL when the entity no longer exists. Secrets in clear. */
ai_code store_change_value(store *st, const char *kind, const char *key,
                           json_t **value, ai_err *err);

/* The snapshot as a stream of NDJSON lines, for any number of entities
 * in flat memory: a header {"seq":N,"format":1,"leaderId":ID,"hash":H}
 * (hash: the chain's hash at seq; absent when the log is empty); one line
 * per key,
 * provider (with "name"), API key, revocation: {"kind","value"}; and
 * {"end":true,"count":M}. The cursor has its own handle and read
 * transaction on the home (so any thread may drive it, one at a time). */
typedef struct snap_cursor snap_cursor;
ai_code store_snapshot_open(const char *home, snap_cursor **out, int64_t *seq,
                            ai_err *err);
/* The next line (without newline; jansson-allocated: wipe, then
 * ai_free); *done and no line after the end line. */
ai_code store_snapshot_line(snap_cursor *c, char **line, bool *done,
                            ai_err *err);
void store_snapshot_close(snap_cursor *c);
/* Called for each entity line before it is written: fn may change the line
 * (seal its secrets) or set *drop (the line is not sent nor counted). */
typedef ai_code (*snap_filter_fn)(void *ud, json_t *line, bool *drop,
                                  ai_err *err);
void store_snapshot_set_filter(snap_cursor *c, snap_filter_fn fn, void *ud);

/* The full replicated state (keys with secrets, revocations, provider
 * configs, API keys with secrets) and the changelog seq it reflects, read
 * in one transaction, as compact JSON:
 * {"seq":N,"keys":[...],"revocations":[...],"providers":{...},
 *  "apiKeys":[...]}. Secrets in clear: wipe *json, then store_free. */
ai_code store_snapshot(store *st, char **json, ai_err *err);

/* ---- backup (backup.c) ------------------------------------------------ */

/* A consistent copy of the home's database at path, made with SQLite's
 * online backup API in one read transaction while other handles and
 * processes (a running leader) keep writing. The file is created 0600; an
 * existing one is refused (AI_EINVAL) unless force, and a directory, a
 * symlink or a path inside the home always are. The copy is written to a
 * temporary file beside path, switched out of WAL mode (one
 * self-contained file), checked with PRAGMA integrity_check, fsynced, then
 * renamed to path: on error nothing is left under path (an earlier backup
 * there is kept). Its secrets stay sealed under the home's master.key,
 * which is not copied: restoring needs both. The copy has no leader id
 * (store_leader_id): a leader restored from it makes a new one, so its
 * followers reload the snapshot rather than trust seqs it will reuse. */
ai_code store_backup(store *st, const char *path, bool force, ai_err *err);

/* The changelog seq a database file (a backup) reflects, read through a
 * read-only connection of its own. */
ai_code store_backup_seq(const char *path, int64_t *seq, ai_err *err);

/* ---- a leader group's voter (entries.c) ------------------------------ */

/* One Raft entry is applied in one transaction: store_entry_begin opens
 * it, and every write of this handle until store_entry_commit or
 * store_entry_abort is part of it (its own commit a savepoint, its own
 * rollback undoing only itself). store_entry_commit records the entry's
 * index (store_entry_applied) and its request id with its result (text,
 * e.g. JSON, that store_entry_find gives back for a retry) and commits
 * the whole; on failure, and at store_entry_abort, nothing of the entry
 * stays and the in-memory views are reloaded at the next store_sync.
 * Request ids are kept for the 100,000 entries after theirs. */
#define STORE_REQ_ID_BYTES 16
ai_code store_entry_begin(store *st, ai_err *err);
ai_code store_entry_commit(store *st, uint64_t index,
                           const unsigned char req_id[STORE_REQ_ID_BYTES],
                           const char *result, ai_err *err);
void store_entry_abort(store *st);
/* This handle's commits skip their own fsync (synchronous=NORMAL: the
 * WAL is synced at checkpoints). For the handle a voter applies entries
 * with: the Raft log was written durably before its entry committed, and
 * an entry whose transaction a power loss took is applied again from
 * that log at restart (its index is past store_entry_applied). A killed
 * process loses nothing either way. */
ai_code store_entry_sync_relaxed(store *st, ai_err *err);
/* The index of the last entry applied (0: none). */
ai_code store_entry_applied(store *st, uint64_t *index, ai_err *err);
/* A request applied before: its entry's index and result (ai_malloc'd);
 * AI_ENOTFOUND when it is not (or no longer) known. */
ai_code store_entry_find(store *st,
                         const unsigned char req_id[STORE_REQ_ID_BYTES],
                         uint64_t *index, char **result, ai_err *err);

/* A leader group's snapshot (groupsnap.c): the home's whole database as
 * bytes (*out: ai_malloc'd, wipe-free: secrets stay sealed), copied in
 * one read transaction, so another thread may take it while this home
 * goes on applying entries; its meta raft_applied says which entry it
 * holds. */
ai_code store_group_snapshot(store *st, unsigned char **out, size_t *len,
                             ai_err *err);
/* Replace this voter's replicated state by a snapshot's (keys,
 * revocations, providers, API keys, uses, followers, changelog, request
 * ids) in one transaction with the audit row snapshot-restore, and set the
 * applied index from it (*applied). A snapshot that is not later than
 * what the home holds changes nothing (*applied: the home's index).
 * AI_EINVAL: not a snapshot of a home, another schema, another group (or
 * master.key). The home's audit log and local meta stay. */
ai_code store_group_restore(store *st, const void *buf, size_t len,
                            int64_t now_ms, uint64_t *applied, ai_err *err);

/* ---- replica (replica.c) --------------------------------------------- */

/* A follower's home holds a replica of the leader's replicated state,
 * with secrets re-sealed under its own master key. A home that has
 * applied a snapshot or a batch (or was marked with store_mark_replica)
 * is a replica, for good (meta "replica", survives restarts): it never
 * makes a signing key of its own. store_first_key on a replica with
 * no key yet is AI_ENOTFOUND "no signing key yet (replica not synced)";
 * store_rotate_key and store_import_key are AI_EDENIED there. */

/* Mark this home a replica before its first sync (a follower does it at
 * start, so nothing mints a local key meanwhile). */
ai_code store_mark_replica(store *st, ai_err *err);
ai_code store_is_replica(store *st, bool *yes, ai_err *err);

/* The leader seq this replica reflects (0: nothing applied yet), and the
 * leader's chain hash at that seq ("" when not known). */
ai_code store_applied_seq(store *st, int64_t *seq, ai_err *err);
ai_code store_applied_hash(store *st, char hex[STORE_HASH_HEX + 1],
                           ai_err *err);

/* Apply one batch of the leader's change feed (the "changes" array of
 * GET /v1/replication/changes: {seq, kind, key, op, value?}) in ONE
 * transaction together with applied_seq = new_seq and its chain hash
 * new_hash (NULL or "": unknown; the caller checked the chain). set with a value:
 * upsert the entity exactly as given (a key's version, secret, createdAt,
 * verifyUntil; a revocation's reason, revokedAt, pruneAfter; a provider
 * config; an API key's fields and secret). delete, or set without a
 * value: delete the entity (absent is fine). Writes a local changelog row
 * per entity touched, so other handles' store_sync follow; this handle's
 * views are updated at once. Idempotent: the same batch twice changes
 * nothing. new_seq <= the applied seq: AI_OK, nothing changes. A
 * malformed change (unknown kind, bad types, a key secret that is not 32
 * bytes of base64url, a value that does not match its key, ...) refuses
 * the whole batch with AI_EINVAL "change <seq>: ..." and nothing is
 * written. changes is borrowed; its secrets are the caller's to wipe. */
ai_code store_apply_changes(store *st, const json_t *changes, int64_t new_seq,
                            const char *new_hash, int64_t now_ms, ai_err *err);

/* Replace the whole replicated state (keys, revocations, providers, API
 * keys) with a snapshot object (what store_snapshot produces, parsed) in
 * ONE transaction, applied_seq = its "seq" (lower than before is fine: a
 * new leader). Use counters and the audit log are untouched. It logs one
 * changelog row of kind "reset" (key "", op "set") instead of one per
 * entity: every other handle's store_sync then reloads its views whole;
 * this handle's are reloaded at once. Statements are prepared once, so
 * 1,000,000 revocations apply in seconds. Malformed snapshot: AI_EINVAL
 * ("snapshot revocation <index>: ..."), nothing written. */
ai_code store_apply_snapshot(store *st, const json_t *snap, int64_t now_ms,
                             ai_err *err);

/* The leader id (store_leader_id of the leader) this replica follows:
 * "" when not known yet. */
ai_code store_replica_leader_id(store *st, char out[STORE_LEADER_ID_LEN + 1],
                                ai_err *err);
ai_code store_set_replica_leader_id(store *st, const char *id, ai_err *err);

/* A snapshot applied as it streams in (the NDJSON lines of
 * store_snapshot_line), in ONE transaction: begin deletes the replicated
 * state, each line ({"kind","value"}, a provider with "name") is checked
 * and written, commit sets applied_seq and the reset row; abort (or any
 * failure, after which the caller aborts) leaves the replica as it was. */
typedef struct snap_apply snap_apply;
ai_code store_snapshot_apply_begin(store *st, int64_t now_ms,
                                   snap_apply **out, ai_err *err);
ai_code store_snapshot_apply_line(snap_apply *a, const json_t *line,
                                  ai_err *err);
/* Frees a, whatever the result. */
ai_code store_snapshot_apply_commit(snap_apply *a, int64_t seq,
                                    const char *hash, ai_err *err);
void store_snapshot_apply_abort(snap_apply *a);

/* Follower bookkeeping in the meta table (not replicated): the leader URL
 * (NULL: keep the stored one) and the time of the last successful contact
 * in ms (< 0: keep), written together. */
ai_code store_follower_meta_set(store *st, const char *leader_url,
                                int64_t last_contact_ms, ai_err *err);
/* *leader_url: store_free; NULL if never set. *last_contact_ms: 0 if
 * never set. */
ai_code store_follower_meta_get(store *st, char **leader_url,
                                int64_t *last_contact_ms, ai_err *err);

#endif /* AI_STORE_H */
