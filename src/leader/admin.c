/* admin.c - the admin API of the leader (docs/http-api.md): root tokens,
 * revocations, key rotation, provider configs, API keys, the followers.
 * Every write is durable before the reply, is written to the audit log
 * with the actor "admin", and wakes the followers' long-polls at once. */
#include <string.h>

#include "core/core.h"
#include "leader/leader.h"
#include "providers/providers.h"

#define ROOT_TTL_DAYS_MAX 3650

static void audit(srv_req *rq, const char *action, const char *token_id,
                  const char *agent_id, const char *reason)
{
    audit_entry e = {0,        rq->now, "admin", action, token_id,
                     agent_id, "ok",    reason};
    ai_err err;

    if (store_audit(rq->th->st, &e, &err) != AI_OK)
        fprintf(stderr, "agent-iam: warning: audit: %s\n", err.msg);
}

/* A member that must be a JSON object, kept as compact text. */
static bool object_text(srv_req *rq, json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        srv_reply_error(rq, 400, "bad_request", "\"%s\" must be an object",
                        key);
        return false;
    }
    if ((*out = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return false;
    }
    return true;
}

static void create_root(srv_req *rq)
{
    json_t *o = srv_body_object(rq, false), *sc, *v;
    const char *scopes[AI_LIST_MAX];
    char *cons = NULL, *ident = NULL, *fed = NULL, *caps = NULL;
    ai_root_params p;
    ai_token *t = NULL;
    long long n;
    bool has;
    ai_err err;
    ai_code rc;

    if (o == NULL)
        return;
    ai_root_params_init(&p);
    if (!srv_str(rq, o, "agentId", true, &p.agent_id))
        goto done;
    sc = json_object_get(o, "scopes");
    if (!json_is_array(sc) || json_array_size(sc) == 0 ||
        json_array_size(sc) > AI_LIST_MAX) {
        srv_reply_error(rq, 400, "bad_request",
                        "\"scopes\" must be an array of 1 to %d strings",
                        AI_LIST_MAX);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(sc); i++) {
        json_t *e = json_array_get(sc, i);
        if (!json_is_string(e)) {
            srv_reply_error(rq, 400, "bad_request",
                            "\"scopes\" must hold strings");
            goto done;
        }
        scopes[i] = json_string_value(e);
    }
    p.scopes = scopes;
    p.nscopes = json_array_size(sc);
    if ((v = json_object_get(o, "delegatable")) != NULL) {
        if (!json_is_boolean(v)) {
            srv_reply_error(rq, 400, "bad_request",
                            "\"delegatable\" must be true or false");
            goto done;
        }
        p.delegatable = json_is_true(v);
    }
    if (!srv_int(rq, o, "maxDelegationDepth", 0, AI_MAX_DEPTH, &has, &n))
        goto done;
    if (has)
        p.max_delegation_depth = (int)n;
    if (!srv_int(rq, o, "ttlDays", 1, ROOT_TTL_DAYS_MAX, &has, &n))
        goto done;
    if (has)
        p.ttl_days = (int)n;
    if (!srv_int(rq, o, "maxTtlDays", 1, ROOT_TTL_DAYS_MAX, &has, &n))
        goto done;
    if (has)
        p.max_ttl_days = (int)n;
    if (!object_text(rq, o, "constraints", &cons) ||
        !object_text(rq, o, "identity", &ident) ||
        !object_text(rq, o, "federation", &fed) ||
        !object_text(rq, o, "agentCapabilities", &caps))
        goto done;
    p.constraints_json = cons;
    p.identity_json = ident;
    p.federation_json = fed;
    p.capabilities_json = caps;
    {
        ai_err aerr; /* err holds the refusal's reason */
        (void)ai_broker_set_actor(rq->th->broker, "admin", &aerr);
        rc = ai_broker_create_root_token(rq->th->broker, &p, &t, &err);
        (void)ai_broker_set_actor(rq->th->broker, "leader", &aerr);
    }
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    {
        char at[AI_TIME_BUF];
        json_t *r;
        ai_time_format(ai_token_expires_at(t), at);
        r = json_pack("{s:s, s:s, s:s, s:s}", "token", ai_token_serialize(t),
                      "tokenId", ai_token_id(t), "agentId",
                      ai_token_agent_id(t), "expiresAt", at);
        snprintf(rq->subject, sizeof rq->subject, "admin token=%s",
                 ai_token_id(t));
        srv_reply_secret(rq, 200, r);
    }
done:
    ai_token_free(t);
    ai_free(cons);
    ai_free(ident);
    ai_free(fed);
    ai_free(caps);
    json_decref(o);
}

/* {tokenId} or {agentId}: false after a 400. */
static bool target(srv_req *rq, json_t *o, revoke_target *t, const char **id)
{
    const char *tok, *agent;

    if (!srv_str(rq, o, "tokenId", false, &tok) ||
        !srv_str(rq, o, "agentId", false, &agent))
        return false;
    if ((tok == NULL) == (agent == NULL) ||
        (tok ? *tok : *agent) == '\0') {
        srv_reply_error(rq, 400, "bad_request",
                        "give one non-empty \"tokenId\" or \"agentId\"");
        return false;
    }
    *t = tok ? REVOKE_TOKEN : REVOKE_AGENT;
    *id = tok ? tok : agent;
    snprintf(rq->subject, sizeof rq->subject, "admin %s=%.64s",
             tok ? "token" : "agent", *id);
    for (char *c = rq->subject; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return true;
}

static void revoke(srv_req *rq)
{
    json_t *o = srv_body_object(rq, false);
    const char *id, *reason, *exp;
    int64_t prune = 0;
    revoke_target t;
    ai_err err;
    ai_code rc;

    if (o == NULL)
        return;
    if (!target(rq, o, &t, &id) || !srv_str(rq, o, "reason", false, &reason) ||
        !srv_str(rq, o, "expiresAt", false, &exp))
        goto done;
    if (exp != NULL && ai_time_parse(exp, strlen(exp), &prune, &err) != AI_OK) {
        srv_reply_error(rq, 400, "bad_request", "\"expiresAt\": %s", err.msg);
        goto done;
    }
    if ((rc = store_revoke(rq->th->st, t, id, reason ? reason : "", prune,
                           rq->now, &err)) != AI_OK) {
        srv_reply_ai(rq, rc == AI_EINVAL ? AI_EINVAL : rc, err.msg);
        goto done;
    }
    audit(rq, "revoke", t == REVOKE_TOKEN ? id : NULL,
          t == REVOKE_AGENT ? id : NULL, reason);
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:b, s:s, s:s}", "revoked", 1,
                                      "target",
                                      t == REVOKE_AGENT ? "agent" : "token",
                                      "id", id));
done:
    json_decref(o);
}

static void unrevoke(srv_req *rq)
{
    json_t *o = srv_body_object(rq, false);
    const char *id;
    revoke_target t;
    ai_err err;
    ai_code rc;

    if (o == NULL)
        return;
    if (!target(rq, o, &t, &id))
        goto done;
    if ((rc = store_unrevoke(rq->th->st, t, id, rq->now, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    audit(rq, "unrevoke", t == REVOKE_TOKEN ? id : NULL,
          t == REVOKE_AGENT ? id : NULL, NULL);
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:b, s:s, s:s}", "unrevoked", 1,
                                      "target",
                                      t == REVOKE_AGENT ? "agent" : "token",
                                      "id", id));
done:
    json_decref(o);
}

static void rotate_key(srv_req *rq)
{
    json_t *o = srv_body_object(rq, true);
    long long grace = -1;
    uint32_t version = 0;
    char why[64];
    bool has;
    ai_err err;
    ai_code rc;

    if (o == NULL)
        return;
    if (!srv_int(rq, o, "graceMs", 0, INT64_C(10) * 365 * 86400000, &has,
                 &grace))
        goto done;
    if ((rc = store_rotate_key(rq->th->st, has ? grace : -1, rq->now, &version,
                               &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    snprintf(why, sizeof why, "version %u", (unsigned)version);
    audit(rq, "rotate-key", NULL, NULL, why);
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:I}", "version", (json_int_t)version));
done:
    json_decref(o);
}

static void put_provider(srv_req *rq)
{
    json_t *o;
    char *text;
    ai_err err;
    ai_code rc;

    if (prov_find(rq->tail) == NULL) { /* github, google, aws */
        srv_reply_error(rq, 404, "not_found",
                        "unknown provider (github, google or aws)");
        return;
    }
    if ((o = srv_body_object(rq, false)) == NULL)
        return;
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL) {
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if ((rc = prov_config_check(rq->tail, text, &err)) == AI_OK &&
        (rc = store_provider_set(rq->th->st, rq->tail, text, rq->now,
                                 &err)) == AI_OK) {
        audit(rq, "config-init", NULL, NULL, rq->tail);
        srv_changed(rq->s);
        srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "provider", rq->tail,
                                          "configured", 1));
    } else {
        srv_reply_ai(rq, rc, err.msg);
    }
    explicit_bzero(text, strlen(text));
    ai_free(text);
}

static void delete_provider(srv_req *rq)
{
    ai_err err;
    ai_code rc;

    if ((rc = store_provider_delete(rq->th->st, rq->tail, rq->now, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    audit(rq, "config-remove", NULL, NULL, rq->tail);
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "provider", rq->tail,
                                      "removed", 1));
}

static void put_apikey(srv_req *rq)
{
    json_t *o;
    apikey_info info = {0};
    const char *key, *base;
    long long ttl = 0;
    bool has;
    ai_err err;
    ai_code rc;

    if (!word_valid(rq->tail, 64)) {
        srv_reply_error(rq, 400, "bad_request",
                        "an API key name is 1 to 64 of A-Z a-z 0-9 . _ -");
        return;
    }
    if ((o = srv_body_object(rq, false)) == NULL)
        return;
    if (!srv_str(rq, o, "provider", true, &info.provider) ||
        !srv_str(rq, o, "key", true, &key) ||
        !srv_str(rq, o, "baseUrl", false, &base) ||
        !srv_int(rq, o, "ttlMinutes", 1, 90 * 24 * 60, &has, &ttl))
        goto done;
    if (!word_valid(info.provider, 64)) {
        srv_reply_error(rq, 400, "bad_request",
                        "\"provider\" is 1 to 64 of A-Z a-z 0-9 . _ -");
        goto done;
    }
    if (*key == '\0') {
        srv_reply_error(rq, 400, "bad_request", "\"key\" is empty");
        goto done;
    }
    if (base != NULL && !prov_url_ok(base)) {
        srv_reply_error(rq, 400, "bad_request",
                        "\"baseUrl\" must be an https:// URL");
        goto done;
    }
    info.name = rq->tail;
    info.base_url = base;
    info.ttl_minutes = (int)ttl;
    if ((rc = store_apikey_add(rq->th->st, &info, key, rq->now, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    audit(rq, "apikey-add", NULL, NULL, rq->tail);
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "name", rq->tail, "added",
                                      1));
done:
    {
        json_t *k = json_object_get(o, "key");
        if (json_is_string(k)) /* jansson's copy of the secret */
            explicit_bzero((char *)(uintptr_t)json_string_value(k),
                           json_string_length(k));
    }
    json_decref(o);
}

static void delete_apikey(srv_req *rq)
{
    ai_err err;
    ai_code rc;

    if ((rc = store_apikey_remove(rq->th->st, rq->tail, rq->now, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    audit(rq, "apikey-remove", NULL, NULL, rq->tail);
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "name", rq->tail,
                                      "removed", 1));
}

static void followers(srv_req *rq)
{
    int64_t head = 0;
    ai_err err;

    (void)store_changelog_head(rq->th->st, &head, &err);
    srv_reply_json(rq, 200,
                   json_pack("{s:I, s:o}", "leaderSeq", (json_int_t)head,
                             "followers",
                             leader_followers_json(rq->app, head)));
}

const srv_route leader_admin_routes[] = {
    {"POST", "/v1/admin/tokens", false, SRV_AUTH_ADMIN, create_root,
     "/v1/admin/tokens"},
    {"POST", "/v1/admin/revoke", false, SRV_AUTH_ADMIN, revoke,
     "/v1/admin/revoke"},
    {"POST", "/v1/admin/unrevoke", false, SRV_AUTH_ADMIN, unrevoke,
     "/v1/admin/unrevoke"},
    {"POST", "/v1/admin/rotate-key", false, SRV_AUTH_ADMIN, rotate_key,
     "/v1/admin/rotate-key"},
    {"PUT", "/v1/admin/providers/", true, SRV_AUTH_ADMIN, put_provider,
     "/v1/admin/providers/{name}"},
    {"DELETE", "/v1/admin/providers/", true, SRV_AUTH_ADMIN, delete_provider,
     "/v1/admin/providers/{name}"},
    {"PUT", "/v1/admin/apikeys/", true, SRV_AUTH_ADMIN, put_apikey,
     "/v1/admin/apikeys/{name}"},
    {"DELETE", "/v1/admin/apikeys/", true, SRV_AUTH_ADMIN, delete_apikey,
     "/v1/admin/apikeys/{name}"},
    {"GET", "/v1/admin/followers", false, SRV_AUTH_ADMIN, followers,
     "/v1/admin/followers"},
};
const size_t leader_admin_nroutes =
    sizeof leader_admin_routes / sizeof *leader_admin_routes;
