/* runtime.c - the AgentRuntime: one agent process's token, kept fresh by a
 * background thread, and the operations an agent makes with it, on a
 * local broker home or a remote leader/follower (remote.c).
 *
 * DESIGN (threads). Shared state and its locks:
 *  - mu guards the current token (`cur`, an immutable, reference-counted
 *    ai_token), the refresh bookkeeping (last refresh, failures, last
 *    error) and the thread flags; cv (on CLOCK_MONOTONIC) wakes the
 *    refresher when it must stop. Readers take a reference to `cur` under
 *    mu and use it after unlocking: a token never changes, so every reader
 *    sees one whole token, and the last reference wipes it.
 *  - blk guards the local broker `b` of the public calls (a broker is used
 *    by one thread at a time). The refresher has its own broker `rb`,
 *    opened by start and closed by stop, so a slow credential fetch on
 *    another thread never delays a refresh.
 *  - life serializes start and stop.
 *  - Remote calls make their own libcurl handle; the refresher's calls
 *    watch `abort`, which stop raises, so stop never waits for a slow
 *    server.
 * Callbacks run with no lock held. Config fields are read-only after new.
 *
 * The refresher sleeps until expiresAt - refresh_before (and, after a
 * refresh of its own, at least until half of the new lifetime has passed,
 * so a refresh_before longer than what a refresh grants cannot turn into
 * a busy loop), refreshes, swaps the token in and calls on_refresh. A
 * failure calls on_error and schedules a retry with exponential backoff,
 * never past the expiry. A token that cannot be extended (expiresAt at
 * maxExpiresAt, or no maxExpiresAt) or that expired is reported once via
 * on_error and the thread ends. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/core.h"
#include "http/http.h"
#include "runtime/runtime.h"

extern char **environ;

#define DEFAULT_REFRESH_BEFORE_MS (5 * 60 * 1000)
#define DEFAULT_RETRY_MIN_MS 1000
#define DEFAULT_RETRY_MAX_MS 60000
#define DEFAULT_HTTP_TIMEOUT_MS 15000L
#define MAX_WAIT_MS 60000 /* re-read the wall clock at least this often */
#define MIN_RETRY_MS 10

struct ai_runtime {
    /* read-only after new */
    bool remote;
    char *home, *url, *ca;
    int64_t refresh_before, retry_min, retry_max;
    int ttl;
    long http_timeout;
    void (*on_refresh)(void *ud, const char *new_token);
    void (*on_error)(void *ud, ai_code code, const char *msg);
    void *ud;

    pthread_mutex_t blk; /* the public calls' broker */
    ai_broker *b;

    pthread_mutex_t life; /* start / stop */
    ai_broker *rb;        /* the refresher's broker (local) */
    pthread_t th;
    atomic_bool abort;    /* remote: abort the refresher's transfer */

    pthread_mutex_t mu;   /* everything below */
    pthread_cond_t cv;
    ai_token *cur;
    int64_t last_refresh; /* 0: never */
    int64_t own_refresh;  /* the refresher's last success, 0: none */
    unsigned failures;    /* since the last success */
    char last_error[AI_ERR_MSG_MAX];
    bool running;         /* a thread exists (until joined) */
    bool active;          /* ... and it will still refresh */
    bool stopping;
};

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

static bool can_refresh(const ai_token *t)
{
    for (size_t i = 0; i < ai_token_scope_count(t); i++)
        if (ai_scope_matches(ai_token_scope(t, i), "system:token:refresh"))
            return true;
    return false;
}

/* A new reference to the current token. */
static ai_token *current(ai_runtime *rt)
{
    ai_token *t;

    pthread_mutex_lock(&rt->mu);
    t = ai_token_ref(rt->cur);
    pthread_mutex_unlock(&rt->mu);
    return t;
}

/* ---- lifecycle -------------------------------------------------------- */

void ai_runtime_config_init(ai_runtime_config *c)
{
    memset(c, 0, sizeof *c);
    c->mode = AI_RUNTIME_AUTO;
}

/* Decode (remote) or verify (local) a serialized token into *out. */
static ai_code load_token(ai_runtime *rt, const char *wire, ai_token **out,
                          ai_err *err)
{
    ai_code rc;

    if (rt->remote)
        return ai_token_deserialize(wire, strlen(wire), out, err);
    pthread_mutex_lock(&rt->blk);
    rc = ai_broker_verify(rt->b, wire, strlen(wire), out, err);
    pthread_mutex_unlock(&rt->blk);
    return rc;
}

ai_code ai_runtime_new(const ai_runtime_config *cfg, ai_runtime **out,
                       ai_err *err)
{
    ai_err local;
    ai_runtime_config defaults;
    ai_runtime *rt = NULL;
    const char *wire, *url;
    pthread_condattr_t ca;
    ai_code rc;
    bool remote;

    err = ai_err_start(err, &local);
    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output runtime");
    *out = NULL;
    if (cfg == NULL) {
        ai_runtime_config_init(&defaults);
        cfg = &defaults;
    }
    wire = cfg->token != NULL ? cfg->token : env("AGENT_TOKEN");
    if (wire == NULL || *wire == '\0')
        return ai_err_set(err, AI_EINVAL,
                          "no token: none given and AGENT_TOKEN is not set");
    if (strlen(wire) > AI_TOKEN_WIRE_MAX)
        return ai_err_set(err, AI_ETOKEN, "invalid token: longer than %d "
                          "characters", AI_TOKEN_WIRE_MAX);
    url = cfg->url != NULL ? cfg->url : env("AGENT_IAM_URL");
    switch (cfg->mode) {
    case AI_RUNTIME_AUTO: remote = url != NULL; break;
    case AI_RUNTIME_LOCAL: remote = false; break;
    case AI_RUNTIME_REMOTE: remote = true; break;
    default: return ai_err_set(err, AI_EINVAL, "unknown runtime mode");
    }
    if (remote && (url == NULL || strlen(url) > 2000 ||
                   !http_url_list_ok(url, 8)))
        return ai_err_set(err, AI_EINVAL,
                          "remote runtime: the server URL (cfg->url or "
                          "AGENT_IAM_URL) must be an https:// URL (http only "
                          "to 127.0.0.1 or localhost), without user info, "
                          "or a comma-separated list of at most 8 (a "
                          "leader group's voters)");
    if (cfg->refresh_before_ms < 0 || cfg->retry_min_ms < 0 ||
        cfg->retry_max_ms < 0 || cfg->refresh_ttl_minutes < 0 ||
        cfg->refresh_ttl_minutes > 5256000 || cfg->http_timeout_ms < 0)
        return ai_err_set(err, AI_EINVAL,
                          "runtime config: negative or out-of-range value");

    if ((rt = ai_calloc(1, sizeof *rt)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    rt->remote = remote;
    rt->refresh_before = cfg->refresh_before_ms ? cfg->refresh_before_ms
                                                : DEFAULT_REFRESH_BEFORE_MS;
    rt->retry_min = cfg->retry_min_ms ? cfg->retry_min_ms : DEFAULT_RETRY_MIN_MS;
    rt->retry_max = cfg->retry_max_ms ? cfg->retry_max_ms : DEFAULT_RETRY_MAX_MS;
    if (rt->retry_max < rt->retry_min)
        rt->retry_max = rt->retry_min;
    rt->ttl = cfg->refresh_ttl_minutes;
    rt->http_timeout =
        cfg->http_timeout_ms ? cfg->http_timeout_ms : DEFAULT_HTTP_TIMEOUT_MS;
    rt->on_refresh = cfg->on_refresh;
    rt->on_error = cfg->on_error;
    rt->ud = cfg->ud;
    atomic_init(&rt->abort, false);
    pthread_mutex_init(&rt->blk, NULL);
    pthread_mutex_init(&rt->life, NULL);
    pthread_mutex_init(&rt->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (remote) {
        const char *cafile =
            cfg->ca_cert_file ? cfg->ca_cert_file : env("AGENT_IAM_CA_CERT");
        size_t n;
        if ((rt->url = ai_strdup(url)) == NULL ||
            (cafile != NULL && (rt->ca = ai_strdup(cafile)) == NULL)) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto fail;
        }
        n = strlen(rt->url);
        while (n > 0 && rt->url[n - 1] == '/')
            rt->url[--n] = '\0';
    } else {
        if (cfg->home != NULL && (rt->home = ai_strdup(cfg->home)) == NULL) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = ai_broker_open(rt->home, &rt->b, err)) != AI_OK ||
            (rc = ai_broker_set_actor(rt->b, "agent-runtime", err)) != AI_OK)
            goto fail;
    }
    if ((rc = load_token(rt, wire, &rt->cur, err)) != AI_OK)
        goto fail;
    *out = rt;
    return AI_OK;
fail:
    ai_runtime_free(rt);
    return rc;
}

/* A runtime for `token` (NULL: AI_EINVAL with `missing`) and the rest of
 * cfg (NULL: the defaults). */
static ai_code from_token(const char *token, const char *missing,
                          const ai_runtime_config *cfg, ai_runtime **out,
                          ai_err *err)
{
    ai_runtime_config c;

    if (cfg != NULL)
        c = *cfg;
    else
        ai_runtime_config_init(&c);
    if (token == NULL) {
        if (out != NULL)
            *out = NULL;
        ai_err_clear(err);
        return ai_err_set(err, AI_EINVAL, "%s", missing);
    }
    c.token = token;
    return ai_runtime_new(&c, out, err);
}

ai_code ai_runtime_from_serialized(const char *token,
                                   const ai_runtime_config *cfg,
                                   ai_runtime **out, ai_err *err)
{
    return from_token(token, "no token", cfg, out, err);
}

ai_code ai_runtime_from_environment(const ai_runtime_config *cfg,
                                    ai_runtime **out, ai_err *err)
{
    return from_token(env("AGENT_TOKEN"), "AGENT_TOKEN is not set", cfg, out,
                      err);
}

void ai_runtime_free(ai_runtime *rt)
{
    if (rt == NULL)
        return;
    ai_runtime_stop(rt);
    ai_token_free(rt->cur); /* the last reference wipes it */
    ai_broker_close(rt->b);
    ai_free(rt->home);
    ai_free(rt->url);
    ai_free(rt->ca);
    pthread_cond_destroy(&rt->cv);
    pthread_mutex_destroy(&rt->mu);
    pthread_mutex_destroy(&rt->life);
    pthread_mutex_destroy(&rt->blk);
    explicit_bzero(rt, sizeof *rt);
    ai_free(rt);
}

/* ---- refresh ---------------------------------------------------------- */

/* Refresh `t` with broker b (local) or the server (remote). */
static ai_code refresh_with(ai_runtime *rt, ai_broker *b, const ai_token *t,
                            int ttl, const atomic_bool *abort,
                            ai_token **out, ai_err *err)
{
    char req[64], *body = NULL;
    json_t *o = NULL;
    const char *wire = ai_token_serialize(t);
    ai_code rc;

    *out = NULL;
    if (!rt->remote)
        return ai_broker_refresh(b, wire, ai_token_serialized_len(t), ttl,
                                 out, err);
    if (ttl > 0)
        snprintf(req, sizeof req, "{\"ttlMinutes\":%d}", ttl);
    else
        snprintf(req, sizeof req, "{}");
    if ((rc = rt_http_call(rt->url, rt->ca, rt->http_timeout, wire, "POST",
                           "/v1/tokens/refresh", req, abort, &body, err)) !=
        AI_OK)
        return rc;
    o = json_loads(body, 0, NULL);
    wire = o ? json_string_value(json_object_get(o, "token")) : NULL;
    if (wire == NULL)
        rc = ai_err_set(err, AI_EINTERNAL,
                        "server: refresh answer without a token");
    else
        rc = ai_token_deserialize(wire, strlen(wire), out, err);
    json_wipe_decref(o); /* jansson's copy of the token */
    ai_free_string(body);
    return rc;
}

/* Install a refreshed token (takes nt) and return a copy of its text for
 * on_refresh (NULL without a callback or on out of memory). mu held. */
static char *install(ai_runtime *rt, ai_token *nt)
{
    ai_token *old = rt->cur;

    rt->cur = nt;
    rt->last_refresh = time_now_ms();
    rt->failures = 0;
    rt->last_error[0] = '\0';
    ai_token_free(old);
    return rt->on_refresh ? ai_strdup(ai_token_serialize(nt)) : NULL;
}

static void notify_refresh(ai_runtime *rt, char *copy)
{
    if (copy == NULL)
        return;
    rt->on_refresh(rt->ud, copy);
    ai_free_string(copy);
}

ai_code ai_runtime_refresh(ai_runtime *rt, int ttl_minutes, ai_err *err)
{
    ai_err local;
    ai_token *t, *nt = NULL;
    char *copy;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (rt == NULL || ttl_minutes < 0)
        return ai_err_set(err, AI_EINVAL, "no runtime or a negative ttl");
    t = current(rt);
    if (!rt->remote)
        pthread_mutex_lock(&rt->blk);
    rc = refresh_with(rt, rt->b, t, ttl_minutes, NULL, &nt, err);
    if (!rt->remote)
        pthread_mutex_unlock(&rt->blk);
    ai_token_free(t);
    if (rc != AI_OK)
        return rc;
    pthread_mutex_lock(&rt->mu);
    copy = install(rt, nt);
    pthread_cond_broadcast(&rt->cv); /* the refresher recomputes its wait */
    pthread_mutex_unlock(&rt->mu);
    notify_refresh(rt, copy);
    return AI_OK;
}

/* Wait on cv until `until_ms` (wall clock) at most, in monotonic time so a
 * clock step cannot stretch it; mu held. */
static void wait_until(ai_runtime *rt, int64_t until_ms)
{
    struct timespec ts;
    int64_t d = until_ms - time_now_ms();

    if (d <= 0)
        return;
    if (d > MAX_WAIT_MS)
        d = MAX_WAIT_MS;
    time_deadline(CLOCK_MONOTONIC, d, &ts);
    pthread_cond_timedwait(&rt->cv, &rt->mu, &ts);
}

/* Report why refreshing ends, once, and mark the thread inactive; called
 * with mu held, returns with it held. */
static void give_up(ai_runtime *rt, ai_code code, const char *msg)
{
    snprintf(rt->last_error, sizeof rt->last_error, "%s", msg);
    rt->active = false;
    if (rt->on_error != NULL && !rt->stopping) {
        pthread_mutex_unlock(&rt->mu);
        rt->on_error(rt->ud, code, msg);
        pthread_mutex_lock(&rt->mu);
    }
}

static void *refresher(void *arg)
{
    ai_runtime *rt = arg;
    int64_t retry_at = 0, backoff = 0;

    pthread_mutex_lock(&rt->mu);
    while (!rt->stopping) {
        int64_t now = time_now_ms(), exp = ai_token_expires_at(rt->cur),
                maxexp = ai_token_max_expires_at(rt->cur), due;
        ai_token *t, *nt = NULL;
        ai_err e;
        ai_code rc;

        if (exp == 0) { /* never expires: nothing to do until stop */
            wait_until(rt, now + MAX_WAIT_MS);
            continue;
        }
        due = exp - rt->refresh_before;
        if (rt->own_refresh > 0 && due < rt->own_refresh +
                                              (exp - rt->own_refresh) / 2)
            due = rt->own_refresh + (exp - rt->own_refresh) / 2;
        if (retry_at > 0)
            due = retry_at;
        if (now < due) {
            wait_until(rt, due);
            continue;
        }
        if (maxexp == 0 || exp >= maxexp || now >= exp) {
            char when[AI_TIME_BUF], msg[AI_ERR_MSG_MAX];
            ai_time_format(now >= exp ? exp : (maxexp ? maxexp : exp), when);
            if (now >= exp)
                snprintf(msg, sizeof msg, "token expired at %s before it "
                         "could be refreshed; refreshing stopped", when);
            else
                snprintf(msg, sizeof msg, "token cannot be refreshed beyond "
                         "its maxExpiresAt (%s); refreshing stopped", when);
            give_up(rt, now >= exp ? AI_EEXPIRED : AI_EDENIED, msg);
            break;
        }
        t = ai_token_ref(rt->cur);
        pthread_mutex_unlock(&rt->mu);
        rc = refresh_with(rt, rt->rb, t, rt->ttl, &rt->abort, &nt, &e);
        ai_token_free(t);
        pthread_mutex_lock(&rt->mu);
        if (rc == AI_OK) {
            char *copy = install(rt, nt);
            rt->own_refresh = rt->last_refresh;
            retry_at = backoff = 0;
            if (rt->stopping) {
                ai_free_string(copy);
                break;
            }
            pthread_mutex_unlock(&rt->mu);
            notify_refresh(rt, copy);
            pthread_mutex_lock(&rt->mu);
            continue;
        }
        if (rt->stopping)
            break;
        rt->failures++;
        snprintf(rt->last_error, sizeof rt->last_error, "%s", e.msg);
        backoff = backoff ? backoff * 2 : rt->retry_min;
        if (backoff > rt->retry_max)
            backoff = rt->retry_max;
        now = time_now_ms();
        exp = ai_token_expires_at(rt->cur);
        retry_at = now + (exp - now < backoff ? exp - now : backoff);
        if (retry_at < now + MIN_RETRY_MS)
            retry_at = now + MIN_RETRY_MS;
        if (rt->on_error != NULL) {
            pthread_mutex_unlock(&rt->mu);
            rt->on_error(rt->ud, rc, e.msg);
            pthread_mutex_lock(&rt->mu);
        }
    }
    rt->active = false;
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

ai_code ai_runtime_start(ai_runtime *rt, ai_err *err)
{
    ai_err local;
    ai_token *t;
    bool may;
    ai_code rc = AI_OK;

    err = ai_err_start(err, &local);
    if (rt == NULL)
        return ai_err_set(err, AI_EINVAL, "no runtime");
    pthread_mutex_lock(&rt->life);
    pthread_mutex_lock(&rt->mu);
    if (rt->running) {
        pthread_mutex_unlock(&rt->mu);
        goto done;
    }
    t = ai_token_ref(rt->cur);
    pthread_mutex_unlock(&rt->mu);
    may = can_refresh(t);
    ai_token_free(t);
    if (!may)
        goto done; /* nothing to refresh: no thread */
    if (!rt->remote && rt->rb == NULL &&
        ((rc = ai_broker_open(rt->home, &rt->rb, err)) != AI_OK ||
         (rc = ai_broker_set_actor(rt->rb, "agent-runtime", err)) != AI_OK)) {
        ai_broker_close(rt->rb);
        rt->rb = NULL;
        goto done;
    }
    atomic_store(&rt->abort, false);
    pthread_mutex_lock(&rt->mu);
    rt->stopping = false;
    rt->running = rt->active = true;
    rt->own_refresh = 0;
    pthread_mutex_unlock(&rt->mu);
    if (pthread_create(&rt->th, NULL, refresher, rt) != 0) {
        pthread_mutex_lock(&rt->mu);
        rt->running = rt->active = false;
        pthread_mutex_unlock(&rt->mu);
        rc = ai_err_set(err, AI_EINTERNAL, "cannot start the refresh thread");
    }
done:
    pthread_mutex_unlock(&rt->life);
    return rc;
}

void ai_runtime_stop(ai_runtime *rt)
{
    bool join;

    if (rt == NULL)
        return;
    pthread_mutex_lock(&rt->life);
    pthread_mutex_lock(&rt->mu);
    join = rt->running;
    rt->stopping = true;
    atomic_store(&rt->abort, true);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    if (join)
        pthread_join(rt->th, NULL);
    pthread_mutex_lock(&rt->mu);
    rt->running = rt->active = false;
    pthread_mutex_unlock(&rt->mu);
    ai_broker_close(rt->rb);
    rt->rb = NULL;
    pthread_mutex_unlock(&rt->life);
}

/* ---- operations ------------------------------------------------------- */

/* The server's answer to a remote call with the current token, parsed. */
static ai_code remote_json(ai_runtime *rt, const char *path, const char *req,
                           json_t **out, char **raw, ai_err *err)
{
    ai_token *t = current(rt);
    ai_code rc;

    *out = NULL;
    *raw = NULL;
    rc = rt_http_call(rt->url, rt->ca, rt->http_timeout, ai_token_serialize(t),
                      "POST", path, req, NULL, raw, err);
    ai_token_free(t);
    if (rc != AI_OK)
        return rc;
    if ((*out = json_loads(*raw, 0, NULL)) == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        ai_free_string(*raw);
        *raw = NULL;
        return ai_err_set(err, AI_EINTERNAL, "server: answer is not a JSON "
                          "object");
    }
    return AI_OK;
}

/* remote_json with the body {"scope","resource"}. */
static ai_code remote_scope(ai_runtime *rt, const char *path,
                            const char *scope, const char *resource,
                            json_t **out, char **raw, ai_err *err)
{
    json_t *o = json_pack("{s:s, s:s}", "scope", scope, "resource",
                          resource ? resource : "");
    char *req = o ? json_dumps(o, JSON_COMPACT) : NULL;
    ai_code rc;

    json_decref(o);
    *out = NULL;
    *raw = NULL;
    if (req == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    rc = remote_json(rt, path, req, out, raw, err);
    ai_free(req);
    return rc;
}

ai_code ai_runtime_check_permission(ai_runtime *rt, const char *scope,
                                    const char *resource, ai_err *err)
{
    ai_err local;
    ai_token *t;
    json_t *o = NULL;
    char *raw = NULL;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (rt == NULL || scope == NULL)
        return ai_err_set(err, AI_EINVAL, "no runtime or scope");
    if (resource == NULL)
        resource = "";
    if (!rt->remote) {
        t = current(rt);
        pthread_mutex_lock(&rt->blk);
        rc = ai_broker_check_permission(rt->b, ai_token_serialize(t),
                                        ai_token_serialized_len(t), scope,
                                        resource, err);
        pthread_mutex_unlock(&rt->blk);
        ai_token_free(t);
        return rc;
    }
    if ((rc = remote_scope(rt, "/v1/check", scope, resource, &o, &raw,
                           err)) != AI_OK)
        return rc;
    if (json_is_true(json_object_get(o, "valid")))
        rc = AI_OK;
    else if (json_is_false(json_object_get(o, "valid"))) {
        const char *why = json_string_value(json_object_get(o, "error"));
        rc = ai_err_set(err, AI_EDENIED, "%s", why ? why : "denied");
    } else
        rc = ai_err_set(err, AI_EINTERNAL, "server: check answer without "
                        "\"valid\"");
    json_decref(o);
    ai_free_string(raw);
    return rc;
}

/* The DelegationRequest JSON of req (NULL on out of memory or a bad JSON
 * member, with err set). */
static char *delegation_body(const ai_delegation *req, ai_err *err)
{
    static const struct {
        const char *name;
        size_t off;
    } raw[] = {
        {"requestedConstraints", offsetof(ai_delegation, constraints_json)},
        {"federation", offsetof(ai_delegation, federation_json)},
        {"agentCapabilities", offsetof(ai_delegation, capabilities_json)},
    };
    json_t *o = json_object(), *a = json_array();
    char *s = NULL;

    if (o == NULL || a == NULL)
        goto oom;
    if (req->agent_id != NULL &&
        json_object_set_new(o, "agentId", json_string(req->agent_id)) != 0)
        goto oom;
    if (req->nscopes > 0 && req->scopes == NULL) {
        ai_err_set(err, AI_EINVAL, "requested scopes missing");
        goto fail;
    }
    for (size_t i = 0; i < req->nscopes; i++) {
        json_t *v = req->scopes[i] ? json_string(req->scopes[i]) : NULL;
        if (v == NULL) {
            ai_err_set(err, AI_EINVAL, "requested scope %zu is not a UTF-8 "
                       "string", i);
            goto fail;
        }
        if (json_array_append_new(a, v) != 0)
            goto oom;
    }
    if (json_object_set(o, "requestedScopes", a) != 0)
        goto oom;
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
        const char *text =
            *(const char *const *)(const void *)((const char *)req + raw[i].off);
        json_t *v;
        json_error_t je;
        if (text == NULL)
            continue;
        if ((v = json_loads(text, JSON_REJECT_DUPLICATES, &je)) == NULL) {
            ai_err_set(err, AI_EINVAL, "%s is not valid JSON: %s",
                       raw[i].name, je.text);
            goto fail;
        }
        if (json_object_set_new(o, raw[i].name, v) != 0)
            goto oom;
    }
    if (json_object_set_new(o, "delegatable", json_boolean(req->delegatable)) ||
        json_object_set_new(o, "inheritIdentity",
                            json_boolean(req->inherit_identity)) ||
        (req->ttl_minutes > 0 &&
         json_object_set_new(o, "ttlMinutes",
                             json_integer(req->ttl_minutes))))
        goto oom;
    if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
        goto oom;
    goto fail; /* done: s set */
oom:
    ai_err_set(err, AI_ENOMEM, "out of memory");
fail:
    json_decref(a);
    json_decref(o);
    return s;
}

ai_code ai_runtime_delegate(ai_runtime *rt, const ai_delegation *req,
                            char **child_token, ai_err *err)
{
    ai_err local;
    ai_token *t, *child = NULL;
    json_t *o = NULL;
    char *body = NULL, *raw = NULL;
    const char *wire;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (child_token == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *child_token = NULL;
    if (rt == NULL || req == NULL)
        return ai_err_set(err, AI_EINVAL, "no runtime or request");
    if (!rt->remote) {
        t = current(rt);
        pthread_mutex_lock(&rt->blk);
        rc = ai_broker_delegate(rt->b, ai_token_serialize(t),
                                ai_token_serialized_len(t), req, &child, err);
        pthread_mutex_unlock(&rt->blk);
        ai_token_free(t);
        if (rc != AI_OK)
            return rc;
        if ((*child_token = ai_strdup(ai_token_serialize(child))) == NULL)
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        ai_token_free(child);
        return rc;
    }
    if ((body = delegation_body(req, err)) == NULL)
        return err->code;
    rc = remote_json(rt, "/v1/tokens/delegate", body, &o, &raw, err);
    ai_free(body);
    if (rc != AI_OK)
        return rc;
    wire = json_string_value(json_object_get(o, "token"));
    if (wire == NULL)
        rc = ai_err_set(err, AI_EINTERNAL, "server: delegate answer without "
                        "a token");
    else if ((*child_token = ai_strdup(wire)) == NULL)
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    json_wipe_decref(o);
    ai_free_string(raw);
    return rc;
}

ai_code ai_runtime_get_credential(ai_runtime *rt, const char *scope,
                                  const char *resource, char **result_json,
                                  ai_err *err)
{
    ai_err local;
    ai_token *t;
    json_t *o = NULL;
    char *raw = NULL;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (result_json == NULL)
        return ai_err_set(err, AI_EINVAL, "no output credential");
    *result_json = NULL;
    if (rt == NULL || scope == NULL)
        return ai_err_set(err, AI_EINVAL, "no runtime or scope");
    if (resource == NULL)
        resource = "";
    if (!rt->remote) {
        t = current(rt);
        pthread_mutex_lock(&rt->blk);
        rc = ai_broker_get_credential(rt->b, ai_token_serialize(t),
                                      ai_token_serialized_len(t), scope,
                                      resource, result_json, err);
        pthread_mutex_unlock(&rt->blk);
        ai_token_free(t);
        return rc;
    }
    if ((rc = remote_scope(rt, "/v1/credentials", scope, resource, &o, &raw,
                           err)) != AI_OK)
        return rc;
    if (!json_is_string(json_object_get(o, "credentialType")))
        rc = ai_err_set(err, AI_EINTERNAL, "server: credential answer "
                        "without credentialType");
    else
        *result_json = raw; /* the server's CredentialResult as sent */
    json_wipe_decref(o);
    if (rc != AI_OK)
        ai_free_string(raw);
    return rc;
}

ai_code ai_runtime_get_serialized_token(ai_runtime *rt, char **out)
{
    ai_token *t;

    if (out == NULL)
        return AI_EINVAL;
    *out = NULL;
    if (rt == NULL)
        return AI_EINVAL;
    t = current(rt);
    *out = ai_strdup(ai_token_serialize(t));
    ai_token_free(t);
    return *out != NULL ? AI_OK : AI_ENOMEM;
}

ai_code ai_runtime_get_token(ai_runtime *rt, ai_token **out, ai_err *err)
{
    ai_err local;
    ai_token *t;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *out = NULL;
    if (rt == NULL)
        return ai_err_set(err, AI_EINVAL, "no runtime");
    t = current(rt);
    if (rt->remote) {
        *out = t; /* decoded; the server verifies on every call */
        return AI_OK;
    }
    pthread_mutex_lock(&rt->blk);
    rc = ai_broker_verify(rt->b, ai_token_serialize(t),
                          ai_token_serialized_len(t), out, err);
    pthread_mutex_unlock(&rt->blk);
    ai_token_free(t);
    return rc;
}

ai_code ai_runtime_get_status(ai_runtime *rt, char **json)
{
    ai_buf b;
    ai_token *t;
    int64_t last, maxexp;
    unsigned failures;
    bool active;
    char last_error[AI_ERR_MSG_MAX];
    const char *id;

    if (json == NULL)
        return AI_EINVAL;
    *json = NULL;
    if (rt == NULL)
        return AI_EINVAL;
    pthread_mutex_lock(&rt->mu);
    t = ai_token_ref(rt->cur);
    last = rt->last_refresh;
    failures = rt->failures;
    active = rt->active && !rt->stopping;
    memcpy(last_error, rt->last_error, sizeof last_error);
    pthread_mutex_unlock(&rt->mu);

    buf_init(&b);
    buf_putc(&b, '{');
    jw_key(&b, "agentId", true);
    jw_str(&b, ai_token_agent_id(t), strlen(ai_token_agent_id(t)));
    jw_key(&b, "tokenId", false);
    if ((id = ai_token_id(t)) != NULL)
        jw_str(&b, id, strlen(id));
    else
        buf_puts(&b, "null");
    jw_key(&b, "expiresAt", false);
    if (ai_token_expires_at(t) > 0)
        jw_time(&b, ai_token_expires_at(t));
    else
        buf_puts(&b, "null");
    if ((maxexp = ai_token_max_expires_at(t)) > 0) {
        jw_key(&b, "maxExpiresAt", false);
        jw_time(&b, maxexp);
    }
    jw_key(&b, "refreshEnabled", false);
    buf_puts(&b, active ? "true" : "false");
    jw_key(&b, "lastRefreshAt", false);
    if (last > 0)
        jw_time(&b, last);
    else
        buf_puts(&b, "null");
    jw_key(&b, "refreshFailures", false);
    buf_put_u64(&b, failures);
    jw_key(&b, "lastError", false);
    if (last_error[0] != '\0')
        jw_str(&b, last_error, strlen(last_error));
    else
        buf_puts(&b, "null");
    jw_key(&b, "mode", false);
    buf_puts(&b, rt->remote ? "\"remote\"" : "\"local\"");
    buf_putc(&b, '}');
    ai_token_free(t);
    *json = buf_steal(&b);
    return *json != NULL ? AI_OK : AI_ENOMEM;
}

/* ---- subprocess environment ------------------------------------------ */

void ai_runtime_free_env(char **envp)
{
    if (envp == NULL)
        return;
    for (char **p = envp; *p != NULL; p++) {
        explicit_bzero(*p, strlen(*p));
        ai_free(*p);
    }
    ai_free(envp);
}

/* "NAME=value", ai_malloc'd. */
static char *env_entry(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *p = ai_malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s=%s", name, value);
    return p;
}

static bool env_is(const char *entry, const char *name)
{
    size_t n = strlen(name);

    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

ai_code ai_runtime_create_subprocess_env(ai_runtime *rt,
                                         const ai_delegation *req,
                                         char ***envp, ai_err *err)
{
    ai_err local;
    const char *names[4] = {"AGENT_TOKEN", NULL, NULL, NULL};
    const char *values[4] = {NULL, NULL, NULL, NULL};
    char *child = NULL, **e = NULL;
    size_t n = 0, k = 0, nset = 1;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (envp == NULL)
        return ai_err_set(err, AI_EINVAL, "no output environment");
    *envp = NULL;
    if ((rc = ai_runtime_delegate(rt, req, &child, err)) != AI_OK)
        return rc;
    values[0] = child;
    if (rt->remote) {
        names[nset] = "AGENT_IAM_URL";
        values[nset++] = rt->url;
        if (rt->ca != NULL) {
            names[nset] = "AGENT_IAM_CA_CERT";
            values[nset++] = rt->ca;
        }
    } else if (rt->home != NULL) {
        names[nset] = "AGENT_IAM_HOME";
        values[nset++] = rt->home;
    }
    for (char **p = environ; p != NULL && *p != NULL; p++)
        n++;
    if ((e = ai_calloc(n + nset + 1, sizeof *e)) == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < nset && !replaced; j++)
            replaced = env_is(environ[i], names[j]);
        if (replaced)
            continue;
        if ((e[k++] = ai_strdup(environ[i])) == NULL)
            goto oom;
    }
    for (size_t j = 0; j < nset; j++)
        if ((e[k++] = env_entry(names[j], values[j])) == NULL)
            goto oom;
    e[k] = NULL;
    ai_free_string(child);
    *envp = e;
    return AI_OK;
oom:
    ai_runtime_free_env(e); /* calloc'd: NULL-terminated at every step */
    ai_free_string(child);
    return ai_err_set(err, AI_ENOMEM, "out of memory");
}
