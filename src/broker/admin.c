/* admin.c - the administration half of the Broker API (DESIGN §7): the
 * one place every change of a home is made (broker_exec: revoke and
 * unrevoke, key rotation and import, provider configs, API keys, follower
 * registrations), for the CLI on a local home, the leader's admin API and
 * the library; and the status and the redacted config of a home.
 *
 * Each change is a broker_cmd (command.h): checked here once, then
 * written by one store call together with its changelog row and its
 * audit row, in one transaction. The row names the command's actor and
 * holds ids and names, never a secret. Secrets read back (provider
 * configs) are wiped before they are freed, and what leaves this file has
 * them redacted. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "broker/broker.h"
#include "core/core.h"
#include "providers/providers.h"

#define REDACTED "***REDACTED***"
#define GRACE_MAX_MS (INT64_C(10) * 365 * 86400000)

static const char *const providers[] = {"github", "google", "aws"};

/* ---- commands --------------------------------------------------------- */

ai_code broker_cmd_new_key(broker_cmd *c, ai_err *err)
{
    if (RAND_bytes(c->key, sizeof c->key) != 1) {
        OPENSSL_cleanse(c->key, sizeof c->key);
        return ai_err_set(err, AI_EINTERNAL, "random generator failed");
    }
    return AI_OK;
}

ai_code broker_cmd_new_follower(broker_cmd *c, char **secret, ai_err *err)
{
    return store_follower_credential(secret, c->digest, c->transport, err);
}

void broker_cmd_wipe(broker_cmd *c)
{
    OPENSSL_cleanse(c->key, sizeof c->key);
    OPENSSL_cleanse(c->transport, sizeof c->transport);
}

static bool provider_known(const char *name)
{
    for (size_t i = 0; name && i < sizeof providers / sizeof *providers; i++)
        if (strcmp(name, providers[i]) == 0)
            return true;
    return false;
}

/* What an API key's inputs must be beyond the store's own check (names,
 * TTL, size): a secret that can travel in a header, a base URL that is
 * https (http only to this machine). */
static ai_code apikey_inputs(const broker_cmd *c, ai_err *err)
{
    /* Never the key's value in a message: only what is wrong with it. */
    if (c->secret == NULL ||
        !prov_secret_ok(c->secret, strnlen(c->secret, PROV_SECRET_MAX + 1)))
        return ai_err_set(err, AI_EINVAL,
                          "an API key is 1 to %d bytes without control "
                          "characters",
                          PROV_SECRET_MAX);
    if (c->base_url != NULL && !prov_url_ok(c->base_url))
        return ai_err_set(err, AI_EINVAL,
                          "a base URL is an https:// URL without user info "
                          "(http:// only to localhost, 127.0.0.1 or [::1]), "
                          "at most %d characters",
                          PROV_URL_MAX);
    return AI_OK;
}

/* What each op checks before the store (which checks ids, names, reasons
 * and configs again as it keeps them). */
static ai_code check(ai_broker *b, const broker_cmd *c, ai_err *err)
{
    bool replica = false;
    ai_code rc;

    if (c->at_ms <= 0)
        return ai_err_set(err, AI_EINVAL, "a command carries its time");
    switch (c->op) {
    case BROKER_REVOKE:
    case BROKER_UNREVOKE:
        if (c->target != REVOKE_TOKEN && c->target != REVOKE_AGENT)
            return ai_err_set(err, AI_EINVAL, "revoke a token or an agent");
        return AI_OK;
    case BROKER_ROTATE_KEY:
        if (c->grace_ms > GRACE_MAX_MS)
            return ai_err_set(err, AI_EINVAL,
                              "a grace period is at most 10 years");
        return AI_OK;
    case BROKER_USES_CONSUME:
    case BROKER_KEY_FIRST:
    case BROKER_KEY_IMPORT:
    case BROKER_PROVIDER_REMOVE:
    case BROKER_APIKEY_REMOVE:
    case BROKER_FOLLOWER_REMOVE:
        return AI_OK;
    case BROKER_PROVIDER_SET:
        if (c->config_json == NULL)
            return ai_err_set(err, AI_EINVAL, "no config");
        if (!provider_known(c->name))
            return ai_err_set(err, AI_EINVAL,
                              "unknown provider: github, google or aws (API "
                              "keys: ai_broker_add_api_key)");
        /* The check the CLI applies before it sends a config, so the
         * CLI, the leader and the library agree. */
        return prov_config_check(c->name, c->config_json, err);
    case BROKER_APIKEY_ADD:
        return apikey_inputs(c, err);
    case BROKER_FOLLOWER_ADD:
        if ((rc = store_is_replica(broker_store(b), &replica, err)) != AI_OK)
            return rc;
        if (replica)
            return ai_err_set(err, AI_EDENIED,
                              "followers are registered on the leader, not "
                              "on a follower's replica");
        return AI_OK;
    }
    return ai_err_set(err, AI_EINVAL, "unknown command %d", (int)c->op);
}

ai_code broker_exec(ai_broker *b, const broker_cmd *c, broker_result *out,
                    ai_err *err)
{
    audit_entry e = {0, 0, NULL, NULL, NULL, NULL, "ok", NULL};
    char why[AI_ERR_MSG_MAX];
    ai_code rc;
    store *st;

    ai_err_clear(err);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (b == NULL || c == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker or command");
    if ((rc = check(b, c, err)) != AI_OK)
        return rc;
    st = broker_store(b);
    e.at = c->at_ms;
    e.actor = c->actor != NULL ? c->actor : broker_actor(b);
    switch (c->op) {
    case BROKER_REVOKE:
    case BROKER_UNREVOKE:
        e.action = c->op == BROKER_REVOKE ? "revoke" : "unrevoke";
        if (c->target == REVOKE_TOKEN)
            e.token_id = c->id;
        else
            e.agent_id = c->id;
        if (c->op == BROKER_UNREVOKE)
            return store_unrevoke(st, c->target, c->id, c->at_ms, &e, err);
        e.reason = c->reason;
        /* 0: the token's expiry is not known here, so store_prune_time
         * keeps the entry for the longest root TTL; an agent stays
         * revoked until unrevoked. */
        return store_revoke(st, c->target, c->id, c->reason, 0, c->at_ms, &e,
                            err);
    case BROKER_ROTATE_KEY:
        e.action = "rotate-key"; /* reason: "new signing key version N" */
        return store_rotate_key(st, c->grace_ms, c->key, c->at_ms, &e,
                                out ? &out->version : NULL, err);
    case BROKER_KEY_FIRST: {
        bool made = false;
        e.action = "key-create";
        e.reason = "signing key version 1";
        rc = store_first_key(st, c->key, c->at_ms, &e, &made, err);
        if (rc == AI_OK && out != NULL)
            out->version = made ? 1 : 0;
        return rc;
    }
    case BROKER_KEY_IMPORT:
        e.action = "key-import";
        e.reason = c->force ? "forced" : NULL;
        return store_import_key(st, c->key, c->force, c->at_ms, &e, err);
    case BROKER_PROVIDER_SET:
        e.action = "config-init";
        e.reason = c->name;
        return store_provider_set(st, c->name, c->config_json, c->at_ms, &e,
                                  err);
    case BROKER_PROVIDER_REMOVE:
        e.action = "config-remove";
        e.reason = c->name;
        return store_provider_delete(st, c->name, c->at_ms, &e, err);
    case BROKER_APIKEY_ADD: {
        apikey_info info = {c->name, c->provider, c->base_url, c->ttl_minutes,
                            0};
        e.action = "apikey-add";
        snprintf(why, sizeof why, "%s (provider %s)", c->name, c->provider);
        e.reason = why;
        return store_apikey_add(st, &info, c->secret, c->at_ms, &e, err);
    }
    case BROKER_APIKEY_REMOVE:
        e.action = "apikey-remove";
        e.reason = c->name;
        return store_apikey_remove(st, c->name, c->at_ms, &e, err);
    case BROKER_FOLLOWER_ADD: {
        const char *pv = c->providers != NULL ? c->providers : "";
        e.action = "follower-add";
        snprintf(why, sizeof why, "%.64s (providers: %.160s)",
                 c->id ? c->id : "", *pv ? pv : "none");
        e.reason = why;
        return store_follower_add(st, c->id, pv, c->digest, c->transport,
                                  c->at_ms, &e, err);
    }
    case BROKER_FOLLOWER_REMOVE:
        e.action = "follower-remove";
        e.reason = c->id;
        return store_follower_remove(st, c->id, &e, err);
    case BROKER_USES_CONSUME: {
        bool granted = false;
        uint32_t left = 0;
        rc = store_consume(st, c->budgets, c->nbudgets, c->at_ms, &granted,
                           &left, err);
        if (rc == AI_OK && out != NULL) {
            out->granted = granted;
            out->remaining = left;
        }
        return rc;
    }
    }
    return ai_err_set(err, AI_EINVAL, "unknown command %d", (int)c->op);
}

/* ---- revocations ------------------------------------------------------ */

/* Exactly one non-empty id of the two: the command's target and id. */
static ai_code pick(const char *token_id, const char *agent_id,
                    broker_cmd *c, ai_err *err)
{
    if ((token_id == NULL) == (agent_id == NULL))
        return ai_err_set(err, AI_EINVAL,
                          "give a token id or an agent id, not %s",
                          token_id ? "both" : "neither");
    c->target = token_id ? REVOKE_TOKEN : REVOKE_AGENT;
    c->id = token_id ? token_id : agent_id;
    if (*c->id == '\0')
        return ai_err_set(err, AI_EINVAL, "the %s id is empty",
                          token_id ? "token" : "agent");
    return AI_OK;
}

/* See agent_iam.h. */
ai_code ai_broker_revoke(ai_broker *b, const char *token_id,
                         const char *agent_id, const char *reason,
                         ai_err *err)
{
    broker_cmd c = {.op = BROKER_REVOKE, .at_ms = time_now_ms(), .reason = reason};
    ai_code rc;

    ai_err_clear(err);
    if ((rc = pick(token_id, agent_id, &c, err)) != AI_OK)
        return rc;
    return broker_exec(b, &c, NULL, err);
}

/* See agent_iam.h. */
ai_code ai_broker_unrevoke(ai_broker *b, const char *token_id,
                           const char *agent_id, ai_err *err)
{
    broker_cmd c = {.op = BROKER_UNREVOKE, .at_ms = time_now_ms()};
    ai_code rc;

    ai_err_clear(err);
    if ((rc = pick(token_id, agent_id, &c, err)) != AI_OK)
        return rc;
    return broker_exec(b, &c, NULL, err);
}

/* ---- signing keys ----------------------------------------------------- */

/* See agent_iam.h. */
ai_code ai_broker_rotate_key(ai_broker *b, int64_t grace_ms,
                             uint32_t *new_version, ai_err *err)
{
    broker_cmd c = {.op = BROKER_ROTATE_KEY, .at_ms = time_now_ms(),
                    .grace_ms = grace_ms};
    broker_result res = {0};
    ai_code rc;

    ai_err_clear(err);
    if (new_version != NULL)
        *new_version = 0;
    if ((rc = broker_cmd_new_key(&c, err)) == AI_OK)
        rc = broker_exec(b, &c, &res, err);
    broker_cmd_wipe(&c);
    if (rc == AI_OK && new_version != NULL)
        *new_version = res.version;
    return rc;
}

ai_code broker_signing_keyring(ai_broker *b, int64_t now_ms,
                               const ai_keyring **out, ai_err *err)
{
    broker_cmd c = {.op = BROKER_KEY_FIRST, .at_ms = now_ms};
    store *st;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    st = broker_store(b);
    if ((rc = store_keyring(st, out, err)) != AI_OK ||
        ai_keyring_signing_version(*out) != 0)
        return rc;
    *out = NULL;
    if ((rc = broker_cmd_new_key(&c, err)) == AI_OK)
        rc = broker_exec(b, &c, NULL, err);
    broker_cmd_wipe(&c);
    if (rc != AI_OK)
        return rc;
    return store_keyring(st, out, err);
}

ai_code broker_export_key(ai_broker *b, uint32_t version,
                          unsigned char out[AI_KEY_BYTES], ai_err *err)
{
    audit_entry e = {0, time_now_ms(), NULL, "key-export", NULL, NULL, "ok",
                     NULL};
    ai_code rc;

    ai_err_clear(err);
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    e.actor = broker_actor(b);
    /* On the record before the key leaves this call: a row that cannot be
     * written keeps the key in. */
    if ((rc = store_export_key(broker_store(b), version, out, err)) != AI_OK ||
        (rc = store_audit(broker_store(b), &e, err)) != AI_OK)
        OPENSSL_cleanse(out, AI_KEY_BYTES);
    return rc;
}

/* ---- provider configs and API keys ------------------------------------ */

/* See agent_iam.h. */
ai_code ai_broker_init_provider(ai_broker *b, const char *name,
                                const char *config_json, ai_err *err)
{
    broker_cmd c = {.op = BROKER_PROVIDER_SET, .at_ms = time_now_ms(),
                    .name = name, .config_json = config_json};

    return broker_exec(b, &c, NULL, err);
}

/* See agent_iam.h. */
ai_code ai_broker_add_api_key(ai_broker *b, const char *name,
                              const char *provider, const char *key,
                              const char *base_url, int ttl_minutes,
                              ai_err *err)
{
    broker_cmd c = {.op = BROKER_APIKEY_ADD, .at_ms = time_now_ms(), .name = name,
                    .provider = provider, .secret = key,
                    .base_url = base_url, .ttl_minutes = ttl_minutes};

    return broker_exec(b, &c, NULL, err);
}

/* See agent_iam.h. */
ai_code ai_broker_remove_api_key(ai_broker *b, const char *name, ai_err *err)
{
    broker_cmd c = {.op = BROKER_APIKEY_REMOVE, .at_ms = time_now_ms(),
                    .name = name};

    return broker_exec(b, &c, NULL, err);
}

/* ---- status ----------------------------------------------------------- */

/* Compact JSON text of o (the library's allocator, so ai_free_string
 * releases it); ENOMEM when it cannot be made. */
static ai_code dump(const json_t *o, char **json, ai_err *err)
{
    if (o == NULL ||
        (*json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    return AI_OK;
}

/* See agent_iam.h. */
ai_code ai_broker_status(ai_broker *b, char **json, ai_err *err)
{
    const ai_keyring *kr;
    key_info *keys = NULL;
    size_t nkeys = 0, verifying = 0;
    int64_t head = 0, applied = 0, now = time_now_ms();
    uint32_t signing = 0;
    bool replica = false;
    json_t *o = NULL;
    store *st;
    ai_code rc;

    ai_err_clear(err);
    if (json == NULL)
        return ai_err_set(err, AI_EINVAL, "no output string");
    *json = NULL;
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    st = broker_store(b);
    if ((rc = broker_sync(b, err)) != AI_OK ||
        (rc = store_is_replica(st, &replica, err)) != AI_OK)
        return rc;
    /* A new home makes its version 1 here, as on first signing; a replica
     * before its first sync has none yet. */
    if ((rc = broker_signing_keyring(b, now, &kr, err)) == AI_OK) {
        signing = ai_keyring_signing_version(kr);
    } else if (rc == AI_ENOTFOUND && replica) {
        ai_err_clear(err);
        rc = AI_OK;
    } else {
        return rc;
    }
    if ((rc = store_list_keys(st, now, &keys, &nkeys, err)) != AI_OK ||
        (rc = store_changelog_head(st, &head, err)) != AI_OK ||
        (replica && (rc = store_applied_seq(st, &applied, err)) != AI_OK))
        goto done;
    for (size_t i = 0; i < nkeys; i++)
        verifying += keys[i].state != KEY_RETIRED;
    o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I}", "version",
                  ai_version(), "mode", replica ? "follower" : "standalone",
                  "home", store_home(st), "schema", store_schema_version(st),
                  "signingKeyVersion", (json_int_t)signing, "verifyingKeys",
                  (json_int_t)verifying, "revocations",
                  (json_int_t)store_revocation_count(st), "changelogSeq",
                  (json_int_t)head);
    if (o != NULL && replica &&
        json_object_set_new(o, "appliedSeq", json_integer(applied)) != 0) {
        json_decref(o);
        o = NULL;
    }
    rc = dump(o, json, err);
done:
    json_decref(o);
    store_free(keys);
    return rc;
}

/* ---- config show ------------------------------------------------------ */

/* Does a config member hold a secret? By name, case-insensitively: the
 * known ones (privateKey, clientSecret, refreshToken, secretAccessKey,
 * sessionToken, apiKey) and anything alike (...secret..., ...private...,
 * ...password..., ...token, ...key), so a member added later is redacted
 * by default. accessKeyId, tokenUrl and the like stay visible. */
static bool secret_member(const char *name)
{
    static const char *const inside[] = {"secret", "private", "password",
                                         "passphrase", "credential"};
    static const char *const ending[] = {"token", "key", "keypath"};
    char low[128];
    size_t n = strlen(name);

    if (n >= sizeof low)
        return true; /* no such member of ours: hide it */
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32
                                                         : name[i]);
    for (size_t i = 0; i < sizeof inside / sizeof *inside; i++)
        if (strstr(low, inside[i]) != NULL)
            return true;
    for (size_t i = 0; i < sizeof ending / sizeof *ending; i++) {
        size_t m = strlen(ending[i]);
        if (n >= m && strcmp(low + n - m, ending[i]) == 0)
            return true;
    }
    return false;
}

/* Overwrite a string value in place. jansson allocates strings writable
 * but lends them as const, hence the cast through uintptr_t. */
static void wipe_string(const json_t *v)
{
    if (json_is_string(v))
        explicit_bzero((char *)(uintptr_t)json_string_value(v),
                       json_string_length(v));
}

/* Wipe every string member of a config object, then release it. */
static void config_free(json_t *cfg)
{
    const char *k;
    json_t *v;

    if (cfg == NULL)
        return;
    json_object_foreach(cfg, k, v) wipe_string(v);
    json_decref(cfg);
}

/* Replace every secret member by REDACTED, wiping the value first. */
static bool redact(json_t *cfg)
{
    for (void *it = json_object_iter(cfg); it != NULL;
         it = json_object_iter_next(cfg, it)) {
        if (!secret_member(json_object_iter_key(it)))
            continue;
        wipe_string(json_object_iter_value(it));
        if (json_object_iter_set_new(cfg, it, json_string(REDACTED)) != 0)
            return false;
    }
    return true;
}

typedef struct keys_ctx {
    json_t *obj; /* name -> details */
    bool oom;
} keys_ctx;

/* The details of an API key as config show has them (Node's showConfig
 * names them providerName and apiKey), the key itself redacted. */
static void collect_key(void *ud, const apikey_info *k)
{
    keys_ctx *kc = ud;
    char at[AI_TIME_BUF];
    json_t *o = json_object();

    ai_time_format(k->created_at, at);
    if (o == NULL ||
        json_object_set_new(o, "providerName", json_string(k->provider)) ||
        json_object_set_new(o, "apiKey", json_string(REDACTED)) ||
        (k->base_url != NULL &&
         json_object_set_new(o, "baseUrl", json_string(k->base_url))) ||
        (k->ttl_minutes != 0 &&
         json_object_set_new(o, "ttlMinutes",
                             json_integer(k->ttl_minutes))) ||
        json_object_set_new(o, "createdAt", json_string(at))) {
        json_decref(o);
        kc->oom = true;
        return;
    }
    /* set_new releases o when it fails */
    if (json_object_set_new(kc->obj, k->name, o) != 0)
        kc->oom = true;
}

/* The redacted config of one provider into provs (nothing when it is
 * not configured). */
static ai_code add_provider(store *st, const char *name, json_t *provs,
                            ai_err *err)
{
    json_error_t jerr;
    json_t *cfg;
    char *text = NULL;
    ai_code rc = store_provider_get(st, name, &text, err);

    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc != AI_OK)
        return rc;
    /* XXX jansson's lexer frees its copy of each string unwiped. */
    alloc_json_oom_clear();
    cfg = json_loads(text, 0, &jerr);
    explicit_bzero(text, strlen(text));
    store_free(text);
    if (cfg == NULL || !json_is_object(cfg) || !redact(cfg)) {
        config_free(cfg);
        if (cfg == NULL && alloc_json_oom())
            return ai_err_set(err, AI_ENOMEM, "out of memory");
        return ai_err_set(err, AI_ESTORE,
                          "the %s provider config cannot be read", name);
    }
    if (json_object_set_new(provs, name, cfg) != 0)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    return AI_OK;
}

/* See agent_iam.h. */
ai_code ai_broker_show_config(ai_broker *b, char **json, ai_err *err)
{
    json_t *out = NULL, *provs = NULL;
    keys_ctx kc = {NULL, false};
    ai_code rc = AI_ENOMEM;

    ai_err_clear(err);
    if (json == NULL)
        return ai_err_set(err, AI_EINVAL, "no output string");
    *json = NULL;
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    out = json_object();
    provs = json_object();
    kc.obj = json_object();
    if (out == NULL || provs == NULL || kc.obj == NULL ||
        json_object_set(out, "providers", provs) != 0) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < sizeof providers / sizeof *providers; i++)
        if ((rc = add_provider(broker_store(b), providers[i], provs, err)) !=
            AI_OK)
            goto done;
    if ((rc = store_apikey_list(broker_store(b), collect_key, &kc, err)) !=
        AI_OK)
        goto done;
    /* Node's showConfig keeps the API keys under providers.apikeys. */
    if (kc.oom || json_object_set(provs, "apikeys", kc.obj) != 0) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    rc = dump(out, json, err);
done:
    json_decref(kc.obj);
    json_decref(provs);
    json_decref(out);
    return rc;
}
