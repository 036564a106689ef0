/* server.c - the libmicrohttpd daemon: TLS, the thread pool, request
 * bodies, routing, authentication, long-poll suspension, the watcher that
 * follows the home's commits, the access log and graceful shutdown. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/core.h"
#include "server/body.h"
#include "server/conns.h"
#include "server/listener.h"
#include "server/metrics.h"
#include "server/ratelimit.h"
#include "server/server.h"
#include "server/storage.h"

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
    char *body;
    size_t body_len, body_cap;
    size_t dropped;        /* body bytes read and dropped after too_large */
    bool too_large, answered, resumed;
    bool started;          /* on_request ran for this request */
    bool close;            /* answer with Connection: close */
    bool bad_target;       /* a control byte in the raw request target */
    uint64_t gen_seen;     /* the generation when the handler last ran */
    char allow[48];        /* 405: the methods of the path */
    int64_t t0_ns;
    unsigned route_idx;
    char path[128];        /* sanitized, for the log */
} req_priv;

static void log_flush(srv *s);

int64_t srv_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint16_t srv_port(const srv *s)
{
    return s->port;
}

srv_metrics *srv_get_metrics(srv *s)
{
    return s->metrics;
}

ratelimit *srv_get_ratelimit(srv *s)
{
    return s->rl;
}

srv_storage *srv_get_storage(srv *s)
{
    return s->storage;
}

bool srv_store_failed(srv *s, ai_code code, const char *msg)
{
    if (s == NULL || code != AI_ESTORAGE_FULL)
        return false;
    storage_failed(s->storage, msg);
    return true;
}

uint64_t srv_generation(srv *s)
{
    return atomic_load(&s->gen);
}

/* ---- waiters (long-poll) ---------------------------------------------- */

/* Resume every waiter (all) or those whose deadline passed. */
static void resume_waiters(srv *s, bool all, int64_t now)
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

void srv_changed(srv *s)
{
    atomic_fetch_add(&s->gen, 1);
    resume_waiters(s, true, 0);
}

void srv_suspend(srv_req *rq, int64_t deadline_ms)
{
    rq->suspended = true;
    rq->deadline = deadline_ms;
}

static void *watch(void *arg)
{
    srv *s = arg;
    ai_err err;

    pthread_mutex_lock(&s->wlock);
    while (!s->wstop) {
        struct timespec ts;
        int64_t dv = 0, now;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SRV_WATCH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wcond, &s->wlock, &ts);
        if (s->wstop)
            break;
        pthread_mutex_unlock(&s->wlock);
        now = srv_now_ms();
        if (store_data_version(s->wst, &dv, &err) == AI_OK &&
            dv != s->data_version) {
            s->data_version = dv;
            /* The watcher's own views serve /v1/status and metrics. */
            (void)store_sync(s->wst, &err);
            srv_changed(s);
        } else {
            resume_waiters(s, atomic_load(&s->draining), now);
        }
        if (s->cfg.role != NULL && s->cfg.role->tick != NULL)
            s->cfg.role->tick(s->cfg.app, s, s->wst, now);
        storage_tick(s->storage, s->wst, now);
        (void)conns_sweep(s->conns, conns_now_ms());
        log_flush(s);
        pthread_mutex_lock(&s->wlock);
    }
    pthread_mutex_unlock(&s->wlock);
    return NULL;
}

store *srv_watch_store(srv *s)
{
    return s->wst;
}

/* ---- per-thread state ------------------------------------------------- */

static srv_thread *thread_state(srv *s, ai_err *err)
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

/* ---- replies ---------------------------------------------------------- */

static void set_reply(srv_req *rq, int status, char *text, size_t len,
                      const char *ctype, bool secret)
{
    if (rq->out != NULL) {
        if (rq->wipe_out)
            explicit_bzero(rq->out, rq->out_len);
        ai_free(rq->out);
    }
    rq->status = status;
    rq->out = text;
    rq->out_len = len;
    rq->ctype = ctype;
    rq->wipe_out = secret;
}

static void reply_json(srv_req *rq, int status, json_t *body, bool secret)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER)
                      : NULL;
    size_t n;

    if (body != NULL && secret)
        json_object_clear(body); /* jansson frees; the text is what we wipe */
    json_decref(body);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":\"out of memory\",\"code\":\"internal_error\"}";
        if ((text = ai_malloc(sizeof oom)) == NULL) {
            set_reply(rq, 500, NULL, 0, "application/json", false);
            return;
        }
        memcpy(text, oom, sizeof oom);
        status = 500;
        secret = false;
    }
    n = strlen(text);
    set_reply(rq, status, text, n, "application/json", secret);
}

void srv_reply_json(srv_req *rq, int status, json_t *body)
{
    reply_json(rq, status, body, false);
}

void srv_reply_secret(srv_req *rq, int status, json_t *body)
{
    reply_json(rq, status, body, true);
}

void srv_reply_stream(srv_req *rq, int status, const char *ctype,
                      long (*fn)(void *ud, char *buf, size_t max), void *ud,
                      void (*free_fn)(void *ud))
{
    set_reply(rq, status, NULL, 0, ctype, false);
    rq->stream = fn;
    rq->stream_ud = ud;
    rq->stream_free = free_fn;
}

typedef struct stream_ctx {
    long (*fn)(void *ud, char *buf, size_t max);
    void *ud;
    void (*free_fn)(void *ud);
} stream_ctx;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_ctx *sc = cls;
    long n = sc->fn(sc->ud, buf, max);

    (void)pos;
    if (n > 0)
        return (ssize_t)n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                  : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_done(void *cls)
{
    stream_ctx *sc = cls;

    if (sc->free_fn != NULL)
        sc->free_fn(sc->ud);
    ai_free(sc);
}

void srv_reply_static(srv_req *rq, int status, const char *json)
{
    size_t n = strlen(json);
    char *text = ai_malloc(n + 1);

    if (text == NULL) {
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    memcpy(text, json, n + 1);
    set_reply(rq, status, text, n, "application/json", false);
}

void srv_reply_text(srv_req *rq, int status, const char *ctype, char *text,
                    size_t len)
{
    set_reply(rq, status, text, len, ctype, false);
}

void srv_reply_error(srv_req *rq, int status, const char *code,
                     const char *fmt, ...)
{
    char msg[AI_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_json(rq, status, json_pack("{s:s, s:s}", "error", msg, "code", code),
               false);
}

void srv_reply_ai(srv_req *rq, ai_code code, const char *msg)
{
    int status = 500;

    switch (code) {
    case AI_EINVAL: status = 400; break;
    case AI_ETOKEN:
    case AI_EEXPIRED:
    case AI_EREVOKED: status = 401; break;
    case AI_EDENIED: status = 403; break;
    case AI_ENOTFOUND: status = 404; break;
    case AI_EPROVIDER: status = 502; break;
    case AI_EUNAVAILABLE: status = 503; break;
    case AI_ESTORAGE_FULL:
        status = 503;
        storage_failed(rq->s->storage, msg && *msg ? msg : NULL);
        break;
    default: break;
    }
    srv_reply_error(rq, status, err_code_name(code), "%s",
                    msg && *msg ? msg : ai_strerror(code));
}

/* ---- request helpers -------------------------------------------------- */

json_t *srv_body_object(srv_req *rq, bool empty_ok)
{
    ai_err err;
    json_t *o = body_object(rq->body, rq->len, empty_ok, &err);

    if (o == NULL)
        srv_reply_ai(rq, err.code, err.msg);
    return o;
}

bool srv_str(srv_req *rq, json_t *o, const char *key, bool required,
             const char **out)
{
    ai_err err;

    ai_err_clear(&err);
    if (body_str(o, key, required, out, &err))
        return true;
    srv_reply_ai(rq, err.code, err.msg);
    return false;
}

bool srv_int(srv_req *rq, json_t *o, const char *key, long long min,
             long long max, bool *present, long long *out)
{
    ai_err err;

    ai_err_clear(&err);
    if (body_int(o, key, min, max, present, out, &err))
        return true;
    srv_reply_ai(rq, err.code, err.msg);
    return false;
}

const char *srv_query(srv_req *rq, const char *key)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

bool srv_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        size_t room = *cap - *len;
        va_start(ap, fmt);
        n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return false;
        if (*buf != NULL && (size_t)n < room) {
            *len += (size_t)n;
            return true;
        }
        {
            size_t ncap = (*cap ? *cap * 2 : 4096) + (size_t)n;
            char *nb = ai_malloc(ncap);
            if (nb == NULL)
                return false;
            if (*buf != NULL) {
                memcpy(nb, *buf, *len);
                ai_free(*buf);
            }
            *buf = nb;
            *cap = ncap;
        }
    }
}

/* ---- authentication --------------------------------------------------- */

static void hash_secret(const char *s, size_t n, unsigned char out[32])
{
    SHA256((const unsigned char *)s, n, out);
}

/* The bearer value of the Authorization header, or NULL. */
static const char *bearer(struct MHD_Connection *c, size_t *len)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    *len = strlen(h);
    while (*len > 0 && h[*len - 1] == ' ')
        (*len)--;
    return *len ? h : NULL;
}

static bool secret_is(const unsigned char want[32], const char *got,
                      size_t n)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    bool ok;

    hash_secret(got, n, h); /* equal-length digests: constant time */
    ok = CRYPTO_memcmp(h, want, sizeof h) == 0;
    OPENSSL_cleanse(h, sizeof h);
    return ok;
}

static void verify_outcome(srv *s, ai_code rc)
{
    metrics_verify(s->metrics, rc);
}

/* A follower by its credential: the shared --auth-token (its id is what
 * X-Follower-Id says, it is granted no secrets) or one registered in the
 * home (X-Follower-Id, when sent, must be its id). False after replying. */
static bool authenticate_follower(srv *s, srv_req *rq, const char *b,
                                  size_t n)
{
    const char *id = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                 "X-Follower-Id");
    const srv_role *role = s->cfg.role;
    ai_err err;
    ai_code rc;

    memset(&rq->fol, 0, sizeof rq->fol);
    rq->follower[0] = '\0';
    if (b == NULL) {
        srv_reply_error(rq, 401, "unauthorized",
                        "a follower credential is required");
        return false;
    }
    if (id != NULL && !word_valid(id, 64)) {
        srv_reply_error(rq, 400, "bad_request",
                        "X-Follower-Id must be 1 to 64 of A-Z a-z 0-9 . _ -");
        return false;
    }
    if (s->has_follower && secret_is(s->follower_hash, b, n)) {
        bool taken = false;
        if (id == NULL) {
            srv_reply_error(rq, 400, "bad_request",
                            "X-Follower-Id is required with the shared "
                            "--auth-token");
            return false;
        }
        /* A registered follower's id is its credential's alone: the
         * shared secret may not speak (and be counted) for it. */
        if ((rc = srv_sync(rq, &err)) != AI_OK ||
            (rc = store_follower_registered(rq->th->st, id, &taken,
                                            &err)) != AI_OK) {
            srv_reply_ai(rq, rc, err.msg);
            return false;
        }
        if (taken) {
            srv_reply_error(rq, 403, "forbidden",
                            "X-Follower-Id names a registered follower: "
                            "use its own credential");
            return false;
        }
        snprintf(rq->follower, sizeof rq->follower, "%s", id);
        rq->fol.shared = true;
        memcpy(rq->fol.key, s->follower_key, sizeof rq->fol.key);
        return true;
    }
    if (role == NULL || role->follower_find == NULL ||
        (rc = srv_sync(rq, &err)) != AI_OK ||
        (rc = role->follower_find(s->cfg.app, rq, b, n, &err)) ==
            AI_ENOTFOUND) {
        srv_reply_error(rq, 401, "unauthorized",
                        "a valid follower credential is required (agent-iam "
                        "followers add)");
        return false;
    }
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return false;
    }
    if (id != NULL && strcmp(id, rq->follower) != 0) {
        srv_reply_error(rq, 403, "forbidden",
                        "X-Follower-Id does not name this credential's "
                        "follower");
        return false;
    }
    return true;
}

/* Authenticate; false after replying. */
static bool authenticate(srv *s, srv_req *rq)
{
    const char *b;
    size_t n = 0;
    ai_err err;
    ai_code rc;

    if (rq->route->auth == SRV_AUTH_NONE)
        return true;
    b = bearer(rq->conn, &n);
    if (rq->route->auth == SRV_AUTH_AGENT) {
        const char *why;
        if (b == NULL) {
            srv_reply_error(rq, 401, "unauthorized",
                            "an agent token is required "
                            "(Authorization: Bearer <token>)");
            return false;
        }
        if (s->cfg.role && s->cfg.role->refuse_agents &&
            (why = s->cfg.role->refuse_agents(s->cfg.app)) != NULL) {
            srv_reply_error(rq, 503, "unavailable", "%s", why);
            return false;
        }
        if ((rc = srv_sync(rq, &err)) == AI_OK)
            rc = broker_verify_quiet(rq->th->broker, b, n, rq->now, &rq->token,
                                     &err);
        verify_outcome(s, rc);
        if (rc != AI_OK) {
            if (rc == AI_EINVAL)
                rc = AI_ETOKEN;
            srv_reply_ai(rq, rc, err.msg);
            return false;
        }
        rq->bearer = b;
        rq->bearer_len = n;
        snprintf(rq->subject, sizeof rq->subject, "agent=%.64s token=%.64s",
                 ai_token_agent_id(rq->token),
                 ai_token_id(rq->token) ? ai_token_id(rq->token) : "-");
        for (char *c = rq->subject; *c; c++) /* one log line, always */
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        return true;
    }
    if (rq->route->auth == SRV_AUTH_FOLLOWER)
        return authenticate_follower(s, rq, b, n);
    if (rq->route->auth == SRV_AUTH_METRICS) {
        if (s->cfg.public_metrics ||
            (b != NULL && ((s->has_admin && secret_is(s->admin_hash, b, n)) ||
                           (s->has_metrics &&
                            secret_is(s->metrics_hash, b, n)))))
            return true;
        srv_reply_error(rq, 401, "unauthorized",
                        "the admin or metrics token is required (or start "
                        "the server with --public-metrics)");
        return false;
    }
    /* admin */
    if (!s->has_admin) {
        srv_reply_error(rq, 404, "not_found",
                        "the admin API is off: start the server with "
                        "--admin-token(-file), or administer its home "
                        "locally");
        return false;
    }
    if (b != NULL && secret_is(s->admin_hash, b, n)) {
        snprintf(rq->subject, sizeof rq->subject, "admin");
        return true;
    }
    srv_reply_error(rq, 401, "unauthorized", "a valid admin token is required");
    return false;
}

/* ---- dispatch --------------------------------------------------------- */

/* Find the route; *allowed lists the methods of a path that matched with
 * another method, and *idx is then the first route of that path (its 405
 * is counted there), else cfg.nroutes. */
static const srv_route *find_route(srv *s, const char *method,
                                   const char *path, const char **tail,
                                   unsigned *idx, char *allowed, size_t cap)
{
    size_t first = s->cfg.nroutes;

    allowed[0] = '\0';
    for (size_t i = 0; i < s->cfg.nroutes; i++) {
        const srv_route *r = &s->cfg.routes[i];
        size_t pl = strlen(r->path);
        const char *t = NULL;
        if (r->prefix) {
            if (strncmp(path, r->path, pl) != 0 || path[pl] == '\0' ||
                strchr(path + pl, '/') != NULL)
                continue;
            t = path + pl;
        } else if (strcmp(path, r->path) != 0) {
            continue;
        }
        if (strcmp(method, r->method) == 0) {
            *tail = t;
            *idx = (unsigned)i;
            return r;
        }
        if (first == s->cfg.nroutes)
            first = i;
        if (strstr(allowed, r->method) == NULL) {
            size_t n = strlen(allowed);
            snprintf(allowed + n, cap - n, "%s%s", n ? ", " : "", r->method);
        }
    }
    *idx = (unsigned)first;
    return NULL;
}

static void sanitize_path(const char *in, char *out, size_t cap)
{
    size_t j = 0;

    for (size_t i = 0; in[i] != '\0' && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        out[j++] = (c > 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    out[j] = '\0';
}

static void free_plain(void *p)
{
    ai_free(p);
}

static void free_secret(void *p)
{
    explicit_bzero(p, strlen(p));
    ai_free(p);
}

static enum MHD_Result send_reply(srv *s, req_priv *p)
{
    srv_req *rq = &p->rq;
    struct MHD_Response *resp;
    enum MHD_Result r;

    p->answered = true;
    if (rq->stream != NULL) {
        stream_ctx *sc = ai_malloc(sizeof *sc);
        if (sc == NULL) {
            rq->stream_free(rq->stream_ud);
            rq->stream = NULL; /* on_completed must not free it again */
            return MHD_NO;
        }
        sc->fn = rq->stream;
        sc->ud = rq->stream_ud;
        sc->free_fn = rq->stream_free;
        rq->stream = NULL;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 65536,
                                                 stream_read, sc, stream_done);
        if (resp == NULL) {
            stream_done(sc);
            return MHD_NO;
        }
        goto headers;
    }
    if (rq->out == NULL)
        srv_reply_error(rq, 500, "internal_error", "no reply");
    if (rq->out == NULL)
        return MHD_NO;
    /* JSON replies are NUL-terminated text: the secret ones are wiped by
     * length when MHD is done with them. */
    resp = MHD_create_response_from_buffer_with_free_callback(
        rq->out_len, rq->out, rq->wipe_out ? free_secret : free_plain);
    if (resp == NULL)
        return MHD_NO;
    rq->out = NULL; /* MHD owns it now */
headers:
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rq->ctype ? rq->ctype : "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (rq->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, p->allow);
    if (rq->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%u", rq->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    if (p->close || atomic_load(&s->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r = MHD_queue_response(rq->conn, (unsigned)rq->status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void run_handler(srv *s, req_priv *p)
{
    srv_req *rq = &p->rq;
    bool resumed;
    ai_err err;

    rq->now = srv_now_ms();
    if (p->too_large) {
        srv_reply_error(rq, 413, "payload_too_large",
                        "the request body is over %d bytes", SRV_BODY_MAX);
        return;
    }
    if (rq->route == NULL) {
        const char *tail;
        unsigned idx;
        (void)find_route(s, rq->method, rq->path, &tail, &idx, p->allow,
                         sizeof p->allow);
        if (p->allow[0] != '\0') {
            srv_reply_error(rq, 405, "method_not_allowed",
                            "%s is not allowed on %s (allowed: %s)",
                            rq->method, p->path, p->allow);
            return;
        }
        srv_reply_error(rq, 404, "not_found", "no such route");
        return;
    }
    if (rq->th == NULL && (rq->th = thread_state(s, &err)) == NULL) {
        srv_reply_error(rq, 503, "unavailable", "store unavailable: %s",
                        err.msg);
        return;
    }
    /* A resumed long-poll is a follower's: its credential is looked at
     * again, so a follower removed while it waits is cut off at once. */
    resumed = p->resumed;
    p->resumed = false;
    rq->suspended = false; /* a refusal below must not wait again */
    if ((!resumed || rq->route->auth == SRV_AUTH_FOLLOWER) &&
        !authenticate(s, rq))
        return;
    /* Agent requests synced in authenticate. Admin requests sign (root
     * tokens must use the current key, e.g. just after a CLI rotate-key)
     * and are rare: they read the latest commit themselves rather than
     * wait for the watcher to move the generation. Follower requests
     * verify tokens (consume) like agent requests. */
    if ((rq->route->auth == SRV_AUTH_ADMIN &&
         store_sync(rq->th->st, &err) != AI_OK) ||
        (rq->route->auth == SRV_AUTH_FOLLOWER &&
         srv_sync(rq, &err) != AI_OK)) {
        srv_reply_ai(rq, err.code, err.msg);
        return;
    }
    /* What the handler saw: a change after this point must wake it. */
    p->gen_seen = atomic_load(&s->gen);
    rq->route->fn(rq);
}

/* A byte a request target must not carry, raw or %-escaped: a control
 * character (NUL included) or DEL. The escapes are what MHD unescapes
 * before routing: "/v1/admin/apikeys/openai%00x" would route as "openai". */
static bool target_bad(const char *t)
{
    for (const unsigned char *c = (const unsigned char *)t; *c; c++) {
        unsigned v = *c;
        if (*c == '%' && isxdigit(c[1]) && isxdigit(c[2])) {
            char h[3] = {(char)c[1], (char)c[2], '\0'};
            v = (unsigned)strtoul(h, NULL, 16);
        }
        if (v < 0x20 || v == 0x7f)
            return true;
    }
    return false;
}

/* RFC 9110 token characters: what a method may be made of. */
static bool method_ok(const char *m)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (*m == '\0' || strlen(m) > 16)
        return false;
    for (const char *c = m; *c; c++)
        if (!isalnum((unsigned char)*c) || (unsigned char)*c > 0x7f)
            if (strchr(extra, *c) == NULL)
                return false;
    return true;
}

typedef struct hdr_count {
    unsigned content_length, transfer_encoding;
    bool te_other; /* a Transfer-Encoding other than "chunked" */
} hdr_count;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind,
                                    const char *key, const char *value)
{
    hdr_count *n = cls;

    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        n->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        n->transfer_encoding++;
        if (value == NULL || strcasecmp(value, "chunked") != 0)
            n->te_other = true;
    }
    return MHD_YES;
}

/* Framing a proxy in front could read otherwise than we do (request
 * smuggling), and targets or methods that are not what they print as:
 * refused before any routing, with the connection closed. NULL: fine. */
static const char *request_refusal(struct MHD_Connection *conn,
                                   const req_priv *p, const char *method)
{
    hdr_count n = {0, 0, false};

    if (p->bad_target)
        return "the request target holds a control character";
    if (!method_ok(method))
        return "malformed method";
    (void)MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &n);
    if (n.content_length > 1)
        return "more than one Content-Length";
    if (n.content_length > 0 && n.transfer_encoding > 0)
        return "both Content-Length and Transfer-Encoding";
    if (n.transfer_encoding > 1 || n.te_other)
        return "a Transfer-Encoding other than one \"chunked\"";
    return NULL;
}

/* MHD_OPTION_URI_LOG_CALLBACK: called with the raw request target as soon
 * as the request line is read; what it returns is the request's state. */
static void *on_target(void *cls, const char *uri, struct MHD_Connection *c)
{
    req_priv *p = ai_calloc(1, sizeof *p);

    (void)cls;
    (void)c;
    if (p != NULL)
        p->bad_target = uri == NULL || target_bad(uri);
    return p;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    srv *s = cls;
    req_priv *p = *con_cls;

    (void)version;
    if (p == NULL)
        return MHD_NO; /* out of memory in on_target */
    if (!p->started) {
        const char *cl, *why;
        const char *tail = NULL;
        char allowed[64];
        p->started = true;
        conns_request_started(s->conns, conn);
        atomic_fetch_add(&s->active, 1);
        p->t0_ns = mono_ns();
        p->rq.s = s;
        p->rq.conn = conn;
        p->rq.app = s->cfg.app;
        p->rq.method = method;
        p->rq.path = url;
        sanitize_path(url, p->path, sizeof p->path);
        if ((why = request_refusal(conn, p, method)) != NULL) {
            p->rq.method = "?"; /* never logged or echoed raw */
            p->route_idx = (unsigned)s->cfg.nroutes;
            p->close = true;
            p->answered = true;
            srv_reply_error(&p->rq, 400, "bad_request", "%s", why);
            return send_reply(s, p);
        }
        p->rq.route = find_route(s, method, url, &tail, &p->route_idx,
                                 allowed, sizeof allowed);
        p->rq.tail = tail;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > SRV_BODY_MAX) {
            const char *ex = MHD_lookup_connection_value(
                conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            p->too_large = true;
            /* A client that waits (Expect: 100-continue) or a body too
             * big to drain gets the 413 at once (MHD then closes). Any
             * other client is still sending: answering now would close
             * the connection under it and it would see a reset, not the
             * 413, so the body is read and dropped first. */
            if ((ex != NULL && strcasecmp(ex, "100-continue") == 0) ||
                strtoull(cl, NULL, 10) > SRV_DRAIN_MAX) {
                run_handler(s, p);
                return send_reply(s, p);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (p->too_large) /* dropped; a client that never stops is cut */
            return (p->dropped += n) > SRV_DRAIN_MAX ? MHD_NO : MHD_YES;
        if (p->body_len + n > SRV_BODY_MAX) {
            p->too_large = true;
            ai_free(p->body);
            p->body = NULL;
            p->body_len = p->body_cap = 0;
            return MHD_YES;
        }
        if (p->body_len + n + 1 > p->body_cap) {
            size_t cap = p->body_cap ? p->body_cap : 1024;
            char *nb;
            while (cap < p->body_len + n + 1)
                cap *= 2;
            if ((nb = ai_malloc(cap)) == NULL)
                return MHD_NO;
            if (p->body != NULL) {
                memcpy(nb, p->body, p->body_len);
                explicit_bzero(p->body, p->body_len);
                ai_free(p->body);
            }
            p->body = nb;
            p->body_cap = cap;
        }
        memcpy(p->body + p->body_len, upload_data, n);
        p->body_len += n;
        p->body[p->body_len] = '\0';
        return MHD_YES;
    }
    if (p->answered)
        return MHD_YES; /* already answered (413 at the first call) */
    conns_request_received(conn);
    p->rq.body = p->body ? p->body : "";
    p->rq.len = p->body_len;
    run_handler(s, p);
    while (p->rq.suspended) {
        waiter *w = ai_malloc(sizeof *w);
        if (w == NULL) {
            srv_reply_error(&p->rq, 503, "unavailable", "out of memory");
            return send_reply(s, p);
        }
        w->rq = &p->rq;
        pthread_mutex_lock(&s->lock);
        /* A change between the handler's look and now already woke the
         * waiters it had: look again instead of sleeping through it. */
        if (atomic_load(&s->gen) != p->gen_seen) {
            pthread_mutex_unlock(&s->lock);
            ai_free(w);
            p->resumed = true;
            run_handler(s, p);
            continue;
        }
        w->next = s->waiters;
        s->waiters = w;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&s->lock);
        return MHD_YES;
    }
    return send_reply(s, p);
}

/* Write out the access log buffer (caller holds loglock). */
static void log_flush_locked(srv *s)
{
    size_t off = 0;

    while (off < s->loglen) {
        ssize_t w = write(s->cfg.access_log_fd, s->logbuf + off,
                          s->loglen - off);
        if (w <= 0 && errno != EINTR)
            break; /* a log that cannot be written must not stop serving */
        if (w > 0)
            off += (size_t)w;
    }
    s->loglen = 0;
}

static void log_flush(srv *s)
{
    if (s->cfg.access_log_fd < 0)
        return;
    pthread_mutex_lock(&s->loglock);
    if (s->loglen > 0)
        log_flush_locked(s);
    pthread_mutex_unlock(&s->loglock);
}

/* One line per request, buffered: written when the buffer fills and by
 * the watcher every SRV_WATCH_MS, so the log costs no syscall per
 * request under load. */
/* Append text to a line buffer, truncating at its end. */
static size_t put_str(char *line, size_t n, size_t cap, const char *t)
{
    size_t k = strlen(t);

    if (k > cap - 1 - n)
        k = cap - 1 - n;
    memcpy(line + n, t, k);
    return n + k;
}

static size_t put_num(char *line, size_t n, size_t cap, unsigned long long v,
                      int min_digits)
{
    char d[24];
    int k = 0;

    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 || k < min_digits);
    while (k > 0 && n < cap - 1)
        line[n++] = d[--k];
    return n;
}

/* One line per request, buffered: written when the buffer fills and by
 * the watcher every SRV_WATCH_MS, so the log costs no syscall per
 * request under load. Built by hand: this runs for every request. */
static void log_line(srv *s, req_priv *p, int status, int64_t micros)
{
    char line[512], at[AI_TIME_BUF];
    size_t n = 0, cap = sizeof line;

    if (s->cfg.access_log_fd < 0)
        return;
    ai_time_format(srv_now_ms(), at);
    n = put_str(line, n, cap, at);
    n = put_str(line, n, cap, " ");
    n = put_str(line, n, cap, p->rq.method ? p->rq.method : "-");
    n = put_str(line, n, cap, " ");
    n = put_str(line, n, cap, p->rq.route ? p->rq.route->name : p->path);
    n = put_str(line, n, cap, " ");
    n = put_num(line, n, cap, (unsigned long long)status, 1);
    n = put_str(line, n, cap, " ");
    n = put_num(line, n, cap, (unsigned long long)(micros / 1000), 1);
    n = put_str(line, n, cap, ".");
    n = put_num(line, n, cap, (unsigned long long)(micros % 1000), 3);
    n = put_str(line, n, cap, "ms ");
    n = put_str(line, n, cap, p->rq.subject[0] ? p->rq.subject : "-");
    if (p->rq.follower[0]) {
        n = put_str(line, n, cap, " follower=");
        n = put_str(line, n, cap, p->rq.follower);
    }
    line[n++] = '\n'; /* put_* leave one byte free */
    pthread_mutex_lock(&s->loglock);
    if (s->loglen + n > sizeof s->logbuf)
        log_flush_locked(s);
    memcpy(s->logbuf + s->loglen, line, n);
    s->loglen += n;
    pthread_mutex_unlock(&s->loglock);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    srv *s = cls;
    req_priv *p = *con_cls;
    int64_t micros;
    int status;

    if (p == NULL)
        return;
    conns_request_done(s->conns, conn);
    if (!p->started) { /* refused by MHD before a whole header came */
        ai_free(p);
        *con_cls = NULL;
        return;
    }
    micros = (mono_ns() - p->t0_ns) / 1000;
    status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? p->rq.status : 499;
    if (p->rq.status == 0)
        status = 499;
    metrics_request(s->metrics, p->route_idx, p->rq.method, status,
                    (double)micros / 1e6);
    log_line(s, p, status, micros);
    if (p->rq.out != NULL) {
        if (p->rq.wipe_out)
            explicit_bzero(p->rq.out, p->rq.out_len);
        ai_free(p->rq.out);
    }
    if (p->body != NULL) {
        explicit_bzero(p->body, p->body_len);
        ai_free(p->body);
    }
    if (p->rq.stream != NULL && p->rq.stream_free != NULL)
        p->rq.stream_free(p->rq.stream_ud); /* never handed to MHD */
    ai_token_free(p->rq.token);
    OPENSSL_cleanse(p->rq.fol.key, sizeof p->rq.fol.key);
    ai_free(p);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}

/* ---- start and stop --------------------------------------------------- */

/* libmicrohttpd's messages. A flood of clients makes the same message
 * (connection limit reached, a failed handshake) once per connection:
 * each message is printed at most once per SRV_LOG_EVERY_MS, with the
 * number of repeats it stood for. */
#define SRV_LOG_EVERY_MS 10000
#define SRV_LOG_SLOTS 16

typedef struct log_slot {
    const char *fmt; /* MHD passes the same literal for the same message */
    int64_t last_ms;
    unsigned long held;
} log_slot;

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static log_slot slots[SRV_LOG_SLOTS];
    int64_t now = conns_now_ms();
    unsigned long held = 0;
    log_slot *sl = NULL, *oldest = &slots[0];

    (void)cls;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < SRV_LOG_SLOTS; i++) {
        if (slots[i].fmt == fmt) {
            sl = &slots[i];
            break;
        }
        if (slots[i].last_ms < oldest->last_ms)
            oldest = &slots[i];
    }
    if (sl != NULL && now - sl->last_ms < SRV_LOG_EVERY_MS) {
        sl->held++;
        pthread_mutex_unlock(&lock);
        return;
    }
    if (sl == NULL) {
        sl = oldest;
        sl->fmt = fmt;
        sl->held = 0;
    }
    held = sl->held;
    sl->held = 0;
    sl->last_ms = now;
    pthread_mutex_unlock(&lock);
    if (held > 0)
        fprintf(stderr, "agent-iam: http: (the next message %lu more "
                        "times in the last %d s)\n", held,
                SRV_LOG_EVERY_MS / 1000);
    fputs("agent-iam: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* Room in RLIMIT_NOFILE for max_conns connections plus the stores, logs
 * and epoll descriptors: raise the soft limit (and the hard one when
 * allowed); if that is not enough, fewer connections, said once. */
static unsigned fit_nofile(unsigned max_conns)
{
    const rlim_t spare = 256;
    struct rlimit rl;
    rlim_t need = (rlim_t)max_conns + spare;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return max_conns;
    if (rl.rlim_max < need) {
        struct rlimit up = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return max_conns;
    }
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return max_conns;
    fprintf(stderr, "agent-iam: the open-file limit (%llu) holds only %llu "
                    "connections, not --max-conns %u\n",
            (unsigned long long)rl.rlim_cur,
            (unsigned long long)(rl.rlim_cur > spare + 16
                                     ? rl.rlim_cur - spare : 16),
            max_conns);
    return rl.rlim_cur > spare + 16 ? (unsigned)(rl.rlim_cur - spare) : 16;
}

static unsigned cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

static ai_code bind_addr(const char *host, int port,
                         struct sockaddr_storage *ss, bool *v6, ai_err *err)
{
    memset(ss, 0, sizeof *ss);
    *v6 = false;
    if (host == NULL || *host == '\0')
        host = "0.0.0.0";
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
            a->sin_family = AF_INET;
            a->sin_port = htons((uint16_t)port);
            return AI_OK;
        }
    }
    {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        const char *h = host;
        char buf[64];
        size_t n = strlen(h);
        if (n > 2 && h[0] == '[' && h[n - 1] == ']' && n - 2 < sizeof buf) {
            memcpy(buf, h + 1, n - 2);
            buf[n - 2] = '\0';
            h = buf;
        }
        if (inet_pton(AF_INET6, h, &a->sin6_addr) == 1) {
            a->sin6_family = AF_INET6;
            a->sin6_port = htons((uint16_t)port);
            *v6 = true;
            return AI_OK;
        }
    }
    return ai_err_set(err, AI_EINVAL,
                      "--host must be an IP address (or localhost), not %.64s",
                      host);
}

ai_code srv_start(const srv_config *cfg, srv **out, ai_err *err)
{
    struct sockaddr_storage ss;
    /* Not MHD_USE_TURBO: in libmicrohttpd 0.9.75 it leaves a TLS
     * connection whose client closes before the handshake out of the
     * epoll set, in CLOSE-WAIT, with its worker spinning. No listening
     * socket of MHD's: see listener.h. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_NO_LISTEN_SOCKET;
    unsigned max_conns;
    bool v6;
    int e;
    srv *s;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    if (cfg->port < 0 || cfg->port > 65535)
        return ai_err_set(err, AI_EINVAL, "--port must be 0 to 65535");
    if ((rc = bind_addr(cfg->host, cfg->port, &ss, &v6, err)) != AI_OK)
        return rc;
    if (!cfg->insecure_http &&
        (cfg->tls_cert_pem == NULL || cfg->tls_key_pem == NULL))
        return ai_err_set(err, AI_EINVAL, "TLS certificate and key required");
    if (!cfg->insecure_http && MHD_is_feature_supported(MHD_FEATURE_TLS) !=
                                   MHD_YES)
        return ai_err_set(err, AI_EINTERNAL,
                          "libmicrohttpd was built without TLS");
    if ((s = ai_calloc(1, sizeof *s)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    s->cfg = *cfg;
    if (cfg->home == NULL || strlen(cfg->home) >= sizeof s->home) {
        ai_free(s);
        return ai_err_set(err, AI_EINVAL, "no home, or a path too long");
    }
    memcpy(s->home, cfg->home, strlen(cfg->home) + 1);
    s->cfg.home = s->home;
    if (cfg->follower_secret != NULL && *cfg->follower_secret != '\0') {
        hash_secret(cfg->follower_secret, strlen(cfg->follower_secret),
                    s->follower_hash);
        s->has_follower = true;
    }
    if (cfg->admin_secret != NULL && *cfg->admin_secret != '\0') {
        hash_secret(cfg->admin_secret, strlen(cfg->admin_secret),
                    s->admin_hash);
        s->has_admin = true;
    }
    if (cfg->follower_secret != NULL && *cfg->follower_secret != '\0')
        store_transport_key(cfg->follower_secret,
                            strlen(cfg->follower_secret), s->follower_key);
    if (cfg->metrics_secret != NULL && *cfg->metrics_secret != '\0') {
        hash_secret(cfg->metrics_secret, strlen(cfg->metrics_secret),
                    s->metrics_hash);
        s->has_metrics = true;
    }
    if (s->has_admin &&
        ((s->has_follower &&
          CRYPTO_memcmp(s->admin_hash, s->follower_hash,
                        sizeof s->admin_hash) == 0) ||
         (s->has_metrics &&
          CRYPTO_memcmp(s->admin_hash, s->metrics_hash,
                        sizeof s->admin_hash) == 0))) {
        /* one secret, two jobs: the weaker role would be admin */
        OPENSSL_cleanse(s, sizeof *s);
        ai_free(s);
        return ai_err_set(err, AI_EINVAL,
                          "the admin token must differ from the follower "
                          "and metrics tokens");
    }
    s->cfg.follower_secret = s->cfg.admin_secret = NULL; /* not kept */
    s->cfg.metrics_secret = NULL;
    s->cfg.tls_cert_pem = s->cfg.tls_key_pem = NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->loglock, NULL);
    pthread_mutex_init(&s->wlock, NULL);
    pthread_cond_init(&s->wcond, NULL);
    pthread_key_create(&s->key, NULL);
    if ((s->metrics = metrics_new(cfg->routes, cfg->nroutes)) == NULL ||
        (s->storage = storage_new(cfg->audit_retain_ms)) == NULL ||
        (cfg->agent_rate > 0 &&
         (s->rl = ratelimit_new(cfg->agent_rate, cfg->agent_burst)) ==
             NULL) ||
        (s->conns = conns_new(SRV_HEADER_MS, SRV_BODY_MS,
                              1000 * (int)(cfg->idle_timeout_s
                                               ? cfg->idle_timeout_s
                                               : SRV_IDLE_S))) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = store_open(cfg->home, true, &s->wst, err)) != AI_OK ||
        (rc = store_sync(s->wst, err)) != AI_OK ||
        (rc = store_data_version(s->wst, &s->data_version, err)) != AI_OK)
        goto fail;
    if (!cfg->replica) {
        const ai_keyring *kr; /* make the first signing key now */
        if ((rc = store_keyring(s->wst, srv_now_ms(), &kr, err)) != AI_OK)
            goto fail;
    }
    if (!cfg->insecure_http)
        flags |= MHD_USE_TLS;
    if ((e = listener_open((struct sockaddr *)&ss,
                           v6 ? sizeof(struct sockaddr_in6)
                              : sizeof(struct sockaddr_in),
                           1024, &s->listener)) != 0) {
        rc = ai_err_set(err, AI_EINVAL, "cannot listen on %s port %d: %s%s",
                        cfg->host ? cfg->host : "0.0.0.0", cfg->port,
                        strerror(e),
                        e == EADDRINUSE
                            ? " (another process listens there: stop it, "
                              "or choose another --port)"
                        : e == EACCES
                            ? " (a port below 1024 needs root or "
                              "CAP_NET_BIND_SERVICE: choose one above)"
                        : e == EADDRNOTAVAIL
                            ? " (no interface of this machine has that "
                              "address: check --host)"
                            : "");
        goto fail;
    }
    s->port = listener_port(s->listener);
    max_conns = fit_nofile(cfg->max_connections ? cfg->max_connections
                                                : SRV_MAX_CONNS);
    s->nthreads = cfg->threads ? cfg->threads : cores();
    s->cache_cap = SRV_TOKEN_CACHE_BYTES / AI_TOKEN_CACHE_ENTRY_BYTES /
                   s->nthreads;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, as MHD asks */
        MHD_OPTION_THREAD_POOL_SIZE, s->nthreads,
        MHD_OPTION_CONNECTION_LIMIT, max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)(cfg->max_conns_per_ip ? cfg->max_conns_per_ip
                                         : SRV_MAX_CONNS_PER_IP),
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->idle_timeout_s ? cfg->idle_timeout_s : SRV_IDLE_S),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, conns_notify, s->conns,
        MHD_OPTION_URI_LOG_CALLBACK, on_target, s,
        MHD_OPTION_STRICT_FOR_CLIENT, 1,
        cfg->insecure_http ? MHD_OPTION_END : MHD_OPTION_HTTPS_MEM_KEY,
        cfg->tls_key_pem, MHD_OPTION_HTTPS_MEM_CERT, cfg->tls_cert_pem,
        MHD_OPTION_HTTPS_PRIORITIES, SRV_TLS_PRIORITIES, MHD_OPTION_END);
    if (s->d == NULL) {
        rc = ai_err_set(err, AI_EINVAL,
                        "cannot start the HTTP server on %s port %d: %s (the "
                        "TLS certificate or key is unusable?)",
                        cfg->host ? cfg->host : "0.0.0.0", s->port,
                        strerror(errno));
        goto fail;
    }
    if ((rc = listener_start(s->listener, s->d, err)) != AI_OK)
        goto fail;
    if (pthread_create(&s->watcher, NULL, watch, s) != 0) {
        rc = ai_err_set(err, AI_EINTERNAL, "cannot start the watcher");
        goto fail;
    }
    s->wstarted = true;
    *out = s;
    return AI_OK;
fail:
    srv_stop(s, 0);
    return rc;
}

static unsigned open_connections(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

    return i != NULL ? i->num_connections : 0;
}

void srv_stop(srv *s, int drain_ms)
{
    srv_thread *th;

    if (s == NULL)
        return;
    atomic_store(&s->draining, true);
    /* New clients are refused from here on. */
    listener_close(s->listener);
    s->listener = NULL;
    if (s->d != NULL) {
        int64_t quiet = srv_now_ms(), until = quiet + drain_ms;
        resume_waiters(s, true, 0);
        /* In-flight requests finish, their replies saying Connection:
         * close (suspended long-polls answer at once). A keep-alive
         * connection between two requests may already carry the next one,
         * which closing it would drop unanswered: wait until no connection
         * is left, or none has had a request for SRV_DRAIN_QUIET_MS. */
        for (;;) {
            struct timespec ts = {0, 5 * 1000000L};
            int64_t now = srv_now_ms();
            if (atomic_load(&s->active) > 0)
                quiet = now;
            else if (open_connections(s->d) == 0 ||
                     now - quiet >= SRV_DRAIN_QUIET_MS)
                break;
            if (now >= until)
                break;
            resume_waiters(s, true, 0);
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(s->d);
        s->d = NULL;
    }
    if (s->wstarted) {
        pthread_mutex_lock(&s->wlock);
        s->wstop = true;
        pthread_cond_signal(&s->wcond);
        pthread_mutex_unlock(&s->wlock);
        pthread_join(s->watcher, NULL);
    }
    while ((th = s->threads) != NULL) {
        s->threads = th->next;
        ai_broker_close(th->broker);
        ai_token_cache_free(th->cache);
        store_close(th->st);
        ai_free(th);
    }
    while (s->waiters != NULL) {
        waiter *w = s->waiters;
        s->waiters = w->next;
        ai_free(w);
    }
    log_flush(s);
    store_close(s->wst);
    metrics_free(s->metrics);
    ratelimit_free(s->rl);
    storage_free(s->storage);
    conns_free(s->conns);
    pthread_key_delete(s->key);
    pthread_cond_destroy(&s->wcond);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->loglock);
    pthread_mutex_destroy(&s->lock);
    OPENSSL_cleanse(s->follower_hash, sizeof s->follower_hash);
    OPENSSL_cleanse(s->admin_hash, sizeof s->admin_hash);
    OPENSSL_cleanse(s->metrics_hash, sizeof s->metrics_hash);
    OPENSSL_cleanse(s->follower_key, sizeof s->follower_key);
    ai_free(s);
}

bool srv_shared_follower_secret(const srv *s)
{
    return s->has_follower;
}

bool srv_draining(srv *s)
{
    return atomic_load(&s->draining);
}

const char *srv_home(const srv *s)
{
    return s->cfg.home;
}

const srv_role *srv_role_of(const srv *s)
{
    return s->cfg.role;
}

void srv_routes_add(srv_route *dst, size_t *len, size_t cap,
                    const srv_route *src, size_t n)
{
    for (size_t i = 0; i < n && *len < cap; i++)
        dst[(*len)++] = src[i];
}
