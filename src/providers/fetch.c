/*
 * fetch.c - the requests of the provider backends: one POST or GET on the
 * project's HTTPS client (src/http: TLS verification always on, CA file,
 * timeouts, capped body), with the providers' own policy: bounded retries
 * and errors named after the provider.
 *
 * THREADS: prov_post and prov_get may be called from many threads at
 * once. Each call makes its own CURL easy handle (never shared between
 * threads, as libcurl requires); libcurl is initialized once per process
 * (http_global_ok).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "http/http.h"
#include "providers/providers.h"

#define HTTP_ATTEMPTS 3
#define HTTP_TOTAL_MS 15000L

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

/* One request: POST body when post, else GET (body unused). */
static ai_code request(const char *provider, const char *url,
                       const char *const *headers, bool post,
                       const char *body, size_t len, const char *ca_file,
                       prov_resp *resp, ai_err *err)
{
    static const long backoff_ms[HTTP_ATTEMPTS - 1] = {200, 800};
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    http_sink s;
    http_opts o;
    CURL *h = NULL;
    CURLcode cc = CURLE_OK;
    long status = 0;
    ai_code rc = AI_OK;

    ai_err_clear(err);
    memset(resp, 0, sizeof *resp);
    http_sink_init(&s, HTTP_BODY_MAX, ai_malloc, ai_free);
    if (url == NULL || provider == NULL)
        return ai_err_set(err, AI_EINVAL, "http: no provider or url");
    if (!http_global_ok())
        return ai_err_set(err, AI_EPROVIDER, "%s: libcurl did not initialize",
                          provider);
    if (!http_url_ok(url, NULL))
        return ai_err_set(err, AI_EPROVIDER,
                          "%s: refusing a URL that is not https, has user "
                          "info or does not parse (plain http only to "
                          "127.0.0.1, localhost or [::1])",
                          provider);
    /* No "Expect: 100-continue" round trip for small bodies. */
    if (!http_header_add(&hdrs, "Expect:"))
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        if (!http_header_add(&hdrs, headers[i])) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto done;
        }
    }
    if ((h = curl_easy_init()) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "%s: cannot make a libcurl handle",
                        provider);
        goto done;
    }
    http_opts_init(&o, post ? "POST" : "GET", url, NULL, hdrs, ca_file,
                   total_ms(), &s, errbuf);
    o.body = post ? body : NULL;
    o.body_len = post ? len : 0;
    o.max_size = HTTP_BODY_MAX;
    if (http_setup(h, &o) != CURLE_OK) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "%s: libcurl refused an option (libcurl too old?)",
                        provider);
        goto done;
    }
    for (int attempt = 0; attempt < HTTP_ATTEMPTS; attempt++) {
        if (attempt > 0)
            sleep_ms(backoff_ms[attempt - 1]);
        http_sink_clear(&s);
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
    } else if (s.oom) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = ai_err_set(err, AI_EPROVIDER, "%s: request timed out after %ld ms",
                        provider, o.total_ms);
    } else if (cc != CURLE_OK) {
        rc = ai_err_set(err, AI_EPROVIDER, "%s: %s", provider,
                        http_reason(cc, errbuf));
    } else {
        resp->status = status;
        resp->len = s.len;
        if ((resp->body = http_sink_take(&s)) == NULL)
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    }
done:
    if (h != NULL)
        curl_easy_cleanup(h);
    http_headers_free(hdrs);
    http_sink_clear(&s);
    if (rc != AI_OK)
        memset(resp, 0, sizeof *resp);
    return rc;
}

/* See providers.h. */
ai_code prov_post(const char *provider, const char *url,
                  const char *const *headers, const char *body, size_t len,
                  const char *ca_file, prov_resp *resp, ai_err *err)
{
    return request(provider, url, headers, true, body, len, ca_file, resp,
                   err);
}

/* See providers.h. */
ai_code prov_get(const char *provider, const char *url,
                 const char *const *headers, const char *ca_file,
                 prov_resp *resp, ai_err *err)
{
    return request(provider, url, headers, false, NULL, 0, ca_file, resp,
                   err);
}

/* See providers.h. */
void prov_resp_clear(prov_resp *r)
{
    if (r == NULL)
        return;
    if (r->body != NULL) {
        OPENSSL_cleanse(r->body, r->len);
        ai_free(r->body);
    }
    memset(r, 0, sizeof *r);
}

/* See providers.h. */
ai_code prov_resp_object(const char *provider, const prov_resp *resp,
                         json_t **root, ai_err *err)
{
    json_error_t jerr;

    *root = json_loadb(resp->body ? resp->body : "", resp->len, 0, &jerr);
    if (*root != NULL && json_is_object(*root))
        return AI_OK;
    json_wipe_decref(*root);
    *root = NULL;
    return ai_err_set(err, AI_EPROVIDER,
                      "%s: HTTP %ld with a body that is not a JSON object",
                      provider, resp->status);
}

/* See providers.h. */
ai_code prov_bearer_set(const char *provider, const char *token, size_t n,
                        const char *type, size_t tn, int64_t expires_at,
                        cred_result *out, ai_err *err)
{
    ai_buf b;

    buf_init(&b);
    buf_puts(&b, "{\"token\":");
    jw_str(&b, token, n);
    buf_puts(&b, ",\"tokenType\":");
    jw_str(&b, type, tn);
    buf_putc(&b, '}');
    if ((out->credential = buf_steal(&b)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "%s: out of memory", provider);
    snprintf(out->type, sizeof out->type, "bearer_token");
    out->expires_at = expires_at;
    return AI_OK;
}
