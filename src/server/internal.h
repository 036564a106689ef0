/*
 * internal.h - what the files of src/server share and no other module
 * sees (private to src/server, as scripts/lint-layers.py checks): the
 * server itself (struct srv), a request's state beyond srv_req
 * (req_priv), and the functions that pass between the files:
 *
 *   server.c   the daemon: start (TLS, thread pool, listener, watcher)
 *              and stop (drain), and the accessors of server.h
 *   request.c  a request's path through libmicrohttpd: refusals,
 *              routing, the body, the handler, long-poll suspension,
 *              completion
 *   auth.c     who is calling: bearer, agent token, follower, admin and
 *              metrics credentials
 *   reply.c    the reply a handler fills and its hand-over to MHD, and
 *              the helpers handlers read a request with
 *   watch.c    following the home's commits: the watcher thread, the
 *              generation, each worker's views (srv_sync), long-polls
 *   log.c      the access log and libmicrohttpd's own messages
 */
#ifndef AI_SERVER_INTERNAL_H
#define AI_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>
#include <openssl/sha.h>

#include "core/core.h"
#include "server/conns.h"
#include "server/listener.h"
#include "server/ratelimit.h"
#include "server/server.h"
#include "server/storage.h"

/* A suspended long-poll: on s->waiters, under s->lock (watch.c). */
typedef struct waiter {
    srv_req *rq;
    struct waiter *next;
} waiter;

struct srv {
    srv_config cfg;
    char home[4096];      /* cfg.home points here: the caller's may go */
    struct MHD_Daemon *d;
    srv_listener *listener; /* the listening socket: ours, not MHD's */
    uint16_t port;
    pthread_key_t key;
    pthread_mutex_t lock; /* threads, waiters */
    srv_thread *threads;
    waiter *waiters;
    atomic_uint_fast64_t gen;
    atomic_int active;    /* requests between first call and completion */
    atomic_bool draining;
    pthread_t watcher;
    pthread_mutex_t wlock; /* watcher sleep */
    pthread_cond_t wcond;
    bool wstop, wstarted;
    store *wst;           /* the watcher's own handle */
    int64_t data_version;
    srv_metrics *metrics;
    ratelimit *rl;        /* per-agent writes; NULL: no limit */
    srv_storage *storage; /* the disk: full or not, retention */
    srv_conns *conns;     /* deadlines of the open connections */
    unsigned nthreads;    /* worker threads */
    size_t cache_cap;     /* tokens in each thread's verified-token cache */
    pthread_mutex_t loglock; /* the access log buffer */
    char logbuf[16384];
    size_t loglen;
    bool has_follower, has_admin, has_metrics;
    unsigned char follower_hash[SHA256_DIGEST_LENGTH];
    unsigned char follower_key[32]; /* the shared credential's transport */
    unsigned char admin_hash[SHA256_DIGEST_LENGTH];
    unsigned char metrics_hash[SHA256_DIGEST_LENGTH];
};

/* Request state beyond what handlers see. */
typedef struct req_priv {
    srv_req rq;            /* first: handlers get &priv->rq */
    ai_buf body;           /* NUL-terminated once a byte came */
    size_t dropped;        /* body bytes read and dropped after too_large */
    bool too_large, answered, resumed;
    bool started;          /* srv_on_request ran for this request */
    bool close;            /* answer with Connection: close */
    bool bad_target;       /* a control byte in the raw request target */
    uint64_t gen_seen;     /* the generation when the handler last ran */
    char allow[48];        /* 405: the methods of the path */
    int64_t t0_ns;
    unsigned route_idx;
    char path[128];        /* sanitized, for the log */
} req_priv;

/* ---- request.c: libmicrohttpd's callbacks (cls is the srv) ------------ */

/* MHD_OPTION_URI_LOG_CALLBACK: the request's req_priv, made from the raw
 * target (NULL on out of memory: srv_on_request then refuses it). */
void *srv_on_target(void *cls, const char *uri, struct MHD_Connection *c);
/* The access handler: refusals, routing, the body, the handler and its
 * long-poll suspension, the reply. */
enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls);
/* MHD_OPTION_NOTIFY_COMPLETED: metrics, the log line, and the request's
 * state freed (its body and reply wiped). */
void srv_on_completed(void *cls, struct MHD_Connection *conn,
                      void **con_cls, enum MHD_RequestTerminationCode toe);

/* ---- auth.c ----------------------------------------------------------- */

/* out = SHA-256 of the n bytes of s: what the server keeps of a secret. */
void srv_hash_secret(const char *s, size_t n, unsigned char out[32]);
/* Check rq's credential against its route's srv_auth; for an agent, fill
 * rq->token, rq->bearer and rq->subject; for a follower, rq->follower and
 * rq->fol. False after replying (401, 403, 404, 503...). Worker thread,
 * rq->th set. */
bool srv_authenticate(srv *s, srv_req *rq);

/* ---- reply.c ---------------------------------------------------------- */

/* Queue rq's reply (or its stream) on the connection, with the headers
 * every reply carries; MHD owns the body from here. MHD_NO when it could
 * not (MHD then closes the connection). */
enum MHD_Result srv_send_reply(srv *s, req_priv *p);

/* ---- watch.c ---------------------------------------------------------- */

/* Resume every waiting long-poll (all) or those whose deadline is past
 * now; their handlers run again on their workers. Any thread. */
void srv_resume_waiters(srv *s, bool all, int64_t now);
/* The watcher thread's body (arg is the srv): runs until s->wstop. */
void *srv_watch(void *arg);
/* The calling worker's state, made (store, broker, token cache) on its
 * first request; NULL with err when it cannot be. Worker thread. */
srv_thread *srv_thread_state(srv *s, ai_err *err);

/* ---- log.c ------------------------------------------------------------ */

/* Buffer rq's access log line (written when the buffer fills, or by
 * srv_log_flush); nothing without an access log. Any thread. */
void srv_log_line(srv *s, req_priv *p, int status, int64_t micros);
/* Write out what the access log buffer holds. Any thread. */
void srv_log_flush(srv *s);
/* MHD_OPTION_EXTERNAL_LOGGER: libmicrohttpd's messages to stderr, each at
 * most once per 10 s with the count of those held back. */
void srv_mhd_log(void *cls, const char *fmt, va_list ap);

#endif /* AI_SERVER_INTERNAL_H */
