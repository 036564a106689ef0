/* reply.c - a request's reply: what handlers fill (JSON, secret JSON,
 * errors, text, streams), its hand-over to libmicrohttpd with the headers
 * every reply carries, and the helpers handlers read a request with
 * (body members, query parameters) or build text with. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "core/core.h"
#include "server/body.h"
#include "server/internal.h"
#include "server/server.h"
#include "server/storage.h"

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

void srv_reply_redirect(srv_req *rq, const char *base, const char *why)
{
    int n = snprintf(rq->location, sizeof rq->location, "%s%s", base,
                     rq->path);

    if (n < 0 || (size_t)n >= sizeof rq->location) {
        rq->location[0] = '\0';
        srv_reply_error(rq, 503, "unavailable", "%s", why);
        rq->retry_after = 1;
        return;
    }
    reply_json(rq, 307,
               json_pack("{s:s, s:s, s:s}", "error", why, "code",
                         "not_leader", "leader", base),
               false);
}

void srv_reply_ai(srv_req *rq, ai_code code, const char *msg)
{
    int status = 500;

    /* a write this voter of a leader group cannot take: the leader's */
    if (code == AI_EUNAVAILABLE && rq->location[0] != '\0') {
        char base[sizeof rq->location];
        memcpy(base, rq->location, sizeof base);
        rq->location[0] = '\0';
        srv_reply_redirect(rq, base, msg);
        return;
    }

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

/* ---- to libmicrohttpd ------------------------------------------------- */

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

static void free_plain(void *p)
{
    ai_free(p);
}

static void free_secret(void *p)
{
    explicit_bzero(p, strlen(p));
    ai_free(p);
}

enum MHD_Result srv_send_reply(srv *s, req_priv *p)
{
    srv_req *rq = &p->rq;
    struct MHD_Response *resp;
    enum MHD_Result r;

    p->answered = true;
    if (rq->stream != NULL) {
        stream_ctx *sc = ai_malloc(sizeof *sc);
        if (sc == NULL) {
            rq->stream_free(rq->stream_ud);
            rq->stream = NULL; /* srv_on_completed must not free it again */
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
    if (rq->location[0] != '\0')
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rq->location);
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
