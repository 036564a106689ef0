/* followers.c - registering the followers of a leader (DESIGN §8): the one
 * place a registration is made or removed, for the CLI on a local home and
 * for the leader's admin API. Audit rows name the follower and what it was
 * granted, never its credential. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/broker.h"
#include "core/core.h"

static ai_code audited(ai_broker *b, int64_t now, const char *action,
                       const char *what, ai_err *err)
{
    audit_entry e = {0, now, broker_actor(b), action, NULL, NULL, "ok", what};
    ai_err aerr;

    if (store_audit(broker_store(b), &e, &aerr) != AI_OK)
        return ai_err_set(err, aerr.code, "audit: %s", aerr.msg);
    return AI_OK;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* See agent_iam.h. */
ai_code ai_broker_add_follower(ai_broker *b, const char *id,
                               const char *providers, char **secret,
                               ai_err *err)
{
    int64_t now = wall_ms();
    char why[AI_ERR_MSG_MAX];
    bool replica = false;
    ai_code rc;

    ai_err_clear(err);
    if (secret == NULL)
        return ai_err_set(err, AI_EINVAL, "no output for the credential");
    *secret = NULL;
    if (b == NULL || id == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker or follower id");
    if (providers == NULL)
        providers = "";
    if ((rc = store_is_replica(broker_store(b), &replica, err)) != AI_OK)
        return rc;
    if (replica)
        return ai_err_set(err, AI_EDENIED,
                          "followers are registered on the leader, not on a "
                          "follower's replica");
    if ((rc = store_follower_add(broker_store(b), id, providers, now, secret,
                                 err)) != AI_OK)
        return rc;
    snprintf(why, sizeof why, "%.64s (providers: %.160s)", id,
             *providers ? providers : "none");
    /* On an audit failure the registration is durable already: the
     * credential is still the caller's to show (or to discard). */
    return audited(b, now, "follower-add", why, err);
}

/* See agent_iam.h. */
ai_code ai_broker_remove_follower(ai_broker *b, const char *id, ai_err *err)
{
    int64_t now = wall_ms();
    ai_code rc;

    ai_err_clear(err);
    if (b == NULL || id == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker or follower id");
    if ((rc = store_follower_remove(broker_store(b), id, err)) != AI_OK)
        return rc;
    return audited(b, now, "follower-remove", id, err);
}

static void add_one(void *ud, const follower_info *fi)
{
    json_t *arr = ud;
    char at[AI_TIME_BUF];

    ai_time_format(fi->created_at, at);
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "id", fi->id,
                                         "providers", fi->providers,
                                         "createdAt", at));
}

/* See agent_iam.h. */
ai_code ai_broker_list_followers(ai_broker *b, char **json, ai_err *err)
{
    json_t *arr = json_array();
    ai_code rc;

    ai_err_clear(err);
    if (json == NULL)
        return ai_err_set(err, AI_EINVAL, "no output");
    *json = NULL;
    if (b == NULL || arr == NULL) {
        json_decref(arr);
        return ai_err_set(err, b ? AI_ENOMEM : AI_EINVAL,
                          b ? "out of memory" : "no broker");
    }
    if ((rc = store_follower_list(broker_store(b), add_one, arr, err)) ==
            AI_OK &&
        (*json = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    json_decref(arr);
    return rc;
}
