/* broker.c - the token operations of a home: the core's create, verify,
 * check, delegate and refresh with the home's keys, revocations, use
 * counters and audit log. Every call first brings the store's views up to
 * date (store_sync), so a revoke or rotation made by another process on
 * the same home takes effect at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include <openssl/sha.h>

#include "broker/broker.h"
#include "core/core.h"
#include "providers/providers.h"

struct ai_broker {
    store *st;
    bool owns;
    cred_cache *cache; /* provider credentials, made on first use */
    char actor[65];    /* who the audit rows name */
    ai_token_cache *tcache; /* server mode: verified tokens (borrowed) */
    broker_consume_fn consume; /* NULL: count uses in the home's store */
    void *consume_ud;
    bool server;       /* server mode: the caller syncs; no verify audit */
};

ai_code broker_wrap(store *st, ai_broker **out, ai_err *err)
{
    ai_broker *b;

    ai_err_clear(err);
    *out = NULL;
    if ((b = ai_calloc(1, sizeof *b)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    b->st = st;
    snprintf(b->actor, sizeof b->actor, "cli");
    *out = b;
    return AI_OK;
}

ai_code ai_broker_set_actor(ai_broker *b, const char *actor, ai_err *err)
{
    size_t n = actor ? strlen(actor) : 0;

    ai_err_clear(err);
    if (b == NULL || n == 0 || n >= sizeof b->actor)
        return ai_err_set(err, AI_EINVAL, "an actor is 1 to %zu bytes",
                          sizeof b->actor - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)actor[i] < 0x20 || actor[i] == 0x7f)
            return ai_err_set(err, AI_EINVAL,
                              "an actor has no control characters");
    memcpy(b->actor, actor, n + 1);
    return AI_OK;
}

store *broker_store(ai_broker *b)
{
    return b->st;
}

const char *broker_actor(const ai_broker *b)
{
    return b->actor;
}

ai_code broker_sync(ai_broker *b, ai_err *err)
{
    return b->server ? AI_OK : store_sync(b->st, err);
}

ai_code ai_broker_open(const char *home, ai_broker **out, ai_err *err)
{
    ai_err local; /* messages are needed here even without err */
    char path[4096];
    store *st = NULL;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output broker");
    *out = NULL;
    if ((rc = store_home_path(home, path, sizeof path, err)) != AI_OK ||
        (rc = store_open(path, true, &st, err)) != AI_OK)
        return rc;
    if ((rc = broker_wrap(st, out, err)) != AI_OK) {
        store_close(st);
        return rc;
    }
    (*out)->owns = true;
    return AI_OK;
}

void ai_broker_close(ai_broker *b)
{
    if (b == NULL)
        return;
    if (b->owns)
        store_close(b->st);
    cred_cache_free(b->cache);
    ai_free(b);
}

/* A failure of the store itself (memory, SQLite, a full disk): not a
 * decision about the caller, so no "deny" row is written for it. */
static bool store_failure(ai_code rc)
{
    return rc == AI_ENOMEM || rc == AI_ESTORE || rc == AI_ESTORAGE_FULL;
}

/* One audit row; an audit failure must not hide the operation's result,
 * so it is reported only when the operation itself succeeded. */
static ai_code audit(ai_broker *b, const char *action, const ai_token *t,
                     const char *agent, const char *decision,
                     const char *reason, ai_code rc, ai_err *err)
{
    audit_entry e = {0, time_now_ms(), b->actor, action,
                     t ? ai_token_id(t) : NULL,
                     t ? ai_token_agent_id(t) : agent, decision, reason};
    ai_err aerr;
    ai_code arc = store_audit(b->st, &e, &aerr);

    if (arc != AI_OK && rc == AI_OK)
        return ai_err_set(err, arc, "audit: %s", aerr.msg);
    return rc;
}

/* Keys and revocations as of the latest commit on the home (read only:
 * verifying never makes a key). */
static ai_code views(ai_broker *b, ai_verifier *v, ai_err *err)
{
    const ai_keyring *kr;
    ai_code rc;

    if ((!b->server && (rc = store_sync(b->st, err)) != AI_OK) ||
        (rc = store_keyring(b->st, &kr, err)) != AI_OK)
        return rc;
    v->keys = kr;
    v->revoked = store_revoked;
    v->revoked_ud = b->st;
    return AI_OK;
}

static ai_code verify_at(ai_broker *b, const char *wire, size_t len,
                         int64_t now, ai_token **out, ai_err *err)
{
    ai_verifier v;
    ai_code rc;

    if ((rc = views(b, &v, err)) != AI_OK)
        return rc;
    return ai_token_cache_verify(b->tcache, &v, wire, len, now, out, err);
}

void broker_set_consume(ai_broker *b, broker_consume_fn fn, void *ud)
{
    b->consume = fn;
    b->consume_ud = ud;
}

/* Count one use of each budget: here, or where the hook says (a
 * follower asks its leader). */
static ai_code consume(ai_broker *b, const char *wire, size_t len,
                       const ai_token *t, const char *scope,
                       const ai_budget_ref *budgets, size_t n, int64_t now,
                       bool *granted, uint32_t *left, ai_err *err)
{
    broker_cmd c = {.op = BROKER_USES_CONSUME, .at_ms = now,
                    .budgets = budgets, .nbudgets = n};
    broker_result res = {0};
    ai_code rc;

    if (b->consume != NULL)
        return b->consume(b->consume_ud, wire, len, t, scope, granted, left,
                          err);
    rc = broker_exec(b, &c, &res, err);
    *granted = res.granted;
    *left = res.remaining;
    return rc;
}

void broker_server_mode(ai_broker *b, ai_token_cache *cache)
{
    b->server = true;
    b->tcache = cache;
}

ai_code broker_verify_quiet(ai_broker *b, const char *wire, size_t len,
                            int64_t now, ai_token **out, ai_err *err)
{
    ai_err_clear(err);
    *out = NULL;
    return verify_at(b, wire, len, now, out, err);
}

/* The opening of an entry point that makes a token: *err (or local when
 * the caller gave none) cleared and *out NULL; AI_EINVAL without out. */
static ai_code token_start(ai_err **err, ai_err *local, ai_token **out)
{
    *err = ai_err_start(*err, local);
    if (out == NULL)
        return ai_err_set(*err, AI_EINVAL, "no output token");
    *out = NULL;
    return AI_OK;
}

/* rc, and on error *out freed and NULL. */
static ai_code token_end(ai_code rc, ai_token **out)
{
    if (rc != AI_OK) {
        ai_token_free(*out);
        *out = NULL;
    }
    return rc;
}

ai_code ai_broker_verify(ai_broker *b, const char *wire, size_t len,
                         ai_token **out, ai_err *err)
{
    ai_err local; /* messages are needed here even without err */
    ai_code rc;

    if ((rc = token_start(&err, &local, out)) != AI_OK)
        return rc;
    rc = verify_at(b, wire, len, time_now_ms(), out, err);
    if (rc != AI_OK && !store_failure(rc) && !b->server)
        (void)audit(b, "verify", NULL, NULL, "deny", err->msg, rc, err);
    return rc;
}

ai_code ai_broker_create_root_token(ai_broker *b, const ai_root_params *p,
                                    ai_token **out, ai_err *err)
{
    ai_err local; /* messages are needed here even without err */
    const ai_keyring *kr;
    int64_t now = time_now_ms();
    ai_code rc;

    if ((rc = token_start(&err, &local, out)) != AI_OK)
        return rc;
    if ((!b->server && (rc = store_sync(b->st, err)) != AI_OK) ||
        (rc = broker_signing_keyring(b, now, &kr, err)) != AI_OK ||
        (rc = ai_token_create_root(kr, p, now, out, err)) != AI_OK ||
        (rc = store_note_signed(b->st, err)) != AI_OK)
        goto fail;
    rc = audit(b, "create-root", *out, NULL, "ok", NULL, AI_OK, err);
fail:
    return token_end(rc, out);
}

ai_code ai_broker_delegate(ai_broker *b, const char *parent, size_t len,
                           const ai_delegation *req, ai_token **out,
                           ai_err *err)
{
    ai_err local; /* messages are needed here even without err */
    ai_token *p = NULL;
    const ai_keyring *kr;
    int64_t now = time_now_ms();
    ai_code rc;

    if ((rc = token_start(&err, &local, out)) != AI_OK)
        return rc;
    if ((rc = verify_at(b, parent, len, now, &p, err)) != AI_OK) {
        rc = audit(b, "delegate", NULL, NULL, "deny", err->msg, rc, err);
        goto done;
    }
    /* The parent verified: the home has its signing key. */
    if ((rc = store_keyring(b->st, &kr, err)) != AI_OK)
        goto done;
    rc = ai_token_delegate(kr, p, req, now, out, err);
    if (rc == AI_OK && (rc = store_note_signed(b->st, err)) == AI_OK)
        rc = audit(b, "delegate", *out, NULL, "ok", ai_token_id(p), AI_OK,
                   err);
    else if (rc == AI_EDENIED || rc == AI_EINVAL)
        rc = audit(b, "delegate", p, NULL, "deny", err->msg, rc, err);
done:
    ai_token_free(p);
    return token_end(rc, out);
}

ai_code ai_broker_check_permission(ai_broker *b, const char *wire,
                                   size_t len, const char *scope,
                                   const char *resource, ai_err *err)
{
    ai_err local; /* messages are needed here even without err */
    ai_token *t = NULL;
    int64_t now = time_now_ms();
    ai_code rc;

    err = ai_err_start(err, &local);
    rc = verify_at(b, wire, len, now, &t, err);
    if (rc == AI_OK)
        rc = ai_token_check(t, scope, resource, now, err);
    if (rc != AI_OK && !store_failure(rc) && !b->server)
        rc = audit(b, "check", t, NULL, "deny", err->msg, rc, err);
    ai_token_free(t);
    return rc;
}

ai_code ai_broker_refresh(ai_broker *b, const char *wire, size_t len,
                          int ttl_minutes, ai_token **out, ai_err *err)
{
    ai_err local; /* messages are needed here even without err */
    ai_budget_ref budgets[64];
    ai_token *t = NULL;
    const ai_keyring *kr;
    int64_t now = time_now_ms();
    size_t n = 0;
    bool granted = true;
    uint32_t left;
    ai_code rc;

    if ((rc = token_start(&err, &local, out)) != AI_OK)
        return rc;
    if ((rc = verify_at(b, wire, len, now, &t, err)) != AI_OK ||
        (rc = store_keyring(b->st, &kr, err)) != AI_OK)
        goto done;
    /* A refresh is a use of system:token:refresh: its budgets count. */
    if ((rc = ai_token_check(t, "system:token:refresh", "", now, err)) ==
            AI_OK &&
        (rc = ai_token_budgets(t, "system:token:refresh", budgets,
                               sizeof budgets / sizeof *budgets, &n, err)) ==
            AI_OK &&
        n > 0 &&
        (rc = consume(b, wire, len, t, "system:token:refresh", budgets, n,
                      now, &granted, &left, err)) == AI_OK &&
        !granted)
        rc = ai_err_set(err, AI_EDENIED,
                        "Scope \"system:token:refresh\" has no uses left");
    if (rc == AI_OK)
        rc = ai_token_refresh(kr, t, ttl_minutes, now, out, err);
    if (rc == AI_OK && (rc = store_note_signed(b->st, err)) == AI_OK)
        rc = audit(b, "refresh", *out, NULL, "ok", NULL, AI_OK, err);
    else if (!store_failure(rc))
        rc = audit(b, "refresh", t, NULL, "deny", err->msg, rc, err);
done:
    ai_token_free(t);
    return token_end(rc, out);
}

/* ---- credentials ------------------------------------------------------ */

#define PROVIDER_MAX 64

/* The API key serving a provider: one whose provider is the name, else
 * one whose own name is. */
typedef struct key_pick {
    const char *want;
    bool by_provider, oom;
    char *name, *base_url;
    int ttl_minutes;
} key_pick;

/* The API key whose provider is the scope's provider (only its provider:
 * a key named "github" for provider "openai" never answers for GitHub). */
static void pick_key(void *ud, const apikey_info *k)
{
    key_pick *kp = ud;

    if (kp->name != NULL || strcmp(k->provider, kp->want) != 0)
        return;
    kp->name = ai_strdup(k->name);
    if (k->base_url != NULL && (kp->base_url = ai_strdup(k->base_url)) == NULL)
        kp->oom = true;
    if (kp->name == NULL)
        kp->oom = true;
    kp->ttl_minutes = k->ttl_minutes;
    kp->by_provider = true;
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        store_free(s);
    }
}

/* {"credentialType":T,"credential":{...},"expiresAt":"ISO"}; NULL on out
 * of memory. */
static char *result_json(const cred_result *r)
{
    ai_buf b;

    buf_init(&b);
    buf_putc(&b, '{');
    jw_key(&b, "credentialType", true);
    jw_str(&b, r->type, strlen(r->type));
    jw_key(&b, "credential", false);
    buf_puts(&b, r->credential);
    if (r->expires_at > 0) {
        jw_key(&b, "expiresAt", false);
        jw_time(&b, r->expires_at);
    }
    buf_putc(&b, '}');
    return buf_steal(&b);
}

/* See agent_iam.h: verify, check, consume, then the API key or backend. */
ai_code ai_broker_get_credential(ai_broker *b, const char *wire, size_t len,
                                 const char *scope, const char *resource,
                                 char **out, ai_err *err)
{
    ai_err local; /* messages are needed here even without err */
    ai_budget_ref budgets[64];
    char provider[PROVIDER_MAX], why[AI_ERR_MSG_MAX];
    const char *colon;
    key_pick kp = {NULL, false, false, NULL, NULL, 0};
    const prov_ops *ops = NULL;
    char *config = NULL, *secret = NULL;
    cred_result cred = {{0}, NULL, 0};
    ai_token *t = NULL;
    int64_t now = time_now_ms();
    size_t n = 0;
    bool granted = true, audited = false;
    uint32_t left;
    ai_code rc;

    err = ai_err_start(err, &local);
    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output credential");
    *out = NULL;
    if (b == NULL || scope == NULL)
        return ai_err_set(err, AI_EINVAL, "no broker or scope");
    if (resource == NULL)
        resource = "";
    /* The provider is the scope's first segment: "github:repo:read". */
    colon = strchr(scope, ':');
    if (colon == NULL || colon == scope || colon[1] == '\0' ||
        (size_t)(colon - scope) >= sizeof provider)
        return ai_err_set(err, AI_EINVAL,
                          "scope \"%.*s\" has no provider segment (use "
                          "provider:resource:action)",
                          AI_SCOPE_MAX, scope);
    memcpy(provider, scope, (size_t)(colon - scope));
    provider[colon - scope] = '\0';

    if ((rc = verify_at(b, wire, len, now, &t, err)) != AI_OK ||
        (rc = ai_token_check(t, scope, resource, now, err)) != AI_OK)
        goto done;
    /* Find the source before consuming a use: a request that cannot be
     * served (unknown or unconfigured provider) costs nothing. */
    kp.want = provider;
    if ((rc = store_apikey_list(b->st, pick_key, &kp, err)) != AI_OK)
        goto done;
    if (kp.oom) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    if (kp.name == NULL) {
        if ((ops = prov_find(provider)) == NULL) {
            rc = ai_err_set(err, AI_ENOTFOUND,
                            "unknown provider \"%s\": no backend and no API "
                            "key for it",
                            provider);
            goto done;
        }
        if ((rc = store_provider_get(b->st, provider, &config, err)) ==
            AI_ENOTFOUND) {
            ai_err_clear(err);
            rc = ai_err_set(err, AI_ENOTFOUND,
                            "provider %s is not configured (agent-iam config "
                            "init %s)",
                            provider, provider);
        }
        if (rc != AI_OK)
            goto done;
    }
    if ((rc = ai_token_budgets(t, scope, budgets,
                               sizeof budgets / sizeof *budgets, &n, err)) !=
            AI_OK ||
        (n > 0 && (rc = consume(b, wire, len, t, scope, budgets, n, now,
                                &granted, &left, err)) != AI_OK))
        goto done;
    if (!granted) {
        rc = ai_err_set(err, AI_EDENIED, "Scope \"%s\" has no uses left",
                        scope);
        goto done;
    }
    if (kp.name != NULL) {
        if ((rc = store_apikey_secret(b->st, kp.name, &secret, err)) !=
                AI_OK ||
            (rc = prov_apikey_build(provider, secret, kp.base_url,
                                    kp.ttl_minutes, now, &cred, err)) !=
                AI_OK)
            goto done;
    } else {
        if (b->cache == NULL && (b->cache = cred_cache_new()) == NULL) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto done;
        }
        /* The cache key names who asks and which config answered: one
         * agent never gets another's session (AWS records the session name
         * in CloudTrail), and a changed config is never served stale. */
        unsigned char fp[SHA256_DIGEST_LENGTH];
        char ckey[AI_ID_MAX + 96];
        SHA256((const unsigned char *)config, strlen(config), fp);
        snprintf(ckey, sizeof ckey,
                 "%s\x1f%s\x1f%02x%02x%02x%02x%02x%02x%02x%02x", provider,
                 ai_token_agent_id(t), fp[0], fp[1], fp[2], fp[3], fp[4],
                 fp[5], fp[6], fp[7]);
        explicit_bzero(fp, sizeof fp);
        if (!cred_cache_get(b->cache, ckey, scope, resource, now, &cred)) {
            /* AGENT_IAM_PROVIDER_CA_FILE: the CA bundle for provider TLS
             * (else the system's). */
            const char *ca = getenv("AGENT_IAM_PROVIDER_CA_FILE");
            prov_request req = {scope, resource, ai_token_agent_id(t),
                                config, (ca && *ca) ? ca : NULL, now};
            if ((rc = ops->fetch(&req, &cred, err)) != AI_OK)
                goto done;
            cred_cache_put(b->cache, ckey, scope, resource, &cred);
        }
    }
    if (cred.credential == NULL || (*out = result_json(&cred)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(why, sizeof why, "%s \"%s\" (%s%s)", scope, resource,
             kp.name ? "api key " : "provider ", kp.name ? kp.name : provider);
    rc = audit(b, "credential", t, NULL, "allow", why, AI_OK, err);
    audited = true;
done:
    if (rc != AI_OK && !audited && t != NULL && !store_failure(rc))
        rc = audit(b, "credential", t, NULL, "deny", err->msg, rc, err);
    else if (rc != AI_OK && t == NULL && !store_failure(rc))
        rc = audit(b, "credential", NULL, NULL, "deny", err->msg, rc, err);
    if (rc != AI_OK && *out != NULL) {
        ai_free_string(*out);
        *out = NULL;
    }
    cred_result_clear(&cred);
    wipe_free(secret);
    wipe_free(config);
    ai_free(kp.name);
    ai_free(kp.base_url);
    ai_token_free(t);
    return rc;
}

/* See agent_iam.h. */
void ai_free_string(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    ai_free(s);
}
