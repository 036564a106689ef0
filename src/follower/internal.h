/*
 * internal.h - a follower's state shared by its files and by no other
 * module (private to src/follower, as scripts/lint-layers.py checks; what
 * other modules may use is in follower/follower.h): follower.c (start,
 * stop, the server role: status, metrics, 503 when stale, 409 for admin
 * calls, uses counted at the leader), sync.c (the replication loop:
 * snapshot, change feed, backoff, states), disk.c (a full disk), unseal.c
 * (the leader's sealed secrets) and feed.c (what the leader sends, read
 * from its bytes).
 */
#ifndef AI_FOLLOWER_INTERNAL_H
#define AI_FOLLOWER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "follower/follower.h"
#include "follower/upstream.h"
#include "server/server.h"

typedef enum fl_phase {
    FL_STARTING = 0,
    FL_INITIAL_SYNC,
    FL_RUNNING /* has a replica: state from the last contact */
} fl_phase;

#define FL_FORWARD_CONNS 4
/* The change feed's batch: at most this many changes and bytes (the
 * leader bounds both), less after a fetch that failed. */
#define FL_BATCH_LIMIT 1000L
#define FL_BATCH_BYTES (256L << 10)
#define FL_BATCH_BYTES_MIN 1024L
/* A fetch of pending changes (no wait) that takes longer fails and the
 * next asks for half as much. */
#define FL_FETCH_TIMEOUT_MS 10000L
/* A snapshot's progress is told every this many entity lines. */
#define FL_PROGRESS_LINES 1024

struct ai_follower {
    ai_follower_config cfg;
    char home[4096];
    char leader_url[2048];
    char follower_id[65];
    char ca[4096];
    srv *s;                 /* NULL when not serving */
    srv_tls tls;
    store *st;              /* the sync thread's handle */
    upstream *up;           /* the sync thread's connection */
    upstream *up_uses;      /* workers' use counting, under uses_lock */
    pthread_mutex_t uses_lock;
    /* credentials forwarded to the leader: a few connections, each under
     * its lock; a request finding all busy is answered 503 at once, so
     * forwarding never holds every worker */
    upstream *up_fwd[FL_FORWARD_CONNS];
    pthread_mutex_t fwd_lock[FL_FORWARD_CONNS];
    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t lock;   /* last_error, sleep */
    pthread_cond_t wake;
    char last_error[AI_ERR_MSG_MAX];
    atomic_int phase;
    atomic_llong applied;      /* leader seq the replica reflects */
    atomic_llong leader_seq;   /* as the leader last said */
    atomic_llong last_contact; /* ms; 0: never */
    /* When the replica last held everything the leader had committed
     * (ms; 0: never): a feed answer with nothing more, applied whole.
     * Agents are refused once it is older than --max-staleness. */
    atomic_llong fresh_at;
    atomic_llong syncs, failures;
    /* the sync thread's own: the chain hash at `applied` ("": unknown),
     * the batch it asks for (shrunk after a failed fetch, grown back
     * after good ones), when fresh_at was last written to the home */
    char applied_hash[STORE_HASH_HEX + 1];
    long batch_limit, batch_bytes;
    int batch_good;
    long fetch_ms; /* FL_FETCH_TIMEOUT_MS (a test shortens it) */
    int64_t fresh_saved;
    unsigned char tkey[32]; /* transport key of its credential (wiped) */
};

/* Open the follower of c: its home (a replica, or empty), its state as
 * the home holds it and its connections to the leader, with neither the
 * server nor the sync thread (ai_follower_start adds them;
 * ai_follower_sync and tests call fl_sync_once on it). *out: NULL on
 * error. Release with fl_free (not NULL; a started follower is stopped
 * with ai_follower_stop, which frees it). */
ai_code fl_new(const ai_follower_config *c, ai_follower **out, ai_err *err);
void fl_free(ai_follower *f);

/* ---- sealed entities (unseal.c) --------------------------------------- */

/* Open the secrets the leader sealed in one entity value of kind ("key",
 * "apikey", "provider") named name, in place; a value without "sealed" is
 * left as it is. AI_ESTORE when it was not sealed for this credential. */
ai_code fl_open_value(const unsigned char key[32], const char *kind,
                      const char *name, json_t *value, ai_err *err);
/* The same for a snapshot line ({"kind","value","name"?}) and for every
 * change of a feed batch. */
ai_code fl_open_line(const unsigned char key[32], json_t *line, ai_err *err);
ai_code fl_open_changes(const unsigned char key[32], const json_t *changes,
                        ai_err *err);

/* The state's name from the phase and the time since the last contact. */
const char *fl_state(ai_follower *f, int64_t now);

/* One round: a snapshot when there is no replica (or the leader says the
 * replica is too far behind), else one call of the change feed with
 * `wait` seconds of long-poll; applies what came. *more: the leader has
 * more changes right now. */
ai_code fl_sync_once(ai_follower *f, int wait, bool *more, ai_err *err);

/* The replication thread: fl_sync_once in a loop, backoff on failure. */
void *fl_loop(void *arg);

void fl_set_error(ai_follower *f, const char *msg);
/* A sync that failed with err (disk.c): a full disk is the server's
 * storage state's to tell (logged once, /readyz 503 storage_full), kept
 * as the last error quietly; any other error goes to fl_set_error. */
void fl_sync_failed(ai_follower *f, const ai_err *err);

/* Write fresh_at to the home when it moved since it was last written (the
 * sync thread does it now and then, the stop once the thread is gone,
 * ai_follower_sync at its end). */
ai_code fl_save_fresh(ai_follower *f, ai_err *err);

/* ---- what the leader sends (feed.c) ---------------------------------- */

/* An answer of GET /v1/replication/changes: {leaderSeq, leaderId?,
 * changes: [...], more?}. */
typedef struct fl_feed {
    json_t *root;          /* owns the rest */
    const json_t *changes; /* an array, for store_apply_changes */
    int64_t leader_seq;
    const char *leader_id; /* NULL when not sent */
    int64_t last_seq;      /* the last change's seq (0: none, or not a
                              number); the applied seq after the batch */
    bool more;
    char last_hash[STORE_HASH_HEX + 1]; /* chain hash at last_seq, or "" */
} fl_feed;

/* Parse the answer's bytes (borrowed; the caller wipes them). AI_EINVAL
 * "leader sent malformed JSON: ..." or "leader sent a malformed feed",
 * with *out zeroed. Release with fl_feed_free (fine on a zeroed one). */
ai_code fl_feed_parse(const char *body, size_t len, fl_feed *out,
                      ai_err *err);
void fl_feed_free(fl_feed *f);

/* Check that the batch continues the history this replica applied: seqs
 * after since and increasing, and each change's hash the chain's step
 * from the one before (from have, the hash at since; "" when unknown: the
 * first stated hash is taken as it is). Fills f->last_hash. false, with
 * why in err, when the histories parted (reload the snapshot); a change
 * without a hash (a leader without the chain) ends what can be checked. */
bool fl_feed_chain(fl_feed *f, int64_t since, const char *have, ai_err *err);

/* The snapshot stream (NDJSON) applied to st as its lines arrive, in one
 * transaction: the header {"seq", "leaderId"?} begins it, each entity
 * line goes to store_snapshot_apply_line, and {"end": true, "count"}
 * must close it with the number of entities seen. */
typedef struct fl_snap {
    const unsigned char *tkey; /* opens sealed lines; NULL: none expected */
    store *st;
    int64_t now_ms;
    snap_apply *apply; /* open from the header until finish or abort */
    int64_t seq;
    long long lines, count;
    long long revocations; /* of count */
    uint64_t bytes;        /* of the lines, newlines counted */
    /* told every FL_PROGRESS_LINES entities and at the end; NULL: none */
    void (*progress)(void *ud, const ai_follower_progress *p);
    void *progress_ud;
    bool header, end;
    ai_code rc;        /* the first refusal */
    ai_err *err;       /* where it is told */
    char leader_id[STORE_LEADER_ID_LEN + 1];
    char hash[STORE_HASH_HEX + 1]; /* the chain at seq, "" when not sent */
} fl_snap;

void fl_snap_init(fl_snap *sl, store *st, int64_t now_ms, ai_err *err);
/* Tell sl->progress how far the stream has come (nothing when NULL). */
void fl_snap_progress(const fl_snap *sl);
/* One line without its newline (an upstream_line_fn, ud the fl_snap):
 * false once the stream is refused (sl->rc, *sl->err say why); no line
 * may follow then. */
bool fl_snap_line(void *ud, char *line, size_t len);
/* After the last line, with the transfer's own result rc: commit the
 * snapshot and record the leader id when the stream was whole and
 * accepted; otherwise roll it back (the replica is as it was) and
 * return why ("the snapshot stream was cut short" when no end came). */
ai_code fl_snap_finish(fl_snap *sl, ai_code rc, ai_err *err);
/* Roll back what the stream wrote so far. */
void fl_snap_abort(fl_snap *sl);

#endif /* AI_FOLLOWER_INTERNAL_H */
