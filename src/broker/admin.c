/* admin.c - the administration half of the Broker API (DESIGN §7): revoke
 * and unrevoke, key rotation, provider configs, API keys, the status and
 * the redacted config of a home, as the CLI does them on a local home.
 *
 * Every change is durable before the audit row is written; the row names
 * the broker's actor and holds ids and names, never a secret. Secrets
 * read back (provider configs) are wiped before they are freed, and what
 * leaves this file has them redacted. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/broker.h"
#include "core/core.h"
#include "providers/providers.h"

#define REDACTED "***REDACTED***"
#define WORD_MAX 64 /* API key names and providers */
#define TTL_MAX_MIN (AI_DEFAULT_ROOT_TTL_MAX_DAYS * 24 * 60)
#define GRACE_MAX_MS (INT64_C(10) * 365 * 86400000)

static const char *const providers[] = {"github", "google", "aws"};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The "ok" row of a change already made durable: a failure here is
 * reported (the caller may repeat the change, which is idempotent), with
 * the change itself kept. */
static ai_code audit_ok(ai_broker *b, int64_t now, const char *action,
                        const char *token_id, const char *agent_id,
                        const char *reason, ai_err *err)
{
    audit_entry e = {0,        now,  broker_actor(b), action, token_id,
                     agent_id, "ok", reason};
    ai_err aerr;
    ai_code rc = store_audit(broker_store(b), &e, &aerr);

    if (rc != AI_OK)
        return ai_err_set(err, rc, "audit: %s", aerr.msg);
    return AI_OK;
}

/* ---- revocations ------------------------------------------------------ */

/* Exactly one non-empty id of the two. */
static ai_code pick(const char *token_id, const char *agent_id,
                    revoke_target *t, const char **id, ai_err *err)
{
    if ((token_id == NULL) == (agent_id == NULL))
        return ai_err_set(err, AI_EINVAL,
                          "give a token id or an agent id, not %s",
                          token_id ? "both" : "neither");
    *t = token_id ? REVOKE_TOKEN : REVOKE_AGENT;
    *id = token_id ? token_id : agent_id;
    if (**id == '\0')
        return ai_err_set(err, AI_EINVAL, "the %s id is empty",
                          token_id ? "token" : "agent");
    return AI_OK;
}

/* See agent_iam.h. */
ai_code ai_broker_revoke(ai_broker *b, const char *token_id,
                         const char *agent_id, const char *reason,
                         ai_err *err)
{
    revoke_target t;
    const char *id;
    int64_t now = now_ms();
    ai_code rc;

    ai_err_clear(err);
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    /* 0: the token's expiry is not known here, so store_prune_time keeps
     * the entry for the longest root TTL; an agent stays revoked until
     * unrevoked. */
    if ((rc = pick(token_id, agent_id, &t, &id, err)) != AI_OK ||
        (rc = store_revoke(broker_store(b), t, id, reason, 0, now, err)) !=
            AI_OK)
        return rc;
    return audit_ok(b, now, "revoke", t == REVOKE_TOKEN ? id : NULL,
                    t == REVOKE_AGENT ? id : NULL, reason, err);
}

/* See agent_iam.h. */
ai_code ai_broker_unrevoke(ai_broker *b, const char *token_id,
                           const char *agent_id, ai_err *err)
{
    revoke_target t;
    const char *id;
    int64_t now = now_ms();
    ai_code rc;

    ai_err_clear(err);
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    if ((rc = pick(token_id, agent_id, &t, &id, err)) != AI_OK ||
        (rc = store_unrevoke(broker_store(b), t, id, now, err)) != AI_OK)
        return rc;
    return audit_ok(b, now, "unrevoke", t == REVOKE_TOKEN ? id : NULL,
                    t == REVOKE_AGENT ? id : NULL, NULL, err);
}

/* ---- signing keys ----------------------------------------------------- */

/* See agent_iam.h. */
ai_code ai_broker_rotate_key(ai_broker *b, int64_t grace_ms,
                             uint32_t *new_version, ai_err *err)
{
    int64_t now = now_ms();
    uint32_t v = 0;
    char why[64];
    ai_code rc;

    ai_err_clear(err);
    if (new_version != NULL)
        *new_version = 0;
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    if (grace_ms > GRACE_MAX_MS)
        return ai_err_set(err, AI_EINVAL,
                          "a grace period is at most 10 years");
    if ((rc = store_rotate_key(broker_store(b), grace_ms, now, &v, err)) !=
        AI_OK)
        return rc;
    if (new_version != NULL)
        *new_version = v;
    snprintf(why, sizeof why, "new signing key version %u", (unsigned)v);
    return audit_ok(b, now, "rotate-key", NULL, NULL, why, err);
}

/* ---- provider configs and API keys ------------------------------------ */

/* See agent_iam.h. */
ai_code ai_broker_init_provider(ai_broker *b, const char *name,
                                const char *config_json, ai_err *err)
{
    int64_t now = now_ms();
    bool known = false;
    ai_code rc;

    ai_err_clear(err);
    if (b == NULL || config_json == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker or config");
    for (size_t i = 0; name && i < sizeof providers / sizeof *providers; i++)
        known = known || strcmp(name, providers[i]) == 0;
    if (!known)
        return ai_err_set(err, AI_EINVAL,
                          "unknown provider: github, google or aws (API "
                          "keys: ai_broker_add_api_key)");
    /* The check the CLI and the leader apply, so the three agree. */
    if ((rc = prov_config_check(name, config_json, err)) != AI_OK ||
        (rc = store_provider_set(broker_store(b), name, config_json, now,
                                 err)) != AI_OK)
        return rc;
    return audit_ok(b, now, "config-init", NULL, NULL, name, err);
}

/* See agent_iam.h. */
ai_code ai_broker_add_api_key(ai_broker *b, const char *name,
                              const char *provider, const char *key,
                              const char *base_url, int ttl_minutes,
                              ai_err *err)
{
    int64_t now = now_ms();
    char why[160];
    ai_code rc;

    ai_err_clear(err);
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    if (!word_valid(name, WORD_MAX) || !word_valid(provider, WORD_MAX))
        return ai_err_set(err, AI_EINVAL,
                          "an API key's %s is 1 to %d of A-Z a-z 0-9 . _ -",
                          word_valid(name, WORD_MAX) ? "provider" : "name",
                          WORD_MAX);
    /* Never the key's value in a message: only what is wrong with it. */
    if (key == NULL ||
        !prov_secret_ok(key, strnlen(key, PROV_SECRET_MAX + 1)))
        return ai_err_set(err, AI_EINVAL,
                          "an API key is 1 to %d bytes without control "
                          "characters",
                          PROV_SECRET_MAX);
    if (base_url != NULL && !prov_url_ok(base_url))
        return ai_err_set(err, AI_EINVAL,
                          "a base URL is an https:// URL without user info "
                          "(http:// only to localhost, 127.0.0.1 or [::1]), "
                          "at most %d characters",
                          PROV_URL_MAX);
    if (ttl_minutes < 0 || ttl_minutes > TTL_MAX_MIN)
        return ai_err_set(err, AI_EINVAL,
                          "an API key's TTL is 1 to %d minutes (0: the "
                          "default)",
                          TTL_MAX_MIN);
    apikey_info info = {name, provider, base_url, ttl_minutes, 0};
    if ((rc = store_apikey_add(broker_store(b), &info, key, now, err)) !=
        AI_OK)
        return rc;
    snprintf(why, sizeof why, "%s (provider %s)", name, provider);
    return audit_ok(b, now, "apikey-add", NULL, NULL, why, err);
}

/* See agent_iam.h. */
ai_code ai_broker_remove_api_key(ai_broker *b, const char *name, ai_err *err)
{
    int64_t now = now_ms();
    ai_code rc;

    ai_err_clear(err);
    if (b == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker");
    if (!word_valid(name, WORD_MAX))
        return ai_err_set(err, AI_EINVAL,
                          "an API key name is 1 to %d of A-Z a-z 0-9 . _ -",
                          WORD_MAX);
    if ((rc = store_apikey_remove(broker_store(b), name, now, err)) != AI_OK)
        return rc;
    return audit_ok(b, now, "apikey-remove", NULL, NULL, name, err);
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
    int64_t head = 0, applied = 0, now = now_ms();
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
    if ((rc = store_keyring(st, now, &kr, err)) == AI_OK) {
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
