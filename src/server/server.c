/* server.c - the libmicrohttpd daemon: start it (TLS, the thread pool,
 * the listening socket, the watcher thread) and stop it gracefully (drain
 * the in-flight requests, end the long-polls), and what server.h tells
 * of a running server.
 *
 * THREADS: srv_start and srv_stop run on the caller's thread. srv_start
 * starts MHD's pool of worker threads (request.c runs on them), the
 * listener's accept thread (listener.c) and the watcher (watch.c);
 * srv_stop joins them all. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "server/conns.h"
#include "server/internal.h"
#include "server/listener.h"
#include "server/metrics.h"
#include "server/ratelimit.h"
#include "server/server.h"
#include "server/storage.h"

/* ---- start and stop --------------------------------------------------- */

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
        srv_hash_secret(cfg->follower_secret, strlen(cfg->follower_secret),
                    s->follower_hash);
        s->has_follower = true;
    }
    if (cfg->admin_secret != NULL && *cfg->admin_secret != '\0') {
        srv_hash_secret(cfg->admin_secret, strlen(cfg->admin_secret),
                    s->admin_hash);
        s->has_admin = true;
    }
    if (cfg->follower_secret != NULL && *cfg->follower_secret != '\0')
        store_transport_key(cfg->follower_secret,
                            strlen(cfg->follower_secret), s->follower_key);
    if (cfg->metrics_secret != NULL && *cfg->metrics_secret != '\0') {
        srv_hash_secret(cfg->metrics_secret, strlen(cfg->metrics_secret),
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
        ai_broker *b = NULL;
        if ((rc = broker_wrap(s->wst, &b, err)) == AI_OK &&
            (rc = ai_broker_set_actor(b, s->cfg.role ? s->cfg.role->name
                                                  : "server", err)) == AI_OK)
            rc = broker_signing_keyring(b, time_now_ms(), &kr, err);
        ai_broker_close(b);
        if (rc != AI_OK)
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
        flags, 0, NULL, NULL, srv_on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, srv_mhd_log, s, /* first, as MHD asks */
        MHD_OPTION_THREAD_POOL_SIZE, s->nthreads,
        MHD_OPTION_CONNECTION_LIMIT, max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)(cfg->max_conns_per_ip ? cfg->max_conns_per_ip
                                         : SRV_MAX_CONNS_PER_IP),
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->idle_timeout_s ? cfg->idle_timeout_s : SRV_IDLE_S),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, srv_on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, conns_notify, s->conns,
        MHD_OPTION_URI_LOG_CALLBACK, srv_on_target, s,
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
    if (pthread_create(&s->watcher, NULL, srv_watch, s) != 0) {
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
        int64_t quiet = time_now_ms(), until = quiet + drain_ms;
        srv_resume_waiters(s, true, 0);
        /* In-flight requests finish, their replies saying Connection:
         * close (suspended long-polls answer at once). A keep-alive
         * connection between two requests may already carry the next one,
         * which closing it would drop unanswered: wait until no connection
         * is left, or none has had a request for SRV_DRAIN_QUIET_MS. */
        for (;;) {
            struct timespec ts = {0, 5 * 1000000L};
            int64_t now = time_now_ms();
            if (atomic_load(&s->active) > 0)
                quiet = now;
            else if (open_connections(s->d) == 0 ||
                     now - quiet >= SRV_DRAIN_QUIET_MS)
                break;
            if (now >= until)
                break;
            srv_resume_waiters(s, true, 0);
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
    srv_log_flush(s);
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

/* ---- what a running server tells -------------------------------------- */

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
