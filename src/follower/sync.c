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

#define SNAPSHOT_MAX ((size_t)2 << 30) /* 2 GiB */
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

const char *fl_state(ai_follower *f, int64_t now)
{
    int64_t last = atomic_load(&f->last_contact), age;

    switch (atomic_load(&f->phase)) {
    case FL_STARTING: return "starting";
    case FL_INITIAL_SYNC: return "initial_sync";
    default: break;
    }
    age = last > 0 ? now - last : INT64_MAX;
    if (age >= f->cfg.offline_ms)
        return "offline";
    if (age >= f->cfg.limited_ms)
        return "limited";
    if (age >= f->cfg.degraded_ms)
        return "degraded";
    return "connected";
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

/* Parse an answer body: strict JSON object, then wipe the text (it may
 * hold secrets). */
static json_t *parse(char *body, size_t len, ai_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);

    wipe_free(body, len);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        ai_err_set(err, AI_EINVAL, "leader sent malformed JSON: %s", je.text);
        return NULL;
    }
    return o;
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
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    json_t *snap;
    ai_code rc;

    atomic_store(&f->phase, atomic_load(&f->phase) == FL_RUNNING
                                ? FL_RUNNING
                                : FL_INITIAL_SYNC);
    if ((rc = upstream_call(f->up, "GET", "/v1/replication/snapshot", NULL,
                            SNAPSHOT_TIMEOUT_MS, SNAPSHOT_MAX, &status, &body,
                            &len, err)) != AI_OK)
        return rc;
    if (status != 200)
        return answer_error("snapshot", status, body, len, err);
    if ((snap = parse(body, len, err)) == NULL)
        return err->code;
    rc = store_apply_snapshot(f->st, snap, srv_now_ms(), err);
    if (rc == AI_OK) {
        json_int_t seq = json_integer_value(json_object_get(snap, "seq"));
        atomic_store(&f->applied, (long long)seq);
        if (atomic_load(&f->leader_seq) < seq)
            atomic_store(&f->leader_seq, (long long)seq);
        atomic_store(&f->phase, FL_RUNNING);
        contact(f, srv_now_ms());
        if (f->s != NULL)
            srv_changed(f->s);
    }
    json_decref(snap);
    return rc;
}

ai_code fl_sync_once(ai_follower *f, int wait, bool *more, ai_err *err)
{
    char path[128], *body = NULL;
    size_t len = 0;
    long status = 0;
    long long since = atomic_load(&f->applied);
    json_t *o, *changes;
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
    if (status == 410) { /* behind the retained log */
        wipe_free(body, len);
        fl_set_error(f, "behind the leader's retained log: reloading the "
                        "snapshot");
        return load_snapshot(f, err);
    }
    if (status != 200)
        return answer_error("change feed", status, body, len, err);
    if ((o = parse(body, len, err)) == NULL)
        return err->code;
    changes = json_object_get(o, "changes");
    if (!json_is_array(changes) ||
        !json_is_integer(json_object_get(o, "leaderSeq"))) {
        json_decref(o);
        return ai_err_set(err, AI_EINVAL, "leader sent a malformed feed");
    }
    atomic_store(&f->leader_seq,
                 (long long)json_integer_value(json_object_get(o, "leaderSeq")));
    if (json_array_size(changes) > 0) {
        json_t *last = json_array_get(changes, json_array_size(changes) - 1);
        json_int_t seq = json_integer_value(json_object_get(last, "seq"));
        if ((rc = store_apply_changes(f->st, changes, seq, srv_now_ms(),
                                      err)) != AI_OK) {
            json_decref(o);
            return rc;
        }
        atomic_store(&f->applied, (long long)seq);
        if (f->s != NULL)
            srv_changed(f->s);
    }
    *more = json_is_true(json_object_get(o, "more"));
    json_decref(o);
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
