/* follower.c - the follower service: start and stop, the role it plays in
 * the shared server (status, metrics, readiness, refusal when stale, 409
 * for admin calls), and counting maxUses at the leader. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "follower/internal.h"

#define USES_TIMEOUT_MS 5000L

/* ---- the role in the server ------------------------------------------- */

static void not_leader(srv_req *rq)
{
    ai_follower *f = rq->app;

    srv_reply_json(rq, 409,
                   json_pack("{s:s, s:s, s:s}", "error",
                             "this is a follower: send admin calls to the "
                             "leader",
                             "code", "not_leader", "leader", f->leader_url));
}

static const srv_route admin_409[] = {
    {"POST", "/v1/admin/tokens", false, SRV_AUTH_NONE, not_leader,
     "/v1/admin/tokens"},
    {"POST", "/v1/admin/revoke", false, SRV_AUTH_NONE, not_leader,
     "/v1/admin/revoke"},
    {"POST", "/v1/admin/unrevoke", false, SRV_AUTH_NONE, not_leader,
     "/v1/admin/unrevoke"},
    {"POST", "/v1/admin/rotate-key", false, SRV_AUTH_NONE, not_leader,
     "/v1/admin/rotate-key"},
    {"PUT", "/v1/admin/providers/", true, SRV_AUTH_NONE, not_leader,
     "/v1/admin/providers/{name}"},
    {"DELETE", "/v1/admin/providers/", true, SRV_AUTH_NONE, not_leader,
     "/v1/admin/providers/{name}"},
    {"PUT", "/v1/admin/apikeys/", true, SRV_AUTH_NONE, not_leader,
     "/v1/admin/apikeys/{name}"},
    {"DELETE", "/v1/admin/apikeys/", true, SRV_AUTH_NONE, not_leader,
     "/v1/admin/apikeys/{name}"},
    {"GET", "/v1/admin/followers", false, SRV_AUTH_NONE, not_leader,
     "/v1/admin/followers"},
    {"POST", "/v1/admin/followers", false, SRV_AUTH_NONE, not_leader,
     "/v1/admin/followers"},
    {"DELETE", "/v1/admin/followers/", true, SRV_AUTH_NONE, not_leader,
     "/v1/admin/followers/{id}"},
};

static srv_route routes[64];
static size_t nroutes;
static pthread_once_t routes_once = PTHREAD_ONCE_INIT;

#define ADD(r, n) \
    srv_routes_add(routes, &nroutes, sizeof routes / sizeof *routes, r, n)

static void build_routes(void)
{
    ADD(srv_agent_routes, srv_agent_nroutes);
    ADD(admin_409, sizeof admin_409 / sizeof *admin_409);
    ADD(srv_common_routes, srv_common_nroutes);
}
#undef ADD

static const char *refuse_agents(void *app)
{
    ai_follower *f = app;
    int64_t fresh = atomic_load(&f->fresh_at), now = time_now_ms();

    if (atomic_load(&f->phase) != FL_RUNNING)
        return "this follower has not synced with its leader yet";
    if (fresh == 0 || now - fresh > f->cfg.max_staleness_ms)
        return "this follower has not held all of its leader's changes "
               "for longer than its max staleness: it may be missing "
               "revocations";
    return NULL;
}

static bool ready(void *app)
{
    return refuse_agents(app) == NULL;
}

static json_t *status_json(ai_follower *f, srv_thread *th)
{
    int64_t now = time_now_ms(), last = atomic_load(&f->last_contact),
            fresh = atomic_load(&f->fresh_at);
    long long applied = atomic_load(&f->applied),
              lseq = atomic_load(&f->leader_seq);
    json_t *o = json_object();
    char err[AI_ERR_MSG_MAX];

    pthread_mutex_lock(&f->lock);
    snprintf(err, sizeof err, "%s", f->last_error);
    pthread_mutex_unlock(&f->lock);
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "state", json_string(fl_state(f, now)));
    json_object_set_new(o, "followerId", json_string(f->follower_id));
    json_object_set_new(o, "leaderUrl", json_string(f->leader_url));
    json_object_set_new(o, "appliedSeq", json_integer(applied));
    json_object_set_new(o, "leaderSeq", json_integer(lseq));
    json_object_set_new(o, "lag", json_integer(lseq > applied ? lseq - applied
                                                              : 0));
    json_object_set_new(o, "lastContactMs", json_integer(last));
    json_object_set_new(o, "secondsSinceContact",
                        last ? json_integer((now - last) / 1000)
                             : json_null());
    json_object_set_new(o, "freshMs", json_integer(fresh));
    json_object_set_new(o, "secondsSinceFresh",
                        fresh ? json_integer((now - fresh) / 1000)
                              : json_null());
    json_object_set_new(o, "serving",
                        json_boolean(refuse_agents(f) == NULL));
    if (err[0] != '\0')
        json_object_set_new(o, "lastError", json_string(err));
    if (th != NULL) {
        const ai_keyring *kr;
        ai_err e;
        if (store_keyring(th->st, &kr, &e) == AI_OK &&
            ai_keyring_signing_version(kr) != 0)
            json_object_set_new(o, "signingKeyVersion",
                                json_integer(ai_keyring_signing_version(kr)));
        json_object_set_new(
            o, "revocations",
            json_integer((json_int_t)store_revocation_count(th->st)));
    }
    return o;
}

static void status(void *app, srv_thread *th, json_t *out)
{
    json_t *o = status_json(app, th);

    if (o != NULL)
        json_object_update(out, o);
    json_decref(o);
}

static void metrics(void *app, srv_thread *th, char **buf, size_t *len,
                    size_t *cap)
{
    static const char *const states[] = {"starting", "initial_sync",
                                         "connected", "degraded",
                                         "limited", "offline"};
    ai_follower *f = app;
    int64_t now = time_now_ms(), last = atomic_load(&f->last_contact),
            fresh = atomic_load(&f->fresh_at);
    long long applied = atomic_load(&f->applied),
              lseq = atomic_load(&f->leader_seq);
    const char *st = fl_state(f, now);

    srv_appendf(buf, len, cap,
                "# HELP agent_iam_follower_state The follower's state.\n"
                "# TYPE agent_iam_follower_state gauge\n");
    for (size_t i = 0; i < sizeof states / sizeof *states; i++)
        srv_appendf(buf, len, cap,
                    "agent_iam_follower_state{state=\"%s\"} %d\n", states[i],
                    strcmp(st, states[i]) == 0);
    srv_appendf(buf, len, cap,
                "# HELP agent_iam_follower_applied_seq Leader seq applied.\n"
                "# TYPE agent_iam_follower_applied_seq gauge\n"
                "agent_iam_follower_applied_seq %lld\n"
                "# HELP agent_iam_follower_lag Changes not applied yet.\n"
                "# TYPE agent_iam_follower_lag gauge\n"
                "agent_iam_follower_lag %lld\n"
                "# HELP agent_iam_follower_seconds_since_contact Since the "
                "last answer of the leader.\n"
                "# TYPE agent_iam_follower_seconds_since_contact gauge\n"
                "agent_iam_follower_seconds_since_contact %.3f\n"
                "# HELP agent_iam_follower_seconds_since_fresh Since the "
                "replica last held every change of the leader (agents are "
                "refused past --max-staleness).\n"
                "# TYPE agent_iam_follower_seconds_since_fresh gauge\n"
                "agent_iam_follower_seconds_since_fresh %.3f\n"
                "# HELP agent_iam_follower_sync_failures_total Failed "
                "syncs.\n"
                "# TYPE agent_iam_follower_sync_failures_total counter\n"
                "agent_iam_follower_sync_failures_total %lld\n"
                "# HELP agent_iam_revocations Revocations in force.\n"
                "# TYPE agent_iam_revocations gauge\n"
                "agent_iam_revocations %zu\n",
                applied, lseq > applied ? lseq - applied : 0,
                last ? (double)(now - last) / 1000.0 : -1.0,
                fresh ? (double)(now - fresh) / 1000.0 : -1.0,
                (long long)atomic_load(&f->failures),
                store_revocation_count(th->st));
}

/* maxUses: ask the leader, which verifies the token and counts. */
static ai_code consume_at_leader(void *ud, const char *wire, size_t len,
                                 const ai_token *t, const char *scope,
                                 bool *granted, uint32_t *remaining,
                                 ai_err *err)
{
    ai_follower *f = ud;
    char *req, *body = NULL;
    size_t blen = 0;
    long status = 0;
    json_t *o;
    ai_code rc;

    *granted = false;
    *remaining = 0;
    if (ai_token_id(t) == NULL)
        return ai_err_set(err, AI_EDENIED,
                          "a token without tokenId cannot spend maxUses on a "
                          "follower");
    o = json_pack("{s:s, s:s, s:s%}", "tokenId", ai_token_id(t), "scope",
                  scope, "token", wire, len);
    req = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (req == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    pthread_mutex_lock(&f->uses_lock);
    rc = upstream_call(f->up_uses, "POST", "/v1/uses/consume", req,
                       USES_TIMEOUT_MS, 65536, &status, &body, &blen, err);
    pthread_mutex_unlock(&f->uses_lock);
    explicit_bzero(req, strlen(req));
    ai_free(req);
    if (rc != AI_OK)
        return ai_err_set(err, AI_EUNAVAILABLE,
                          "cannot count maxUses: %s", err->msg);
    o = status == 200 ? json_loadb(body, blen, 0, NULL) : NULL;
    if (o == NULL) {
        char text[160];
        upstream_error_text(body, status, text, sizeof text);
        ai_free(body);
        return ai_err_set(err, AI_EUNAVAILABLE,
                          "cannot count maxUses: the leader answered %s",
                          text);
    }
    ai_free(body);
    *granted = json_is_true(json_object_get(o, "allowed"));
    *remaining = (uint32_t)json_integer_value(json_object_get(o, "remaining"));
    if (!*granted && json_is_string(json_object_get(o, "error")))
        rc = ai_err_set(err, AI_EDENIED, "%s",
                        json_string_value(json_object_get(o, "error")));
    json_decref(o);
    return rc;
}

/* Upkeep on the watcher thread: revocations are pruned as the leader
 * prunes them (store_prune, by the times the leader set); the local
 * changelog (rows written as batches are applied, read by this process's
 * other handles) is trimmed; a handle left behind reloads its views
 * whole. */
static void tick(void *app, srv *s, store *st, int64_t now)
{
    static _Thread_local int64_t next, next_prune;
    int64_t removed = 0;
    ai_err err;

    (void)app, (void)s;
    if (now >= next_prune) {
        next_prune = now + STORE_PRUNE_EVERY_MS;
        if (store_prune(st, now, NULL, &err) != AI_OK)
            fprintf(stderr, "agent-iam: prune: %s\n", err.msg);
    }
    if (now < next)
        return;
    next = now + 60000;
    if (store_changelog_trim(st, 100000, 0, now, &removed, &err) != AI_OK)
        fprintf(stderr, "agent-iam: changelog trim: %s\n", err.msg);
}

/* A credential of a provider not granted to this follower (so not held
 * in its replica): the leader answers it, with the agent's own token, and
 * counts its uses; its answer (200, a 4xx, 502 or 503) goes back as it is.
 * When the leader has not been heard from for a poll and a margin, or
 * every forwarding connection is busy, the answer is 503 at once: a
 * worker thread never waits on an unreachable leader for long. */
static bool forward_credential(void *app, srv_req *rq)
{
    ai_follower *f = app;
    int64_t last = atomic_load(&f->last_contact);
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    int slot = -1;
    ai_err err;
    ai_code rc;
    json_t *o;

    if (last == 0 ||
        rq->now - last > (int64_t)f->cfg.long_poll_s * 1000 + 20000) {
        srv_reply_error(rq, 503, "unavailable",
                        "this follower does not hold that provider and has "
                        "not reached the leader lately");
        return true;
    }
    for (int i = 0; i < FL_FORWARD_CONNS && slot < 0; i++)
        if (pthread_mutex_trylock(&f->fwd_lock[i]) == 0)
            slot = i;
    if (slot < 0) {
        srv_reply_error(rq, 503, "unavailable",
                        "too many requests are being forwarded to the "
                        "leader: try again");
        return true;
    }
    rc = upstream_call_as(f->up_fwd[slot], rq->bearer, rq->bearer_len,
                          "/v1/credentials", rq->body, USES_TIMEOUT_MS,
                          1 << 20, &status, &body, &len, &err);
    pthread_mutex_unlock(&f->fwd_lock[slot]);
    if (rc != AI_OK) {
        srv_reply_error(rq, 503, "unavailable",
                        "this follower does not hold that provider and the "
                        "leader cannot be reached");
        return true;
    }
    o = json_loadb(body, len, 0, NULL);
    explicit_bzero(body, len);
    ai_free(body);
    if (o == NULL || !json_is_object(o) ||
        !(status == 200 || (status >= 400 && status < 500) || status == 502 ||
          status == 503)) {
        json_decref(o);
        srv_reply_error(rq, 502, "bad_gateway",
                        "the leader's answer to a forwarded request was not "
                        "usable (status %ld)",
                        status);
        return true;
    }
    srv_reply_secret(rq, (int)status, o);
    return true;
}

static void thread_init(void *app, srv_thread *th)
{
    broker_set_consume(th->broker, consume_at_leader, app);
}

static const srv_role follower_role = {"follower", status, metrics, ready,
                                       refuse_agents, tick, thread_init, NULL,
                                       forward_credential};

/* ---- start, stop, sync ------------------------------------------------ */

void ai_follower_config_init(ai_follower_config *c)
{
    memset(c, 0, sizeof *c);
    c->serve = true;
    c->port = 8443;
    c->access_log_fd = 2;
    c->sync_interval_ms = 60000;
    c->max_staleness_ms = 3600000;
    c->degraded_ms = 300000;
    c->limited_ms = 3600000;
    c->offline_ms = 86400000;
    c->long_poll_s = 25;
    c->agent_rate = SRV_AGENT_RATE;
    c->audit_retain_ms = STORE_AUDIT_RETAIN_DEFAULT_MS;
}

void fl_free(ai_follower *f)
{
    upstream_free(f->up);
    upstream_free(f->up_uses);
    for (int i = 0; i < FL_FORWARD_CONNS; i++) {
        upstream_free(f->up_fwd[i]);
        pthread_mutex_destroy(&f->fwd_lock[i]);
    }
    store_close(f->st);
    srv_tls_clear(&f->tls);
    pthread_mutex_destroy(&f->uses_lock);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->wake);
    OPENSSL_cleanse(f->tkey, sizeof f->tkey);
    ai_free(f);
}

/* Everything but the server and the thread (internal.h). */
ai_code fl_new(const ai_follower_config *c, ai_follower **out, ai_err *err)
{
    ai_follower *f;
    int64_t applied = 0, last = 0, head = 0;
    char *url = NULL;
    bool replica = false;
    ai_code rc;

    *out = NULL;
    if (c->leader_url == NULL || c->auth_token == NULL)
        return ai_err_set(err, AI_EINVAL,
                          "a leader URL and an auth token are required");
    if (!word_valid(c->follower_id, 64))
        return ai_err_set(err, AI_EINVAL,
                          "--follower-id must be 1 to 64 of A-Z a-z 0-9 . _ -");
    if ((f = ai_calloc(1, sizeof *f)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    f->cfg = *c;
    /* Contact is recorded when a poll returns: a poll longer than half the
     * degraded threshold would show a healthy follower as degraded. */
    if ((int64_t)f->cfg.long_poll_s * 2000 > f->cfg.degraded_ms)
        f->cfg.long_poll_s = (int)(f->cfg.degraded_ms / 2000);
    /* Freshness moves when a poll returns: a wait near --max-staleness
     * would refuse agents while the follower is healthy and idle. */
    if ((int64_t)f->cfg.long_poll_s * 4000 > f->cfg.max_staleness_ms)
        f->cfg.long_poll_s = (int)(f->cfg.max_staleness_ms / 4000);
    if (f->cfg.long_poll_s < 1)
        f->cfg.long_poll_s = 1;
    f->batch_limit = FL_BATCH_LIMIT;
    f->fetch_ms = FL_FETCH_TIMEOUT_MS;
    f->batch_bytes = FL_BATCH_BYTES;
    pthread_mutex_init(&f->uses_lock, NULL);
    for (int i = 0; i < FL_FORWARD_CONNS; i++)
        pthread_mutex_init(&f->fwd_lock[i], NULL);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->wake, NULL);
    snprintf(f->leader_url, sizeof f->leader_url, "%s", c->leader_url);
    snprintf(f->follower_id, sizeof f->follower_id, "%s", c->follower_id);
    if (c->ca_cert_file != NULL)
        snprintf(f->ca, sizeof f->ca, "%s", c->ca_cert_file);
    if ((rc = store_home_path(c->home, f->home, sizeof f->home, err)) !=
            AI_OK ||
        (rc = store_open(f->home, true, &f->st, err)) != AI_OK ||
        (rc = store_is_replica(f->st, &replica, err)) != AI_OK ||
        (rc = store_changelog_head(f->st, &head, err)) != AI_OK)
        goto fail;
    /* The snapshot replaces the home's keys, revocations, providers and API
     * keys: never those of a home that made its own (a leader's, or a
     * standalone one whose tokens they sign). Every such write is logged,
     * so a home that is not a replica and has a changelog has some. */
    if (!replica && head > 0) {
        rc = ai_err_set(err, AI_EINVAL,
                        "%s has signing keys or other state of its own "
                        "(it is not a replica): a follower needs an empty "
                        "home (use another --home)",
                        f->home);
        goto fail;
    }
    if ((rc = store_mark_replica(f->st, err)) != AI_OK ||
        (rc = store_applied_seq(f->st, &applied, err)) != AI_OK ||
        (rc = store_applied_hash(f->st, f->applied_hash, err)) != AI_OK ||
        (rc = store_follower_meta_get(f->st, &url, &last, err)) != AI_OK)
        goto fail;
    if (applied > 0 && url != NULL && strcmp(url, c->leader_url) != 0) {
        rc = ai_err_set(err, AI_EINVAL,
                        "this home replicates %s, not %s (use another "
                        "--home)",
                        url, c->leader_url);
        goto fail;
    }
    store_free(url);
    url = NULL;
    f->cfg.home = f->home;
    f->cfg.leader_url = f->leader_url;
    f->cfg.follower_id = f->follower_id;
    f->cfg.ca_cert_file = f->ca[0] ? f->ca : NULL;
    store_transport_key(c->auth_token, strlen(c->auth_token), f->tkey);
    f->cfg.auth_token = NULL; /* kept only inside the connections */
    atomic_store(&f->applied, applied);
    atomic_store(&f->leader_seq, applied);
    /* A replica loaded from disk serves at once, within its staleness
     * (counted from when it last held everything, as saved). */
    atomic_store(&f->last_contact, applied > 0 ? last : 0);
    atomic_store(&f->fresh_at, applied > 0 ? last : 0);
    f->fresh_saved = last;
    atomic_store(&f->phase, applied > 0 ? FL_RUNNING : FL_STARTING);
    if ((f->up = upstream_new(c->leader_url, c->auth_token, f->cfg.ca_cert_file,
                              f->follower_id, &f->stop, err)) == NULL ||
        (f->up_uses = upstream_new(c->leader_url, c->auth_token,
                                   f->cfg.ca_cert_file, f->follower_id,
                                   &f->stop, err)) == NULL) {
        rc = err->code;
        goto fail;
    }
    for (int i = 0; i < FL_FORWARD_CONNS; i++)
        if ((f->up_fwd[i] = upstream_new(c->leader_url, c->auth_token,
                                         f->cfg.ca_cert_file, f->follower_id,
                                         &f->stop, err)) == NULL) {
            rc = err->code;
            goto fail;
        }
    *out = f;
    return AI_OK;
fail:
    store_free(url);
    fl_free(f);
    return rc;
}

ai_code ai_follower_start(const ai_follower_config *c, ai_follower **out,
                          ai_err *err)
{
    ai_err local;
    ai_follower *f;
    ai_code rc;

    if (err == NULL)
        err = &local;
    ai_err_clear(err);
    if (c == NULL || out == NULL)
        return ai_err_set(err, AI_EINVAL, "no config or output");
    if ((rc = fl_new(c, &f, err)) != AI_OK)
        return rc;
    if (c->serve) {
        srv_config sc;
        pthread_once(&routes_once, build_routes);
        if (!c->insecure_http &&
            (rc = srv_tls_load(f->home, c->tls_cert_file, c->tls_key_file,
                               &f->tls, err)) != AI_OK)
            goto fail;
        memset(&sc, 0, sizeof sc);
        sc.home = f->home;
        sc.host = c->host;
        sc.port = c->port;
        sc.tls_cert_pem = f->tls.cert_pem;
        sc.tls_key_pem = f->tls.key_pem;
        sc.insecure_http = c->insecure_http;
        sc.threads = c->threads;
        sc.max_connections = c->max_conns;
        sc.max_conns_per_ip = c->max_conns_per_ip;
        sc.metrics_secret = c->metrics_token;
        sc.public_metrics = c->public_metrics;
        sc.access_log_fd = c->access_log_fd;
        sc.agent_rate = c->agent_rate;
        sc.agent_burst = c->agent_burst;
        sc.audit_retain_ms = c->audit_retain_ms;
        sc.replica = true;
        sc.routes = routes;
        sc.nroutes = nroutes;
        sc.role = &follower_role;
        sc.app = f;
        if ((rc = srv_start(&sc, &f->s, err)) != AI_OK)
            goto fail;
        if (f->tls.key_pem != NULL)
            explicit_bzero(f->tls.key_pem, strlen(f->tls.key_pem));
    }
    if (pthread_create(&f->thread, NULL, fl_loop, f) != 0) {
        rc = ai_err_set(err, AI_EINTERNAL, "cannot start the sync thread");
        goto fail;
    }
    f->started = true;
    *out = f;
    return AI_OK;
fail:
    srv_stop(f->s, 0);
    fl_free(f);
    return rc;
}

ai_code ai_follower_sync(const ai_follower_config *c, int64_t *applied,
                         ai_err *err)
{
    ai_err local;
    ai_follower *f;
    bool more = true;
    ai_code rc;

    if (err == NULL)
        err = &local;
    ai_err_clear(err);
    if (c == NULL)
        return ai_err_set(err, AI_EINVAL, "no config");
    if ((rc = fl_new(c, &f, err)) != AI_OK)
        return rc;
    /* The snapshot (if needed), then every pending change. */
    rc = fl_sync_once(f, 0, &more, err);
    while (rc == AI_OK && (rc = fl_sync_once(f, 0, &more, err)) == AI_OK &&
           more)
        ;
    if (applied != NULL)
        *applied = atomic_load(&f->applied);
    /* the freshness this sync reached, for `agent-iam status` on the home
     * (the sync loop writes it only now and then) */
    if (rc == AI_OK)
        rc = fl_save_fresh(f, err);
    fl_free(f);
    return rc;
}

uint16_t ai_follower_port(const ai_follower *f)
{
    return f->s ? srv_port(f->s) : 0;
}

const char *ai_follower_ca_path(const ai_follower *f)
{
    return f->tls.ca_path;
}

const char *ai_follower_state(ai_follower *f)
{
    return fl_state(f, time_now_ms());
}

char *ai_follower_status(ai_follower *f)
{
    json_t *o = status_json(f, NULL);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(o);
    return s;
}

void ai_follower_stop(ai_follower *f, int drain_ms)
{
    if (f == NULL)
        return;
    atomic_store(&f->stop, true);
    pthread_mutex_lock(&f->lock);
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
    if (f->started) {
        ai_err err;
        pthread_join(f->thread, NULL);
        if (fl_save_fresh(f, &err) != AI_OK)
            fprintf(stderr, "agent-iam: follower %s: %s\n", f->follower_id,
                    err.msg);
    }
    srv_stop(f->s, drain_ms);
    fl_free(f);
}
