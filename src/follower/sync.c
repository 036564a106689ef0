/* sync.c - the follower's replication: load the snapshot, then follow the
 * change feed with long-polls; each batch is applied in one transaction
 * together with the applied seq (store_apply_changes), so a kill at any
 * instant leaves a replica that resumes where it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "follower/internal.h"

#define SNAPSHOT_TIMEOUT_MS 1800000L
#define FEED_MAX ((size_t)64 << 20)
/* A held long-poll the leader has not answered by its wait plus this is
 * dead (a silent network drop): given up and retried. */
#define POLL_GRACE_MS 5000L
/* Reconnecting: a few seconds apart at most, with jitter. */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 3000
/* The contact and freshness live in memory (/v1/status, metrics, the
 * refusal when stale read them there); the home gets fresh_at at stop,
 * after `agent-iam sync`, and otherwise at most this often, so idle polls
 * commit nothing but one in this time: a commit moves the home's
 * data_version, and every worker of this follower re-syncs for it. A restart after a crash
 * reads a time up to this much older, which only errs on the side of
 * refusing; kept under the default degraded threshold (5 min) so that
 * `agent-iam status` on the home of a live follower says connected. */
#define FRESH_SAVE_MS 120000

void fl_set_error(ai_follower *f, const char *msg)
{
    pthread_mutex_lock(&f->lock);
    if (strcmp(f->last_error, msg) != 0 && msg[0] != '\0')
        fprintf(stderr, "agent-iam: follower %s: %s\n", f->follower_id, msg);
    snprintf(f->last_error, sizeof f->last_error, "%s", msg);
    pthread_mutex_unlock(&f->lock);
}

const char *follower_state_at(int64_t last_contact, int64_t now,
                              const ai_follower_config *c)
{
    int64_t age = last_contact > 0 ? now - last_contact : INT64_MAX;

    if (age >= c->offline_ms)
        return "offline";
    if (age >= c->limited_ms)
        return "limited";
    if (age >= c->degraded_ms)
        return "degraded";
    return "connected";
}

const char *fl_state(ai_follower *f, int64_t now)
{
    switch (atomic_load(&f->phase)) {
    case FL_STARTING: return "starting";
    case FL_INITIAL_SYNC: return "initial_sync";
    default: break;
    }
    return follower_state_at(atomic_load(&f->last_contact), now, &f->cfg);
}

/* The leader answered (now); fresh: and the replica holds everything it
 * had committed as of `fresh` (ms). */
static void contact(ai_follower *f, int64_t now, int64_t fresh)
{
    ai_err err;

    atomic_store(&f->last_contact, now);
    if (fresh <= 0 || fresh <= atomic_load(&f->fresh_at))
        return;
    atomic_store(&f->fresh_at, fresh);
    /* For `agent-iam status` on this home and for restarts: rarely
     * (FRESH_SAVE_MS), and at stop (fl_save_fresh) */
    if (fresh - f->fresh_saved < FRESH_SAVE_MS)
        return;
    if (fl_save_fresh(f, &err) != AI_OK)
        fl_sync_failed(f, &err);
}

ai_code fl_save_fresh(ai_follower *f, ai_err *err)
{
    int64_t fresh = atomic_load(&f->fresh_at);

    ai_err_clear(err);
    if (fresh <= f->fresh_saved)
        return AI_OK;
    f->fresh_saved = fresh;
    return store_follower_meta_set(f->st, f->leader_url, fresh, err);
}

static void wipe_free(char *s, size_t n)
{
    if (s != NULL) {
        explicit_bzero(s, n);
        ai_free(s);
    }
}

/* Refusals and surprises of the leader, named. */
static ai_code answer_error(const char *what, long status, char *body,
                            size_t len, ai_err *err)
{
    char text[200];

    upstream_error_text(body, status, text, sizeof text);
    wipe_free(body, len);
    if (status == 401 || status == 403)
        return ai_err_set(err, AI_EDENIED,
                          "%s: the leader refused the follower auth token: "
                          "%s (the replica is kept)",
                          what, text);
    return ai_err_set(err, AI_EUNAVAILABLE, "%s: %s", what, text);
}

static ai_code load_snapshot(ai_follower *f, ai_err *err)
{
    fl_snap sl;
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    ai_code rc;

    int64_t started = time_now_ms();

    if (atomic_load(&f->phase) != FL_RUNNING)
        atomic_store(&f->phase, FL_INITIAL_SYNC);
    fl_snap_init(&sl, f->st, started, err);
    sl.tkey = f->tkey;
    sl.progress = f->cfg.progress;
    sl.progress_ud = f->cfg.progress_ud;
    rc = upstream_stream(f->up, "/v1/replication/snapshot",
                         SNAPSHOT_TIMEOUT_MS, 1 << 20, fl_snap_line, &sl,
                         &status, &body, &len, err);
    if (rc == AI_OK && status != 200) {
        fl_snap_abort(&sl);
        return answer_error("snapshot", status, body, len, err);
    }
    if ((rc = fl_snap_finish(&sl, rc, err)) != AI_OK)
        return rc;
    atomic_store(&f->applied, (long long)sl.seq);
    memcpy(f->applied_hash, sl.hash, sizeof f->applied_hash);
    if (atomic_load(&f->leader_seq) < sl.seq)
        atomic_store(&f->leader_seq, (long long)sl.seq);
    atomic_store(&f->phase, FL_RUNNING);
    /* it holds what the leader had when it opened the snapshot, which was
     * after the request left */
    contact(f, time_now_ms(), started);
    if (f->s != NULL)
        srv_changed(f->s);
    return AI_OK;
}

/* The batch asked for: halved after a fetch that failed (down to one
 * change, 1 KiB), doubled back after four good ones that each came within
 * a quarter of the fetch timeout, so a link that moves bytes at all makes
 * progress. */
static void batch_failed(ai_follower *f)
{
    f->batch_good = 0;
    if (f->batch_limit > 1)
        f->batch_limit /= 2;
    if (f->batch_bytes > FL_BATCH_BYTES_MIN)
        f->batch_bytes /= 2;
}

static void batch_worked(ai_follower *f, int64_t took_ms)
{
    /* grown only when batches come quickly: a size that barely fits the
     * timeout would fail again once doubled */
    if (took_ms > f->fetch_ms / 4) {
        f->batch_good = 0;
        return;
    }
    if (++f->batch_good < 4)
        return;
    f->batch_good = 0;
    if (f->batch_limit < FL_BATCH_LIMIT)
        f->batch_limit *= 2;
    if (f->batch_bytes < FL_BATCH_BYTES)
        f->batch_bytes *= 2;
    if (f->batch_limit > FL_BATCH_LIMIT)
        f->batch_limit = FL_BATCH_LIMIT;
    if (f->batch_bytes > FL_BATCH_BYTES)
        f->batch_bytes = FL_BATCH_BYTES;
}

/* The leader's changelog is not the one this replica followed: a home
 * replaced at its URL (another leader id), or one restored or edited
 * (the hash chain parted). Only a snapshot makes the replica right: true,
 * with the reason set as the last error. */
static bool history_parted(ai_follower *f, fl_feed *feed, int64_t since,
                           const char *have_id)
{
    const char *lid = feed->leader_id;
    char msg[AI_ERR_MSG_MAX + 64];
    ai_err why;

    if (lid != NULL && have_id[0] != '\0' && strcmp(have_id, lid) != 0) {
        fl_set_error(f, "the leader's changelog changed (another home at its "
                        "URL): reloading the snapshot");
        return true;
    }
    if (!fl_feed_chain(feed, since, f->applied_hash, &why)) {
        snprintf(msg, sizeof msg, "%s: reloading the snapshot", why.msg);
        fl_set_error(f, msg);
        return true;
    }
    return false;
}

ai_code fl_sync_once(ai_follower *f, int wait, bool *more, ai_err *err)
{
    char path[256], *body = NULL;
    size_t len = 0;
    long status = 0;
    long long since = atomic_load(&f->applied);
    char have_id[STORE_LEADER_ID_LEN + 1];
    int64_t sent;
    fl_feed feed;
    ai_code rc;
    int n;

    ai_err_clear(err);
    *more = false;
    atomic_fetch_add(&f->syncs, 1);
    if (since == 0)
        return load_snapshot(f, err);
    n = snprintf(path, sizeof path,
                 "/v1/replication/changes?since=%lld&wait=%d&limit=%ld"
                 "&maxBytes=%ld",
                 since, wait, f->batch_limit, f->batch_bytes);
    if (f->applied_hash[0] != '\0')
        snprintf(path + n, sizeof path - (size_t)n, "&hash=%s",
                 f->applied_hash);
    sent = time_now_ms();
    if ((rc = upstream_call(f->up, "GET", path, NULL,
                            wait > 0 ? (long)wait * 1000 + POLL_GRACE_MS
                                     : f->fetch_ms,
                            FEED_MAX, &status, &body, &len, err)) != AI_OK) {
        batch_failed(f);
        return rc;
    }
    if (status == 410) { /* behind the retained log, ahead of it, or on
                            another history */
        char text[200];
        upstream_error_text(body, status, text, sizeof text);
        wipe_free(body, len);
        {
            char msg[sizeof text + 64];
            snprintf(msg, sizeof msg, "%s: reloading the snapshot", text);
            fl_set_error(f, msg);
        }
        return load_snapshot(f, err);
    }
    if (status != 200)
        return answer_error("change feed", status, body, len, err);
    rc = fl_feed_parse(body, len, &feed, err);
    wipe_free(body, len); /* it may hold secrets */
    if (rc != AI_OK)
        return rc;
    if ((rc = store_replica_leader_id(f->st, have_id, err)) != AI_OK ||
        (feed.leader_id != NULL && have_id[0] == '\0' &&
         (rc = store_set_replica_leader_id(f->st, feed.leader_id, err)) !=
             AI_OK)) {
        fl_feed_free(&feed);
        return rc;
    }
    if (history_parted(f, &feed, since, have_id)) {
        fl_feed_free(&feed);
        return load_snapshot(f, err);
    }
    atomic_store(&f->leader_seq, (long long)feed.leader_seq);
    if (json_array_size(feed.changes) > 0) {
        if ((rc = fl_open_changes(f->tkey, feed.changes, err)) != AI_OK ||
            (rc = store_apply_changes(f->st, feed.changes, feed.last_seq,
                                      feed.last_hash, time_now_ms(), err)) !=
                AI_OK) {
            fl_feed_free(&feed);
            return rc;
        }
        atomic_store(&f->applied, (long long)feed.last_seq);
        memcpy(f->applied_hash, feed.last_hash, sizeof f->applied_hash);
        batch_worked(f, time_now_ms() - sent);
        if (f->cfg.progress != NULL) {
            ai_follower_progress p = {.applied_seq = feed.last_seq,
                                      .leader_seq = feed.leader_seq};
            f->cfg.progress(f->cfg.progress_ud, &p);
        }
        if (f->s != NULL)
            srv_changed(f->s);
    }
    *more = feed.more;
    fl_feed_free(&feed);
    /* Nothing more: the replica holds all the leader had committed before
     * the request left (the leader read its log after that; when it
     * answered is not known here: the answer may have waited in a socket
     * of a stopped process). More to come: not fresh yet, however recent
     * the contact (after a gap, agents stay refused until the replica has
     * caught up, not after the first batch). */
    contact(f, time_now_ms(), *more ? 0 : sent);
    return AI_OK;
}

/* Sleep up to ms, or until stop. */
static void nap(ai_follower *f, int64_t ms)
{
    struct timespec ts;

    time_deadline(CLOCK_REALTIME, ms, &ts);
    pthread_mutex_lock(&f->lock);
    if (!atomic_load(&f->stop))
        pthread_cond_timedwait(&f->wake, &f->lock, &ts);
    pthread_mutex_unlock(&f->lock);
}

void *fl_loop(void *arg)
{
    ai_follower *f = arg;
    int64_t backoff = 0;
    unsigned seed = (unsigned)time_now_ms();
    bool more = true; /* the first call asks without waiting */
    ai_err err;

    while (!atomic_load(&f->stop)) {
        int wait = more ? 0 : f->cfg.long_poll_s;
        if (fl_sync_once(f, wait, &more, &err) == AI_OK) {
            backoff = 0;
            fl_set_error(f, "");
            continue;
        }
        if (atomic_load(&f->stop))
            break;
        atomic_fetch_add(&f->failures, 1);
        fl_sync_failed(f, &err);
        /* the next try asks without waiting: a fetch that failed may
         * have had a batch to bring (a slow link), and a held poll would
         * give it the long-poll's time rather than the fetch's */
        more = true;
        /* exponential, with jitter, up to a few seconds (or the sync
         * interval when shorter): back within seconds of the leader */
        backoff = backoff == 0 ? BACKOFF_FIRST_MS : backoff * 2;
        if (backoff > BACKOFF_MAX_MS)
            backoff = BACKOFF_MAX_MS;
        if (backoff > f->cfg.sync_interval_ms)
            backoff = f->cfg.sync_interval_ms;
        nap(f, backoff / 2 + (int64_t)(rand_r(&seed) % (unsigned)(backoff / 2 + 1)));
    }
    return NULL;
}
