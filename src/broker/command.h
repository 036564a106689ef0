/* command.h - one state change of a home as a self-contained value (DESIGN
 * §1, §9), included through broker.h.
 *
 * DESIGN: every change a home's state goes through (revoke, rotate, a
 * provider, an API key, a follower registration) is a broker_cmd that
 * broker_exec applies: it checks the inputs, then writes the store, the
 * changelog row and the audit row in one SQLite transaction. Everything
 * random or time-dependent is decided before the value is built and
 * travels in it (the time, a rotation's new key, a follower credential's
 * digest and transport key), so that applying the same value on another
 * machine's home gives the same state. The leader group (§9) will log
 * exactly this value in Raft and apply it on each voter: the fields are
 * plain (an enum, integers, byte arrays, NUL-terminated strings) so that
 * a codec can write and read them as they are; none is written yet.
 *
 * Secrets ride in some commands (key, transport, secret, config_json):
 * whoever builds one wipes it (broker_cmd_wipe for the arrays; the strings
 * are the builder's). */
#ifndef AI_BROKER_COMMAND_H
#define AI_BROKER_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_iam.h"
#include "store/store.h"

/* Numbered for the log that will carry them: append only. */
typedef enum broker_op {
    BROKER_REVOKE = 1,      /* target, id, reason? */
    BROKER_UNREVOKE = 2,    /* target, id */
    BROKER_ROTATE_KEY = 3,  /* grace_ms, key */
    BROKER_KEY_IMPORT = 4,  /* key (as version 1), force */
    BROKER_PROVIDER_SET = 5,    /* name, config_json */
    BROKER_PROVIDER_REMOVE = 6, /* name */
    BROKER_APIKEY_ADD = 7,      /* name, provider, secret, base_url?, ttl */
    BROKER_APIKEY_REMOVE = 8,   /* name */
    BROKER_FOLLOWER_ADD = 9,    /* id, providers, digest, transport */
    BROKER_FOLLOWER_REMOVE = 10, /* id */
    BROKER_USES_CONSUME = 11,    /* budgets, nbudgets (no audit row) */
    BROKER_KEY_FIRST = 12        /* key: version 1 if the home has none */
} broker_op;

typedef struct broker_cmd {
    broker_op op;
    int64_t at_ms;     /* the change's time (ms), its audit row's too: > 0 */
    const char *actor; /* who the audit row names ("cli", "admin"); NULL:
                        * the broker's actor (ai_broker_set_actor) */
    /* the inputs, by op (see broker_op); unused ones are 0 or NULL */
    revoke_target target;
    const char *id;     /* a token or agent id; a follower id */
    const char *reason; /* a revocation's: at most 512 bytes, NULL: none */
    const char *name;   /* a provider (github, google, aws), an API key */
    int64_t grace_ms;   /* < 0: the default (STORE_DEFAULT_GRACE_MS) */
    bool force;
    unsigned char key[AI_KEY_BYTES]; /* SECRET: a signing key */
    const char *config_json;         /* SECRET members: a provider config */
    const char *provider;            /* an API key's provider */
    const char *secret;              /* SECRET: an API key */
    const char *base_url;            /* NULL: the provider's */
    int ttl_minutes;                 /* 0: the default */
    const char *providers;           /* a follower's grants: "a,b", "*", "" */
    unsigned char digest[STORE_FOLLOWER_DIGEST_BYTES]; /* of its credential */
    unsigned char transport[AI_KEY_BYTES]; /* SECRET: its transport key */
    const ai_budget_ref *budgets; /* the budgets one use counts against */
    size_t nbudgets;
} broker_cmd;

/* What a command made that its caller needs back. */
typedef struct broker_result {
    uint32_t version; /* ROTATE_KEY: the new key's version; KEY_FIRST: 1
                       * if this command made it, 0 if there was one */
    bool granted;     /* USES_CONSUME: every budget had room, all counted */
    uint32_t remaining; /* USES_CONSUME: the least room left after it */
} broker_result;

/* Apply c to the broker's home: check its inputs (AI_EINVAL naming what is
 * wrong, never a secret; AI_EDENIED for a change a follower's replica does
 * not take), then write the change, its changelog row and its audit row
 * (action as the CLI has always named it, decision "ok", ids and names
 * only) in one transaction: on any error nothing is written, an audit
 * failure included. A use (USES_CONSUME) is counted with no audit row (the
 * credential it serves has its own); a refusal for want of room is
 * AI_OK with out->granted false. out (may be NULL) is filled on success. c is
 * borrowed. Not thread-safe on one broker (one per thread, like its
 * store handle). */
ai_code broker_exec(ai_broker *b, const broker_cmd *c, broker_result *out,
                    ai_err *err);

/* The random parts, drawn before a command is built: a new 32-byte
 * signing key into c->key; a new follower credential (*secret:
 * ai_malloc'd, wipe it, then ai_free; shown once) with its digest and
 * transport key into c. */
ai_code broker_cmd_new_key(broker_cmd *c, ai_err *err);
ai_code broker_cmd_new_follower(broker_cmd *c, char **secret, ai_err *err);

/* Wipe the secret arrays of c (its strings are the builder's to wipe). */
void broker_cmd_wipe(broker_cmd *c);

#endif /* AI_BROKER_COMMAND_H */
