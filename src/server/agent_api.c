/* agent_api.c - what agents call with their token as the bearer (leader
 * and followers): credentials, check, delegate, refresh, whoami. The
 * server verified the token before the handler runs (rq->token). */
#include <string.h>

#include "core/core.h"
#include "server/body.h"
#include "server/metrics.h"
#include "server/ratelimit.h"
#include "server/server.h"

static json_t *token_reply(const ai_token *t)
{
    char at[AI_TIME_BUF];
    json_t *o;

    ai_time_format(ai_token_expires_at(t), at);
    o = json_pack("{s:s, s:s, s:s}", "token", ai_token_serialize(t),
                  "agentId", ai_token_agent_id(t), "expiresAt", at);
    if (o != NULL && ai_token_id(t) != NULL)
        json_object_set_new(o, "tokenId", json_string(ai_token_id(t)));
    return o;
}

static void credentials(srv_req *rq)
{
    body_scope b;
    const char *scope, *resource;
    char provider[65], *result = NULL;
    const char *colon;
    ai_err err;
    ai_code rc;

    if ((rc = body_scope_parse(rq->body, rq->len, &b, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    /* A body that does not parse writes nothing: only what does counts. */
    if (!srv_agent_rate_ok(rq)) {
        body_scope_free(&b);
        return;
    }
    scope = b.scope;
    resource = b.resource;
    colon = strchr(scope, ':');
    snprintf(provider, sizeof provider, "%.*s",
             (int)(colon ? (size_t)(colon - scope) : strlen(scope)), scope);
    rc = ai_broker_get_credential(rq->th->broker, rq->bearer, rq->bearer_len,
                                  scope, resource, &result, &err);
    if (rc == AI_ENOTFOUND && srv_role_of(rq->s) != NULL &&
        srv_role_of(rq->s)->forward_credential != NULL &&
        srv_role_of(rq->s)->forward_credential(rq->app, rq)) {
        body_scope_free(&b);
        return;
    }
    if (rc == AI_OK) {
        json_t *r = json_loads(result, 0, NULL);
        ai_free_string(result);
        metrics_credential(srv_get_metrics(rq->s), provider, true);
        if (r == NULL)
            srv_reply_error(rq, 500, "internal_error", "out of memory");
        else
            srv_reply_secret(rq, 200, r);
    } else {
        if (rc == AI_EPROVIDER)
            metrics_credential(srv_get_metrics(rq->s), provider, false);
        srv_reply_ai(rq, rc, err.msg);
    }
    body_scope_free(&b);
}

static void check(srv_req *rq)
{
    body_scope b;
    ai_err err;
    ai_code rc;

    if ((rc = body_scope_parse(rq->body, rq->len, &b, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    rc = ai_token_check(rq->token, b.scope, b.resource, rq->now, &err);
    if (rc == AI_OK)
        srv_reply_static(rq, 200, "{\"valid\":true}");
    else if (rc == AI_EINVAL)
        srv_reply_ai(rq, rc, err.msg);
    else
        srv_reply_json(rq, 200, json_pack("{s:b, s:s}", "valid", 0, "error",
                                          err.msg));
    body_scope_free(&b);
}

/* token_reply plus "narrowed": the requested federation and
 * agentCapabilities fields the parent's narrowed ([] when none). */
static json_t *delegate_reply(const ai_token *t)
{
    json_t *o = token_reply(t), *a = json_array();
    bool ok = o != NULL && a != NULL;

    for (size_t i = 0; ok && i < ai_token_narrowed_count(t); i++)
        ok = json_array_append_new(a, json_string(ai_token_narrowed(t, i))) ==
             0;
    if (!ok) {
        json_decref(a);
        json_decref(o);
        return NULL;
    }
    if (json_object_set_new(o, "narrowed", a) != 0) { /* it took a */
        json_decref(o);
        return NULL;
    }
    return o;
}

static void delegate(srv_req *rq)
{
    ai_delegation d;
    ai_delegation_storage *storage = NULL;
    ai_token *child = NULL;
    ai_err err;
    ai_code rc;

    if ((rc = body_delegation_parse(rq->body, rq->len, &d, &storage,
                                    &err)) != AI_OK) {
        srv_reply_ai(rq, AI_EINVAL, err.msg);
        return;
    }
    if (!srv_agent_rate_ok(rq)) {
        ai_delegation_storage_free(storage);
        return;
    }
    rc = ai_broker_delegate(rq->th->broker, rq->bearer, rq->bearer_len, &d,
                            &child, &err);
    ai_delegation_storage_free(storage);
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    srv_reply_secret(rq, 200, delegate_reply(child));
    ai_token_free(child);
}

static void refresh(srv_req *rq)
{
    ai_token *t = NULL;
    int ttl;
    ai_err err;
    ai_code rc;

    if ((rc = body_refresh_parse(rq->body, rq->len, &ttl, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    if (!srv_agent_rate_ok(rq))
        return;
    rc = ai_broker_refresh(rq->th->broker, rq->bearer, rq->bearer_len, ttl,
                           &t, &err);
    if (rc == AI_OK)
        srv_reply_secret(rq, 200, token_reply(t));
    else
        srv_reply_ai(rq, rc, err.msg);
    ai_token_free(t);
}

static void whoami(srv_req *rq)
{
    json_t *o = json_loads(ai_token_json(rq->token), 0, NULL);

    if (o == NULL) {
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    json_object_del(o, "signature"); /* the claims, not the credential */
    srv_reply_json(rq, 200, o);
}

const srv_route srv_agent_routes[] = {
    {"POST", "/v1/credentials", false, SRV_AUTH_AGENT, credentials,
     "/v1/credentials"},
    {"POST", "/v1/check", false, SRV_AUTH_AGENT, check, "/v1/check"},
    {"POST", "/v1/tokens/delegate", false, SRV_AUTH_AGENT, delegate,
     "/v1/tokens/delegate"},
    {"POST", "/v1/tokens/refresh", false, SRV_AUTH_AGENT, refresh,
     "/v1/tokens/refresh"},
    {"GET", "/v1/whoami", false, SRV_AUTH_AGENT, whoami, "/v1/whoami"},
};
const size_t srv_agent_nroutes =
    sizeof srv_agent_routes / sizeof *srv_agent_routes;
