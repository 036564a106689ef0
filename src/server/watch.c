/* watch.c - following the home's commits: the watcher thread, the
 * server's generation, each worker's views brought up to it (srv_sync),
 * and the long-polls that wait for the next change.
 *
 * THREADS: the watcher (started by srv_start) polls the home's SQLite
 * data_version every SRV_WATCH_MS on a store handle of its own; when
 * another connection committed, it syncs that handle, bumps the
 * generation and resumes the long-polls. It also runs the role's tick,
 * the disk's upkeep, the connection deadlines and the access log's flush.
 * A worker re-syncs its views only when the generation moved. A waiting
 * long-poll is a suspended connection on s->waiters (under s->lock),
 * resumed by a change or by its deadline.
 *
 * DESIGN: one wake-up per commit. Only the watcher resumes waiters for a
 * change, once per data_version move it sees: a commit of this process
 * (the admin API, a follower's batch) and one of another process on the
 * same home (the CLI) take the same path, within SRV_WATCH_MS, so a
 * long-poll answered for a commit and asked again is not woken a second
 * time by the same commit. A writer of this process still bumps the
 * generation itself before it replies (srv_changed), so the next request
 * on any worker reads its write. It does not wake the watcher early: the
 * watcher then reads no more often than every SRV_WATCH_MS, whatever the
 * rate of writes, rather than right after each commit, as the writers'
 * checkpoints run (docs/decisions.md). */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "core/core.h"
#include "server/conns.h"
#include "server/internal.h"
#include "server/server.h"
#include "server/storage.h"

/* ---- the generation and the watcher ----------------------------------- */

uint64_t srv_generation(srv *s)
{
    return atomic_load(&s->gen);
}

void srv_changed(srv *s)
{
    /* The workers' views: a request after the writer's reply re-syncs.
     * The long-polls: the watcher resumes them when it sees the commit. */
    atomic_fetch_add(&s->gen, 1);
}

void *srv_watch(void *arg)
{
    srv *s = arg;
    ai_err err;

    pthread_mutex_lock(&s->wlock);
    while (!s->wstop) {
        struct timespec ts;
        int64_t dv = 0, now;
        time_deadline(CLOCK_REALTIME, SRV_WATCH_MS, &ts);
        pthread_cond_timedwait(&s->wcond, &s->wlock, &ts);
        if (s->wstop)
            break;
        pthread_mutex_unlock(&s->wlock);
        now = time_now_ms();
        if (store_data_version(s->wst, &dv, &err) == AI_OK &&
            dv != s->data_version) {
            s->data_version = dv;
            /* The watcher's own views serve /v1/status and metrics. */
            (void)store_sync(s->wst, &err);
            /* the generation before the wake-up: a long-poll about to
             * suspend sees it moved and looks again (request.c) */
            atomic_fetch_add(&s->gen, 1);
            srv_resume_waiters(s, true, 0);
        } else {
            srv_resume_waiters(s, atomic_load(&s->draining), now);
        }
        if (s->cfg.role != NULL && s->cfg.role->tick != NULL)
            s->cfg.role->tick(s->cfg.app, s, s->wst, now);
        storage_tick(s->storage, s->wst, now);
        (void)conns_sweep(s->conns, time_mono_ns() / 1000000);
        srv_log_flush(s);
        pthread_mutex_lock(&s->wlock);
    }
    pthread_mutex_unlock(&s->wlock);
    return NULL;
}

store *srv_watch_store(srv *s)
{
    return s->wst;
}

/* ---- waiters (long-poll) ---------------------------------------------- */

/* Resume every waiter (all) or those whose deadline passed. */
void srv_resume_waiters(srv *s, bool all, int64_t now)
{
    waiter **pp, *w;

    pthread_mutex_lock(&s->lock);
    for (pp = &s->waiters; (w = *pp) != NULL;) {
        if (all || w->rq->deadline <= now) {
            *pp = w->next;
            ((req_priv *)w->rq)->resumed = true;
            MHD_resume_connection(w->rq->conn);
            ai_free(w);
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

void srv_suspend(srv_req *rq, int64_t deadline_ms)
{
    rq->suspended = true;
    rq->deadline = deadline_ms;
}

/* ---- per-thread state ------------------------------------------------- */

srv_thread *srv_thread_state(srv *s, ai_err *err)
{
    srv_thread *th = pthread_getspecific(s->key);
    uint64_t gen;
    ai_code rc;

    if (th != NULL)
        return th;
    /* The generation before the views load: a commit that lands while
     * they load bumps it past this, and the next request syncs again. */
    gen = atomic_load(&s->gen);
    if ((th = ai_calloc(1, sizeof *th)) == NULL) {
        ai_err_set(err, AI_ENOMEM, "out of memory");
        return NULL;
    }
    if ((rc = store_open(s->cfg.home, false, &th->st, err)) != AI_OK ||
        (rc = broker_wrap(th->st, &th->broker, err)) != AI_OK ||
        (th->cache = ai_token_cache_new(s->cache_cap)) == NULL ||
        (rc = store_sync(th->st, err)) != AI_OK) {
        if (rc == AI_OK)
            ai_err_set(err, AI_ENOMEM, "out of memory");
        ai_broker_close(th->broker);
        ai_token_cache_free(th->cache);
        store_close(th->st);
        ai_free(th);
        return NULL;
    }
    broker_server_mode(th->broker, th->cache);
    (void)ai_broker_set_actor(th->broker,
                              s->cfg.role ? s->cfg.role->name : "server", err);
    th->gen = gen;
    if (s->cfg.role != NULL && s->cfg.role->thread_init != NULL)
        s->cfg.role->thread_init(s->cfg.app, th);
    pthread_setspecific(s->key, th);
    pthread_mutex_lock(&s->lock);
    th->next = s->threads;
    s->threads = th;
    pthread_mutex_unlock(&s->lock);
    return th;
}

ai_code srv_sync(srv_req *rq, ai_err *err)
{
    uint64_t g = atomic_load(&rq->s->gen);
    ai_code rc;

    ai_err_clear(err);
    if (rq->th->gen == g)
        return AI_OK;
    if ((rc = store_sync(rq->th->st, err)) == AI_OK)
        rq->th->gen = g;
    return rc;
}
