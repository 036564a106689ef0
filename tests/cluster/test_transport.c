/* test_transport.c - Suite "cluster_transport": Raft traffic over mutual
 * TLS (src/cluster/transport.c), driven as libraft drives it (t->init,
 * listen, connect, close on a libuv loop) with real TLS on 127.0.0.1.
 * Certificates are made per test under a fresh mkdtemp: a cluster CA with
 * a node certificate carrying serverAuth+clientAuth (srv_tls_issue) and
 * one with no extended key usage (openssl x509 -req), and a foreign CA.
 * Each test ends with its transports closed and freed and the process
 * back to the threads it started with. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/ssl.h>

#include "cluster/transport.h"
#include "server/tls.h"
#include "../tests.h"

#define WAIT_MS 8000 /* upper bound of every wait: a hang fails, not blocks */
#define BIG (3u * 1024 * 1024 + 12345)

/* ---- certificates ----------------------------------------------------- */

typedef struct pki {
    char dir[64];    /* cluster CA: ca.pem, both.pem/key, noeku.pem/key */
    char other[80];  /* foreign CA: other/ca.pem, x.pem/key */
} pki;

static void issue_ok(const char *dir, const char *name)
{
    ai_err err = {0};

    ck_assert_msg(srv_tls_issue(dir, name, T_LIST("IP:127.0.0.1"), true, &err) == AI_OK,
                  "srv_tls_issue: %s", err.msg);
}

static void pki_make(pki *p)
{
    char cmd[1024];

    snprintf(p->dir, sizeof p->dir, "/tmp/agent-iam-ctr-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(p->dir));
    snprintf(p->other, sizeof p->other, "%s/other", p->dir);
    issue_ok(p->dir, "both");
    issue_ok(p->other, "x");
    /* A certificate with no extensions at all, signed by the cluster CA. */
    snprintf(cmd, sizeof cmd,
             "(cd %s && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -keyout noeku.key -subj /CN=noeku -out noeku.csr && "
             "openssl x509 -req -in noeku.csr -CA ca.pem -CAkey ca.key -days 2 "
             "-out noeku.pem && ! openssl x509 -in noeku.pem -noout -text | "
             "grep -q 'Extended Key Usage') >/dev/null 2>&1",
             p->dir);
    ck_assert_msg(system(cmd) == 0, "openssl could not make noeku.pem");
}

static void pki_free(pki *p)
{
    char cmd[256];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- a node: one transport, what libraft would have been told ---------- */

typedef struct end {
    uv_stream_t *s;
    unsigned char *rx;
    size_t rxlen, rxcap;
    bool eof;
    uv_write_t wr;
    int wrote; /* 1 done ok, -1 failed */
} end;

typedef struct creq {
    struct raft_uv_connect req;
    int fired, status;
    end e;
} creq;

typedef struct node {
    struct raft_uv_transport t;
    char addr[64];
    int accepts;
    raft_id acc_id;
    char acc_addr[64];
    end acc;
    int closed;
    pthread_mutex_t mu; /* the log callback runs on transport threads */
    int nlog;
    char lastlog[320];
} node;

static uv_loop_t loop;

static void free_handle(uv_handle_t *h)
{
    raft_free(h);
}

static void on_log(void *arg, const char *line)
{
    node *n = arg;

    pthread_mutex_lock(&n->mu);
    n->nlog++;
    snprintf(n->lastlog, sizeof n->lastlog, "%s", line);
    pthread_mutex_unlock(&n->mu);
}

static int nlog_of(node *n)
{
    int v;

    pthread_mutex_lock(&n->mu);
    v = n->nlog;
    pthread_mutex_unlock(&n->mu);
    return v;
}

/* Does n's last log line contain want? */
static bool lastlog_has(node *n, const char *want)
{
    bool yes;

    pthread_mutex_lock(&n->mu);
    yes = strstr(n->lastlog, want) != NULL;
    pthread_mutex_unlock(&n->mu);
    return yes;
}

static void on_accept(struct raft_uv_transport *t, raft_id id,
                      const char *address, uv_stream_t *s)
{
    node *n = t->data;

    n->accepts++;
    n->acc_id = id;
    snprintf(n->acc_addr, sizeof n->acc_addr, "%s", address);
    if (n->acc.s != NULL) { /* keep the first; close the others */
        uv_close((uv_handle_t *)s, free_handle);
        return;
    }
    n->acc.s = s;
    s->data = &n->acc;
}

static void node_init(node *n, raft_id id, const char *dir, const char *name,
                      const char *ca, unsigned handshake_ms, unsigned max_pending)
{
    char cert[160], key[160], cap[160];
    cluster_tls tls = {0};
    ai_err err = {0};

    memset(n, 0, sizeof *n);
    pthread_mutex_init(&n->mu, NULL);
    snprintf(cert, sizeof cert, "%s/%s.pem", dir, name);
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    snprintf(cap, sizeof cap, "%s/ca.pem", ca);
    snprintf(n->addr, sizeof n->addr, "127.0.0.1:%u",
             (unsigned)t_free_port());
    tls.cert_path = cert;
    tls.key_path = key;
    tls.ca_path = cap;
    tls.handshake_ms = handshake_ms;
    tls.max_pending = max_pending;
    tls.log = on_log;
    tls.log_arg = n;
    n->t.data = n;
    ck_assert_msg(cluster_transport_init(&n->t, &loop, &tls, &err) == AI_OK,
                  "cluster_transport_init: %s", err.msg);
    ck_assert_ptr_eq(n->t.data, n);
    ck_assert_int_eq(n->t.init(&n->t, id, n->addr), 0);
}

static void node_listen(node *n)
{
    ck_assert_msg(n->t.listen(&n->t, on_accept) == 0, "listen: %s", n->t.errmsg);
}

static void on_connect(struct raft_uv_connect *req, uv_stream_t *s, int status)
{
    creq *c = req->data;

    c->fired++;
    c->status = status;
    if (status == 0) {
        ck_assert_ptr_nonnull(s);
        c->e.s = s;
        s->data = &c->e;
    } else {
        ck_assert_ptr_null(s);
    }
}

static void node_connect(node *n, creq *c, raft_id id, const char *addr)
{
    memset(c, 0, sizeof *c);
    c->req.data = c;
    ck_assert_msg(n->t.connect(&n->t, &c->req, id, addr, on_connect) == 0,
                  "connect: %s", n->t.errmsg);
}

static void on_closed(struct raft_uv_transport *t)
{
    ((node *)t->data)->closed++;
}

/* Run the loop until *flag is nonzero (fails after WAIT_MS). */
static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define RUN_UNTIL(cond) run_until_(&(cond), sizeof(cond), #cond)
static void run_until_(const void *p, size_t sz, const char *what)
{
    int64_t end_at = mono_ms() + WAIT_MS;

    for (;;) {
        bool set = sz == sizeof(int) ? *(const int *)p != 0 : *(const bool *)p;

        if (set)
            return;
        ck_assert_msg(mono_ms() < end_at, "timed out waiting for %s", what);
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

static void run_for(int ms)
{
    int64_t end_at = mono_ms() + ms;

    while (mono_ms() < end_at) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

static void end_close(end *e)
{
    if (e->s != NULL)
        uv_close((uv_handle_t *)e->s, free_handle);
    e->s = NULL;
    free(e->rx);
    e->rx = NULL;
}

static void node_close(node *n)
{
    n->t.close(&n->t, on_closed);
    RUN_UNTIL(n->closed);
    ck_assert_int_eq(n->closed, 1);
    cluster_transport_close(&n->t);
    pthread_mutex_destroy(&n->mu);
}

/* ---- streams ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    end *e = h->data;

    (void)hint;
    if (e->rxcap - e->rxlen < 65536) {
        e->rxcap = e->rxcap * 2 + 65536;
        e->rx = realloc(e->rx, e->rxcap);
        ck_assert_ptr_nonnull(e->rx);
    }
    *b = uv_buf_init((char *)e->rx + e->rxlen, 65536);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    end *e = s->data;

    (void)b;
    if (n > 0)
        e->rxlen += (size_t)n;
    else if (n < 0)
        e->eof = true;
}

static void on_written(uv_write_t *w, int status)
{
    end *e = w->data;

    e->wrote = status == 0 ? 1 : -1;
}

static void end_write(end *e, const unsigned char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);

    e->wrote = 0;
    e->wr.data = e;
    ck_assert_int_eq(uv_write(&e->wr, e->s, &b, 1, on_written), 0);
}

static void end_read(end *e)
{
    ck_assert_int_eq(uv_read_start(e->s, on_alloc, on_read), 0);
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 131u + seed) ^ (i >> 13));
    return p;
}

static void wait_bytes(end *e, size_t n)
{
    int64_t end_at = mono_ms() + WAIT_MS;

    while (e->rxlen < n) {
        ck_assert_msg(mono_ms() < end_at, "only %zu of %zu bytes arrived",
                      e->rxlen, n);
        ck_assert_msg(!e->eof, "stream closed after %zu of %zu bytes",
                      e->rxlen, n);
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(200);
    }
}

/* ---- raw clients: what a stranger can do ------------------------------- */

static int tcp_to(const char *addr)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)strtoul(strchr(addr, ':') + 1, NULL, 10));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Milliseconds until the server closes fd (it sends nothing), or -1 after
 * limit_ms. */
static int ms_until_closed(int fd, int limit_ms)
{
    int64_t t0 = mono_ms();
    char b[64];

    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        int left = (int)(t0 + limit_ms - mono_ms());

        if (left <= 0)
            return -1;
        uv_run(&loop, UV_RUN_NOWAIT);
        if (poll(&p, 1, left < 20 ? left : 20) == 1) {
            ssize_t n = recv(fd, b, sizeof b, 0);

            if (n <= 0)
                return (int)(mono_ms() - t0);
        }
    }
}

/* A TLS client that trusts the cluster CA, with the given certificate or
 * none; blocking. The handshake result is in *hs_ok. */
typedef struct raw {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
} raw;

static void raw_open(raw *r, const char *addr, const char *ca,
                     const char *cert, const char *key)
{
    struct timeval tv = { 3, 0 };

    r->ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(r->ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(r->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
    if (cert != NULL) {
        ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(r->ctx, cert), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM), 1);
    }
    r->fd = tcp_to(addr);
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    r->ssl = SSL_new(r->ctx);
    SSL_set_fd(r->ssl, r->fd);
}

static void raw_close(raw *r)
{
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    close(r->fd);
}

/* The server answered with its acknowledgement byte? (false: it closed) */
static bool raw_acked(raw *r)
{
    unsigned char b = 0;
    int64_t end_at = mono_ms() + 3000;
    int n;

    while ((n = SSL_read(r->ssl, &b, 1)) <= 0 &&
           SSL_get_error(r->ssl, n) == SSL_ERROR_WANT_READ && mono_ms() < end_at)
        ;
    return n == 1 && b == 0x06;
}

/* Run the loop until n has refused want connections (its threads count
 * and log a refusal a moment after the peer sees it), or WAIT_MS. */
static void wait_refused(node *n, uint64_t want, cluster_transport_stats *st)
{
    int64_t end_at = mono_ms() + WAIT_MS;

    do {
        run_for(10);
        cluster_transport_stats_get(&n->t, st);
    } while (st->refused < want && mono_ms() < end_at);
}

static int threads_now(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int threads0;
static pki P;

static void *nothing(void *arg)
{
    return arg;
}

static void setup(void)
{
    pthread_t th;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    pki_make(&P);
    /* A first thread, joined: a sanitizer's own helper thread, started on
     * the first pthread_create, is then in the baseline. */
    ck_assert_int_eq(pthread_create(&th, NULL, nothing, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    threads0 = threads_now();
}

static void teardown(void)
{
    int64_t end_at = mono_ms() + 2000;

    /* Every thread was joined; the kernel may take a moment to list it gone. */
    while (threads_now() != threads0 && mono_ms() < end_at)
        usleep(1000);
    ck_assert_int_eq(threads_now(), threads0);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    pki_free(&P);
}

static void setup_raft(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    pki_make(&P);
}

static void teardown_raft(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    pki_free(&P);
}

/* ---- tests ------------------------------------------------------------ */

/* (a) node 1 (no EKU) dials node 2 (serverAuth+clientAuth) and node 2
 * dials node 1: each accept callback gets the other's id and address, and
 * bytes cross both ways, a few MiB at once in both directions. */
START_TEST(test_transport_connects_and_carries_bytes_both_ways)
{
    node a, b;
    creq ab, ba;
    unsigned char *big1 = pattern(BIG, 7), *big2 = pattern(BIG, 99);

    node_init(&a, 1, P.dir, "noeku", P.dir, 0, 0);
    node_init(&b, 2, P.dir, "both", P.dir, 0, 0);
    node_listen(&a);
    node_listen(&b);
    node_connect(&a, &ab, 2, b.addr);
    node_connect(&b, &ba, 1, a.addr);
    RUN_UNTIL(ab.fired);
    RUN_UNTIL(ba.fired);
    ck_assert_msg(ab.status == 0, "1->2: %s", a.t.errmsg);
    ck_assert_msg(ba.status == 0, "2->1: %s", b.t.errmsg);
    RUN_UNTIL(b.accepts);
    RUN_UNTIL(a.accepts);
    ck_assert_int_eq(b.acc_id, 1);
    ck_assert_str_eq(b.acc_addr, a.addr);
    ck_assert_int_eq(a.acc_id, 2);
    ck_assert_str_eq(a.acc_addr, b.addr);

    /* small, then big both ways at once (partial reads and writes) */
    end_read(&b.acc);
    end_read(&ab.e);
    end_write(&ab.e, (const unsigned char *)"hello", 5);
    wait_bytes(&b.acc, 5);
    ck_assert_int_eq(memcmp(b.acc.rx, "hello", 5), 0);
    b.acc.rxlen = 0;
    end_write(&ab.e, big1, BIG);
    end_write(&b.acc, big2, BIG);
    wait_bytes(&b.acc, BIG);
    wait_bytes(&ab.e, BIG);
    RUN_UNTIL(ab.e.wrote);
    RUN_UNTIL(b.acc.wrote);
    ck_assert_int_eq(ab.e.wrote, 1);
    ck_assert_int_eq(b.acc.wrote, 1);
    ck_assert_uint_eq(b.acc.rxlen, BIG);
    ck_assert_uint_eq(ab.e.rxlen, BIG);
    ck_assert_int_eq(memcmp(b.acc.rx, big1, BIG), 0);
    ck_assert_int_eq(memcmp(ab.e.rx, big2, BIG), 0);

    /* the other direction carries bytes too */
    end_read(&a.acc);
    end_write(&ba.e, (const unsigned char *)"pong", 4);
    wait_bytes(&a.acc, 4);
    ck_assert_int_eq(memcmp(a.acc.rx, "pong", 4), 0);

    /* closing libraft's stream on one side is EOF on the other */
    end_close(&ab.e);
    RUN_UNTIL(b.acc.eof);

    {
        cluster_transport_stats st;

        cluster_transport_stats_get(&b.t, &st);
        ck_assert_uint_eq(st.accepted, 1);
        ck_assert_uint_eq(st.refused, 0);
    }
    end_close(&b.acc);
    end_close(&a.acc);
    end_close(&ba.e);
    node_close(&a);
    node_close(&b);
    free(big1);
    free(big2);
}
END_TEST

/* (b) a node whose certificate comes from another CA is refused both
 * ways: its connect fails, our connect to it fails, and neither accept
 * callback runs; so is one that trusts our CA but shows a foreign
 * certificate (seen by connect, through the missing acknowledgement). */
START_TEST(test_transport_refuses_a_foreign_ca_both_ways)
{
    node a, x, y;
    creq xa, ax, ya;
    cluster_transport_stats st;

    node_init(&a, 1, P.dir, "both", P.dir, 0, 0);
    node_init(&x, 7, P.other, "x", P.other, 0, 0);
    node_init(&y, 8, P.other, "x", P.dir, 0, 0); /* trusts us; foreign cert */
    node_listen(&a);
    node_listen(&x);

    node_connect(&x, &xa, 1, a.addr);
    RUN_UNTIL(xa.fired);
    ck_assert_int_eq(xa.status, RAFT_NOCONNECTION);
    ck_assert_msg(strstr(x.t.errmsg, "certificate") != NULL, "errmsg: %s", x.t.errmsg);

    node_connect(&a, &ax, 7, x.addr);
    RUN_UNTIL(ax.fired);
    ck_assert_int_eq(ax.status, RAFT_NOCONNECTION);
    ck_assert_msg(strstr(a.t.errmsg, "certificate") != NULL, "errmsg: %s", a.t.errmsg);

    node_connect(&y, &ya, 1, a.addr);
    RUN_UNTIL(ya.fired);
    ck_assert_int_eq(ya.status, RAFT_NOCONNECTION);
    ck_assert_msg(strstr(y.t.errmsg, "our certificate") != NULL,
                  "errmsg: %s", y.t.errmsg);

    /* a's refusals are counted and logged (the thread may still be at it) */
    wait_refused(&a, 2, &st);
    ck_assert_uint_eq(st.refused, 2);
    ck_assert_int_ge(nlog_of(&a), 2);
    ck_assert_msg(lastlog_has(&a, "refused"), "log lacks %s", "refused");
    run_for(50);
    ck_assert_int_eq(a.accepts, 0);
    ck_assert_int_eq(x.accepts, 0);
    cluster_transport_stats_get(&a.t, &st);
    ck_assert_uint_eq(st.accepted, 0);
    node_close(&a);
    node_close(&x);
    node_close(&y);
}
END_TEST

/* A client with no certificate, and one with a good certificate that
 * sends a garbage preamble, never reach the accept callback. */
START_TEST(test_transport_refuses_no_certificate_and_garbage_preamble)
{
    node a;
    raw r;
    char ca[128], cert[128], key[128];
    unsigned char junk[272];
    cluster_transport_stats st;

    node_init(&a, 1, P.dir, "both", P.dir, 0, 0);
    node_listen(&a);
    snprintf(ca, sizeof ca, "%s/ca.pem", P.dir);
    snprintf(cert, sizeof cert, "%s/noeku.pem", P.dir);
    snprintf(key, sizeof key, "%s/noeku.key", P.dir);

    raw_open(&r, a.addr, ca, NULL, NULL);
    (void)SSL_connect(r.ssl); /* TLS 1.3: the client may think it is in */
    ck_assert(!raw_acked(&r));
    raw_close(&r);

    raw_open(&r, a.addr, ca, cert, key);
    ck_assert_int_eq(SSL_connect(r.ssl), 1);
    memset(junk, 'A', sizeof junk);
    ck_assert_int_eq(SSL_write(r.ssl, junk, sizeof junk), (int)sizeof junk);
    ck_assert(!raw_acked(&r));
    raw_close(&r);

    wait_refused(&a, 2, &st);
    ck_assert_uint_eq(st.refused, 2);
    ck_assert_int_eq(a.accepts, 0);
    node_close(&a);
}
END_TEST

/* (c) a client that opens TCP and sends nothing is dropped after the
 * handshake deadline, and a good connection goes through meanwhile. */
START_TEST(test_transport_drops_a_silent_client_without_blocking_others)
{
    node a, b;
    creq ba;
    int fd, ms;
    cluster_transport_stats st;

    node_init(&a, 1, P.dir, "both", P.dir, 600, 0);
    node_init(&b, 2, P.dir, "noeku", P.dir, 600, 0);
    node_listen(&a);
    fd = tcp_to(a.addr);
    node_connect(&b, &ba, 1, a.addr);
    RUN_UNTIL(ba.fired);
    ck_assert_msg(ba.status == 0, "%s", b.t.errmsg);
    RUN_UNTIL(a.accepts);
    ms = ms_until_closed(fd, 3000);
    ck_assert_msg(ms >= 0, "the silent client was not dropped");
    close(fd);
    run_for(20);
    cluster_transport_stats_get(&a.t, &st);
    ck_assert_uint_eq(st.refused, 1);
    ck_assert_uint_eq(st.accepted, 1);
    ck_assert_msg(lastlog_has(&a, "timed out"), "log lacks %s", "timed out");
    end_close(&a.acc);
    end_close(&ba.e);
    node_close(&a);
    node_close(&b);
}
END_TEST

/* Past max_pending strangers in their handshake, the next connection is
 * closed at once, long before the deadline. */
START_TEST(test_transport_bounds_pending_handshakes)
{
    node a;
    int fd1, fd2, fd3, ms;
    cluster_transport_stats st;

    node_init(&a, 1, P.dir, "both", P.dir, 4000, 2);
    node_listen(&a);
    fd1 = tcp_to(a.addr);
    fd2 = tcp_to(a.addr);
    run_for(100); /* both are in their handshake */
    fd3 = tcp_to(a.addr);
    ms = ms_until_closed(fd3, 2000);
    ck_assert_msg(ms >= 0 && ms < 1500, "third connection closed after %d ms", ms);
    cluster_transport_stats_get(&a.t, &st);
    ck_assert_uint_eq(st.refused, 1);
    ck_assert_msg(lastlog_has(&a, "too many"), "log lacks %s", "too many");
    close(fd1);
    close(fd2);
    close(fd3);
    node_close(&a);
}
END_TEST

/* (d) close with live connections, a connect to a dead port, a connect
 * stuck in its handshake (a listener that never answers) and a stranger in
 * its handshake: every connect callback fires once (the stuck one with
 * RAFT_CANCELED), the close callback fires, threads are joined, and
 * memory is freed (ASan). */
START_TEST(test_transport_close_cancels_and_frees)
{
    node a, b;
    creq ab, dead, stuck;
    char dead_addr[64], stuck_addr[64];
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    int hole, stranger;
    int64_t t0;

    node_init(&a, 1, P.dir, "both", P.dir, 5000, 0);
    node_init(&b, 2, P.dir, "both", P.dir, 5000, 0);
    node_listen(&b);
    node_connect(&a, &ab, 2, b.addr);
    RUN_UNTIL(ab.fired);
    ck_assert_int_eq(ab.status, 0);
    RUN_UNTIL(b.accepts);

    snprintf(dead_addr, sizeof dead_addr, "127.0.0.1:%u",
             (unsigned)t_free_port());
    hole = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(hole, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(hole, 4), 0);
    ck_assert_int_eq(getsockname(hole, (struct sockaddr *)&sa, &sl), 0);
    snprintf(stuck_addr, sizeof stuck_addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    node_connect(&a, &dead, 3, dead_addr);
    node_connect(&a, &stuck, 4, stuck_addr);
    stranger = tcp_to(b.addr);
    run_for(100);
    ck_assert_int_eq(stuck.fired, 0);

    t0 = mono_ms();
    a.t.close(&a.t, on_closed);
    b.t.close(&b.t, on_closed);
    RUN_UNTIL(a.closed);
    RUN_UNTIL(b.closed);
    ck_assert_msg(mono_ms() - t0 < 1000, "close took %lld ms", (long long)(mono_ms() - t0));
    ck_assert_int_eq(dead.fired, 1);
    ck_assert_int_ne(dead.status, 0);
    ck_assert_int_eq(stuck.fired, 1);
    ck_assert_int_eq(stuck.status, RAFT_CANCELED);
    ck_assert_int_eq(ab.fired, 1);
    /* libraft's streams see the end, then libraft closes them */
    end_read(&ab.e);
    end_read(&b.acc);
    RUN_UNTIL(ab.e.eof);
    RUN_UNTIL(b.acc.eof);
    end_close(&ab.e);
    end_close(&b.acc);
    run_for(10);
    /* the stranger cut off by close is no refusal to log */
    {
        cluster_transport_stats st;

        cluster_transport_stats_get(&b.t, &st);
        ck_assert_uint_eq(st.refused, 0);
        ck_assert_int_eq(nlog_of(&b), 0);
    }
    cluster_transport_close(&a.t);
    cluster_transport_close(&b.t);
    pthread_mutex_destroy(&a.mu);
    pthread_mutex_destroy(&b.mu);
    close(hole);
    close(stranger);
}
END_TEST

/* Bad material fails at init with the path and no key text. */
START_TEST(test_transport_init_refuses_bad_material)
{
    struct raft_uv_transport t;
    cluster_tls tls = {0};
    ai_err err = {0};
    char cert[128], key[128], ca[128];

    snprintf(cert, sizeof cert, "%s/both.pem", P.dir);
    snprintf(key, sizeof key, "%s/noeku.key", P.dir); /* not both.pem's key */
    snprintf(ca, sizeof ca, "%s/ca.pem", P.dir);
    tls.cert_path = cert;
    tls.key_path = key;
    tls.ca_path = ca;
    ck_assert_int_eq(cluster_transport_init(&t, &loop, &tls, &err), AI_EINVAL);
    ck_assert_msg(strstr(err.msg, "mismatch") != NULL, "%s", err.msg);
    ck_assert(strstr(err.msg, "PRIVATE KEY") == NULL);
    memset(&err, 0, sizeof err);
    tls.key_path = key;
    tls.ca_path = "/nonexistent/ca.pem";
    snprintf(key, sizeof key, "%s/both.key", P.dir);
    ck_assert_int_eq(cluster_transport_init(&t, &loop, &tls, &err), AI_EINVAL);
    ck_assert_msg(strstr(err.msg, "/nonexistent/ca.pem") != NULL, "%s", err.msg);
    /* a usable one, never started by libraft, is released directly */
    tls.ca_path = ca;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(cluster_transport_init(&t, &loop, &tls, &err), AI_OK);
    cluster_transport_close(&t);
}
END_TEST

/* t->init takes only a numeric address that fits the preamble, and a
 * nonzero id; t->connect refuses a bad peer address at once. */
START_TEST(test_transport_init_refuses_bad_addresses)
{
    const char *bad[] = { "localhost:9441", "127.0.0.1", "127.0.0.1:0",
                          "127.0.0.1:65536", "127.0.0.1:x", "[::1]9441",
                          "::1:9441", "" };
    char longest[300];
    node n;
    creq c;

    node_init(&n, 1, P.dir, "both", P.dir, 0, 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(n.t.init(&n.t, 1, bad[i]) == RAFT_INVALID, "took %s", bad[i]);
    memset(longest, '1', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memcpy(longest, "127.0.0.1:", 10);
    ck_assert_int_eq(n.t.init(&n.t, 1, longest), RAFT_INVALID);
    ck_assert_int_eq(n.t.init(&n.t, 0, "127.0.0.1:9441"), RAFT_INVALID);
    ck_assert_int_eq(n.t.init(&n.t, 1, "[::1]:9441"), 0);
    ck_assert_int_eq(n.t.init(&n.t, 1, n.addr), 0);
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(n.t.connect(&n.t, &c.req, 2, "nohost:1", on_connect),
                     RAFT_NOCONNECTION);
    ck_assert_msg(strstr(n.t.errmsg, "nohost") != NULL, "%s", n.t.errmsg);
    run_for(10);
    ck_assert_int_eq(c.fired, 0);
    node_close(&n);
}
END_TEST

/* ---- libraft itself over the transport -------------------------------- */

typedef struct rnode {
    node n;
    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;
    char dir[96];
    unsigned applied;
    int raft_closed;
} rnode;

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
    rnode *r = fsm->data;

    ck_assert_uint_eq(buf->len, 8);
    ck_assert_int_eq(memcmp(buf->base, "revoke:1", 8), 0);
    r->applied++;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n)
{
    (void)fsm, (void)bufs, (void)n;
    return RAFT_NOTFOUND; /* the test never takes one */
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    (void)fsm;
    raft_free(buf->base);
    return 0;
}

static void on_raft_closed(struct raft *raft)
{
    rnode *r = raft->data;

    r->raft_closed++;
}

static int applied_cb_status = -1;

static void on_applied(struct raft_apply *req, int status, void *result)
{
    (void)req, (void)result;
    applied_cb_status = status;
}

/* Three voters with libraft's uv I/O and this transport elect a leader and
 * replicate an entry to all three. */
START_TEST(test_transport_carries_a_raft_group)
{
    rnode r[3];
    struct raft_configuration conf;
    struct raft_apply req;
    struct raft_buffer buf;
    int leader = -1, all;
    int64_t end_at;

    for (int i = 0; i < 3; i++) {
        rnode *x = &r[i];

        memset(x, 0, sizeof *x);
        node_init(&x->n, (raft_id)(i + 1), P.dir, i == 1 ? "noeku" : "both", P.dir, 0, 0);
        snprintf(x->dir, sizeof x->dir, "%s/raft%d", P.dir, i + 1);
        ck_assert_int_eq(mkdir(x->dir, 0700), 0);
        x->fsm = (struct raft_fsm){ .version = 1, .data = x, .apply = fsm_apply,
                                    .snapshot = fsm_snapshot, .restore = fsm_restore };
    }
    raft_configuration_init(&conf);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(raft_configuration_add(&conf, (raft_id)(i + 1), r[i].n.addr, RAFT_VOTER), 0);
    for (int i = 0; i < 3; i++) {
        rnode *x = &r[i];

        /* node_init ran t->init as libraft would; raft_uv_init calls it
         * again with the same identity. */
        ck_assert_int_eq(raft_uv_init(&x->io, &loop, x->dir, &x->n.t), 0);
        ck_assert_msg(raft_init(&x->raft, &x->io, &x->fsm, (raft_id)(i + 1), x->n.addr) == 0,
                      "raft_init: %s", raft_errmsg(&x->raft));
        x->raft.data = x;
        raft_set_election_timeout(&x->raft, 300);
        raft_set_heartbeat_timeout(&x->raft, 50);
        ck_assert_int_eq(raft_bootstrap(&x->raft, &conf), 0);
        ck_assert_msg(raft_start(&x->raft) == 0, "raft_start: %s", raft_errmsg(&x->raft));
    }
    raft_configuration_close(&conf);

    end_at = mono_ms() + WAIT_MS;
    while (leader < 0) {
        ck_assert_msg(mono_ms() < end_at, "no leader elected");
        run_for(10);
        for (int i = 0; i < 3; i++)
            if (raft_state(&r[i].raft) == RAFT_LEADER)
                leader = i;
    }
    buf.len = 8;
    buf.base = raft_malloc(8);
    memcpy(buf.base, "revoke:1", 8);
    ck_assert_int_eq(raft_apply(&r[leader].raft, &req, &buf, 1, on_applied), 0);
    end_at = mono_ms() + WAIT_MS;
    do {
        ck_assert_msg(mono_ms() < end_at, "entry not applied everywhere (%u %u %u)",
                      r[0].applied, r[1].applied, r[2].applied);
        run_for(10);
        all = r[0].applied == 1 && r[1].applied == 1 && r[2].applied == 1;
    } while (!all || applied_cb_status != 0);

    for (int i = 0; i < 3; i++)
        raft_close(&r[i].raft, on_raft_closed);
    for (int i = 0; i < 3; i++)
        RUN_UNTIL(r[i].raft_closed);
    for (int i = 0; i < 3; i++) {
        raft_uv_close(&r[i].io);
        cluster_transport_close(&r[i].n.t);
        pthread_mutex_destroy(&r[i].n.mu);
    }
    run_for(20);
}
END_TEST

Suite *suite_cluster_transport(void)
{
    const TTest *const tests[] = {
        test_transport_connects_and_carries_bytes_both_ways,
        test_transport_refuses_a_foreign_ca_both_ways,
        test_transport_refuses_no_certificate_and_garbage_preamble,
        test_transport_drops_a_silent_client_without_blocking_others,
        test_transport_bounds_pending_handshakes,
        test_transport_close_cancels_and_frees,
        test_transport_init_refuses_bad_material,
        test_transport_init_refuses_bad_addresses,
    };
    Suite *s = suite_create("cluster_transport");
    TCase *tc = tcase_create("transport");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++)
        tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    /* libraft's disk I/O starts libuv's thread pool, which stays: no
     * thread count here. */
    tc = tcase_create("raft");
    tcase_add_checked_fixture(tc, setup_raft, teardown_raft);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_transport_carries_a_raft_group);
    suite_add_tcase(s, tc);
    return s;
}
