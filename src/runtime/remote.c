/* remote.c - the HTTPS client of a remote AgentRuntime: one call of the
 * agent API (docs/http-api.md) with the agent token as the bearer.
 *
 * DESIGN: each call makes its own libcurl easy handle (one per thread, as
 * libcurl requires, and the runtime's calls come from any thread) and
 * drives it through a multi handle polled every 100 ms, so the refresher
 * can abort a transfer promptly when ai_runtime_stop asks. TLS peer and
 * host verification are always on. Never CURLOPT_VERBOSE: it would print
 * the Authorization header. The header line holding the token and every
 * answer body are wiped before they are freed. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/core.h"
#include "providers/providers.h"
#include "runtime/runtime.h"

/* The ai_code of an error answer: its machine code, else its status. */
static ai_code code_of(long status, const char *code)
{
    static const struct {
        const char *name;
        ai_code code;
    } map[] = {
        {"bad_request", AI_EINVAL},       {"unauthorized", AI_ETOKEN},
        {"invalid_token", AI_ETOKEN},     {"token_expired", AI_EEXPIRED},
        {"token_revoked", AI_EREVOKED},   {"forbidden", AI_EDENIED},
        {"not_found", AI_ENOTFOUND},      {"provider_error", AI_EPROVIDER},
        {"unavailable", AI_EUNAVAILABLE}, {"internal_error", AI_EINTERNAL},
        {"storage_full", AI_ESTORAGE_FULL},
    };

    for (size_t i = 0; code != NULL && i < sizeof map / sizeof *map; i++)
        if (strcmp(code, map[i].name) == 0)
            return map[i].code;
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

/* See runtime.h. */
ai_code rt_http_call(const char *base, const char *ca, long timeout_ms,
                     const char *bearer, const char *method,
                     const char *path, const char *json,
                     const atomic_bool *abort, char **body, ai_err *err)
{
    struct curl_slist *hdrs = NULL, *t;
    char url[4096], host[256] = "", errbuf[CURL_ERROR_SIZE] = "";
    char *auth = NULL;
    http_sink s;
    CURL *h = NULL;
    CURLM *m = NULL;
    CURLcode cc = CURLE_OK;
    bool aborted = false, added = false;
    long status = 0;
    size_t n;
    int running = 1;
    ai_code rc = AI_ENOMEM;

    ai_err_clear(err);
    *body = NULL;
    buf_init(&s.buf);
    s.too_big = false;
    s.max = RT_BODY_MAX;
    sscanf(base, "%*[^:]://%255[^/]", host);
    if (snprintf(url, sizeof url, "%s%s", base, path) >= (int)sizeof url)
        return ai_err_set(err, AI_EINVAL, "server URL too long");
    if (!http_global_ok())
        return ai_err_set(err, AI_EINTERNAL, "libcurl: cannot initialize");
    n = strlen(bearer) + sizeof "Authorization: Bearer ";
    if ((auth = ai_malloc(n)) == NULL)
        goto oom;
    snprintf(auth, n, "Authorization: Bearer %s", bearer);
    if ((t = curl_slist_append(hdrs, auth)) == NULL)
        goto oom;
    hdrs = t;
    if ((t = curl_slist_append(hdrs, "Content-Type: application/json")) ==
        NULL)
        goto oom;
    hdrs = t;
    if ((t = curl_slist_append(hdrs, "Expect:")) == NULL)
        goto oom;
    hdrs = t;
    if ((h = curl_easy_init()) == NULL || (m = curl_multi_init()) == NULL)
        goto oom;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "agent-iam-runtime/" AI_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (json != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(json));
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (curl_multi_add_handle(m, h) != CURLM_OK)
        goto oom;
    added = true;
    for (;;) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
        if (running == 0)
            break;
        if (abort != NULL && atomic_load(abort)) {
            aborted = true;
            break;
        }
        if (curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
    }
    if (!aborted && cc == CURLE_OK) {
        CURLMsg *msg;
        int q;
        cc = CURLE_FAILED_INIT;
        while ((msg = curl_multi_info_read(m, &q)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
                cc = msg->data.result;
    }
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
    if (s.buf.oom)
        goto oom;
    if (cc != CURLE_OK) {
        rc = ai_err_set(err, AI_EUNAVAILABLE, "server %s unreachable: %s", host,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        rc = answer_error(status, s.buf.p, err);
        goto done;
    }
    if ((*body = buf_steal(&s.buf)) == NULL)
        goto oom;
    rc = AI_OK;
    goto done;
oom:
    rc = ai_err_set(err, AI_ENOMEM, "out of memory");
done:
    if (added)
        curl_multi_remove_handle(m, h);
    if (m != NULL)
        curl_multi_cleanup(m);
    if (h != NULL)
        curl_easy_cleanup(h);
    for (t = hdrs; t != NULL; t = t->next) /* its copy of the token */
        explicit_bzero(t->data, strlen(t->data));
    curl_slist_free_all(hdrs);
    if (auth != NULL) {
        explicit_bzero(auth, strlen(auth));
        ai_free(auth);
    }
    buf_free(&s.buf);
    return rc;
}
