/* remote.c - the HTTPS client of a remote AgentRuntime: one call of the
 * agent API (docs/http-api.md) with the agent token as the bearer.
 *
 * DESIGN: each call makes its own libcurl easy handle (one per thread, as
 * libcurl requires, and the runtime's calls come from any thread), set up
 * by the project's HTTPS client (src/http), and drives it through a multi
 * handle polled every 100 ms (http_perform), so the refresher can abort a
 * transfer promptly when ai_runtime_stop asks. TLS peer and host
 * verification are always on. Never CURLOPT_VERBOSE: it would print
 * the Authorization header. The header line holding the token and every
 * answer body are wiped before they are freed. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/core.h"
#include "http/http.h"
#include "runtime/runtime.h"

/* The ai_code of an error answer: its machine code, else its status. */
static ai_code code_of(long status, const char *code)
{
    ai_code c;

    if (err_code_parse(code, &c))
        return c;
    if (code != NULL && strcmp(code, "unauthorized") == 0)
        return AI_ETOKEN;
    if (status == 401)
        return AI_ETOKEN;
    if (status == 403)
        return AI_EDENIED;
    if (status == 404)
        return AI_ENOTFOUND;
    if (status == 502)
        return AI_EPROVIDER;
    if (status == 429 || status == 503)
        return AI_EUNAVAILABLE;
    if (status >= 400 && status < 500)
        return AI_EINVAL;
    return AI_EINTERNAL;
}

static ai_code answer_error(long status, const char *body, ai_err *err)
{
    json_t *o = body ? json_loads(body, 0, NULL) : NULL;
    const char *msg = o ? json_string_value(json_object_get(o, "error")) : NULL;
    const char *code = o ? json_string_value(json_object_get(o, "code")) : NULL;
    ai_code rc = code_of(status, code);

    if (msg != NULL)
        ai_err_set(err, rc, "%s", msg);
    else
        ai_err_set(err, rc, "server answered HTTP %ld", status);
    json_decref(o);
    return rc;
}

/* One call to one server. *not_sent: the connection was never made (the
 * request reached nobody); *status: the answer's HTTP status (0: none). */
static ai_code call_one(const char *base, const char *ca, long timeout_ms,
                        const char *bearer, const char *method,
                        const char *path, const char *json,
                        const atomic_bool *abort, char **body, bool *not_sent,
                        long *answered, ai_err *err)
{
    struct curl_slist *hdrs = NULL;
    char url[4096], host[300], errbuf[CURL_ERROR_SIZE] = "";
    char *auth = NULL;
    http_sink s;
    http_opts o;
    CURL *h = NULL;
    CURLcode cc;
    bool aborted = false;
    long status = 0;
    size_t n;
    ai_code rc = AI_ENOMEM;

    ai_err_clear(err);
    *body = NULL;
    *not_sent = false;
    *answered = 0;
    http_sink_init(&s, RT_BODY_MAX, ai_malloc, ai_free);
    http_where(base, host, sizeof host);
    if (snprintf(url, sizeof url, "%s%s", base, path) >= (int)sizeof url)
        return ai_err_set(err, AI_EINVAL, "server URL too long");
    if (!http_global_ok())
        return ai_err_set(err, AI_EINTERNAL, "libcurl: cannot initialize");
    n = strlen(bearer) + sizeof "Authorization: Bearer ";
    if ((auth = ai_malloc(n)) == NULL)
        goto oom;
    snprintf(auth, n, "Authorization: Bearer %s", bearer);
    if (!http_header_add(&hdrs, auth) ||
        !http_header_add(&hdrs, "Content-Type: application/json") ||
        !http_header_add(&hdrs, "Expect:"))
        goto oom;
    if ((h = curl_easy_init()) == NULL)
        goto oom;
    http_opts_init(&o, method, url, json, hdrs, ca, timeout_ms, &s, errbuf);
    o.user_agent = "agent-iam-runtime/" AI_VERSION;
    if ((cc = http_setup(h, &o)) == CURLE_OK)
        cc = http_perform(h, abort, &aborted);
    if (aborted) {
        rc = ai_err_set(err, AI_EUNAVAILABLE, "call to %s aborted (stopping)",
                        host);
        goto done;
    }
    if (s.too_big) {
        rc = ai_err_set(err, AI_EUNAVAILABLE, "server %s: answer over %d bytes",
                        host, RT_BODY_MAX);
        goto done;
    }
    if (s.oom)
        goto oom;
    if (cc != CURLE_OK) {
        *not_sent = http_not_sent(cc);
        rc = ai_err_set(err, AI_EUNAVAILABLE, "server %s unreachable: %s", host,
                        http_reason(cc, errbuf));
        goto done;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    *answered = status;
    if (status < 200 || status > 299) {
        rc = answer_error(status, s.p, err);
        goto done;
    }
    if ((*body = http_sink_take(&s)) == NULL)
        goto oom;
    rc = AI_OK;
    goto done;
oom:
    rc = ai_err_set(err, AI_ENOMEM, "out of memory");
done:
    if (h != NULL)
        curl_easy_cleanup(h);
    http_headers_free(hdrs); /* its copy of the token */
    if (auth != NULL) {
        explicit_bzero(auth, strlen(auth));
        ai_free(auth);
    }
    http_sink_clear(&s);
    return rc;
}

/* See runtime.h. */
ai_code rt_http_call(const char *base, const char *ca, long timeout_ms,
                     const char *bearer, const char *method,
                     const char *path, const char *json,
                     const atomic_bool *abort, char **body, ai_err *err)
{
    char one[2048];
    size_t n = 0;
    bool not_sent;
    long status;
    http_failover f;
    ai_code rc;

    while (http_url_list_at(base, n, one, sizeof one))
        n++;
    if (n == 0)
        return ai_err_set(err, AI_EINVAL, "no server URL");
    /* the voters of a group: one that could not be reached (nothing
     * sent), or that cannot answer now (503: an election, a use only the
     * leader counts), gives way to the next; other failures are not sent
     * again (a use might be counted twice) */
    http_failover_init(&f, n, 0, RT_ELECTION_MS, 100, 0);
    for (;;) {
        (void)http_url_list_at(base, f.cur, one, sizeof one);
        rc = call_one(one, ca, timeout_ms, bearer, method, path, json, abort,
                      body, &not_sent, &status, err);
        if (rc == AI_OK || (abort && atomic_load(abort)) ||
            !http_failover_next(&f, not_sent, false, status))
            return rc;
    }
}
