/*
 * transport.c - Raft traffic over mutual TLS: libraft's raft_uv_transport
 * with one bridge thread per connection (the design is in transport.h).
 *
 * DESIGN. Shared state lives in struct tr under tr->mu: the list of
 * connections, each with the result of its handshake and whether its
 * thread has ended. A bridge thread owns its TCP socket, its SSL and its
 * end of the socketpair; it sets its result and its end under the lock,
 * then calls uv_async_send. The loop thread's async callback reports each
 * result to libraft once (a uv_pipe_t, or an error), then joins and frees
 * the connections whose thread has ended. close() writes to the stop
 * pipe, which every thread polls, joins every thread on the loop thread
 * (each wakes from poll() at once: no call here blocks elsewhere), and
 * closes the async handle; its close callback cancels the connects still
 * pending (RAFT_CANCELED), frees everything and fires libraft's callback.
 *
 * SIGPIPE: bridge threads start with every signal blocked, so a write to a
 * socket the peer closed gives EPIPE; a SIGPIPE left pending on a thread
 * goes with it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/core.h"
#include "transport.h"

#define PRE_MAGIC "AIRAFT\0\1" /* protocol 1 */
#define PRE_MAGIC_LEN 8
#define PRE_ADDR_LEN (CLUSTER_ADDR_MAX + 1)
#define PRE_LEN (PRE_MAGIC_LEN + 8 + PRE_ADDR_LEN)
#define ACK_BYTE 0x06
#define PUMP_BUF 65536
#define DRAIN_MS 200

enum hs { HS_NONE, HS_OK, HS_FAIL };

struct tr;

struct conn {
    struct tr *tr;
    struct conn *next;
    pthread_t thread;
    bool incoming;
    /* set before the thread starts, then the thread's own */
    struct sockaddr_storage sa; /* outgoing: the peer to dial */
    socklen_t salen;
    int sock;    /* TCP (thread) */
    SSL *ssl;    /* (thread) */
    int pair[2]; /* [0] for libraft (loop), [1] the bridge's (thread) */
    char peer[64]; /* "ip:port" of the TCP peer, for log lines */
    /* outgoing: libraft's request (loop) */
    struct raft_uv_connect *req;
    /* under tr->mu */
    enum hs hs;     /* set by the thread once */
    bool exited;    /* the thread is about to return */
    /* set by the thread before hs, read by the loop after */
    raft_id peer_id;
    char addr[PRE_ADDR_LEN]; /* incoming: the address the peer announced */
    char msg[RAFT_ERRMSG_BUF_SIZE];
    /* loop thread only */
    bool handled; /* libraft has its outcome (a stream, an error or nothing) */
};

struct tr {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    SSL_CTX *ctx;
    unsigned handshake_ms, max_pending;
    void (*log)(void *arg, const char *line);
    void *log_arg;
    /* from t->init */
    raft_id id;
    char address[PRE_ADDR_LEN];
    uv_async_t async;
    bool async_init;
    int stop[2]; /* written once by close(); every thread polls stop[0] */
    /* listen */
    raft_uv_accept_cb accept_cb;
    int lsock;
    pthread_t acceptor;
    bool acceptor_running;
    /* close */
    bool closing;
    raft_uv_transport_close_cb close_cb;
    /* shared */
    pthread_mutex_t mu;
    struct conn *conns; /* every connection not yet freed */
    unsigned nconns, npending;
    atomic_uint_fast64_t accepted, refused;
};

/* ---- small helpers ---------------------------------------------------- */

static void tr_log(struct tr *tr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tr_log(struct tr *tr, const char *fmt, ...)
{
    char line[320];
    va_list ap;

    if (tr->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    tr->log(tr->log_arg, line);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

static bool set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);

    return fl >= 0 && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == 0;
}

/* No Nagle delay for heartbeats; and a peer that vanishes (power cut,
 * partition) is found by keepalive probes and by unacknowledged writes
 * within about half a minute, which ends the bridge and shows libraft an
 * EOF: an idle incoming stream has no other way to learn it, and would
 * hold its thread and its slot for good. Best effort. */
static void sock_tune(int fd)
{
    int one = 1, idle = 10, intvl = 5, cnt = 3;
    unsigned user_ms = 30000;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The newest OpenSSL error as text (no key material: codes and reasons). */
static const char *ossl_why(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        return "no detail";
    ERR_error_string_n(e, buf, cap);
    return buf;
}

/* Parse "a.b.c.d:port" or "[v6]:port" (numeric only: nothing here may
 * block on a resolver). */
static bool addr_parse(const char *s, struct sockaddr_storage *ss,
                       socklen_t *len)
{
    char host[64];
    const char *colon, *h = s;
    size_t hl;
    char *end;
    unsigned long port;

    memset(ss, 0, sizeof *ss);
    if (s == NULL || strlen(s) > CLUSTER_ADDR_MAX)
        return false;
    if (*s == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb[1] != ':')
            return false;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof host || colon[1] < '0' || colon[1] > '9')
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
        return false;
    if (*s != '[') {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;

        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return false;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return false;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
    }
    return true;
}

static void peer_name(const struct sockaddr_storage *ss, char *out,
                      size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(out, cap, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%u", host, port);
    } else {
        snprintf(out, cap, "?");
    }
}

/* A preamble's address: 1..CLUSTER_ADDR_MAX printable characters, then
 * NULs to the end of the field. */
static bool pre_addr_valid(const unsigned char *a)
{
    size_t n = 0;

    while (n < PRE_ADDR_LEN && a[n] != '\0') {
        if (a[n] < 0x21 || a[n] > 0x7e)
            return false;
        n++;
    }
    if (n == 0 || n == PRE_ADDR_LEN)
        return false;
    for (size_t i = n; i < PRE_ADDR_LEN; i++)
        if (a[i] != '\0')
            return false;
    return true;
}

/* ---- the bridge thread: waiting, handshake, pump ---------------------- */

/* Has close() asked every thread to stop? */
static bool stopping(const struct tr *tr)
{
    struct pollfd p = { tr->stop[0], POLLIN, 0 };

    return poll(&p, 1, 0) == 1;
}

/* Wait until fd is ready for events, the deadline passes or close() asks
 * every thread to stop. Returns 1 ready, 0 timed out, -1 stopping. */
static int wait_fd(const struct conn *c, int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p[2] = { { fd, events, 0 }, { c->tr->stop[0], POLLIN, 0 } };
        int64_t left = deadline - now_ms();
        int n;

        if (left <= 0)
            return 0;
        n = poll(p, 2, (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;
        if (p[1].revents != 0)
            return -1;
        if (p[0].revents != 0)
            return 1;
    }
}

/* Is the newest OpenSSL error an alert by which the peer refused the
 * certificate we sent? */
static bool refused_by_peer(void)
{
    switch (ERR_GET_REASON(ERR_peek_last_error())) {
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* Wait for what the last SSL call wants. false: error, timeout or stop
 * (c->msg says which). */
static bool ssl_wait(struct conn *c, int rv, int64_t deadline, const char *what)
{
    int e = SSL_get_error(c->ssl, rv), w;
    char buf[160];

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        w = wait_fd(c, c->sock, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                    deadline);
        if (w > 0)
            return true;
        snprintf(c->msg, sizeof c->msg, "%s: %s", what,
                 w == 0 ? "timed out" : "transport closing");
        return false;
    }
    if (e == SSL_ERROR_SSL && SSL_get_verify_result(c->ssl) != X509_V_OK) {
        snprintf(c->msg, sizeof c->msg,
                 "%s: peer certificate refused (not from the cluster CA?): %s",
                 what,
                 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
        return false;
    }
    if (e == SSL_ERROR_SSL) {
        snprintf(c->msg, sizeof c->msg, "%s: %s%s", what,
                 refused_by_peer() ? "the peer refused our certificate "
                                     "(not from its CA?): " : "",
                 ossl_why(buf, sizeof buf));
        return false;
    }
    snprintf(c->msg, sizeof c->msg, "%s: connection closed by peer%s%s", what,
             e == SSL_ERROR_ZERO_RETURN ? "" : " (no TLS close)",
             !c->incoming && SSL_is_init_finished(c->ssl)
                 ? "; did it refuse our certificate (not from its CA?)" : "");
    return false;
}

static bool ssl_full(struct conn *c, void *buf, size_t n, bool write,
                     int64_t deadline, const char *what)
{
    size_t off = 0;

    while (off < n) {
        int rv;

        ERR_clear_error();
        rv = write ? SSL_write(c->ssl, (char *)buf + off, (int)(n - off))
                   : SSL_read(c->ssl, (char *)buf + off, (int)(n - off));
        if (rv > 0)
            off += (size_t)rv;
        else if (!ssl_wait(c, rv, deadline, what))
            return false;
    }
    return true;
}

static pthread_mutex_t handshake_lock = PTHREAD_MUTEX_INITIALIZER;

static bool tls_start(struct conn *c, int64_t deadline)
{
    int rv;

    c->ssl = SSL_new(c->tr->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->sock) != 1) {
        snprintf(c->msg, sizeof c->msg, "TLS: out of memory");
        return false;
    }
    if (c->incoming)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    for (;;) {
        ERR_clear_error();
        /* One handshake step at a time in the process: OpenSSL 3.0's
         * certificate lookups share caches that race between threads
         * (ThreadSanitizer shows it in ASN1_STRING_cmp). A step is a few
         * ms of CPU and never waits on the network (the socket is
         * non-blocking; the waits are outside the lock), and handshakes
         * are rare, so a stranger cannot hold others back. */
        pthread_mutex_lock(&handshake_lock);
        rv = SSL_do_handshake(c->ssl);
        pthread_mutex_unlock(&handshake_lock);
        if (rv == 1)
            break;
        if (!ssl_wait(c, rv, deadline, "TLS handshake"))
            return false;
    }
    /* SSL_VERIFY_FAIL_IF_NO_PEER_CERT and verification already refused a
     * peer without a good certificate; this is the belt to those braces. */
    if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
        snprintf(c->msg, sizeof c->msg, "TLS handshake: peer not verified");
        return false;
    }
    {
        X509 *x = SSL_get1_peer_certificate(c->ssl);

        if (x == NULL) {
            snprintf(c->msg, sizeof c->msg,
                     "TLS handshake: peer sent no certificate");
            return false;
        }
        X509_free(x);
    }
    return true;
}

static bool make_pair(struct conn *c)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->pair) != 0) {
        c->pair[0] = c->pair[1] = -1;
        snprintf(c->msg, sizeof c->msg, "socketpair: %s", strerror(errno));
        return false;
    }
    if (!set_nonblock(c->pair[1])) {
        snprintf(c->msg, sizeof c->msg, "socketpair: %s", strerror(errno));
        return false;
    }
    return true;
}

static bool handshake_out(struct conn *c)
{
    struct tr *tr = c->tr;
    int64_t deadline = now_ms() + tr->handshake_ms;
    unsigned char pre[PRE_LEN], ack = 0;
    int err = 0, w;
    socklen_t elen = sizeof err;

    c->sock = socket(c->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->sock < 0) {
        snprintf(c->msg, sizeof c->msg, "socket: %s", strerror(errno));
        return false;
    }
    if (connect(c->sock, (struct sockaddr *)&c->sa, c->salen) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(c->msg, sizeof c->msg, "connect to %s: %s", c->peer,
                     strerror(errno));
            return false;
        }
        w = wait_fd(c, c->sock, POLLOUT, deadline);
        if (w <= 0) {
            snprintf(c->msg, sizeof c->msg, "connect to %s: %s", c->peer,
                     w == 0 ? "timed out" : "transport closing");
            return false;
        }
        if (getsockopt(c->sock, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
            err != 0) {
            snprintf(c->msg, sizeof c->msg, "connect to %s: %s", c->peer,
                     strerror(err != 0 ? err : errno));
            return false;
        }
    }
    sock_tune(c->sock);
    if (!tls_start(c, deadline))
        return false;
    memset(pre, 0, sizeof pre);
    memcpy(pre, PRE_MAGIC, PRE_MAGIC_LEN);
    for (int i = 0; i < 8; i++)
        pre[PRE_MAGIC_LEN + i] = (unsigned char)(tr->id >> (56 - 8 * i));
    memcpy(pre + PRE_MAGIC_LEN + 8, tr->address, strlen(tr->address));
    if (!ssl_full(c, pre, sizeof pre, true, deadline, "preamble") ||
        !ssl_full(c, &ack, 1, false, deadline, "waiting for the peer's acknowledgement"))
        return false;
    if (ack != ACK_BYTE) {
        snprintf(c->msg, sizeof c->msg, "peer %s: bad acknowledgement", c->peer);
        return false;
    }
    return make_pair(c);
}

static bool handshake_in(struct conn *c)
{
    int64_t deadline = now_ms() + c->tr->handshake_ms;
    unsigned char pre[PRE_LEN], ack = ACK_BYTE;
    raft_id id = 0;

    if (!tls_start(c, deadline) ||
        !ssl_full(c, pre, sizeof pre, false, deadline, "preamble"))
        return false;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | pre[PRE_MAGIC_LEN + i];
    if (memcmp(pre, PRE_MAGIC, PRE_MAGIC_LEN) != 0 || id == 0 ||
        !pre_addr_valid(pre + PRE_MAGIC_LEN + 8)) {
        snprintf(c->msg, sizeof c->msg, "preamble: malformed");
        return false;
    }
    c->peer_id = id;
    memcpy(c->addr, pre + PRE_MAGIC_LEN + 8, PRE_ADDR_LEN);
    if (!make_pair(c))
        return false;
    return ssl_full(c, &ack, 1, true, deadline, "acknowledgement");
}

/* Move bytes both ways between TLS and the socketpair until either side
 * closes, an error, or close() stops every thread. */
static void pump(struct conn *c)
{
    unsigned char in[PUMP_BUF], out[PUMP_BUF];
    size_t in_off = 0, in_len = 0, out_off = 0, out_len = 0;
    int b = c->pair[1];

    for (;;) {
        bool moved = false;
        short sev = 0, pev = 0;
        struct pollfd p[3];
        ssize_t n;
        int rv;

        if (in_len == 0) { /* TLS -> libraft */
            ERR_clear_error();
            rv = SSL_read(c->ssl, in, sizeof in);
            if (rv > 0) {
                in_off = 0;
                in_len = (size_t)rv;
                moved = true;
            } else {
                switch (SSL_get_error(c->ssl, rv)) {
                case SSL_ERROR_WANT_READ: sev |= POLLIN; break;
                case SSL_ERROR_WANT_WRITE: sev |= POLLOUT; break;
                default: return; /* the peer closed, or an error */
                }
            }
        }
        if (in_len > 0) {
            n = send(b, in + in_off, in_len, MSG_NOSIGNAL);
            if (n > 0) {
                in_off += (size_t)n;
                in_len -= (size_t)n;
                moved = true;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pev |= POLLOUT;
            } else if (errno != EINTR) {
                return;
            }
        }
        if (out_len == 0) { /* libraft -> TLS */
            n = recv(b, out, sizeof out, 0);
            if (n > 0) {
                out_off = 0;
                out_len = (size_t)n;
                moved = true;
            } else if (n == 0) {
                ERR_clear_error();
                (void)SSL_shutdown(c->ssl); /* best effort: non-blocking */
                return;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pev |= POLLIN;
            } else if (errno != EINTR) {
                return;
            }
        }
        if (out_len > 0) {
            ERR_clear_error();
            rv = SSL_write(c->ssl, out + out_off, (int)out_len);
            if (rv > 0) {
                out_off += (size_t)rv;
                out_len -= (size_t)rv;
                moved = true;
            } else {
                switch (SSL_get_error(c->ssl, rv)) {
                case SSL_ERROR_WANT_READ: sev |= POLLIN; break;
                case SSL_ERROR_WANT_WRITE: sev |= POLLOUT; break;
                default: return;
                }
            }
        }
        if (moved)
            continue;
        /* An fd with no events is left out (-1): its POLLHUP, while we
         * wait on the other side, would wake poll() in a busy loop. */
        p[0] = (struct pollfd){ sev != 0 ? c->sock : -1, sev, 0 };
        p[1] = (struct pollfd){ pev != 0 ? b : -1, pev, 0 };
        p[2] = (struct pollfd){ c->tr->stop[0], POLLIN, 0 };
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            return;
        if (p[2].revents != 0)
            return;
        /* POLLHUP/POLLERR on either fd: the next call reports it */
    }
}

/* Before closing a refused peer: read what it already sent (its TLS
 * Finished, say), for at most DRAIN_MS, so the close is a FIN and not a
 * reset that would discard our alert before the peer reads why. */
static void drain(struct conn *c)
{
    int64_t deadline = now_ms() + DRAIN_MS;
    char junk[4096];
    size_t total = 0;

    if (c->sock < 0 || shutdown(c->sock, SHUT_WR) != 0)
        return;
    while (total < 65536 && wait_fd(c, c->sock, POLLIN, deadline) > 0) {
        ssize_t n = recv(c->sock, junk, sizeof junk, 0);

        if (n <= 0)
            return;
        total += (size_t)n;
    }
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct tr *tr = c->tr;
    bool ok = c->incoming ? handshake_in(c) : handshake_out(c);

    if (c->incoming && !ok && !stopping(tr)) {
        atomic_fetch_add(&tr->refused, 1);
        tr_log(tr, "cluster: refused Raft connection from %s: %s", c->peer,
               c->msg);
        drain(c);
    }
    pthread_mutex_lock(&tr->mu);
    c->hs = ok ? HS_OK : HS_FAIL;
    if (c->incoming)
        tr->npending--;
    pthread_mutex_unlock(&tr->mu);
    uv_async_send(&tr->async);
    if (ok)
        pump(c);
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    c->ssl = NULL;
    close_fd(&c->sock);
    close_fd(&c->pair[1]);
    pthread_mutex_lock(&tr->mu);
    c->exited = true;
    pthread_mutex_unlock(&tr->mu);
    uv_async_send(&tr->async);
    return NULL;
}

/* Start c's thread with every signal blocked. On failure c is not linked. */
static bool conn_start(struct tr *tr, struct conn *c)
{
    sigset_t all, old;
    bool ok;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&tr->mu);
    ok = pthread_create(&c->thread, NULL, conn_main, c) == 0;
    if (ok) {
        c->next = tr->conns;
        tr->conns = c;
        tr->nconns++;
        if (c->incoming)
            tr->npending++;
    }
    pthread_mutex_unlock(&tr->mu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ok;
}

static struct conn *conn_new(struct tr *tr, bool incoming)
{
    struct conn *c = ai_calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->tr = tr;
    c->incoming = incoming;
    c->sock = c->pair[0] = c->pair[1] = -1;
    return c;
}

/* Free a connection whose thread has been joined (loop thread). */
static void conn_free(struct conn *c)
{
    close_fd(&c->pair[0]);
    ai_free(c);
}

/* ---- the acceptor thread ---------------------------------------------- */

static void *acceptor_main(void *arg)
{
    struct tr *tr = arg;

    for (;;) {
        struct pollfd p[2] = { { tr->lsock, POLLIN, 0 }, { tr->stop[0], POLLIN, 0 } };
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        struct conn *c;
        char name[64];
        bool busy;
        int fd;

        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (p[1].revents != 0)
            return NULL;
        if (p[0].revents == 0)
            continue;
        fd = accept(tr->lsock, (struct sockaddr *)&ss, &sl);
        if (fd < 0)
            continue; /* EAGAIN, ECONNABORTED, EMFILE...: poll again */
        peer_name(&ss, name, sizeof name);
        pthread_mutex_lock(&tr->mu);
        busy = tr->npending >= tr->max_pending || tr->nconns >= CLUSTER_MAX_CONNS;
        pthread_mutex_unlock(&tr->mu);
        c = busy ? NULL : conn_new(tr, true);
        if (c == NULL || !set_nonblock(fd) || !set_cloexec(fd)) {
            /* counted and logged before the peer can see the close */
            atomic_fetch_add(&tr->refused, 1);
            tr_log(tr, "cluster: refused Raft connection from %s: %s", name,
                   busy ? "too many connections in their handshake" : "out of resources");
            ai_free(c);
            close(fd);
            if (!busy)
                usleep(10000); /* e.g. out of memory: do not spin */
            continue;
        }
        sock_tune(fd);
        c->sock = fd;
        snprintf(c->peer, sizeof c->peer, "%s", name);
        if (!conn_start(tr, c)) {
            atomic_fetch_add(&tr->refused, 1);
            tr_log(tr, "cluster: refused Raft connection from %s: no thread", name);
            conn_free(c);
            close(fd);
            usleep(10000);
        }
    }
}

/* ---- the loop thread: results to libraft ------------------------------ */

/* A uv_pipe_t over c->pair[0] for libraft, which uv_close()s it and frees it
 * with raft_free (libraft's uv_send.c and uv_recv.c), hence raft_malloc. */
static void free_handle(uv_handle_t *h)
{
    raft_free(h);
}

static uv_stream_t *stream_take(struct tr *tr, struct conn *c)
{
    uv_pipe_t *p = raft_malloc(sizeof *p);

    if (p == NULL)
        return NULL;
    if (uv_pipe_init(tr->loop, p, 0) != 0) {
        raft_free(p);
        return NULL;
    }
    if (uv_pipe_open(p, c->pair[0]) != 0) {
        uv_close((uv_handle_t *)p, free_handle);
        return NULL;
    }
    c->pair[0] = -1; /* the pipe owns it now */
    return (uv_stream_t *)p;
}

static void report(struct tr *tr, struct conn *c)
{
    struct raft_uv_transport *t = tr->t;
    uv_stream_t *s = NULL;

    c->handled = true;
    if (c->hs == HS_OK) {
        s = stream_take(tr, c);
        if (s == NULL)
            snprintf(c->msg, sizeof c->msg, "out of memory for the stream");
    }
    if (c->incoming) {
        if (s == NULL)
            return; /* logged by its thread; libraft never sees it */
        if (tr->accept_cb == NULL) {
            uv_close((uv_handle_t *)s, free_handle);
            return;
        }
        atomic_fetch_add(&tr->accepted, 1);
        tr->accept_cb(t, c->peer_id, c->addr, s);
        return;
    }
    if (s == NULL) {
        snprintf(t->errmsg, sizeof t->errmsg, "%s", c->msg);
        c->req->cb(c->req, NULL, RAFT_NOCONNECTION);
        return;
    }
    c->req->cb(c->req, s, 0);
}

static void async_cb(uv_async_t *a)
{
    struct tr *tr = a->data;
    struct conn *c, **pp, *ready[CLUSTER_MAX_CONNS], *dead = NULL;
    size_t nready = 0;

    /* Results first: a callback may call close(), which then owns the rest. */
    pthread_mutex_lock(&tr->mu);
    for (c = tr->conns; c != NULL && nready < CLUSTER_MAX_CONNS; c = c->next)
        if (c->hs != HS_NONE && !c->handled)
            ready[nready++] = c;
    pthread_mutex_unlock(&tr->mu);
    for (size_t i = 0; i < nready && !tr->closing; i++)
        report(tr, ready[i]);
    if (tr->closing)
        return;
    pthread_mutex_lock(&tr->mu);
    for (pp = &tr->conns; (c = *pp) != NULL;) {
        if (c->exited && c->handled) {
            *pp = c->next;
            tr->nconns--;
            c->next = dead;
            dead = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&tr->mu);
    while ((c = dead) != NULL) {
        dead = c->next;
        pthread_join(c->thread, NULL);
        conn_free(c);
    }
}

/* ---- raft_uv_transport ------------------------------------------------ */

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct tr *tr = t->impl;
    struct sockaddr_storage ss;
    socklen_t sl;

    if (id == 0 || !addr_parse(address, &ss, &sl)) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "raft address \"%.64s\": want IPv4:port or [IPv6]:port", address);
        return RAFT_INVALID;
    }
    tr->id = id;
    snprintf(tr->address, sizeof tr->address, "%s", address);
    if (!tr->async_init) {
        if (uv_async_init(tr->loop, &tr->async, async_cb) != 0) {
            snprintf(t->errmsg, sizeof t->errmsg, "uv_async_init failed");
            return RAFT_IOERR;
        }
        tr->async.data = tr;
        tr->async_init = true;
    }
    return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct tr *tr = t->impl;
    struct sockaddr_storage ss;
    socklen_t sl;
    int one = 1;
    sigset_t all, old;

    if (!addr_parse(tr->address, &ss, &sl)) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad raft address");
        return RAFT_INVALID;
    }
    tr->lsock = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (tr->lsock < 0 ||
        setsockopt(tr->lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(tr->lsock, (struct sockaddr *)&ss, sl) != 0 ||
        listen(tr->lsock, 64) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %.64s: %s", tr->address,
                 strerror(errno));
        close_fd(&tr->lsock);
        return RAFT_IOERR;
    }
    tr->accept_cb = cb;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    tr->acceptor_running = pthread_create(&tr->acceptor, NULL, acceptor_main, tr) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!tr->acceptor_running) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen: no thread");
        close_fd(&tr->lsock);
        tr->accept_cb = NULL;
        return RAFT_IOERR;
    }
    return 0;
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct tr *tr = t->impl;
    struct conn *c;
    bool full;

    (void)id;
    pthread_mutex_lock(&tr->mu);
    full = tr->nconns >= CLUSTER_MAX_CONNS;
    pthread_mutex_unlock(&tr->mu);
    if (tr->closing || full) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect: %s",
                 tr->closing ? "transport closing" : "too many connections");
        return RAFT_NOCONNECTION;
    }
    if ((c = conn_new(tr, false)) == NULL) {
        snprintf(t->errmsg, sizeof t->errmsg, "out of memory");
        return RAFT_NOMEM;
    }
    if (!addr_parse(address, &c->sa, &c->salen)) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "raft address \"%.64s\": want IPv4:port or [IPv6]:port", address);
        conn_free(c);
        return RAFT_NOCONNECTION;
    }
    snprintf(c->peer, sizeof c->peer, "%.63s", address);
    c->req = req;
    req->cb = cb;
    if (!conn_start(tr, c)) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect: no thread");
        conn_free(c);
        return RAFT_NOCONNECTION;
    }
    return 0;
}

static void async_closed(uv_handle_t *h)
{
    struct tr *tr = h->data;
    struct conn *c;

    while ((c = tr->conns) != NULL) {
        tr->conns = c->next;
        if (!c->handled && !c->incoming)
            c->req->cb(c->req, NULL, RAFT_CANCELED);
        conn_free(c);
    }
    tr->nconns = 0;
    if (tr->close_cb != NULL)
        tr->close_cb(tr->t);
}

/* Stop the acceptor and every bridge, and join them (they wake at once). */
static void stop_threads(struct tr *tr)
{
    struct conn *c;

    if (tr->stop[1] >= 0) {
        ssize_t n;

        do
            n = write(tr->stop[1], "x", 1);
        while (n < 0 && errno == EINTR);
        close_fd(&tr->stop[1]);
    }
    if (tr->acceptor_running)
        pthread_join(tr->acceptor, NULL);
    tr->acceptor_running = false;
    close_fd(&tr->lsock);
    /* Nothing adds to the list now: the acceptor is gone, and connect()
     * runs on this thread. */
    for (c = tr->conns; c != NULL; c = c->next)
        pthread_join(c->thread, NULL);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct tr *tr = t->impl;

    tr->closing = true;
    tr->close_cb = cb;
    tr->accept_cb = NULL;
    stop_threads(tr);
    if (tr->async_init) {
        uv_close((uv_handle_t *)&tr->async, async_closed);
        tr->async_init = false;
    } else {
        async_closed((uv_handle_t *)&tr->async);
    }
}

/* ---- set-up ----------------------------------------------------------- */

/* Refuse to prompt for a pass phrase: an encrypted key is an error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static ai_code ctx_make(const cluster_tls *tls, SSL_CTX **out, ai_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    char buf[160];
    ai_code rc = AI_EINVAL;

    *out = NULL;
    ERR_clear_error();
    if (ctx == NULL)
        return ai_err_set(err, AI_ENOMEM, "cluster TLS: out of memory");
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        ai_err_set(err, AI_EINTERNAL, "cluster TLS: cannot require TLS 1.2");
        goto done;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_path) != 1) {
        ai_err_set(err, AI_EINVAL, "cluster TLS: certificate %s: %s",
                   tls->cert_path, ossl_why(buf, sizeof buf));
        goto done;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, tls->key_path, SSL_FILETYPE_PEM) != 1) {
        ai_err_set(err, AI_EINVAL, "cluster TLS: key %s: %s", tls->key_path,
                   ossl_why(buf, sizeof buf));
        goto done;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ai_err_set(err, AI_EINVAL, "cluster TLS: key %s does not match certificate %s",
                   tls->key_path, tls->cert_path);
        goto done;
    }
    /* The cluster CA is the only trust anchor: no system store. */
    if (SSL_CTX_load_verify_locations(ctx, tls->ca_path, NULL) != 1) {
        ai_err_set(err, AI_EINVAL, "cluster TLS: ca %s: %s", tls->ca_path,
                   ossl_why(buf, sizeof buf));
        goto done;
    }
    /* Both roles verify (the default purposes sslserver/sslclient accept a
     * certificate with no extended key usage, or with both). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Every certificate in the ca file is a trust anchor, a root or an
     * intermediate: "chains to the file's ca" (DESIGN §9). */
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify_depth(ctx, 8);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    *out = ctx;
    ctx = NULL;
    rc = AI_OK;
done:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

ai_code cluster_transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                               const cluster_tls *tls, ai_err *err)
{
    void *data = t != NULL ? t->data : NULL;
    struct tr *tr = NULL;
    ai_code rc;

    if (t == NULL || loop == NULL || tls == NULL || tls->cert_path == NULL ||
        tls->key_path == NULL || tls->ca_path == NULL)
        return ai_err_set(err, AI_EINVAL, "cluster TLS: certificate, key and ca are required");
    memset(t, 0, sizeof *t);
    t->data = data;
    if ((tr = ai_calloc(1, sizeof *tr)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "cluster TLS: out of memory");
    tr->stop[0] = tr->stop[1] = tr->lsock = -1;
    if ((rc = ctx_make(tls, &tr->ctx, err)) != AI_OK)
        goto fail;
    if (pipe(tr->stop) != 0 || !set_cloexec(tr->stop[0]) || !set_cloexec(tr->stop[1])) {
        rc = ai_err_set(err, AI_EINTERNAL, "cluster TLS: pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_mutex_init(&tr->mu, NULL) != 0) {
        rc = ai_err_set(err, AI_ENOMEM, "cluster TLS: out of memory");
        goto fail;
    }
    tr->t = t;
    tr->loop = loop;
    tr->handshake_ms = tls->handshake_ms != 0 ? tls->handshake_ms : CLUSTER_HANDSHAKE_MS;
    tr->max_pending = tls->max_pending != 0 ? tls->max_pending : CLUSTER_MAX_PENDING;
    tr->log = tls->log;
    tr->log_arg = tls->log_arg;
    atomic_init(&tr->accepted, 0);
    atomic_init(&tr->refused, 0);
    t->impl = tr;
    t->init = tr_init;
    t->listen = tr_listen;
    t->connect = tr_connect;
    t->close = tr_close;
    return AI_OK;
fail:
    close_fd(&tr->stop[0]);
    close_fd(&tr->stop[1]);
    SSL_CTX_free(tr->ctx);
    ai_free(tr);
    return rc;
}

void cluster_transport_close(struct raft_uv_transport *t)
{
    struct tr *tr;
    struct conn *c;

    if (t == NULL || (tr = t->impl) == NULL)
        return;
    /* libraft never started us, or a caller skipped t->close: make sure
     * no thread outlives tr. */
    stop_threads(tr);
    while ((c = tr->conns) != NULL) {
        tr->conns = c->next;
        conn_free(c);
    }
    close_fd(&tr->stop[0]);
    close_fd(&tr->stop[1]);
    pthread_mutex_destroy(&tr->mu);
    SSL_CTX_free(tr->ctx);
    ai_free(tr);
    t->impl = NULL;
}

void cluster_transport_stats_get(const struct raft_uv_transport *t,
                                 cluster_transport_stats *out)
{
    struct tr *tr = t->impl;

    out->accepted = atomic_load(&tr->accepted);
    out->refused = atomic_load(&tr->refused);
}
