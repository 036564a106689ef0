/* storage.c - whether the store can write, audit retention and WAL
 * checkpoints, on the server's watcher (see storage.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "server/server.h"
#include "server/storage.h"

struct srv_storage {
    atomic_bool full;
    atomic_llong full_since;    /* ms; 0 while writable */
    atomic_ullong refused;      /* writes that failed for lack of room */
    atomic_ullong removed;      /* audit rows deleted by retention */
    atomic_llong wal_bytes;     /* the WAL file's size at the last look */
    pthread_mutex_t lock;       /* error, the log times and counts */
    char error[AI_ERR_MSG_MAX]; /* the last failure's message */
    int64_t logged_at;          /* ms of the last "storage full" line */
    unsigned long logged_refused; /* refused as of that line */
    /* the watcher's own */
    int64_t retain_ms, retain_every_ms;
    int64_t next_probe, next_retain, next_checkpoint, next_wal;
    bool retain_more;
    int64_t retain_error_at;
};

srv_storage *storage_new(int64_t retain_ms)
{
    srv_storage *sto = ai_calloc(1, sizeof *sto);

    if (sto == NULL)
        return NULL;
    pthread_mutex_init(&sto->lock, NULL);
    sto->retain_ms = retain_ms > 0 ? retain_ms : 0;
    sto->retain_every_ms = sto->retain_ms / 100;
    if (sto->retain_every_ms < 1000)
        sto->retain_every_ms = 1000;
    if (sto->retain_every_ms > 60000)
        sto->retain_every_ms = 60000;
    return sto;
}

void storage_free(srv_storage *sto)
{
    if (sto == NULL)
        return;
    pthread_mutex_destroy(&sto->lock);
    ai_free(sto);
}

bool storage_writable(const srv_storage *sto)
{
    return sto == NULL || !atomic_load(&sto->full);
}

void storage_failed(srv_storage *sto, const char *msg)
{
    int64_t now = time_now_ms();
    unsigned long refused, since_line = 0;
    bool first, say;

    if (sto == NULL)
        return;
    refused = (unsigned long)atomic_fetch_add(&sto->refused, 1) + 1;
    pthread_mutex_lock(&sto->lock);
    snprintf(sto->error, sizeof sto->error, "%s", msg ? msg : "disk full");
    first = !atomic_load(&sto->full);
    if (first) {
        atomic_store(&sto->full_since, now);
        atomic_store(&sto->full, true);
    }
    say = first || now - sto->logged_at >= STORAGE_LOG_EVERY_MS;
    if (say) {
        since_line = refused - sto->logged_refused;
        sto->logged_at = now;
        sto->logged_refused = refused;
    }
    pthread_mutex_unlock(&sto->lock);
    if (say && first)
        fprintf(stderr, "agent-iam: storage full: %s: writes (delegations, "
                        "refreshes, credentials, admin changes) are refused "
                        "with 503 storage_full until space returns; reads "
                        "and token checks go on\n",
                msg ? msg : "disk full");
    else if (say)
        fprintf(stderr, "agent-iam: storage full: still; %lu writes refused "
                        "in the last %d s\n",
                since_line, STORAGE_LOG_EVERY_MS / 1000);
}

/* While full: one small write; the first that succeeds with room to
 * spare ends it. */
static void probe(srv_storage *sto, store *st, int64_t now)
{
    unsigned long refused;
    int64_t since;
    ai_err err;

    if (now < sto->next_probe)
        return;
    sto->next_probe = now + STORAGE_PROBE_MS;
    if (store_write_probe(st, now, &err) != AI_OK)
        return; /* still full (or busy): the next probe tells */
    pthread_mutex_lock(&sto->lock);
    since = atomic_load(&sto->full_since);
    refused = (unsigned long)atomic_load(&sto->refused);
    atomic_store(&sto->full, false);
    atomic_store(&sto->full_since, 0);
    sto->error[0] = '\0';
    sto->logged_at = 0;
    pthread_mutex_unlock(&sto->lock);
    fprintf(stderr, "agent-iam: storage writable again after %lld s (%lu "
                    "writes refused since the start)\n",
            (long long)((now - since) / 1000), refused);
}

/* One batch of retention; the next right away while old rows remain. */
static void retain(srv_storage *sto, store *st, int64_t now)
{
    size_t removed = 0;
    bool more = false;
    ai_err err;
    ai_code rc;

    if (sto->retain_ms == 0 || (!sto->retain_more && now < sto->next_retain))
        return;
    rc = store_audit_retain(st, now - sto->retain_ms,
                            STORE_AUDIT_RETAIN_BATCH, &removed, &more, &err);
    atomic_fetch_add(&sto->removed, removed);
    sto->retain_more = rc == AI_OK && more;
    if (!sto->retain_more)
        sto->next_retain = now + sto->retain_every_ms;
    if (rc == AI_ESTORAGE_FULL) {
        storage_failed(sto, err.msg);
    } else if (rc != AI_OK && now - sto->retain_error_at >=
                                  STORAGE_LOG_EVERY_MS) {
        sto->retain_error_at = now; /* a bad row stays bad: say it seldom */
        fprintf(stderr, "agent-iam: audit retention: %s\n", err.msg);
    }
}

void storage_tick(srv_storage *sto, store *st, int64_t now)
{
    ai_err err;

    if (sto == NULL || st == NULL)
        return;
    if (now >= sto->next_wal) {
        sto->next_wal = now + STORAGE_PROBE_MS;
        atomic_store(&sto->wal_bytes, store_wal_bytes(st));
    }
    if (atomic_load(&sto->full)) {
        probe(sto, st, now);
        return; /* retention and checkpoints need room too */
    }
    retain(sto, st, now);
    if (now >= sto->next_checkpoint) {
        sto->next_checkpoint = now + STORAGE_CHECKPOINT_MS;
        if (store_checkpoint(st, &err) != AI_OK &&
            err.code != AI_ESTORAGE_FULL)
            fprintf(stderr, "agent-iam: checkpoint: %s\n", err.msg);
    }
}

void storage_status(srv_storage *sto, json_t *out)
{
    json_t *o;
    char error[AI_ERR_MSG_MAX];
    int64_t since;
    bool full;

    if (sto == NULL || (o = json_object()) == NULL)
        return;
    pthread_mutex_lock(&sto->lock);
    full = atomic_load(&sto->full);
    since = atomic_load(&sto->full_since);
    snprintf(error, sizeof error, "%s", sto->error);
    pthread_mutex_unlock(&sto->lock);
    json_object_set_new(o, "writable", json_boolean(!full));
    if (full) {
        json_object_set_new(o, "fullSinceMs", json_integer(since));
        json_object_set_new(o, "error", json_string(error));
    }
    json_object_set_new(o, "walBytes",
                        json_integer(atomic_load(&sto->wal_bytes)));
    json_object_set_new(o, "walLimitBytes",
                        json_integer(STORE_WAL_LIMIT_BYTES));
    json_object_set_new(o, "auditRetainDays",
                        sto->retain_ms
                            ? json_real((double)sto->retain_ms / 86400000.0)
                            : json_null());
    json_object_set_new(out, "storage", o);
}

bool storage_metrics(srv_storage *sto, char **buf, size_t *len, size_t *cap)
{
    if (sto == NULL)
        return true;
    return srv_appendf(
        buf, len, cap,
        "# HELP agent_iam_storage_writable 1 while the store can write, 0 "
        "while its disk is full.\n"
        "# TYPE agent_iam_storage_writable gauge\n"
        "agent_iam_storage_writable %d\n"
        "# HELP agent_iam_storage_full_writes_total Writes refused because "
        "the disk was full.\n"
        "# TYPE agent_iam_storage_full_writes_total counter\n"
        "agent_iam_storage_full_writes_total %llu\n"
        "# HELP agent_iam_audit_rows_removed_total Audit rows deleted by "
        "retention.\n"
        "# TYPE agent_iam_audit_rows_removed_total counter\n"
        "agent_iam_audit_rows_removed_total %llu\n"
        "# HELP agent_iam_storage_wal_bytes Size of the store's write-ahead "
        "log file.\n"
        "# TYPE agent_iam_storage_wal_bytes gauge\n"
        "agent_iam_storage_wal_bytes %lld\n"
        "# HELP agent_iam_storage_wal_limit_bytes The size the write-ahead "
        "log is cut back to.\n"
        "# TYPE agent_iam_storage_wal_limit_bytes gauge\n"
        "agent_iam_storage_wal_limit_bytes %d\n",
        storage_writable(sto) ? 1 : 0,
        (unsigned long long)atomic_load(&sto->refused),
        (unsigned long long)atomic_load(&sto->removed),
        (long long)atomic_load(&sto->wal_bytes), STORE_WAL_LIMIT_BYTES);
}
