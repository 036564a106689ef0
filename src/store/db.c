/* db.c - opening a home's database: SQLite settings, numbered migrations,
 * the master key check, transactions, and keeping the in-memory views in
 * step with commits from other handles and processes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "store/db.h"

/* The WAL's bound. The automatic checkpoint runs once a commit leaves
 * the WAL past STORE_WAL_CHECKPOINT_PAGES (512 KiB in pages of 4 KiB;
 * SQLite's default of 1000 pages let the WAL alone fill a 4 MB disk), and
 * the file is cut back to journal_size_limit (STORE_WAL_LIMIT_BYTES,
 * store.h: twice that, so it is not cut and grown again at every turn)
 * when a WAL grown past it by a large transaction, or by readers holding
 * checkpoints back, starts over. Both are per connection: set on every
 * handle. */
#define STORE_WAL_CHECKPOINT_PAGES "128"
#define STR(x) STR_(x)
#define STR_(x) #x

ai_code home_prepare(const char *home, bool create,
                     unsigned char key[AI_KEY_BYTES], char *dbpath,
                     size_t cap, bool *fresh, ai_err *err);

/* Schema changes, in order; never edit one that has shipped: append. */
static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"
    "CREATE TABLE signing_keys ("
    "  version INTEGER PRIMARY KEY CHECK (version BETWEEN 1 AND 2147483648),"
    "  secret BLOB NOT NULL,"          /* sealed */
    "  created_at INTEGER NOT NULL,"
    "  verify_until INTEGER NOT NULL DEFAULT 0);" /* 0: no limit */
    "CREATE TABLE revocations ("
    "  target INTEGER NOT NULL CHECK (target IN (0, 1)),"
    "  id TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  revoked_at INTEGER NOT NULL,"
    "  prune_after INTEGER NOT NULL,"
    "  PRIMARY KEY (target, id)) WITHOUT ROWID;"
    "CREATE INDEX revocations_prune ON revocations (prune_after);"
    "CREATE TABLE providers ("
    "  name TEXT PRIMARY KEY,"
    "  config BLOB NOT NULL,"          /* sealed JSON */
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys ("
    "  name TEXT PRIMARY KEY,"
    "  provider TEXT NOT NULL,"
    "  secret BLOB NOT NULL,"          /* sealed */
    "  base_url TEXT,"
    "  ttl_minutes INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE uses ("
    "  budget_id TEXT PRIMARY KEY,"
    "  used INTEGER NOT NULL,"
    "  max_uses INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE changelog ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  op TEXT NOT NULL CHECK (op IN ('set', 'delete')));"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  token_id TEXT,"
    "  agent_id TEXT,"
    "  decision TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  prev BLOB NOT NULL,"
    "  mac BLOB NOT NULL);",
    /* 2: followers registered on a leader, each with its own credential
     * (only its SHA-256 is kept) and the providers granted to it. */
    "CREATE TABLE followers ("
    "  id TEXT PRIMARY KEY,"
    "  digest BLOB NOT NULL UNIQUE,"   /* SHA-256 of the credential */
    "  transport BLOB NOT NULL,"       /* sealed: its transport key */
    "  providers TEXT NOT NULL,"       /* "a,b", "*" or "" */
    "  created_at INTEGER NOT NULL);",
    /* 3: the changelog's hash chain (changelog.c): each row carries the
     * running SHA-256 of the log up to it; rows from before are chained at
     * open (changelog_backfill). */
    "ALTER TABLE changelog ADD COLUMN hash BLOB;",
    /* 4: a leader group's voter (entries.c): the request ids of the Raft
     * entries it applied, with their results, so a retry applies once;
     * the last applied index is meta "raft_applied". */
    "CREATE TABLE raft_requests ("
    "  req_id BLOB PRIMARY KEY,"
    "  idx INTEGER NOT NULL,"
    "  result TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX raft_requests_idx ON raft_requests (idx);",
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

/* Less free than this for the home's files is a full disk. */
#define ROOM_MIN (1024 * 1024)

/* A failure of the disk under the store rather than of the store: no
 * room (SQLITE_FULL: a write got ENOSPC), or an I/O error in writing or
 * growing a file when the cause was no room after all. SQLite keeps the
 * errno of an I/O error only now and then, so the disk is asked too: less
 * than 1 MiB left, or a file size limit (RLIMIT_FSIZE: EFBIG). A write
 * error with room to spare stays a store error. */
static bool disk_full(const store *st, int code)
{
    struct statvfs vfs;
    struct rlimit rl;
    int x = sqlite3_extended_errcode(st->db), e;

    if (code == SQLITE_FULL)
        return true;
    if (x != SQLITE_IOERR_WRITE && x != SQLITE_IOERR_FSYNC &&
        x != SQLITE_IOERR_TRUNCATE && x != SQLITE_IOERR_SHMSIZE &&
        x != SQLITE_IOERR_DIR_FSYNC)
        return false;
    e = sqlite3_system_errno(st->db);
    if (e == ENOSPC || e == EDQUOT || e == EFBIG)
        return true;
    if (statvfs(st->home, &vfs) == 0 &&
        (unsigned long long)vfs.f_bavail * vfs.f_frsize < ROOM_MIN)
        return true;
    return getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

/* The size of the database file (suffix "") or of its WAL ("-wal"); 0
 * when there is none, -1 when it cannot be told. */
static int64_t file_bytes(store *st, const char *suffix)
{
    const char *db = sqlite3_db_filename(st->db, "main");
    char path[STORE_PATH_MAX + 64];
    struct stat sb;

    if (db == NULL || db[0] == '\0' ||
        snprintf(path, sizeof path, "%s%s", db, suffix) >= (int)sizeof path)
        return -1;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    return (int64_t)sb.st_size;
}

/* Room for the store to write again: ROOM_MIN free on the disk, and under
 * a file size limit (RLIMIT_FSIZE) ROOM_MIN left to each file. A probe's
 * small write alone can succeed in the slack of a file already grown
 * while the next real write cannot. */
static bool has_room(store *st)
{
    struct statvfs vfs;
    struct rlimit rl;
    int64_t db, wal;

    if (statvfs(st->home, &vfs) == 0 &&
        (unsigned long long)vfs.f_bavail * vfs.f_frsize < ROOM_MIN)
        return false;
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return true;
    db = file_bytes(st, "");
    wal = file_bytes(st, "-wal");
    return (unsigned long long)(db > wal ? db : wal) + ROOM_MIN <=
           (unsigned long long)rl.rlim_cur;
}

ai_code db_fail(store *st, const char *what, ai_err *err)
{
    int code = st->db ? sqlite3_errcode(st->db) : SQLITE_ERROR;

    if (code == SQLITE_NOMEM)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if (st->db != NULL && disk_full(st, code))
        return ai_err_set(err, AI_ESTORAGE_FULL,
                          "%s: the disk of the home is full (%s)", what,
                          sqlite3_errmsg(st->db));
    return ai_err_set(err, AI_ESTORE, "%s: %s", what,
                      st->db ? sqlite3_errmsg(st->db) : "no database");
}

ai_code db_exec(store *st, const char *sql, ai_err *err)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(st, "database", err);
    return AI_OK;
}

ai_code db_prepare(store *st, const char *sql, sqlite3_stmt **out,
                   ai_err *err)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK) {
        *out = NULL;
        return db_fail(st, "database", err);
    }
    return AI_OK;
}

/* Within a Raft entry's transaction (store_entry_begin) a write is a
 * savepoint of it: its commit is the entry's, its rollback its own. */
ai_code db_begin(store *st, ai_err *err)
{
    return db_exec(st, st->in_entry ? "SAVEPOINT w" : "BEGIN IMMEDIATE", err);
}

ai_code db_commit(store *st, ai_err *err)
{
    ai_code rc = db_exec(st, st->in_entry ? "RELEASE w" : "COMMIT", err);

    if (rc != AI_OK)
        db_rollback(st);
    return rc;
}

void db_rollback(store *st)
{
    if (st->in_entry)
        (void)sqlite3_exec(st->db, "ROLLBACK TO w; RELEASE w", NULL, NULL,
                           NULL);
    else if (!sqlite3_get_autocommit(st->db))
        (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* See db.h. */
ai_code db_log_commit(store *st, const store_ref *ref, const char *op,
                      int64_t now_ms, const audit_entry *audit, ai_err *err)
{
    ai_code rc;

    if ((rc = changelog_add(st, ref, op, now_ms, err)) != AI_OK ||
        (audit != NULL && (rc = audit_append(st, audit, err)) != AI_OK) ||
        (rc = db_commit(st, err)) != AI_OK)
        db_rollback(st);
    return rc;
}

ai_code db_delete_logged(store *st, const char *sql, store_kind kind,
                         const char *name, int64_t now_ms,
                         const audit_entry *audit, const char *missing,
                         ai_err *err)
{
    store_ref ref = {.kind = kind, .name = name};
    sqlite3_stmt *q = NULL;
    ai_code rc;

    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = db_prepare(st, sql, &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, store_kind_name(kind), err);
        goto fail;
    }
    if (sqlite3_changes(st->db) == 0) {
        rc = ai_err_set(err, AI_ENOTFOUND, "%s", missing);
        goto fail;
    }
    sqlite3_finalize(q);
    return db_log_commit(st, &ref, "delete", now_ms, audit, err);
fail:
    sqlite3_finalize(q);
    db_rollback(st);
    return rc;
}

ai_code meta_get(store *st, const char *key, char **value, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    *value = NULL;
    if ((rc = db_prepare(st, "SELECT value FROM meta WHERE key = ?", &q,
                         err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(q, 0);
        size_t n = v ? strlen(v) : 0;
        if ((*value = ai_malloc(n + 1)) == NULL)
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        else
            memcpy(*value, v ? v : "", n + 1);
    } else if (step == SQLITE_DONE) {
        rc = ai_err_set(err, AI_ENOTFOUND, "no %s", key);
    } else {
        rc = db_fail(st, "database", err);
    }
    sqlite3_finalize(q);
    return rc;
}

ai_code meta_set(store *st, const char *key, const char *value, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    if ((rc = db_prepare(st,
                         "INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, "database", err);
    sqlite3_finalize(q);
    return rc;
}

static ai_code read_int(store *st, const char *sql, int64_t *v, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    if ((rc = db_prepare(st, sql, &q, err)) != AI_OK)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW)
        *v = sqlite3_column_int64(q, 0);
    else
        rc = db_fail(st, "database", err);
    sqlite3_finalize(q);
    return rc;
}

/* Apply the migrations this database lacks, each in one transaction. */
static ai_code migrate(store *st, ai_err *err)
{
    int64_t have = 0;
    ai_code rc;
    char stamp[64];

    if ((rc = db_exec(st,
                      "CREATE TABLE IF NOT EXISTS schema_version ("
                      "version INTEGER NOT NULL)",
                      err)) != AI_OK)
        return rc;
    if ((rc = read_int(st,
                       "SELECT coalesce(max(version), 0) FROM schema_version",
                       &have, err)) != AI_OK)
        return rc;
    if (have > SCHEMA_VERSION)
        return ai_err_set(err, AI_ESTORE,
                          "agent-iam.db has schema %lld, newer than this "
                          "agent-iam (%d): upgrade agent-iam",
                          (long long)have, SCHEMA_VERSION);
    for (int v = (int)have + 1; v <= SCHEMA_VERSION; v++) {
        if ((rc = db_begin(st, err)) != AI_OK)
            return rc;
        snprintf(stamp, sizeof stamp,
                 "INSERT INTO schema_version (version) VALUES (%d)", v);
        if ((rc = db_exec(st, migrations[v - 1], err)) != AI_OK ||
            (rc = db_exec(st, stamp, err)) != AI_OK ||
            (rc = db_commit(st, err)) != AI_OK) {
            db_rollback(st);
            return rc;
        }
    }
    st->schema = SCHEMA_VERSION;
    return AI_OK;
}

#define KEY_CHECK_AAD "master key check"
#define KEY_CHECK_TEXT "agent-iam"

/* A sealed known value in meta proves the master key is this database's:
 * a wrong key is refused before anything is decrypted with it. */
static ai_code check_master(store *st, ai_err *err)
{
    unsigned char *blob = NULL, *plain = NULL;
    size_t bloblen, n;
    char *hex = NULL;
    ai_code rc = meta_get(st, "key_check", &hex, err);

    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        if ((rc = seal(st, KEY_CHECK_AAD, KEY_CHECK_TEXT,
                       sizeof KEY_CHECK_TEXT - 1, &blob, &bloblen, err)) !=
            AI_OK)
            return rc;
        if ((hex = ai_malloc(2 * bloblen + 1)) == NULL) {
            ai_free(blob);
            return ai_err_set(err, AI_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < bloblen; i++)
            snprintf(hex + 2 * i, 3, "%02x", blob[i]);
        rc = meta_set(st, "key_check", hex, err);
        ai_free(blob);
        ai_free(hex);
        return rc;
    }
    if (rc != AI_OK)
        return rc;
    bloblen = strlen(hex) / 2;
    if ((blob = ai_malloc(bloblen + 1)) == NULL) {
        ai_free(hex);
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < bloblen; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            v = 0;
        blob[i] = (unsigned char)v;
    }
    rc = unseal(st, KEY_CHECK_AAD, blob, bloblen, &plain, &n, err);
    if (rc == AI_OK &&
        (n != sizeof KEY_CHECK_TEXT - 1 || memcmp(plain, KEY_CHECK_TEXT, n)))
        rc = AI_ESTORE;
    if (rc == AI_ESTORE) {
        ai_err_clear(err);
        rc = ai_err_set(err, AI_ESTORE,
                        "%s/%s does not match %s/%s (wrong master key): "
                        "restore the master.key this database was made with",
                        st->home, STORE_KEY_FILE, st->home, STORE_DB_FILE);
    }
    ai_free(plain);
    ai_free(blob);
    ai_free(hex);
    return rc;
}

ai_code store_open(const char *home, bool create, store **out, ai_err *err)
{
    char dbpath[STORE_PATH_MAX + 32];
    store *st;
    bool fresh = false;
    int64_t n;
    ai_code rc;

    ai_err_clear(err);
    if (out == NULL || home == NULL)
        return ai_err_set(err, AI_EINVAL, "home required");
    *out = NULL;
    if (strlen(home) >= STORE_PATH_MAX - 32)
        return ai_err_set(err, AI_EINVAL, "home path too long");
    if ((st = ai_calloc(1, sizeof *st)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    snprintf(st->home, sizeof st->home, "%s", home);
    if ((rc = home_prepare(home, create, st->master, dbpath, sizeof dbpath,
                           &fresh, err)) != AI_OK)
        goto fail;
    if (sqlite3_open_v2(dbpath, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                            SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK) {
        rc = db_fail(st, dbpath, err);
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 10000);
    /* Read before writing anything: a file that is not an SQLite database
     * fails here, and is never touched. */
    if (read_int(st, "SELECT count(*) FROM sqlite_master", &n, err) != AI_OK) {
        int code = sqlite3_errcode(st->db);
        if (code == SQLITE_BUSY || code == SQLITE_LOCKED ||
            code == SQLITE_NOMEM || code == SQLITE_CANTOPEN ||
            code == SQLITE_IOERR)
            goto fail; /* not a verdict on the file: say what happened */
        ai_err_clear(err);
        rc = ai_err_set(err, AI_ESTORE,
                        "%s is not an agent-iam database (%s): move it away "
                        "or restore it from backup",
                        dbpath, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (n > 0 && !fresh) {
        int64_t ours = 0;
        if (read_int(st,
                     "SELECT count(*) FROM sqlite_master WHERE name = "
                     "'schema_version'",
                     &ours, err) != AI_OK ||
            ours == 0) {
            ai_err_clear(err);
            rc = ai_err_set(err, AI_ESTORE,
                            "%s is an SQLite database but not agent-iam's",
                            dbpath);
            goto fail;
        }
    }
    if ((rc = db_exec(st,
                      "PRAGMA journal_mode = WAL;"
                      "PRAGMA synchronous = FULL;"
                      "PRAGMA foreign_keys = ON;"
                      /* the WAL's bound (above) */
                      "PRAGMA journal_size_limit = "
                      STR(STORE_WAL_LIMIT_BYTES) ";"
                      "PRAGMA wal_autocheckpoint = "
                      STORE_WAL_CHECKPOINT_PAGES ";",
                      err)) != AI_OK ||
        (rc = migrate(st, err)) != AI_OK ||
        (rc = changelog_backfill(st, err)) != AI_OK ||
        (rc = check_master(st, err)) != AI_OK)
        goto fail;
    /* The audit chain's MAC key: derived, so it is not the sealing key. */
    if (HMAC(EVP_sha256(), st->master, AI_KEY_BYTES,
             (const unsigned char *)"agent-iam audit chain v1", 24,
             st->audit_key, NULL) == NULL) {
        rc = ai_err_set(err, AI_EINTERNAL, "key derivation failed");
        goto fail;
    }
    *out = st;
    return AI_OK;
fail:
    store_close(st);
    return rc;
}

void store_close(store *st)
{
    if (st == NULL)
        return;
    sqlite3_finalize(st->cl_last);
    sqlite3_finalize(st->cl_insert);
    if (st->db != NULL)
        sqlite3_close_v2(st->db);
    ai_keyring_free(st->keys);
    revview_free(st->rev);
    explicit_bzero(st->master, sizeof st->master);
    explicit_bzero(st->audit_key, sizeof st->audit_key);
    ai_free(st);
}

void store_free(void *p)
{
    ai_free(p);
}

const char *store_home(const store *st)
{
    return st->home;
}

int store_schema_version(const store *st)
{
    return st->schema;
}

ai_code views_apply(store *st, const char *kind, const char *key,
                    bool *reload, ai_err *err)
{
    store_ref ref;

    *reload = false;
    if (!store_change_parse(kind, key, &ref) || ref.kind == STORE_KIND_RESET) {
        /* A replica applied a snapshot (replica.c), or a row this code
         * cannot read: only the whole state is sure to be right. */
        *reload = true;
        return AI_OK;
    }
    switch (ref.kind) {
    case STORE_KIND_KEY:
        ai_keyring_free(st->keys);
        st->keys = NULL; /* reloaded by the next store_keyring */
        return AI_OK;
    case STORE_KIND_REVOCATION:
        return revview_refresh(st, ref.target, ref.name, err);
    default:
        return AI_OK; /* providers and API keys are read when used */
    }
}

/* Apply one change of another handle to the views. */
typedef struct sync_ctx {
    store *st;
    bool reset; /* reload the views whole (views_apply) */
    ai_code rc;
    ai_err *err;
} sync_ctx;

static bool apply_change(void *ud, const store_change *ch)
{
    sync_ctx *c = ud;

    if (c->rc != AI_OK || c->reset)
        return false; /* seen_seq stays at the last change applied */
    c->rc = views_apply(c->st, ch->kind, ch->key, &c->reset, c->err);
    if (c->rc != AI_OK || c->reset)
        return false; /* the rows after a reset are in the reload too */
    c->st->seen_seq = ch->seq;
    return true;
}

/* First sync: load the revocation view and note the changelog head, in
 * one read transaction so no change falls between the two. */
static ai_code load_views(store *st, ai_err *err)
{
    revview *v = NULL;
    int64_t head = 0, dv = 0;
    ai_code rc;

    if ((rc = db_exec(st, "BEGIN", err)) != AI_OK)
        return rc;
    if ((rc = read_int(st, "PRAGMA data_version", &dv, err)) != AI_OK ||
        (rc = store_changelog_head(st, &head, err)) != AI_OK ||
        (rc = revview_load(st, &v, err)) != AI_OK) {
        db_rollback(st);
        return rc;
    }
    db_rollback(st); /* read only: nothing to commit */
    revview_free(st->rev);
    st->rev = v;
    st->seen_seq = head;
    st->data_version = dv;
    ai_keyring_free(st->keys);
    st->keys = NULL;
    return AI_OK;
}

/* Drop the views: the next sync reloads them whole, and until then the
 * revocation predicate fails closed. */
void drop_views(store *st)
{
    revview_free(st->rev);
    st->rev = NULL;
    ai_keyring_free(st->keys);
    st->keys = NULL;
}

ai_code views_reload(store *st, ai_err *err)
{
    ai_code rc;

    if (st->rev == NULL) {
        ai_keyring_free(st->keys); /* no views yet: the first sync loads */
        st->keys = NULL;
        return AI_OK;
    }
    if ((rc = load_views(st, err)) != AI_OK)
        drop_views(st);
    return rc;
}

ai_code store_checkpoint(store *st, ai_err *err)
{
    int rc;

    ai_err_clear(err);
    rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                   NULL, NULL);
    if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return AI_OK;
    return db_fail(st, "checkpoint", err);
}

ai_code store_write_probe(store *st, int64_t now_ms, ai_err *err)
{
    char v[24];
    ai_code rc;

    ai_err_clear(err);
    snprintf(v, sizeof v, "%lld", (long long)now_ms);
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = meta_set(st, "write_probe", v, err)) != AI_OK ||
        (rc = db_commit(st, err)) != AI_OK) {
        db_rollback(st);
        return rc;
    }
    /* The write may have restarted a checkpointed WAL and cut it back to
     * its limit, which frees room; only then is the room asked. */
    if (!has_room(st))
        return ai_err_set(err, AI_ESTORAGE_FULL,
                          "less than %d KiB left for the home's files",
                          ROOM_MIN / 1024);
    return AI_OK;
}

int64_t store_wal_bytes(store *st)
{
    return file_bytes(st, "-wal");
}

ai_code store_data_version(store *st, int64_t *dv, ai_err *err)
{
    ai_err_clear(err);
    return read_int(st, "PRAGMA data_version", dv, err);
}

ai_code store_sync(store *st, ai_err *err)
{
    int64_t dv = 0;
    sync_ctx c = {st, false, AI_OK, err};
    ai_code rc;

    ai_err_clear(err);
    if (st->rev == NULL)
        return load_views(st, err);
    if ((rc = read_int(st, "PRAGMA data_version", &dv, err)) != AI_OK)
        return rc;
    if (dv == st->data_version)
        return AI_OK;
    /* Walk the changes since the views were built; a log trimmed past
     * them reloads everything instead. */
    {
        int64_t oldest = 0;
        if ((rc = store_changelog_oldest(st, &oldest, err)) != AI_OK)
            return rc;
        if (oldest > st->seen_seq + 1)
            return load_views(st, err);
    }
    for (;;) {
        int64_t before = st->seen_seq;
        if ((rc = store_changes(st, st->seen_seq, 10000, apply_change, &c,
                                err)) == AI_OK)
            rc = c.rc;
        if (rc == AI_OK && c.reset)
            rc = load_views(st, err); /* the state was replaced whole */
        if (rc != AI_OK) {
            drop_views(st);
            return rc;
        }
        if (c.reset)
            return AI_OK;
        if (st->seen_seq == before)
            break;
    }
    st->data_version = dv;
    return AI_OK;
}
