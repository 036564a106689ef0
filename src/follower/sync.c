/* sync.c - the follower's replication: load the snapshot, then follow the
 * change feed with long-polls; each batch is applied in one transaction
 * together with the applied seq (store_apply_changes), so a kill at any
 * instant leaves a replica that resumes where it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "follower/follower.h"

#define SNAPSHOT_TIMEOUT_MS 600000L
#define FEED_MAX ((size_t)256 << 20)
#define FEED_LIMIT 1000

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

static void contact(ai_follower *f, int64_t now)
{
    ai_err err;

    atomic_store(&f->last_contact, now);
    /* For `agent-iam status` on this home and for restarts. */
    if (store_follower_meta_set(f->st, f->leader_url, now, &err) != AI_OK)
        fl_set_error(f, err.msg);
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

    if (atomic_load(&f->phase) != FL_RUNNING)
        atomic_store(&f->phase, FL_INITIAL_SYNC);
    fl_snap_init(&sl, f->st, srv_now_ms(), err);
    sl.tkey = f->tkey;
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
    if (atomic_load(&f->leader_seq) < sl.seq)
        atomic_store(&f->leader_seq, (long long)sl.seq);
    atomic_store(&f->phase, FL_RUNNING);
    contact(f, srv_now_ms());
    if (f->s != NULL)
        srv_changed(f->s);
    return AI_OK;
}

ai_code fl_sync_once(ai_follower *f, int wait, bool *more, ai_err *err)
{
    char path[128], *body = NULL;
    size_t len = 0;
    long status = 0;
    long long since = atomic_load(&f->applied);
    fl_feed feed;
    ai_code rc;

    ai_err_clear(err);
    *more = false;
    atomic_fetch_add(&f->syncs, 1);
    if (since == 0)
        return load_snapshot(f, err);
    snprintf(path, sizeof path,
             "/v1/replication/changes?since=%lld&wait=%d&limit=%d", since,
             wait, FEED_LIMIT);
    if ((rc = upstream_call(f->up, "GET", path, NULL,
                            (long)wait * 1000 + 15000, FEED_MAX, &status,
                            &body, &len, err)) != AI_OK)
        return rc;
    if (status == 410) { /* behind the retained log, or ahead of it */
        wipe_free(body, len);
        fl_set_error(f, "behind the leader's retained log: reloading the "
                        "snapshot");
        return load_snapshot(f, err);
    }
    if (status != 200)
        return answer_error("change feed", status, body, len, err);
    rc = fl_feed_parse(body, len, &feed, err);
    wipe_free(body, len); /* it may hold secrets */
    if (rc != AI_OK)
        return rc;
    {
        /* Another changelog at the same URL (a home replaced or restored):
         * the replica's history is not the leader's; start over. */
        const char *lid = feed.leader_id;
        char have[STORE_LEADER_ID_LEN + 1];
        if (lid != NULL &&
            store_replica_leader_id(f->st, have, err) == AI_OK &&
            have[0] != '\0' && strcmp(have, lid) != 0) {
            fl_feed_free(&feed);
            fl_set_error(f, "the leader's changelog changed (another home "
                            "at its URL): reloading the snapshot");
            return load_snapshot(f, err);
        }
        if (lid != NULL && have[0] == '\0' &&
            store_set_replica_leader_id(f->st, lid, err) != AI_OK) {
            fl_feed_free(&feed);
            return err->code;
        }
    }
    atomic_store(&f->leader_seq, (long long)feed.leader_seq);
    if (json_array_size(feed.changes) > 0) {
        if ((rc = fl_open_changes(f->tkey, feed.changes, err)) != AI_OK ||
            (rc = store_apply_changes(f->st, feed.changes, feed.last_seq,
                                      srv_now_ms(), err)) != AI_OK) {
            fl_feed_free(&feed);
            return rc;
        }
        atomic_store(&f->applied, (long long)feed.last_seq);
        if (f->s != NULL)
            srv_changed(f->s);
    }
    *more = feed.more;
    fl_feed_free(&feed);
    contact(f, srv_now_ms());
    return AI_OK;
}

/* Sleep up to ms, or until stop. */
static void nap(ai_follower *f, int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    if (!atomic_load(&f->stop))
        pthread_cond_timedwait(&f->wake, &f->lock, &ts);
    pthread_mutex_unlock(&f->lock);
}

void *fl_loop(void *arg)
{
    ai_follower *f = arg;
    int64_t backoff = 0;
    unsigned seed = (unsigned)srv_now_ms();
    bool more = false;
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
        fl_set_error(f, err.msg);
        more = false;
        /* exponential, with jitter, up to the sync interval */
        backoff = backoff == 0 ? 500 : backoff * 2;
        if (backoff > f->cfg.sync_interval_ms)
            backoff = f->cfg.sync_interval_ms;
        nap(f, backoff / 2 + (int64_t)(rand_r(&seed) % (unsigned)(backoff / 2 + 1)));
    }
    return NULL;
}
