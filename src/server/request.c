/* request.c - a request's path through libmicrohttpd: the raw target
 * (srv_on_target), refusals of what a proxy could read otherwise, routing,
 * the body (capped, drained past the cap), authentication and the
 * handler, long-poll suspension, the reply, and at completion the
 * metrics, the log line and the wiping of the request's state. Runs on
 * MHD's worker threads; a request's state is its own (req_priv). */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "server/conns.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "server/server.h"

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

static void run_handler(srv *s, req_priv *p)
{
    srv_req *rq = &p->rq;
    bool resumed;
    ai_err err;

    rq->now = time_now_ms();
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
    if (rq->th == NULL && (rq->th = srv_thread_state(s, &err)) == NULL) {
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
        !srv_authenticate(s, rq))
        return;
    /* Agent requests synced in srv_authenticate. Admin requests sign (root
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

/* ---- refusals --------------------------------------------------------- */

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

/* ---- libmicrohttpd's callbacks ---------------------------------------- */

/* MHD_OPTION_URI_LOG_CALLBACK: called with the raw request target as soon
 * as the request line is read; what it returns is the request's state. */
void *srv_on_target(void *cls, const char *uri, struct MHD_Connection *c)
{
    req_priv *p = ai_calloc(1, sizeof *p);

    (void)cls;
    (void)c;
    if (p != NULL)
        p->bad_target = uri == NULL || target_bad(uri);
    return p;
}

enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    srv *s = cls;
    req_priv *p = *con_cls;

    (void)version;
    if (p == NULL)
        return MHD_NO; /* out of memory in srv_on_target */
    if (!p->started) {
        const char *cl, *why;
        const char *tail = NULL;
        char allowed[64];
        p->started = true;
        conns_request_started(s->conns, conn);
        atomic_fetch_add(&s->active, 1);
        p->t0_ns = time_mono_ns();
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
            return srv_send_reply(s, p);
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
                return srv_send_reply(s, p);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (p->too_large) /* dropped; a client that never stops is cut */
            return (p->dropped += n) > SRV_DRAIN_MAX ? MHD_NO : MHD_YES;
        if (p->body.len + n > SRV_BODY_MAX) {
            p->too_large = true;
            buf_free(&p->body);
            return MHD_YES;
        }
        /* The first block is 1 KiB (a typical body), then it doubles. */
        if (p->body.cap == 0 && !buf_reserve(&p->body, 1023))
            return MHD_NO;
        buf_put(&p->body, upload_data, n);
        if (p->body.oom)
            return MHD_NO;
        p->body.p[p->body.len] = '\0';
        return MHD_YES;
    }
    if (p->answered)
        return MHD_YES; /* already answered (413 at the first call) */
    conns_request_received(conn);
    p->rq.body = p->body.p ? p->body.p : "";
    p->rq.len = p->body.len;
    run_handler(s, p);
    while (p->rq.suspended) {
        waiter *w = ai_malloc(sizeof *w);
        if (w == NULL) {
            srv_reply_error(&p->rq, 503, "unavailable", "out of memory");
            return srv_send_reply(s, p);
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
    return srv_send_reply(s, p);
}

void srv_on_completed(void *cls, struct MHD_Connection *conn,
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
    micros = (time_mono_ns() - p->t0_ns) / 1000;
    status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? p->rq.status : 499;
    if (p->rq.status == 0)
        status = 499;
    metrics_request(s->metrics, p->route_idx, p->rq.method, status,
                    (double)micros / 1e6);
    srv_log_line(s, p, status, micros);
    if (p->rq.out != NULL) {
        if (p->rq.wipe_out)
            explicit_bzero(p->rq.out, p->rq.out_len);
        ai_free(p->rq.out);
    }
    buf_free(&p->body); /* wipes it */
    if (p->rq.stream != NULL && p->rq.stream_free != NULL)
        p->rq.stream_free(p->rq.stream_ud); /* never handed to MHD */
    ai_token_free(p->rq.token);
    OPENSSL_cleanse(p->rq.fol.key, sizeof p->rq.fol.key);
    ai_free(p);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}
