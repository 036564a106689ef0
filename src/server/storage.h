/*
 * storage.h - the disk under a server's home (DESIGN §8), private to
 * src/server: whether the store can write, audit retention and WAL
 * checkpoints.
 *
 * A write that fails for lack of room (AI_ESTORAGE_FULL: the request is
 * answered 503 storage_full, see srv_reply_ai) marks the store full and
 * logs one line; more failures while it stays full are counted, and
 * repeated in one line at most every STORAGE_LOG_EVERY_MS. Reads go on.
 * While full, the watcher tries one small write (store_write_probe) every
 * STORAGE_PROBE_MS; the first that succeeds with 1 MiB to spare marks the
 * store writable again and logs it, so the server recovers by itself once
 * space returns (a write that fits in the slack of a file already grown
 * does not end the episode only for the next write to start another).
 * /readyz answers 503 storage_full meanwhile and /v1/status says so.
 *
 * Upkeep on the watcher: audit rows older than the retention are deleted
 * in batches of STORE_AUDIT_RETAIN_BATCH, one batch per watcher tick
 * (SRV_WATCH_MS) while old rows remain, then again after a pause of a
 * hundredth of the retention (1 s to 60 s); and a passive WAL checkpoint
 * every STORAGE_CHECKPOINT_MS (besides SQLite's own after a commit, see
 * STORE_WAL_LIMIT_BYTES), and the WAL file's size read every
 * STORAGE_PROBE_MS, for /v1/status and /metrics.
 *
 * THREADS: storage_failed, storage_writable, storage_status and
 * storage_metrics may be called from any thread; storage_tick from the
 * watcher only.
 */
#ifndef AI_SERVER_STORAGE_H
#define AI_SERVER_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define STORAGE_LOG_EVERY_MS 60000
#define STORAGE_PROBE_MS 1000
#define STORAGE_CHECKPOINT_MS 10000

typedef struct srv_storage srv_storage;

/* retain_ms 0: audit rows are kept for ever. NULL: out of memory. */
srv_storage *storage_new(int64_t retain_ms);
void storage_free(srv_storage *sto);

/* A write failed for lack of room (msg: why, for the log). */
void storage_failed(srv_storage *sto, const char *msg);
bool storage_writable(const srv_storage *sto);

/* Upkeep with the watcher's store handle (see above). */
void storage_tick(srv_storage *sto, store *st, int64_t now_ms);

/* /v1/status: "storage": {"writable", "fullSinceMs"?, "error"?,
 * "walBytes", "walLimitBytes", "auditRetainDays"}. */
void storage_status(srv_storage *sto, json_t *out);
/* /metrics: agent_iam_storage_writable, agent_iam_storage_full_writes_total,
 * agent_iam_audit_rows_removed_total, agent_iam_storage_wal_bytes,
 * agent_iam_storage_wal_limit_bytes. */
bool storage_metrics(srv_storage *sto, char **buf, size_t *len, size_t *cap);

#endif /* AI_SERVER_STORAGE_H */
