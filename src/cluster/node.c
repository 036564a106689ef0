/* node.c - a voter's libraft node on its own libuv thread (cluster.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "cluster/codec.h"
#include "cluster/config.h"
#include "cluster/fsm.h"
#include "cluster/transport.h"
#include "core/core.h"

#define TICK_MS 5
#define MEMBER_ADD 1
#define MEMBER_REMOVE 2
#define CONF_REREAD_MS 1000
#define SNAPSHOT_EVERY 10000 /* entries between snapshots, by default */

/* One submission, shared by the waiting writer and the loop thread: the
 * last of the two to let go frees it (refs, under the node's mutex). */
typedef struct sub {
    struct raft_apply apply;
    struct raft_transfer transfer;
    struct raft_change change, promote;
    bool is_transfer;   /* a leadership transfer, not an entry */
    int member;         /* 0, or MEMBER_ADD / MEMBER_REMOVE */
    uint64_t to;        /* the voter concerned (transfer: 0 libraft picks) */
    ai_cluster *c;
    unsigned char *entry;
    size_t len;
    int refs;
    bool done;
    ai_code code;
    char msg[AI_ERR_MSG_MAX];
    cluster_result res;
    pthread_cond_t cv;
    struct sub *next;
} sub;

struct ai_cluster {
    cluster_config conf;
    char cert[CLUSTER_PATH_MAX], key[CLUSTER_PATH_MAX];
    cluster_node self;    /* this voter (a copy: conf may be read again) */
    char file[CLUSTER_PATH_MAX]; /* the cluster file */
    int64_t conf_read_ms; /* when conf was last read (loop thread) */
    unsigned election_ms, heartbeat_ms;
    char dir[CLUSTER_PATH_MAX + 8];
    ai_broker *b; /* the loop thread's: the FSM applies through it */
    store *snap_st; /* the snapshot's own handle (loop thread) */
    unsigned snapshot_every;
    cluster_fsm fsm;

    /* the loop thread's own */
    uv_loop_t loop;
    uv_async_t wake, halt;
    uv_timer_t tick;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft raft;
    struct raft_fsm rfsm;
    struct raft_barrier barrier;
    bool apply_failed; /* an entry could not be applied: none after it */
    bool join;         /* a node added to a running group: no bootstrap */
    bool barrier_pending, loop_ready, transport_ready, io_ready, raft_ready;
    pthread_t thread;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t started;
    int start_state; /* 0 starting, 1 running, -1 failed */
    char start_msg[AI_ERR_MSG_MAX];
    sub *qhead, *qtail;
    bool stopping;
    cluster_status st;
};

const double cluster_latency_le[CLUSTER_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

const char *cluster_role_name(cluster_role r)
{
    static const char *const names[] = {"unavailable", "follower",
                                        "candidate", "leader"};
    return r <= CLUSTER_LEADER ? names[r] : "unavailable";
}

/* ---- submissions ------------------------------------------------------- */

static void sub_release(sub *s)
{
    if (--s->refs > 0)
        return;
    pthread_cond_destroy(&s->cv);
    ai_free(s->entry);
    ai_free(s);
}

/* On the loop thread: the writer's answer. */
static void sub_complete(ai_cluster *c, sub *s, ai_code code, const char *msg,
                         const cluster_result *res)
{
    pthread_mutex_lock(&c->mu);
    s->done = true;
    s->code = code;
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "");
    if (res != NULL)
        s->res = *res;
    pthread_cond_signal(&s->cv);
    sub_release(s);
    pthread_mutex_unlock(&c->mu);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    sub *s = (sub *)((char *)req - offsetof(sub, apply));
    char msg[AI_ERR_MSG_MAX];

    if (status == 0 && result != NULL) {
        sub_complete(s->c, s, AI_OK, NULL, result);
        return;
    }
    snprintf(msg, sizeof msg, "the write was not applied here (%s): retry "
                              "it with the same request id",
             raft_strerror(status));
    sub_complete(s->c, s, AI_EUNAVAILABLE, msg, NULL);
}

static void transfer_cb(struct raft_transfer *req)
{
    sub *s = req->data;
    raft_id lid = 0;
    const char *addr = NULL;
    char msg[64];

    raft_leader(&s->c->raft, &lid, &addr);
    if (lid != 0 && lid != s->c->self.id &&
        (s->to == 0 || lid == s->to)) {
        cluster_result res;
        memset(&res, 0, sizeof res);
        res.leader = lid;
        sub_complete(s->c, s, AI_OK, NULL, &res);
        return;
    }
    snprintf(msg, sizeof msg, "the leadership did not move (leader %llu)",
             (unsigned long long)lid);
    sub_complete(s->c, s, AI_EUNAVAILABLE, msg, NULL);
}

static void member_done(struct raft_change *req, int status)
{
    sub *s = req->data;
    char msg[AI_ERR_MSG_MAX];

    if (status == 0) {
        cluster_result res;
        memset(&res, 0, sizeof res);
        sub_complete(s->c, s, AI_OK, NULL, &res);
        return;
    }
    snprintf(msg, sizeof msg, "the group did not change: %s",
             raft_strerror(status));
    sub_complete(s->c, s, AI_EUNAVAILABLE, msg, NULL);
}

/* Added as a spare: now a voter, once its log has caught up (libraft
 * runs the catch-up rounds before the change). */
static void added(struct raft_change *req, int status)
{
    sub *s = req->data;
    int rv;

    if (status != 0) {
        member_done(req, status);
        return;
    }
    s->promote.data = s;
    if ((rv = raft_assign(&s->c->raft, &s->promote, s->to, RAFT_VOTER,
                          member_done)) != 0)
        member_done(&s->promote, rv);
}

/* Read the cluster file again (the loop thread): a node added to it since
 * the start, and the URLs of all. */
static void conf_reread(ai_cluster *c)
{
    cluster_config fresh;
    ai_err err;

    c->conf_read_ms = time_now_ms();
    if (cluster_config_load(c->file, &fresh, &err) != AI_OK) {
        fprintf(stderr, "agent-iam: cluster: %s\n", err.msg);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->conf = fresh;
    pthread_mutex_unlock(&c->mu);
}

/* A membership change of the group (the leader, on the loop thread). */
static void member_start(ai_cluster *c, sub *s)
{
    const cluster_node *n;
    int rv;

    s->change.data = s;
    if (s->member == MEMBER_REMOVE) {
        if ((rv = raft_remove(&c->raft, &s->change, s->to, member_done)) !=
            0)
            sub_complete(c, s, rv == RAFT_BADID || rv == RAFT_NOTFOUND
                                   ? AI_ENOTFOUND
                                   : AI_EUNAVAILABLE,
                         raft_errmsg(&c->raft), NULL);
        return;
    }
    conf_reread(c);
    if ((n = cluster_config_node(&c->conf, s->to)) == NULL) {
        sub_complete(c, s, AI_EINVAL,
                     "the node is not in the cluster file: add it there "
                     "(id, raft, url) on every voter first",
                     NULL);
        return;
    }
    if ((rv = raft_add(&c->raft, &s->change, s->to, n->raft, added)) != 0)
        sub_complete(c, s, rv == RAFT_DUPLICATEID ? AI_EINVAL
                                                  : AI_EUNAVAILABLE,
                     raft_errmsg(&c->raft), NULL);
}

static void wake_cb(uv_async_t *h)
{
    ai_cluster *c = h->data;
    sub *s, *next;

    pthread_mutex_lock(&c->mu);
    s = c->qhead;
    c->qhead = c->qtail = NULL;
    pthread_mutex_unlock(&c->mu);
    for (; s != NULL; s = next) {
        struct raft_buffer buf;
        int rv;

        next = s->next;
        if (raft_state(&c->raft) != RAFT_LEADER || !c->st.ready) {
            sub_complete(c, s, AI_EUNAVAILABLE, "not the leader", NULL);
            continue;
        }
        if (s->member != 0) {
            member_start(c, s);
            continue;
        }
        if (s->is_transfer) {
            s->transfer.data = s;
            if ((rv = raft_transfer(&c->raft, &s->transfer, s->to,
                                    transfer_cb)) != 0)
                sub_complete(c, s, rv == RAFT_BADID ? AI_EINVAL
                                                    : AI_EUNAVAILABLE,
                             rv == RAFT_BADID
                                 ? "no such voter to hand leadership to"
                                 : raft_strerror(rv),
                             NULL);
            continue;
        }
        buf.len = s->len;
        if ((buf.base = raft_malloc(s->len)) == NULL) {
            sub_complete(c, s, AI_ENOMEM, "out of memory", NULL);
            continue;
        }
        memcpy(buf.base, s->entry, s->len);
        s->apply.data = s;
        if ((rv = raft_apply(&c->raft, &s->apply, &buf, 1, apply_cb)) != 0) {
            raft_free(buf.base);
            sub_complete(c, s, AI_EUNAVAILABLE, raft_strerror(rv), NULL);
        }
    }
}

/* The leader's URL as last sampled; "" when it is this voter. */
static void fill_leader_url(ai_cluster *c, char url[CLUSTER_URL_MAX])
{
    pthread_mutex_lock(&c->mu);
    snprintf(url, CLUSTER_URL_MAX, "%s",
             c->st.leader_id != c->self.id ? c->st.leader_url : "");
    pthread_mutex_unlock(&c->mu);
}

/* Queue s for the loop thread and wait for its answer (timeout_ms). */
static ai_code submit_wait(ai_cluster *c, sub *s, int timeout_ms,
                           cluster_result *out,
                           char leader_url[CLUSTER_URL_MAX], ai_err *err)
{
    pthread_condattr_t ca;
    struct timespec until;
    int64_t t0;
    ai_code rc;

    s->c = c;
    s->refs = 2;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    time_deadline(CLOCK_MONOTONIC, timeout_ms, &until);
    t0 = time_mono_ns();
    pthread_mutex_lock(&c->mu);
    if (c->stopping || c->st.failed) {
        pthread_mutex_unlock(&c->mu);
        sub_release(s);
        sub_release(s);
        return ai_err_set(err, AI_EUNAVAILABLE, "this voter is stopping");
    }
    if (c->qtail != NULL)
        c->qtail->next = s;
    else
        c->qhead = s;
    c->qtail = s;
    /* under the mutex: the handles close only once stopping is set */
    uv_async_send(&c->wake);
    while (!s->done &&
           pthread_cond_timedwait(&s->cv, &c->mu, &until) != ETIMEDOUT)
        ;
    if (!s->done) {
        rc = ai_err_set(err, AI_EUNAVAILABLE,
                        "no answer within %d ms: the write may still apply; "
                        "retry it with the same request id",
                        timeout_ms);
    } else if (s->code != AI_OK) {
        rc = ai_err_set(err, s->code, "%s", s->msg);
    } else {
        double secs = (double)(time_mono_ns() - t0) / 1e9;
        *out = s->res;
        rc = AI_OK;
        if (!s->is_transfer && s->member == 0) {
            c->st.writes++;
            c->st.write_seconds += secs;
            for (size_t i = 0; i < CLUSTER_LATENCY_BUCKETS; i++)
                c->st.write_le[i] += secs <= cluster_latency_le[i];
        }
    }
    sub_release(s);
    pthread_mutex_unlock(&c->mu);
    if (rc == AI_EUNAVAILABLE)
        fill_leader_url(c, leader_url);
    return rc;
}

ai_code cluster_submit(ai_cluster *c, const broker_cmd *cmd,
                       const unsigned char req_id[CLUSTER_REQ_ID_BYTES],
                       int timeout_ms, cluster_result *out,
                       char leader_url[CLUSTER_URL_MAX], ai_err *err)
{
    sub *s;
    ai_code rc;

    ai_err_clear(err);
    memset(out, 0, sizeof *out);
    leader_url[0] = '\0';
    if ((s = ai_calloc(1, sizeof *s)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    /* sealing reads the master key only: safe beside the loop thread */
    if ((rc = cluster_encode(broker_store(c->b), req_id, cmd, &s->entry,
                             &s->len, err)) != AI_OK) {
        ai_free(s);
        return rc;
    }
    return submit_wait(c, s, timeout_ms, out, leader_url, err);
}

ai_code cluster_member(ai_cluster *c, bool add, uint64_t id,
                       char leader_url[CLUSTER_URL_MAX], ai_err *err)
{
    cluster_result res;
    sub *s;

    ai_err_clear(err);
    leader_url[0] = '\0';
    if (id == 0)
        return ai_err_set(err, AI_EINVAL, "a node's id is 1 or more");
    if ((s = ai_calloc(1, sizeof *s)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    s->member = add ? MEMBER_ADD : MEMBER_REMOVE;
    s->to = id;
    /* a new voter's catch-up rounds take some election timeouts */
    return submit_wait(c, s, (int)c->election_ms * 20 + 5000, &res,
                       leader_url, err);
}

ai_code cluster_transfer(ai_cluster *c, uint64_t to, uint64_t *leader,
                         char leader_url[CLUSTER_URL_MAX], ai_err *err)
{
    cluster_result res;
    sub *s;
    ai_code rc;

    ai_err_clear(err);
    *leader = 0;
    leader_url[0] = '\0';
    if ((s = ai_calloc(1, sizeof *s)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    s->is_transfer = true;
    s->to = to;
    /* libraft gives up after an election timeout */
    rc = submit_wait(c, s, (int)c->election_ms * 3 + 1000, &res, leader_url,
                     err);
    if (rc == AI_OK)
        *leader = res.leader;
    return rc;
}

/* ---- the state machine's callbacks ---------------------------------- */

static void request_halt(ai_cluster *c);

static int fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf,
                     void **result)
{
    ai_cluster *c = f->data;
    /* libraft counts an entry as applied once this returns: the entry
     * being applied is the one after the last applied */
    uint64_t index = raft_last_applied(&c->raft) + 1;
    ai_err err;

    *result = NULL;
    /* After a failure nothing more is applied: the home's index stays
     * where it was, and a restart applies from there. libraft is not told
     * (an error from here leaves it in a state it does not expect); it is
     * being closed. */
    if (c->apply_failed)
        return 0;
    if (cluster_fsm_apply(&c->fsm, index, buf->base, buf->len, &err) !=
        AI_OK) {
        /* never skip an entry: stop, and say why */
        fprintf(stderr,
                "agent-iam: cluster: cannot apply entry %llu: %s; this "
                "voter stops\n",
                (unsigned long long)index, err.msg);
        c->apply_failed = true;
        pthread_mutex_lock(&c->mu);
        c->st.failed = true;
        pthread_mutex_unlock(&c->mu);
        request_halt(c);
        return 0;
    }
    *result = &c->fsm.last;
    return 0;
}

/* Snapshots (libraft's fsm version 2): the home's whole database, copied
 * in one read transaction through a store handle of its own
 * (store_group_snapshot). libraft 0.15's libuv I/O has no asynchronous
 * work, so the copy runs on the loop thread: a home of 100,000
 * revocations takes some tens of ms, under a heartbeat interval. */
static int fsm_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[],
                        unsigned *n)
{
    ai_cluster *c = f->data;
    unsigned char *p = NULL;
    size_t len = 0;
    ai_err err;

    *bufs = NULL;
    *n = 0;
    if (store_group_snapshot(c->snap_st, &p, &len, &err) != AI_OK) {
        fprintf(stderr, "agent-iam: cluster: snapshot: %s\n", err.msg);
        return RAFT_IOERR;
    }
    if ((*bufs = raft_malloc(sizeof **bufs)) == NULL ||
        ((*bufs)[0].base = raft_malloc(len)) == NULL) {
        raft_free(*bufs);
        *bufs = NULL;
        ai_free(p);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, p, len);
    (*bufs)[0].len = len;
    *n = 1;
    ai_free(p);
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *f,
                                 struct raft_buffer *bufs[], unsigned *n)
{
    (void)f;
    for (unsigned i = 0; *bufs != NULL && i < *n; i++)
        raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n = 0;
    return 0;
}

/* A snapshot from the leader (a voter far behind, or new), or this
 * voter's own at its start (then not later than its home: nothing). */
static int fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
    ai_cluster *c = f->data;
    uint64_t applied = 0;
    ai_err err;

    if (store_group_restore(broker_store(c->b), buf->base, buf->len,
                            time_now_ms(), &applied, &err) != AI_OK) {
        fprintf(stderr, "agent-iam: cluster: restoring a snapshot: %s\n",
                err.msg);
        return RAFT_IOERR;
    }
    if (applied > c->fsm.applied)
        c->fsm.applied = applied;
    raft_free(buf->base);
    return 0;
}

/* ---- the loop thread -------------------------------------------------- */

static void barrier_cb(struct raft_barrier *req, int status)
{
    ai_cluster *c = req->data;

    c->barrier_pending = false;
    if (status == 0 && raft_state(&c->raft) == RAFT_LEADER) {
        pthread_mutex_lock(&c->mu);
        c->st.ready = true;
        c->st.elections++;
        pthread_mutex_unlock(&c->mu);
    }
}

static void tick_cb(uv_timer_t *t)
{
    ai_cluster *c = t->data;
    raft_id lid = 0;
    const char *laddr = NULL;
    int state = raft_state(&c->raft);
    size_t voters = 0;

    raft_leader(&c->raft, &lid, &laddr);
    /* a leader the file did not list at the start: its URL is in the file
     * now, or will be */
    if (lid != 0 && cluster_config_node(&c->conf, lid) == NULL &&
        time_now_ms() - c->conf_read_ms > CONF_REREAD_MS)
        conf_reread(c);
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        voters += c->raft.configuration.servers[i].role == RAFT_VOTER;
    pthread_mutex_lock(&c->mu);
    c->st.role = (cluster_role)state;
    c->st.leader_id = lid;
    c->st.term = c->raft.current_term;
    c->st.commit_index = c->raft.commit_index;
    c->st.applied_index = raft_last_applied(&c->raft);
    c->st.last_index = raft_last_index(&c->raft);
    c->st.voters = voters;
    {
        const cluster_node *n = cluster_config_node(&c->conf, lid);
        snprintf(c->st.leader_url, sizeof c->st.leader_url, "%s",
                 n ? n->url : "");
    }
    if (state != RAFT_LEADER)
        c->st.ready = false;
    pthread_mutex_unlock(&c->mu);
    /* a new leader serves once what came before it is applied */
    if (state == RAFT_LEADER && !c->st.ready && !c->barrier_pending) {
        c->barrier.data = c;
        if (raft_barrier(&c->raft, &c->barrier, barrier_cb) == 0)
            c->barrier_pending = true;
    }
}

static void closed_handle(uv_handle_t *h)
{
    (void)h;
}

static void close_rest(ai_cluster *c)
{
    if (c->io_ready)
        raft_uv_close(&c->io);
    if (c->transport_ready)
        cluster_transport_close(&c->transport);
    c->io_ready = c->transport_ready = false;
    if (!uv_is_closing((uv_handle_t *)&c->wake))
        uv_close((uv_handle_t *)&c->wake, closed_handle);
    if (!uv_is_closing((uv_handle_t *)&c->halt))
        uv_close((uv_handle_t *)&c->halt, closed_handle);
    if (!uv_is_closing((uv_handle_t *)&c->tick))
        uv_close((uv_handle_t *)&c->tick, closed_handle);
}

static void raft_closed(struct raft *r)
{
    close_rest(r->data);
}

static void halt_cb(uv_async_t *h)
{
    ai_cluster *c = h->data;
    sub *s, *next;

    uv_timer_stop(&c->tick);
    pthread_mutex_lock(&c->mu);
    s = c->qhead;
    c->qhead = c->qtail = NULL;
    pthread_mutex_unlock(&c->mu);
    for (; s != NULL; s = next) {
        next = s->next;
        sub_complete(c, s, AI_EUNAVAILABLE, "this voter is stopping", NULL);
    }
    if (c->raft_ready) {
        c->raft_ready = false;
        raft_close(&c->raft, raft_closed);
    } else {
        close_rest(c);
    }
}

/* Once: the halt handle is closed after it ran, and uv_async_send on a
 * closed handle is not allowed. */
static void request_halt(ai_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    if (!c->stopping)
        uv_async_send(&c->halt);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
}

/* A peer refused by the transport (its address and why). */
static void log_refusal(void *arg, const char *line)
{
    ai_cluster *c = arg;

    fprintf(stderr, "agent-iam: cluster node %llu: %s\n",
            (unsigned long long)c->self.id, line);
}

/* Everything libraft needs, on this thread; a message on failure. */
static int setup(ai_cluster *c, char *msg, size_t cap)
{
    struct raft_configuration conf;
    int rv;

    if ((rv = uv_loop_init(&c->loop)) != 0) {
        snprintf(msg, cap, "event loop: %s", uv_strerror(rv));
        return -1;
    }
    c->loop_ready = true;
    c->wake.data = c->halt.data = c->tick.data = c;
    uv_async_init(&c->loop, &c->wake, wake_cb);
    uv_async_init(&c->loop, &c->halt, halt_cb);
    uv_timer_init(&c->loop, &c->tick);
    {
        cluster_tls tls = {.cert_path = c->cert, .key_path = c->key,
                           .ca_path = c->conf.ca, .log = log_refusal,
                           .log_arg = c};
        ai_err err;
        if (cluster_transport_init(&c->transport, &c->loop, &tls, &err) !=
            AI_OK) {
            snprintf(msg, cap, "raft transport: %.200s", err.msg);
            return -1;
        }
    }
    c->transport_ready = true;
    if ((rv = raft_uv_init(&c->io, &c->loop, c->dir, &c->transport)) != 0) {
        snprintf(msg, cap, "raft storage in %.120s: %.100s", c->dir,
                 c->io.errmsg);
        return -1;
    }
    c->io_ready = true;
    c->rfsm = (struct raft_fsm){.version = 2, .data = c, .apply = fsm_apply,
                                .snapshot = fsm_snapshot,
                                .restore = fsm_restore,
                                .snapshot_finalize = fsm_snapshot_finalize};
    if ((rv = raft_init(&c->raft, &c->io, &c->rfsm, c->self.id,
                        c->self.raft)) != 0) {
        snprintf(msg, cap, "raft: %s", raft_errmsg(&c->raft));
        return -1;
    }
    c->raft.data = c;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < c->conf.n && rv == 0; i++)
        rv = raft_configuration_add(&conf, c->conf.nodes[i].id,
                                    c->conf.nodes[i].raft, RAFT_VOTER);
    /* a first start: the group is the file's (later starts keep theirs);
     * a node that joins a running group gets it from the leader */
    if (rv == 0 && !c->join &&
        (rv = raft_bootstrap(&c->raft, &conf)) == RAFT_CANTBOOTSTRAP)
        rv = 0;
    raft_configuration_close(&conf);
    if (rv != 0) {
        snprintf(msg, cap, "raft bootstrap: %s", raft_strerror(rv));
        c->raft_ready = true; /* closed through raft_close */
        return -1;
    }
    raft_set_election_timeout(&c->raft, c->election_ms);
    raft_set_heartbeat_timeout(&c->raft, c->heartbeat_ms);
    raft_set_pre_vote(&c->raft, true);
    raft_set_snapshot_threshold(&c->raft, c->snapshot_every);
    raft_set_snapshot_trailing(&c->raft, c->snapshot_every / 2);
    raft_set_install_snapshot_timeout(&c->raft, 5000);
    raft_uv_set_connect_retry_delay(&c->io, 100);
    c->raft_ready = true;
    if ((rv = raft_start(&c->raft)) != 0) {
        snprintf(msg, cap, "raft start: %s", raft_errmsg(&c->raft));
        return -1;
    }
    uv_timer_start(&c->tick, tick_cb, 0, TICK_MS);
    return 0;
}

static void *run(void *arg)
{
    ai_cluster *c = arg;
    char msg[AI_ERR_MSG_MAX] = "";
    sigset_t pipe;
    int rv;

    /* a peer gone mid-write is EPIPE for libraft, never a signal that
     * ends the process */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    rv = setup(c, msg, sizeof msg);

    pthread_mutex_lock(&c->mu);
    c->start_state = rv == 0 ? 1 : -1;
    snprintf(c->start_msg, sizeof c->start_msg, "%s", msg);
    pthread_cond_broadcast(&c->started);
    pthread_mutex_unlock(&c->mu);
    if (rv != 0) {
        if (!c->loop_ready)
            return NULL;
        if (c->raft_ready) {
            c->raft_ready = false;
            raft_close(&c->raft, raft_closed);
        } else {
            close_rest(c);
        }
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    return NULL;
}

/* ---- start and stop ---------------------------------------------------- */

/* A home that holds changes but never applied an entry has state from
 * outside the group: refused, it would diverge from the other voters. */
static ai_code home_is_the_groups(ai_cluster *c, ai_err *err)
{
    int64_t head = 0;
    ai_code rc;

    if ((rc = store_changelog_head(broker_store(c->b), &head, err)) != AI_OK)
        return rc;
    if (head > 0 && c->fsm.applied == 0)
        return ai_err_set(err, AI_EINVAL,
                          "the home %s holds %lld changes made outside this "
                          "leader group: a voter starts on an empty home "
                          "(with the group's master.key)",
                          store_home(broker_store(c->b)), (long long)head);
    return AI_OK;
}

ai_code cluster_start(const cluster_opts *o, ai_cluster **out, ai_err *err)
{
    ai_cluster *c;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    if ((c = ai_calloc(1, sizeof *c)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->started, NULL);
    if ((rc = cluster_config_load(o->file, &c->conf, err)) != AI_OK)
        goto fail;
    {
        const cluster_node *me = cluster_config_node(&c->conf, o->node_id);
        if (me == NULL) {
            rc = ai_err_set(err, AI_EINVAL, "node %llu is not in the cluster "
                                            "file %s",
                            (unsigned long long)o->node_id, o->file);
            goto fail;
        }
        c->self = *me;
    }
    if (strlen(o->file) >= sizeof c->file) {
        rc = ai_err_set(err, AI_EINVAL, "the cluster file's path is too long");
        goto fail;
    }
    memcpy(c->file, o->file, strlen(o->file) + 1);
    c->join = o->join;
    c->st.node_id = o->node_id;
    if (o->tls_cert == NULL || o->tls_key == NULL ||
        strlen(o->tls_cert) >= sizeof c->cert ||
        strlen(o->tls_key) >= sizeof c->key) {
        rc = ai_err_set(err, AI_EINVAL, "a voter needs its certificate and "
                                        "key (--tls-cert, --tls-key)");
        goto fail;
    }
    memcpy(c->cert, o->tls_cert, strlen(o->tls_cert) + 1);
    memcpy(c->key, o->tls_key, strlen(o->tls_key) + 1);
    c->election_ms = o->election_ms ? o->election_ms : 1000;
    c->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : c->election_ms / 10;
    c->snapshot_every = o->snapshot_every ? o->snapshot_every
                                          : SNAPSHOT_EVERY;
    if ((rc = ai_broker_open(o->home, &c->b, err)) != AI_OK ||
        (rc = store_open(store_home(broker_store(c->b)), false, &c->snap_st,
                         err)) != AI_OK ||
        (rc = cluster_fsm_open(&c->fsm, c->b, err)) != AI_OK ||
        (rc = home_is_the_groups(c, err)) != AI_OK)
        goto fail;
    snprintf(c->dir, sizeof c->dir, "%s/raft",
             store_home(broker_store(c->b)));
    if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
        rc = ai_err_set(err, AI_ESTORE, "cannot make %s: %s", c->dir,
                        strerror(errno));
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        rc = ai_err_set(err, AI_EINTERNAL, "cannot start the raft thread");
        goto fail;
    }
    pthread_mutex_lock(&c->mu);
    while (c->start_state == 0)
        pthread_cond_wait(&c->started, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (c->start_state < 0) {
        pthread_join(c->thread, NULL);
        rc = ai_err_set(err, AI_EINVAL, "cluster node %llu: %s",
                        (unsigned long long)o->node_id, c->start_msg);
        goto fail;
    }
    *out = c;
    return AI_OK;
fail:
    store_close(c->snap_st);
    ai_broker_close(c->b);
    pthread_cond_destroy(&c->started);
    pthread_mutex_destroy(&c->mu);
    ai_free(c);
    return rc;
}

void cluster_stop(ai_cluster *c)
{
    if (c == NULL)
        return;
    request_halt(c);
    pthread_join(c->thread, NULL);
    store_close(c->snap_st);
    ai_broker_close(c->b);
    pthread_cond_destroy(&c->started);
    pthread_mutex_destroy(&c->mu);
    ai_free(c);
}

void cluster_get_status(ai_cluster *c, cluster_status *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
