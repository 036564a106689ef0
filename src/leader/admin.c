/* admin.c - the admin API of the leader (docs/http-api.md): root tokens,
 * revocations, key rotation, provider configs, API keys, the followers.
 * Every write is a broker command (broker_exec) with the actor "admin" and
 * the request's time: durable, with its audit row, before the reply; it
 * wakes the followers' long-polls at once. */
#include <string.h>

#include "core/core.h"
#include "leader/admin_body.h"
#include "leader/leader.h"
#include "providers/providers.h"

/* A command of this request: its time, the admin API's actor. */
static broker_cmd command(const srv_req *rq, broker_op op)
{
    broker_cmd c;

    memset(&c, 0, sizeof c);
    c.op = op;
    c.at_ms = rq->now;
    c.actor = "admin";
    return c;
}

static void create_root(srv_req *rq)
{
    admin_root_body b;
    ai_token *t = NULL;
    ai_err err;
    ai_code rc;

    if ((rc = admin_root_parse(rq->body, rq->len, &b, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    {
        ai_err aerr; /* err holds the refusal's reason */
        (void)ai_broker_set_actor(rq->th->broker, "admin", &aerr);
        rc = ai_broker_create_root_token(rq->th->broker, &b.params, &t, &err);
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
    admin_root_free(&b);
}

/* The body's target, for the log. */
static void target_subject(srv_req *rq, const admin_target_body *b)
{
    snprintf(rq->subject, sizeof rq->subject, "admin %s=%.64s",
             b->target == REVOKE_TOKEN ? "token" : "agent", b->id);
    for (char *c = rq->subject; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

/* POST /v1/admin/revoke and /v1/admin/unrevoke: {tokenId | agentId} (and
 * a reason when revoking). */
static void revocation(srv_req *rq, bool revoke)
{
    broker_cmd c = command(rq, revoke ? BROKER_REVOKE : BROKER_UNREVOKE);
    admin_target_body b;
    ai_err err;
    ai_code rc;

    if ((rc = admin_target_parse(rq->body, rq->len, revoke, &b, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    target_subject(rq, &b);
    c.target = b.target;
    c.id = b.id;
    c.reason = revoke ? b.reason : NULL;
    /* A given expiresAt is ignored: a caller's expiry bounds nothing
     * (refresh moves it), so the prune time is store_prune_time's. */
    if ((rc = leader_exec(rq, &c, NULL, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    srv_changed(rq->s);
    srv_reply_json(rq, 200,
                   json_pack("{s:b, s:s, s:s}",
                             revoke ? "revoked" : "unrevoked", 1, "target",
                             b.target == REVOKE_AGENT ? "agent" : "token",
                             "id", b.id));
done:
    admin_target_free(&b);
}

static void revoke(srv_req *rq)
{
    revocation(rq, true);
}

static void unrevoke(srv_req *rq)
{
    revocation(rq, false);
}

static void rotate_key(srv_req *rq)
{
    broker_cmd c = command(rq, BROKER_ROTATE_KEY);
    broker_result res = {0};
    ai_err err;
    ai_code rc;

    if ((rc = admin_rotate_parse(rq->body, rq->len, &c.grace_ms, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    if ((rc = broker_cmd_new_key(&c, &err)) == AI_OK)
        rc = leader_exec(rq, &c, &res, &err);
    broker_cmd_wipe(&c);
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    srv_changed(rq->s);
    srv_reply_json(rq, 200,
                   json_pack("{s:I}", "version", (json_int_t)res.version));
}

static void put_provider(srv_req *rq)
{
    broker_cmd c = command(rq, BROKER_PROVIDER_SET);
    char *text;
    ai_err err;
    ai_code rc;

    if (prov_find(rq->tail) == NULL) { /* github, google, aws */
        srv_reply_error(rq, 404, "not_found",
                        "unknown provider (github, google or aws)");
        return;
    }
    if ((rc = admin_provider_parse(rq->body, rq->len, &text, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    c.name = rq->tail;
    c.config_json = text;
    /* broker_exec checks the config as the CLI does (prov_config_check) */
    if ((rc = leader_exec(rq, &c, NULL, &err)) == AI_OK) {
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
    broker_cmd c = command(rq, BROKER_PROVIDER_REMOVE);
    ai_err err;
    ai_code rc;

    c.name = rq->tail;
    if ((rc = leader_exec(rq, &c, NULL, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "provider", rq->tail,
                                      "removed", 1));
}

static void put_apikey(srv_req *rq)
{
    broker_cmd c = command(rq, BROKER_APIKEY_ADD);
    admin_apikey_body b;
    ai_err err;
    ai_code rc;

    if (!word_valid(rq->tail, 64)) {
        srv_reply_error(rq, 400, "bad_request",
                        "an API key name is 1 to 64 of A-Z a-z 0-9 . _ -");
        return;
    }
    if ((rc = admin_apikey_parse(rq->body, rq->len, &b, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    c.name = rq->tail;
    c.provider = b.provider;
    c.secret = b.key;
    c.base_url = b.base_url;
    c.ttl_minutes = b.ttl_minutes;
    if ((rc = leader_exec(rq, &c, NULL, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "name", rq->tail, "added",
                                      1));
done:
    admin_apikey_free(&b);
}

static void delete_apikey(srv_req *rq)
{
    broker_cmd c = command(rq, BROKER_APIKEY_REMOVE);
    ai_err err;
    ai_code rc;

    c.name = rq->tail;
    if ((rc = leader_exec(rq, &c, NULL, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    srv_changed(rq->s);
    srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "name", rq->tail,
                                      "removed", 1));
}

static void followers(srv_req *rq)
{
    int64_t head = 0;
    char *reg = NULL;
    ai_err err;
    ai_code rc;

    (void)store_changelog_head(rq->th->st, &head, &err);
    if ((rc = ai_broker_list_followers(rq->th->broker, &reg, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    srv_reply_json(rq, 200,
                   json_pack("{s:I, s:o, s:o}", "leaderSeq", (json_int_t)head,
                             "followers",
                             leader_followers_json(rq->app, head),
                             "registered", json_loads(reg, 0, NULL)));
    ai_free_string(reg);
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
