/* admin_followers.c - registering followers through the admin API
 * (DESIGN §8): POST /v1/admin/followers makes a follower and its
 * credential (shown once), DELETE /v1/admin/followers/{id} removes it:
 * its next call, and the long-poll it may be holding, get 401. */
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "leader/leader.h"

/* A command of this request: its time, the admin API's actor. */
static broker_cmd command(const srv_req *rq, broker_op op, const char *id)
{
    broker_cmd c;

    memset(&c, 0, sizeof c);
    c.op = op;
    c.at_ms = rq->now;
    c.actor = "admin";
    c.id = id;
    return c;
}

static void add(srv_req *rq)
{
    json_t *o = srv_body_object(rq, false);
    const char *id, *providers;
    char *secret = NULL;
    broker_cmd c;
    ai_err err;
    ai_code rc;

    if (o == NULL)
        return;
    if (!srv_str(rq, o, "id", true, &id) ||
        !srv_str(rq, o, "providers", false, &providers))
        goto done;
    c = command(rq, BROKER_FOLLOWER_ADD, id);
    c.providers = providers ? providers : "";
    if ((rc = broker_cmd_new_follower(&c, &secret, &err)) == AI_OK)
        rc = leader_exec(rq, &c, NULL, &err);
    broker_cmd_wipe(&c);
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    snprintf(rq->subject, sizeof rq->subject, "admin follower=%s", id);
    srv_reply_secret(rq, 200, json_pack("{s:s, s:s, s:s}", "id", id,
                                        "providers",
                                        providers ? providers : "", "secret",
                                        secret));
done:
    if (secret != NULL) {
        OPENSSL_cleanse(secret, strlen(secret));
        ai_free(secret);
    }
    json_decref(o);
}

static void remove_one(srv_req *rq)
{
    broker_cmd c = command(rq, BROKER_FOLLOWER_REMOVE, rq->tail);
    ai_err err;
    ai_code rc;

    rc = leader_exec(rq, &c, NULL, &err);
    /* Wake every long-poll: the removed follower's is looked at again. */
    srv_changed(rq->s);
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    snprintf(rq->subject, sizeof rq->subject, "admin follower=%.64s",
             rq->tail);
    srv_reply_json(rq, 200, json_pack("{s:s, s:b}", "id", rq->tail,
                                      "removed", 1));
}

const srv_route leader_follower_routes[] = {
    {"POST", "/v1/admin/followers", false, SRV_AUTH_ADMIN, add,
     "/v1/admin/followers"},
    {"DELETE", "/v1/admin/followers/", true, SRV_AUTH_ADMIN, remove_one,
     "/v1/admin/followers/{id}"},
};
const size_t leader_follower_nroutes =
    sizeof leader_follower_routes / sizeof *leader_follower_routes;
