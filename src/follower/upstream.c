/* upstream.c - the follower's libcurl connection to its leader. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/core.h"
#include "follower/upstream.h"
#include "providers/providers.h"

struct upstream {
    CURL *h;
    char base[2048];
    char *auth;      /* "Authorization: Bearer ..." (wiped at free) */
    char fid[96];    /* "X-Follower-Id: ..." */
    char ca[4096];
    atomic_bool *stop;
    const char *as; /* upstream_call_as: this Authorization line instead */
    long stall_s;   /* upstream_stream: give up when nothing came so long */
};

typedef struct sink {
    char *buf;
    size_t len, cap, max;
    bool over;
} sink;

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t k = size * n;

    if (s->len + k + 1 > s->max) {
        s->over = true;
        return 0;
    }
    if (s->len + k + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        char *nb;
        while (cap < s->len + k + 1)
            cap *= 2;
        if ((nb = ai_malloc(cap)) == NULL)
            return 0;
        if (s->buf != NULL) {
            memcpy(nb, s->buf, s->len);
            explicit_bzero(s->buf, s->len);
            ai_free(s->buf);
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, k);
    s->len += k;
    s->buf[s->len] = '\0';
    return k;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t d)
{
    upstream *u = ud;

    (void)a, (void)b, (void)c, (void)d;
    return u->stop != NULL && atomic_load(u->stop) ? 1 : 0;
}

upstream *upstream_new(const char *url, const char *token,
                       const char *ca_file, const char *follower_id,
                       atomic_bool *stop, ai_err *err)
{
    upstream *u;
    size_t n;

    ai_err_clear(err);
    if (url == NULL || !http_url_ok(url, NULL) || strlen(url) >= 2000) {
        ai_err_set(err, AI_EINVAL,
                   "--leader-url must be an https:// URL (http only to "
                   "127.0.0.1 or localhost), without user info");
        return NULL;
    }
    if (token == NULL || *token == '\0' || strlen(token) > 4096 ||
        strpbrk(token, " \r\n\t") != NULL) {
        ai_err_set(err, AI_EINVAL,
                   "the auth token must be 1 to 4096 visible characters");
        return NULL;
    }
    if (!http_global_ok()) {
        ai_err_set(err, AI_EINTERNAL, "libcurl: cannot initialize");
        return NULL;
    }
    if ((u = ai_calloc(1, sizeof *u)) == NULL ||
        (u->h = curl_easy_init()) == NULL) {
        ai_free(u);
        ai_err_set(err, AI_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(u->base, sizeof u->base, "%s", url);
    n = strlen(u->base);
    while (n > 0 && u->base[n - 1] == '/')
        u->base[--n] = '\0';
    n = strlen(token) + 32;
    if ((u->auth = ai_malloc(n)) == NULL) {
        upstream_free(u);
        ai_err_set(err, AI_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(u->auth, n, "Authorization: Bearer %s", token);
    snprintf(u->fid, sizeof u->fid, "X-Follower-Id: %s", follower_id);
    if (ca_file != NULL)
        snprintf(u->ca, sizeof u->ca, "%s", ca_file);
    u->stop = stop;
    return u;
}

void upstream_free(upstream *u)
{
    if (u == NULL)
        return;
    if (u->h != NULL)
        curl_easy_cleanup(u->h);
    if (u->auth != NULL) {
        explicit_bzero(u->auth, strlen(u->auth));
        ai_free(u->auth);
    }
    ai_free(u);
}

/* One transfer on the kept connection: the bearer and follower headers,
 * TLS verification, timeouts, abort on stop; the answer goes to wfn.
 * *cc is curl's result; AI_ENOMEM only when the headers cannot be built. */
static ai_code perform(upstream *u, const char *method, const char *path,
                       const char *json, long timeout_ms,
                       curl_write_callback wfn, void *wdata,
                       char errbuf[CURL_ERROR_SIZE], CURLcode *cc,
                       ai_err *err)
{
    static const char *const ctype = "Content-Type: application/json";
    const char *lines[3] = {u->as ? u->as : u->auth, u->as ? NULL : u->fid,
                            json ? ctype : NULL};
    struct curl_slist *hdrs = NULL, *t;
    char url[4096];
    CURL *h = u->h;

    for (size_t i = 0; i < 3; i++) {
        if (lines[i] == NULL)
            continue;
        if ((t = curl_slist_append(hdrs, lines[i])) == NULL) {
            curl_slist_free_all(hdrs);
            return ai_err_set(err, AI_ENOMEM, "out of memory");
        }
        hdrs = t;
    }
    snprintf(url, sizeof url, "%s%s", u->base, path);
    errbuf[0] = '\0';
    curl_easy_reset(h); /* keeps the connection for the next call */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (u->ca[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, u->ca);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (u->stall_s > 0) { /* a stream that stops moving is dead */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, u->stall_s);
    }
    curl_easy_setopt(h, CURLOPT_USERAGENT, "agent-iam-follower/" AI_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wfn);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, wdata);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, u);
    if (json != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(json));
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    *cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    return AI_OK;
}

/* A transfer that failed: name the leader's host and why, or that the
 * answer was too big (over: what, max). */
static ai_code unreachable(const upstream *u, CURLcode cc,
                           const char *errbuf, const char *over, size_t max,
                           ai_err *err)
{
    char host[256] = "";

    sscanf(u->base, "%*[^:]://%255[^/]", host);
    if (over != NULL)
        return ai_err_set(err, AI_EUNAVAILABLE, "leader %s: %s over %zu bytes",
                          host, over, max);
    return ai_err_set(err, AI_EUNAVAILABLE, "leader %s unreachable: %s", host,
                      errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

ai_code upstream_call(upstream *u, const char *method, const char *path,
                      const char *json, long timeout_ms, size_t max,
                      long *status, char **body, size_t *len, ai_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    sink s = {NULL, 0, 0, max, false};
    CURLcode cc;
    ai_code rc;

    ai_err_clear(err);
    *status = 0;
    *body = NULL;
    *len = 0;
    if ((rc = perform(u, method, path, json, timeout_ms, on_write, &s, errbuf,
                      &cc, err)) != AI_OK)
        return rc;
    if (cc != CURLE_OK) {
        if (s.buf != NULL) {
            explicit_bzero(s.buf, s.len);
            ai_free(s.buf);
        }
        return unreachable(u, cc, errbuf, s.over ? "an answer" : NULL, max,
                           err);
    }
    curl_easy_getinfo(u->h, CURLINFO_RESPONSE_CODE, status);
    if (s.buf == NULL && (s.buf = ai_calloc(1, 1)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    *body = s.buf;
    *len = s.len;
    return AI_OK;
}

void upstream_error_text(const char *body, long status, char *buf,
                         size_t cap)
{
    json_t *o = body ? json_loads(body, 0, NULL) : NULL;
    const char *e = o ? json_string_value(json_object_get(o, "error")) : NULL;

    snprintf(buf, cap, "%s (%ld)", e ? e : "unexpected answer", status);
    json_decref(o);
}

typedef struct line_sink {
    CURL *h;
    upstream_line_fn fn;
    void *ud;
    sink line;      /* the line being assembled */
    sink other;     /* a non-200 answer */
    long status;
    bool stopped;   /* fn said stop */
} line_sink;

static size_t on_lines(char *p, size_t size, size_t n, void *ud)
{
    line_sink *ls = ud;
    size_t k = size * n, start = 0;

    if (ls->status == 0)
        curl_easy_getinfo(ls->h, CURLINFO_RESPONSE_CODE, &ls->status);
    if (ls->status != 200)
        return on_write(p, size, n, &ls->other);
    for (size_t i = 0; i < k; i++) {
        if (p[i] != '\n')
            continue;
        if (on_write(p + start, 1, i - start, &ls->line) != i - start)
            return 0;
        if (ls->line.buf == NULL && (ls->line.buf = ai_calloc(1, 1)) == NULL)
            return 0;
        if (!ls->fn(ls->ud, ls->line.buf, ls->line.len)) {
            ls->stopped = true;
            return 0;
        }
        explicit_bzero(ls->line.buf, ls->line.len);
        ls->line.len = 0;
        start = i + 1;
    }
    if (start < k && on_write(p + start, 1, k - start, &ls->line) != k - start)
        return 0;
    return k;
}

ai_code upstream_stream(upstream *u, const char *path, long timeout_ms,
                        size_t line_max, upstream_line_fn fn, void *ud,
                        long *status, char **body, size_t *len, ai_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    line_sink ls;
    CURLcode cc;
    ai_code rc;

    ai_err_clear(err);
    memset(&ls, 0, sizeof ls);
    ls.h = u->h;
    ls.fn = fn;
    ls.ud = ud;
    ls.line.max = line_max;
    ls.other.max = 65536;
    *status = 0;
    *body = NULL;
    *len = 0;
    u->stall_s = UPSTREAM_STALL_S;
    rc = perform(u, "GET", path, NULL, timeout_ms, on_lines, &ls, errbuf, &cc,
                 err);
    u->stall_s = 0;
    if (ls.line.buf != NULL) {
        explicit_bzero(ls.line.buf, ls.line.cap);
        ai_free(ls.line.buf);
    }
    if (rc != AI_OK)
        return rc;
    *status = ls.status;
    if (cc != CURLE_OK && !ls.stopped) {
        ai_free(ls.other.buf);
        return unreachable(u, cc, errbuf, ls.line.over ? "a line" : NULL,
                           line_max, err);
    }
    if (ls.status != 200) {
        if (ls.other.buf == NULL && (ls.other.buf = ai_calloc(1, 1)) == NULL)
            return ai_err_set(err, AI_ENOMEM, "out of memory");
        *body = ls.other.buf;
        *len = ls.other.len;
    } else {
        ai_free(ls.other.buf);
    }
    return AI_OK;
}

ai_code upstream_call_as(upstream *u, const char *bearer, size_t n,
                         const char *path, const char *json, long timeout_ms,
                         size_t max, long *status, char **body, size_t *len,
                         ai_err *err)
{
    size_t cap = n + 32;
    char *line;
    ai_code rc;

    if (n == 0 || n > 32768 || memchr(bearer, '\r', n) != NULL ||
        memchr(bearer, '\n', n) != NULL)
        return ai_err_set(err, AI_EINVAL, "unusable bearer");
    if ((line = ai_malloc(cap)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    snprintf(line, cap, "Authorization: Bearer %.*s", (int)n, bearer);
    u->as = line;
    rc = upstream_call(u, "POST", path, json, timeout_ms, max, status, body,
                       len, err);
    u->as = NULL;
    explicit_bzero(line, cap);
    ai_free(line);
    return rc;
}
