/* admin_followers.c - registering followers through the admin API
 * (DESIGN §8): POST /v1/admin/followers makes a follower and its
 * credential (shown once), DELETE /v1/admin/followers/{id} removes it:
 * its next call, and the long-poll it may be holding, get 401. */
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "leader/leader.h"

/* The broker call as the admin API's actor. */
static void as_admin(srv_req *rq, bool on)
{
    ai_err e;

    (void)ai_broker_set_actor(rq->th->broker, on ? "admin" : "leader", &e);
}

static void add(srv_req *rq)
{
    json_t *o = srv_body_object(rq, false);
    const char *id, *providers;
    char *secret = NULL;
    ai_err err;
    ai_code rc;

    if (o == NULL)
        return;
    if (!srv_str(rq, o, "id", true, &id) ||
        !srv_str(rq, o, "providers", false, &providers))
        goto done;
    as_admin(rq, true);
    rc = ai_broker_add_follower(rq->th->broker, id, providers ? providers : "",
                                &secret, &err);
    as_admin(rq, false);
    if (secret == NULL) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    snprintf(rq->subject, sizeof rq->subject, "admin follower=%s", id);
    srv_reply_secret(rq, 200, json_pack("{s:s, s:s, s:s}", "id", id,
                                        "providers",
                                        providers ? providers : "", "secret",
                                        secret));
    OPENSSL_cleanse(secret, strlen(secret));
    ai_free_string(secret);
done:
    json_decref(o);
}

static void remove_one(srv_req *rq)
{
    ai_err err;
    ai_code rc;

    as_admin(rq, true);
    rc = ai_broker_remove_follower(rq->th->broker, rq->tail, &err);
    as_admin(rq, false);
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
