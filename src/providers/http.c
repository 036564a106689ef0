/*
 * http.c - the HTTPS client the provider backends share: one POST or GET
 * with libcurl, TLS verification always on, bounded time, bounded retries,
 * bounded body.
 *
 * THREADS: http_post and http_get may be called from many threads at
 * once. Each call makes its own CURL easy handle (never shared between
 * threads, as libcurl requires) and sets CURLOPT_NOSIGNAL.
 * curl_global_init, which is not thread-safe, runs exactly once per
 * process through pthread_once the first time any thread makes a request.
 *
 * Limits: connect timeout 5 s and total 15 s per attempt; at most 3
 * attempts, with backoff 200 ms then 800 ms, on 429, 5xx and connection
 * failures; response bodies over 1 MiB are refused. Plain http is allowed
 * only to 127.0.0.1, localhost and [::1] (the test stubs); any other URL
 * must be https. URLs with user info are refused. Both are decided on the
 * host libcurl's URL parser finds (http_url_ok), not on the string's
 * start. AGENT_IAM_HTTP_TIMEOUT_MS (test-only, 1..600000) replaces the
 * total timeout of an attempt (and caps the connect timeout).
 *
 * Never CURLOPT_VERBOSE: it prints the headers, which hold credentials.
 * Error messages name the provider and the HTTP status or the transport
 * failure, never a header or a body.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "providers/providers.h"

#define HTTP_ATTEMPTS 3
#define HTTP_BODY_MAX (1024 * 1024)
#define HTTP_CONNECT_MS 5000L
#define HTTP_TOTAL_MS 15000L

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool http_global_ok(void)
{
    return pthread_once(&global_once, global_init) == 0 &&
           global_rc == CURLE_OK;
}

size_t http_sink_write(char *p, size_t size, size_t n, void *ud)
{
    http_sink *s = ud;
    size_t len = size * n;

    if (len > s->max - s->buf.len) {
        s->too_big = true;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    buf_put(&s->buf, p, len);
    return s->buf.oom ? 0 : len;
}

/* See providers.h. The URL is parsed by libcurl's own URL parser, the one
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

/* The total timeout of an attempt: 15 s, or the test override. */
static long total_ms(void)
{
    const char *v = getenv("AGENT_IAM_HTTP_TIMEOUT_MS");
    char *end;
    long ms;

    if (v == NULL || *v == '\0')
        return HTTP_TOTAL_MS;
    ms = strtol(v, &end, 10);
    if (*end != '\0' || ms < 1 || ms > 600000)
        return HTTP_TOTAL_MS;
    return ms;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Worth another attempt: the server may have been briefly unavailable. */
static bool transient(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
           cc == CURLE_GOT_NOTHING;
}

/* Wipe the header lines (they hold Authorization) before freeing them. */
static void free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p != NULL; p = p->next)
        if (p->data != NULL)
            OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* Set every option of the transfer; false when libcurl refused one. */
static bool setup(CURL *h, const char *url, const struct curl_slist *hdrs,
                  bool post, const char *body, size_t len,
                  const char *ca_file, bool local, http_sink *s, char *errbuf)
{
    long total = total_ms();
    long connect = total < HTTP_CONNECT_MS ? total : HTTP_CONNECT_MS;

    return curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR,
                            local ? "https,http" : "https") == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
           (ca_file == NULL ||
            curl_easy_setopt(h, CURLOPT_CAINFO, ca_file) == CURLE_OK) &&
           curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect) ==
               CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                            (curl_off_t)HTTP_BODY_MAX) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
           (post ? curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK &&
                       curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                                        body ? body : "") == CURLE_OK &&
                       curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                                        (curl_off_t)(body ? len : 0)) ==
                           CURLE_OK
                 : curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK) &&
           curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_sink_write) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_WRITEDATA, s) == CURLE_OK &&
           curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
}

/* One request: POST body when post, else GET (body unused). */
static ai_code request(const char *provider, const char *url,
                       const char *const *headers, bool post,
                       const char *body, size_t len, const char *ca_file,
                       http_resp *resp, ai_err *err)
{
    static const long backoff_ms[HTTP_ATTEMPTS - 1] = {200, 800};
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    http_sink s = {{NULL, 0, 0, false}, HTTP_BODY_MAX, false};
    CURL *h = NULL;
    CURLcode cc = CURLE_OK;
    long status = 0;
    bool local;
    ai_code rc = AI_OK;

    ai_err_clear(err);
    memset(resp, 0, sizeof *resp);
    buf_init(&s.buf);
    if (url == NULL || provider == NULL)
        return ai_err_set(err, AI_EINVAL, "http: no provider or url");
    if (!http_global_ok())
        return ai_err_set(err, AI_EPROVIDER, "%s: libcurl did not initialize",
                          provider);
    if (!http_url_ok(url, &local))
        return ai_err_set(err, AI_EPROVIDER,
                          "%s: refusing a URL that is not https, has user "
                          "info or does not parse (plain http only to "
                          "127.0.0.1, localhost or [::1])",
                          provider);
    /* No "Expect: 100-continue" round trip for small bodies. */
    if ((hdrs = curl_slist_append(NULL, "Expect:")) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        struct curl_slist *n = curl_slist_append(hdrs, headers[i]);
        if (n == NULL) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto done;
        }
        hdrs = n;
    }
    if ((h = curl_easy_init()) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "%s: cannot make a libcurl handle",
                        provider);
        goto done;
    }
    errbuf[0] = '\0';
    if (!setup(h, url, hdrs, post, body, len, ca_file, local, &s, errbuf)) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "%s: libcurl refused an option (libcurl too old?)",
                        provider);
        goto done;
    }
    for (int attempt = 0; attempt < HTTP_ATTEMPTS; attempt++) {
        if (attempt > 0)
            sleep_ms(backoff_ms[attempt - 1]);
        buf_free(&s.buf);
        s.too_big = false;
        errbuf[0] = '\0';
        status = 0;
        cc = curl_easy_perform(h);
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status != 429 && status < 500)
            break;
        if (cc != CURLE_OK && !transient(cc))
            break;
    }
    if (s.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "%s: response body larger than 1 MiB", provider);
    } else if (s.buf.oom) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = ai_err_set(err, AI_EPROVIDER, "%s: request timed out after %ld ms",
                        provider, total_ms());
    } else if (cc != CURLE_OK) {
        /* errbuf names hosts and ports, never headers or bodies. */
        rc = ai_err_set(err, AI_EPROVIDER, "%s: %s", provider,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else {
        resp->status = status;
        resp->len = s.buf.len;
        if ((resp->body = buf_steal(&s.buf)) == NULL)
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    }
done:
    if (h != NULL)
        curl_easy_cleanup(h);
    free_headers(hdrs);
    buf_free(&s.buf);
    if (rc != AI_OK)
        memset(resp, 0, sizeof *resp);
    return rc;
}

/* See providers.h. */
ai_code http_post(const char *provider, const char *url,
                  const char *const *headers, const char *body, size_t len,
                  const char *ca_file, http_resp *resp, ai_err *err)
{
    return request(provider, url, headers, true, body, len, ca_file, resp,
                   err);
}

/* See providers.h. */
ai_code http_get(const char *provider, const char *url,
                 const char *const *headers, const char *ca_file,
                 http_resp *resp, ai_err *err)
{
    return request(provider, url, headers, false, NULL, 0, ca_file, resp,
                   err);
}

/* See providers.h. */
void http_resp_clear(http_resp *r)
{
    if (r == NULL)
        return;
    if (r->body != NULL) {
        OPENSSL_cleanse(r->body, r->len);
        ai_free(r->body);
    }
    memset(r, 0, sizeof *r);
}
