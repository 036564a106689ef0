/* upstream.c - the follower's libcurl connection to its leader, on the
 * project's HTTPS client (src/http). */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/core.h"
#include "follower/upstream.h"
#include "http/http.h"

#define BASE_LEN 512

struct upstream {
    CURL *h;
    /* the leader, or a group's voters */
    char bases[HTTP_URL_LIST_MAX][BASE_LEN];
    size_t nbases, cur;              /* bases[cur]: the one in use */
    char *auth;      /* "Authorization: Bearer ..." (wiped at free) */
    char fid[96];    /* "X-Follower-Id: ..." */
    char ca[4096];
    atomic_bool *stop;
    const char *as; /* upstream_call_as: this Authorization line instead */
    long stall_s;   /* upstream_stream: give up when nothing came so long */
};

upstream *upstream_new(const char *url, const char *token,
                       const char *ca_file, const char *follower_id,
                       atomic_bool *stop, ai_err *err)
{
    upstream *u;
    size_t n;

    ai_err_clear(err);
    if (url == NULL || *url == '\0') {
        ai_err_set(err, AI_EINVAL, "--leader-url must be given");
        return NULL;
    }
    /* "URL[,URL...]": a leader, or the voters of a leader group */
    if (!http_url_list_ok(url, HTTP_URL_LIST_MAX)) {
        ai_err_set(err, AI_EINVAL,
                   "--leader-url must be an https:// URL (http only to "
                   "127.0.0.1 or localhost), without user info, or a "
                   "comma-separated list of at most %d",
                   HTTP_URL_LIST_MAX);
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
    n = http_url_list_len(url);
    while (u->nbases < HTTP_URL_LIST_MAX &&
           http_url_list_at(url, u->nbases, u->bases[u->nbases], BASE_LEN))
        u->nbases++;
    if (u->nbases != n) { /* one did not fit in BASE_LEN bytes */
        upstream_free(u);
        ai_err_set(err, AI_EINVAL, "--leader-url: a URL is too long");
        return NULL;
    }
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
    struct curl_slist *hdrs = NULL;
    char url[4096];
    http_opts o;

    for (size_t i = 0; i < 3; i++) {
        if (lines[i] != NULL && !http_header_add(&hdrs, lines[i])) {
            http_headers_free(hdrs);
            return ai_err_set(err, AI_ENOMEM, "out of memory");
        }
    }
    snprintf(url, sizeof url, "%s%s", u->bases[u->cur], path);
    http_opts_init(&o, method, url, json, hdrs, u->ca, timeout_ms, wdata,
                   errbuf);
    o.write_fn = wfn;
    o.stall_s = u->stall_s;
    o.stop = u->stop;
    o.user_agent = "agent-iam-follower/" AI_VERSION;
    if ((*cc = http_setup(u->h, &o)) == CURLE_OK)
        *cc = curl_easy_perform(u->h);
    http_headers_free(hdrs);
    return AI_OK;
}

/* A transfer that failed: name the leader's host and why, or that the
 * answer was too big (over: what, max). */
static ai_code unreachable(const upstream *u, CURLcode cc,
                           const char *errbuf, const char *over, size_t max,
                           ai_err *err)
{
    char host[300];

    http_where(u->bases[u->cur], host, sizeof host);
    if (over != NULL)
        return ai_err_set(err, AI_EUNAVAILABLE, "leader %s: %s over %zu bytes",
                          host, over, max);
    return ai_err_set(err, AI_EUNAVAILABLE, "leader %s unreachable: %s", host,
                      http_reason(cc, errbuf));
}

/* A 307 of a group's voter: the listed base its Location starts with
 * (never a URL that is not listed: the follower's credential goes
 * there). */
static bool follow_redirect(upstream *u)
{
    char *loc = NULL;

    if (curl_easy_getinfo(u->h, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK ||
        loc == NULL)
        return false;
    for (size_t i = 0; i < u->nbases; i++) {
        size_t n = strlen(u->bases[i]);
        if (strncmp(loc, u->bases[i], n) == 0 && loc[n] == '/') {
            u->cur = i;
            return true;
        }
    }
    return false;
}

/* With a list of voters, after a failed try: the voter a 307 names, or
 * the next one (http_failover_next: a read after a transport failure, any
 * request that reached no voter, a 503); each at most once a call. */
static bool try_another(upstream *u, http_failover *f, bool resend_ok,
                        CURLcode cc, long status)
{
    if (cc == CURLE_OK && status == 307) {
        if (u->nbases < 2 || ++f->tries >= f->max_tries ||
            !follow_redirect(u))
            return false;
        f->cur = u->cur;
        return true;
    }
    if (!http_failover_next(f, cc != CURLE_OK && http_not_sent(cc),
                            resend_ok, cc == CURLE_OK ? status : 0))
        return false;
    u->cur = f->cur;
    return true;
}

ai_code upstream_call(upstream *u, const char *method, const char *path,
                      const char *json, long timeout_ms, size_t max,
                      long *status, char **body, size_t *len, ai_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    bool resend_ok = strcmp(method, "GET") == 0;
    http_failover f;
    http_sink s;
    CURLcode cc;
    ai_code rc;

    http_failover_init(&f, u->nbases, u->cur, 0, 0, u->nbases + 1);
again:
    ai_err_clear(err);
    *status = 0;
    *body = NULL;
    *len = 0;
    http_sink_init(&s, max, ai_malloc, ai_free);
    if ((rc = perform(u, method, path, json, timeout_ms, http_sink_write, &s,
                      errbuf, &cc, err)) != AI_OK)
        return rc;
    if (cc != CURLE_OK) {
        bool over = s.too_big;
        http_sink_clear(&s);
        if (!over && !(u->stop && atomic_load(u->stop)) &&
            try_another(u, &f, resend_ok, cc, 0))
            goto again;
        return unreachable(u, cc, errbuf, over ? "an answer" : NULL, max,
                           err);
    }
    curl_easy_getinfo(u->h, CURLINFO_RESPONSE_CODE, status);
    if (try_another(u, &f, resend_ok, CURLE_OK, *status)) {
        http_sink_clear(&s);
        goto again;
    }
    *len = s.len;
    if ((*body = http_sink_take(&s)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
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
    http_sink line;  /* the line being assembled */
    http_sink other; /* a non-200 answer */
    long status;
    bool stopped;    /* fn said stop */
} line_sink;

static size_t on_lines(char *p, size_t size, size_t n, void *ud)
{
    line_sink *ls = ud;
    size_t k = size * n, start = 0;

    if (ls->status == 0)
        curl_easy_getinfo(ls->h, CURLINFO_RESPONSE_CODE, &ls->status);
    if (ls->status != 200)
        return http_sink_write(p, size, n, &ls->other);
    for (size_t i = 0; i < k; i++) {
        if (p[i] != '\n')
            continue;
        /* even an empty line leaves a buffer (NULL: out of memory) */
        if (http_sink_write(p + start, 1, i - start, &ls->line) != i - start ||
            ls->line.p == NULL)
            return 0;
        if (!ls->fn(ls->ud, ls->line.p, ls->line.len)) {
            ls->stopped = true;
            return 0;
        }
        explicit_bzero(ls->line.p, ls->line.len);
        ls->line.len = 0;
        ls->line.p[0] = '\0';
        start = i + 1;
    }
    if (start < k &&
        http_sink_write(p + start, 1, k - start, &ls->line) != k - start)
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
    bool over;
    ai_code rc;

    ai_err_clear(err);
    memset(&ls, 0, sizeof ls);
    ls.h = u->h;
    ls.fn = fn;
    ls.ud = ud;
    http_sink_init(&ls.line, line_max, ai_malloc, ai_free);
    http_sink_init(&ls.other, 65536, ai_malloc, ai_free);
    *status = 0;
    *body = NULL;
    *len = 0;
    u->stall_s = UPSTREAM_STALL_S;
    rc = perform(u, "GET", path, NULL, timeout_ms, on_lines, &ls, errbuf, &cc,
                 err);
    u->stall_s = 0;
    over = ls.line.too_big;
    http_sink_clear(&ls.line);
    if (rc != AI_OK) {
        http_sink_clear(&ls.other);
        return rc;
    }
    *status = ls.status;
    if (cc != CURLE_OK && !ls.stopped) {
        http_sink_clear(&ls.other);
        rc = unreachable(u, cc, errbuf, over ? "a line" : NULL, line_max,
                         err);
        /* the next call goes to the next voter of a group */
        if (u->nbases > 1)
            u->cur = (u->cur + 1) % u->nbases;
        return rc;
    }
    if (ls.status == 503 && u->nbases > 1)
        u->cur = (u->cur + 1) % u->nbases;
    if (ls.status != 200) {
        *len = ls.other.len;
        if ((*body = http_sink_take(&ls.other)) == NULL)
            return ai_err_set(err, AI_ENOMEM, "out of memory");
    } else {
        http_sink_clear(&ls.other);
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
