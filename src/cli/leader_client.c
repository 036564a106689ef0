/*
 * leader_client.c - the CLI's client of a leader: one HTTPS request on
 * the project's HTTPS client (src/http) to the leader's API, its error
 * answers turned into an ai_code and the server's message (see
 * leader_client.h for the contract).
 *
 * THREADS: calls may run on many threads at once; each makes its own
 * CURL easy handle. curl_global_init runs once per process
 * (http_global_ok).
 *
 * Never CURLOPT_VERBOSE: it prints the headers, and one holds the admin
 * secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli/leader_client.h"
#include "core/core.h"
#include "http/http.h"
#include "providers/providers.h"

#define AUTH_PREFIX "Authorization: Bearer "
#define FULL_URL_MAX (LEADER_URL_MAX + 1024)

/* See leader_client.h. */
bool leader_url_ok(const char *url)
{
    /* one URL, or a leader group's voters: "URL,URL,..." */
    return url != NULL && prov_text_ok(url, LEADER_URL_MAX) &&
           strchr(url, '?') == NULL && strchr(url, '#') == NULL &&
           http_url_list_ok(url, HTTP_URL_LIST_MAX);
}

/* See leader_client.h. */
bool leader_token_ok(const char *t)
{
    return t != NULL && prov_text_ok(t, LEADER_TOKEN_MAX);
}

/* The base URL without its trailing slashes, then path. */
static bool join(const char *base, const char *path, char *out, size_t cap)
{
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/')
        n--;
    return snprintf(out, cap, "%.*s%s", (int)n, base, path) < (int)cap;
}

/* The code of a non-2xx answer: its machine code when it names one
 * (err_code_name), else from its status. */
static ai_code from_status(long status, const char *code)
{
    ai_code c;

    if (err_code_parse(code, &c) && c != AI_EINTERNAL)
        return c;
    switch (status) {
    case 400: case 405: case 413: return AI_EINVAL;
    case 401: case 403: case 409: return AI_EDENIED;
    case 404: case 410: return AI_ENOTFOUND;
    case 502: return AI_EPROVIDER;
    case 429: case 503: return AI_EUNAVAILABLE;
    default: return AI_EINTERNAL;
    }
}

/* Fill err from a non-2xx answer: {"error","code"} when the body is that,
 * else the bare status. ai_err_set replaces control characters, so the
 * server's text cannot drive the terminal. */
static ai_code answer_error(long status, const char *body, ai_err *err)
{
    json_t *j = body != NULL && body[0] != '\0'
                    ? json_loads(body, 0, NULL)
                    : NULL;
    const char *msg = json_string_value(json_object_get(j, "error"));
    const char *code = json_string_value(json_object_get(j, "code"));
    const char *leader = json_string_value(json_object_get(j, "leader"));
    ai_code rc = from_status(status, code);

    if (msg != NULL && leader != NULL)
        ai_err_set(err, rc, "leader: %s (%ld; the leader is %s)", msg,
                   status, leader);
    else if (msg != NULL)
        ai_err_set(err, rc, "leader: %s (%ld)", msg, status);
    else
        ai_err_set(err, rc, "leader: HTTP status %ld without an error "
                            "message",
                   status);
    json_decref(j);
    return rc;
}

/* The header lines: no Expect round trip, JSON both ways, and the bearer
 * secret, built in a buffer wiped at once (libcurl keeps its own copy,
 * wiped by http_headers_free). */
static ai_code headers(const leader_client *c, bool body, const char *idem,
                       struct curl_slist **out, ai_err *err)
{
    struct curl_slist *h = NULL;
    size_t cap;
    char *line, key[64];
    bool ok;

    *out = NULL;
    snprintf(key, sizeof key, "Idempotency-Key: %s", idem ? idem : "");
    ok = http_header_add(&h, "Expect:") &&
         http_header_add(&h, "Accept: application/json") &&
         (!body || http_header_add(&h, "Content-Type: application/json")) &&
         (idem == NULL || http_header_add(&h, key));
    if (ok && c->token != NULL) {
        cap = sizeof AUTH_PREFIX + strlen(c->token);
        if ((line = ai_malloc(cap)) == NULL) {
            ok = false;
        } else {
            snprintf(line, cap, "%s%s", AUTH_PREFIX, c->token);
            ok = http_header_add(&h, line);
            OPENSSL_cleanse(line, cap);
            ai_free(line);
        }
    }
    if (!ok) {
        http_headers_free(h);
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    }
    *out = h;
    return AI_OK;
}

/* What to do about a transfer that failed, after the reason: a TLS
 * certificate not trusted wants --ca-cert; a plain http:// URL whose server
 * resets or answers nonsense is most likely a TLS port. */
static const char *failure_hint(CURLcode cc, bool plain, bool have_ca)
{
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
    case CURLE_SSL_CACERT:
#endif
    case CURLE_SSL_CACERT_BADFILE:
        return have_ca ? " (the server's certificate is not signed by the "
                         "CA given with --ca-cert, or not for this host name: "
                         "check the file and the URL)"
                       : " (the server's certificate is not signed by a CA "
                         "this machine trusts: pass the leader's CA with "
                         "--ca-cert FILE, e.g. its home's tls/ca.pem)";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_WEIRD_SERVER_REPLY:
        return plain ? " (plain http:// to a server that may speak TLS: use "
                       "https://)"
                     : "";
    default:
        return "";
    }
}

/* One request to one base URL. A 307's Location into redirect (cap
 * bytes; "" otherwise); *not_sent when the connection was never made
 * (nothing reached the server: safe to send elsewhere). */
static ai_code call_one(const leader_client *c, const char *base,
                        const char *idem, const char *method,
                        const char *path, const char *json_body,
                        long *status, char **resp_body, char *redirect,
                        size_t cap, bool *not_sent, ai_err *err)
{
    char url[FULL_URL_MAX], host[300], errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    http_sink s;
    http_opts o;
    bool plain_ok = false;
    CURL *h = NULL;
    CURLcode cc;
    ai_code rc = AI_EINVAL;

    ai_err_clear(err);
    *status = 0;
    *resp_body = NULL;
    redirect[0] = '\0';
    *not_sent = false;
    http_sink_init(&s, LEADER_BODY_MAX, ai_malloc, ai_free);
    (void)http_url_ok(base, &plain_ok);
    if (!join(base, path, url, sizeof url))
        return ai_err_set(err, AI_EINVAL, "leader: URL too long");
    http_where(base, host, sizeof host);
    if (!http_global_ok())
        return ai_err_set(err, AI_EINTERNAL,
                          "leader: libcurl did not initialize");
    if ((rc = headers(c, json_body != NULL, idem, &hdrs, err)) != AI_OK)
        return rc;
    if ((h = curl_easy_init()) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "leader: cannot make a libcurl "
                                        "handle");
        goto done;
    }
    http_opts_init(&o, method, url, json_body, hdrs, c->ca_file,
                   LEADER_TOTAL_MS, &s, errbuf);
    o.connect_ms = LEADER_CONNECT_MS;
    o.max_size = LEADER_BODY_MAX;
    o.user_agent = "agent-iam/" AI_VERSION;
    o.path_as_is = true; /* the path is sent as built: no ".." folding */
    if (http_setup(h, &o) != CURLE_OK) {
        rc = ai_err_set(err, AI_EINTERNAL, "leader: libcurl refused an "
                                           "option (libcurl too old?)");
        goto done;
    }
    cc = curl_easy_perform(h);
    if (s.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        rc = ai_err_set(err, AI_EINTERNAL,
                        "leader %s: answer larger than 1 MiB", host);
    } else if (s.oom) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = ai_err_set(err, AI_EUNAVAILABLE, "leader %s: %s", host,
                        errbuf[0] ? errbuf : "timed out");
    } else if (cc != CURLE_OK) {
        *not_sent = http_not_sent(cc);
        rc = ai_err_set(err, AI_EUNAVAILABLE, "leader %s: %s%s", host,
                        http_reason(cc, errbuf),
                        failure_hint(cc, plain_ok, c->ca_file != NULL));
    } else {
        char *loc = NULL;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        if (*status == 307 &&
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK &&
            loc != NULL)
            snprintf(redirect, cap, "%s", loc);
        if (*status < 200 || *status > 299) {
            rc = answer_error(*status, s.p, err);
        } else if ((*resp_body = http_sink_take(&s)) == NULL) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        } else {
            rc = AI_OK;
        }
    }
done:
    if (h != NULL)
        curl_easy_cleanup(h);
    http_headers_free(hdrs);
    http_sink_clear(&s);
    return rc;
}

/* The base of a 307's Location: the Location without the path sent
 * (http_url_ok: https, or http to a loopback host). */
static bool redirect_base(const char *loc, const char *path, char *out,
                          size_t cap)
{
    size_t n = strlen(loc), m = strlen(path);

    if (n <= m || n - m >= cap || strcmp(loc + n - m, path) != 0)
        return false;
    memcpy(out, loc, n - m);
    out[n - m] = '\0';
    return leader_url_ok(out);
}

/* See leader_client.h. */
ai_code leader_client_call(const leader_client *c, const char *method,
                           const char *path, const char *json_body,
                           long *status, char **resp_body, ai_err *err)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    char bases[HTTP_URL_LIST_MAX][LEADER_URL_MAX + 1];
    char redirect[LEADER_URL_MAX + 1024], moved[LEADER_URL_MAX + 1];
    char idem[33];
    unsigned char rnd[16];
    const char *base;
    size_t nbases = 0, hops = 0;
    bool known = false, not_sent = false, write;
    http_failover f;
    ai_code rc;

    ai_err_clear(err);
    *status = 0;
    *resp_body = NULL;
    for (size_t i = 0; method != NULL && i < sizeof methods / sizeof *methods;
         i++)
        known = known || strcmp(method, methods[i]) == 0;
    if (c == NULL || !known || path == NULL || path[0] != '/' ||
        !prov_text_ok(path, 1024))
        return ai_err_set(err, AI_EINVAL, "leader: bad method or path");
    if (!leader_url_ok(c->url))
        return ai_err_set(err, AI_EINVAL,
                          "leader: the URL must be https:// without user "
                          "info, query or fragment (http:// only to "
                          "localhost, 127.0.0.1 or [::1]), or a "
                          "comma-separated list of at most %d",
                          HTTP_URL_LIST_MAX);
    if (c->token != NULL && !leader_token_ok(c->token))
        return ai_err_set(err, AI_EINVAL,
                          "leader: the auth token must be 1 to %d visible "
                          "ASCII characters",
                          LEADER_TOKEN_MAX);
    while (nbases < HTTP_URL_LIST_MAX &&
           http_url_list_at(c->url, nbases, bases[nbases], sizeof *bases))
        nbases++;
    /* A write carries one key for all its attempts: a leader group
     * applies it once however often it arrives. */
    write = strcmp(method, "GET") != 0;
    if (write) {
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return ai_err_set(err, AI_EINTERNAL, "random generator failed");
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(idem + 2 * i, 3, "%02x", rnd[i]);
    }
    /* a group without a leader for now (an election: 503), or a voter
     * that could not be reached (nothing sent, a dead leader among them):
     * the next voter, for a while, with a pause once all were tried */
    http_failover_init(&f, nbases, 0, LEADER_ELECTION_MS, 200, 64);
    base = bases[0];
    for (;;) {
        rc = call_one(c, base, write ? idem : NULL, method, path, json_body,
                      status, resp_body, redirect, sizeof redirect, &not_sent,
                      err);
        if (rc == AI_OK)
            return rc;
        /* a voter that is not the leader: the leader it names */
        if (*status == 307 && hops < 4 &&
            redirect_base(redirect, path, moved, sizeof moved)) {
            hops++;
            base = moved;
            continue;
        }
        if (http_failover_next(&f, not_sent, false, *status)) {
            base = bases[f.cur];
            hops = 0;
            continue;
        }
        return rc;
    }
}

/* See leader_client.h. */
void leader_body_free(char *body)
{
    if (body != NULL) {
        OPENSSL_cleanse(body, strlen(body));
        ai_free(body);
    }
}
