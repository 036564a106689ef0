/* followers.c - registering the followers of a leader (DESIGN §8) through
 * the library: a new credential drawn here, then the registration as a
 * command (broker_exec, admin.c, is where it is made, for the CLI, the
 * leader's admin API and the library alike). Audit rows name the follower
 * and what it was granted, never its credential. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "broker/broker.h"
#include "core/core.h"

/* See agent_iam.h. */
ai_code ai_broker_add_follower(ai_broker *b, const char *id,
                               const char *providers, char **secret,
                               ai_err *err)
{
    broker_cmd c = {.op = BROKER_FOLLOWER_ADD, .at_ms = time_now_ms(),
                    .id = id, .providers = providers ? providers : ""};
    ai_code rc;

    ai_err_clear(err);
    if (secret == NULL)
        return ai_err_set(err, AI_EINVAL, "no output for the credential");
    *secret = NULL;
    if (b == NULL || id == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker or follower id");
    if ((rc = broker_cmd_new_follower(&c, secret, err)) == AI_OK &&
        (rc = broker_exec(b, &c, NULL, err)) != AI_OK) {
        /* Nothing registered (the audit row included): no credential. */
        OPENSSL_cleanse(*secret, strlen(*secret));
        ai_free(*secret);
        *secret = NULL;
    }
    broker_cmd_wipe(&c);
    return rc;
}

/* See agent_iam.h. */
ai_code ai_broker_remove_follower(ai_broker *b, const char *id, ai_err *err)
{
    broker_cmd c = {.op = BROKER_FOLLOWER_REMOVE, .at_ms = time_now_ms(),
                    .id = id};

    ai_err_clear(err);
    if (b == NULL || id == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker or follower id");
    return broker_exec(b, &c, NULL, err);
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
