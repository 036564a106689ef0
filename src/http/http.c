/*
 * http.c - the one outbound HTTPS client (see http.h): what every libcurl
 * transfer of the project has in common.
 *
 * THREADS: curl_global_init, which is not thread-safe, runs exactly once
 * per process through pthread_once, the first time any thread asks
 * (http_global_ok). Everything else works on the caller's handle and sink.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "http/http.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* See http.h. */
bool http_global_ok(void)
{
    return pthread_once(&global_once, global_init) == 0 &&
           global_rc == CURLE_OK;
}

/* See http.h. The URL is parsed by libcurl's own URL parser, the one
 * curl_easy_perform uses, so the host checked is the host connected to
 * ("http://localhost:1@evil.invalid" is user "localhost", host
 * "evil.invalid"). */
bool http_url_ok(const char *url, bool *plain_ok)
{
    static const char *const loopback[] = {"127.0.0.1", "localhost",
                                           "[::1]"};
    CURLU *u;
    char *scheme = NULL, *host = NULL, *part = NULL;
    bool ok = false, local = false;

    if (plain_ok != NULL)
        *plain_ok = false;
    if (url == NULL || (u = curl_url()) == NULL)
        return false;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        scheme == NULL || host == NULL || *host == '\0')
        goto done;
    /* Any user info at all (even empty) is refused: it is never needed
     * and only serves to disguise the host. */
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK)
        goto done;
    curl_free(part);
    part = NULL;
    if (curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK)
        goto done;
    curl_free(part);
    part = NULL;
    for (size_t i = 0; i < sizeof loopback / sizeof *loopback; i++)
        if (strcasecmp(host, loopback[i]) == 0)
            local = true;
    if (strcasecmp(scheme, "https") == 0)
        ok = true;
    else if (strcasecmp(scheme, "http") == 0)
        ok = local;
    if (ok && plain_ok != NULL)
        *plain_ok = local;
done:
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

/* See http.h. */
void http_where(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;

    snprintf(out, cap, "(unparsed URL)");
    if (u == NULL)
        return;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
            snprintf(out, cap, "%s:%s", host, port);
        else
            snprintf(out, cap, "%s", host);
    }
    curl_free(port);
    curl_free(host);
    curl_url_cleanup(u);
}

/* See http.h. */
void http_sink_init(http_sink *s, size_t max, void *(*alloc)(size_t),
                    void (*release)(void *))
{
    memset(s, 0, sizeof *s);
    s->max = max;
    s->alloc = alloc;
    s->release = release;
}

/* See http.h. Grows by doubling from 16 KiB, copying into a new block so
 * that the old one can be wiped (realloc would leave it behind). */
size_t http_sink_write(char *p, size_t size, size_t n, void *ud)
{
    http_sink *s = ud;
    size_t k = size * n;

    if (k > s->max - s->len) {
        s->too_big = true;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    if (s->len + k + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        char *nb;

        while (cap < s->len + k + 1)
            cap *= 2;
        if ((nb = s->alloc(cap)) == NULL) {
            s->oom = true;
            return 0;
        }
        if (s->p != NULL) {
            memcpy(nb, s->p, s->len);
            OPENSSL_cleanse(s->p, s->cap);
            s->release(s->p);
        }
        s->p = nb;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, k);
    s->len += k;
    s->p[s->len] = '\0';
    return k;
}

/* See http.h. */
char *http_sink_take(http_sink *s)
{
    char *p = s->p;

    if (p == NULL && (p = s->alloc(1)) != NULL)
        p[0] = '\0';
    s->p = NULL;
    s->len = s->cap = 0;
    return p;
}

/* See http.h. */
void http_sink_clear(http_sink *s)
{
    if (s->p != NULL) {
        OPENSSL_cleanse(s->p, s->cap);
        s->release(s->p);
    }
    s->p = NULL;
    s->len = s->cap = 0;
    s->too_big = s->oom = false;
}

/* See http.h. */
bool http_header_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);

    if (n == NULL)
        return false;
    *list = n;
    return true;
}

/* See http.h. */
void http_headers_free(struct curl_slist *list)
{
    for (struct curl_slist *p = list; p != NULL; p = p->next)
        if (p->data != NULL)
            OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(list);
}

/* See http.h. */
void http_opts_init(http_opts *o, const char *method, const char *url,
                    const char *body, const struct curl_slist *headers,
                    const char *ca_file, long total_ms, void *sink,
                    char *errbuf)
{
    memset(o, 0, sizeof *o);
    o->method = method;
    o->url = url;
    o->body = body;
    o->body_len = body != NULL ? strlen(body) : 0;
    o->headers = headers;
    o->ca_file = ca_file;
    o->total_ms = total_ms;
    o->write_data = sink;
    o->errbuf = errbuf;
    if (errbuf != NULL)
        errbuf[0] = '\0';
}

/* The progress callback of http_opts.stop: non-zero ends the transfer. */
static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t d)
{
    const atomic_bool *stop = ud;

    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(stop) ? 1 : 0;
}

/* The first refused option's code ends the chain: SET(opt, value). */
#define SET(opt, val)                                                  \
    do {                                                               \
        if ((cc = curl_easy_setopt(h, opt, val)) != CURLE_OK)          \
            return cc;                                                 \
    } while (0)

/* See http.h. */
CURLcode http_setup(CURL *h, const http_opts *o)
{
    const char *m = o->method != NULL ? o->method : "GET";
    long connect = o->connect_ms > 0 ? o->connect_ms : HTTP_CONNECT_MS;
    bool plain = false;
    CURLcode cc;

    if (!http_url_ok(o->url, &plain))
        return CURLE_UNSUPPORTED_PROTOCOL;
    if (connect > o->total_ms)
        connect = o->total_ms;
    curl_easy_reset(h); /* keeps the connection for the next transfer */
    SET(CURLOPT_URL, o->url);
    SET(CURLOPT_PROTOCOLS_STR, plain ? "https,http" : "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file != NULL && o->ca_file[0] != '\0')
        SET(CURLOPT_CAINFO, o->ca_file);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
    SET(CURLOPT_TIMEOUT_MS, o->total_ms);
    if (o->stall_s > 0) { /* a stream that stops moving is dead */
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, o->stall_s);
    }
    if (o->max_size > 0)
        SET(CURLOPT_MAXFILESIZE_LARGE, o->max_size);
    if (o->path_as_is)
        SET(CURLOPT_PATH_AS_IS, 1L);
    if (o->user_agent != NULL)
        SET(CURLOPT_USERAGENT, o->user_agent);
    if (o->headers != NULL)
        SET(CURLOPT_HTTPHEADER, o->headers);
    SET(CURLOPT_WRITEFUNCTION,
        o->write_fn != NULL ? o->write_fn : http_sink_write);
    SET(CURLOPT_WRITEDATA, o->write_data);
    if (o->errbuf != NULL) {
        o->errbuf[0] = '\0';
        SET(CURLOPT_ERRORBUFFER, o->errbuf);
    }
    if (o->stop != NULL) {
        SET(CURLOPT_NOPROGRESS, 0L);
        SET(CURLOPT_XFERINFOFUNCTION, on_progress);
        SET(CURLOPT_XFERINFODATA, o->stop);
    }
    if (strcmp(m, "GET") == 0)
        return curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    /* POST, PUT: a body, empty when none; DELETE: one only when given */
    if (o->body != NULL || strcmp(m, "DELETE") != 0) {
        SET(CURLOPT_POSTFIELDS, o->body != NULL ? o->body : "");
        SET(CURLOPT_POSTFIELDSIZE_LARGE,
            (curl_off_t)(o->body != NULL ? o->body_len : 0));
    }
    if (strcmp(m, "POST") == 0)
        return CURLE_OK;
    return curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
}

#undef SET

/* See http.h. */
CURLcode http_perform(CURL *h, const atomic_bool *abort, bool *aborted)
{
    CURLM *m;
    CURLMsg *msg;
    CURLcode cc = CURLE_OK;
    int running = 1, q;

    if (aborted != NULL)
        *aborted = false;
    if (abort == NULL)
        return curl_easy_perform(h);
    if ((m = curl_multi_init()) == NULL)
        return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(m, h) != CURLM_OK) {
        curl_multi_cleanup(m);
        return CURLE_OUT_OF_MEMORY;
    }
    for (;;) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
        if (running == 0)
            break;
        if (atomic_load(abort)) {
            if (aborted != NULL)
                *aborted = true;
            cc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if (curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
    }
    if (running == 0 && cc == CURLE_OK) {
        cc = CURLE_FAILED_INIT;
        while ((msg = curl_multi_info_read(m, &q)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
                cc = msg->data.result;
    }
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return cc;
}

/* See http.h. */
const char *http_reason(CURLcode cc, const char *errbuf)
{
    return errbuf != NULL && errbuf[0] != '\0' ? errbuf
                                                : curl_easy_strerror(cc);
}

/* See http.h. */
bool http_url_list_at(const char *list, size_t i, char *out, size_t cap)
{
    const char *p = list, *end;
    size_t n;

    for (; p != NULL && i > 0; i--)
        p = (p = strchr(p, ',')) != NULL ? p + 1 : NULL;
    if (p == NULL || *p == '\0')
        return false;
    end = strchr(p, ',');
    n = end != NULL ? (size_t)(end - p) : strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* See http.h. */
size_t http_url_list_len(const char *list)
{
    size_t n = 1;

    if (list == NULL || *list == '\0')
        return 0;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

/* See http.h. */
bool http_url_list_ok(const char *list, size_t max)
{
    char one[2048];
    size_t n = http_url_list_len(list);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!http_url_list_at(list, i, one, sizeof one) ||
            !http_url_ok(one, NULL))
            return false;
    return true;
}
