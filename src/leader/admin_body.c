/* admin_body.c - the admin API's request bodies from their bytes (see
 * admin_body.h); admin.c answers with what they say. */
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "leader/admin_body.h"
#include "providers/providers.h"
#include "server/server.h"

/* A member that must be a JSON object, kept as compact text (*out
 * ai_malloc'd; NULL when absent). */
static bool object_text(const json_t *o, const char *key, char **out,
                        ai_err *err)
{
    const json_t *v = json_object_get(o, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        ai_err_set(err, AI_EINVAL, "\"%s\" must be an object", key);
        return false;
    }
    if ((*out = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
        ai_err_set(err, AI_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

/* The root token's members after agentId and scopes. */
static bool root_options(admin_root_body *b, ai_err *err)
{
    static const char *const objects[4] = {"constraints", "identity",
                                           "federation", "agentCapabilities"};
    ai_root_params *p = &b->params;
    const json_t *v;
    long long n;
    bool has;

    if ((v = json_object_get(b->root, "delegatable")) != NULL) {
        if (!json_is_boolean(v)) {
            ai_err_set(err, AI_EINVAL, "\"delegatable\" must be true or false");
            return false;
        }
        p->delegatable = json_is_true(v);
    }
    if (!body_int(b->root, "maxDelegationDepth", 0, AI_MAX_DEPTH, &has, &n,
                  err))
        return false;
    if (has)
        p->max_delegation_depth = (int)n;
    if (!body_int(b->root, "ttlDays", 1, ADMIN_ROOT_TTL_DAYS_MAX, &has, &n,
                  err))
        return false;
    if (has)
        p->ttl_days = (int)n;
    if (!body_int(b->root, "maxTtlDays", 1, ADMIN_ROOT_TTL_DAYS_MAX, &has, &n,
                  err))
        return false;
    if (has)
        p->max_ttl_days = (int)n;
    for (int i = 0; i < 4; i++)
        if (!object_text(b->root, objects[i], &b->texts[i], err))
            return false;
    p->constraints_json = b->texts[0];
    p->identity_json = b->texts[1];
    p->federation_json = b->texts[2];
    p->capabilities_json = b->texts[3];
    return true;
}

ai_code admin_root_parse(const char *body, size_t len, admin_root_body *out,
                         ai_err *err)
{
    const json_t *sc;

    memset(out, 0, sizeof *out);
    ai_root_params_init(&out->params);
    if ((out->root = body_object(body, len, false, err)) == NULL)
        return err->code;
    if (!body_str(out->root, "agentId", true, &out->params.agent_id, err))
        goto fail;
    sc = json_object_get(out->root, "scopes");
    if (!json_is_array(sc) || json_array_size(sc) == 0 ||
        json_array_size(sc) > AI_LIST_MAX) {
        ai_err_set(err, AI_EINVAL,
                   "\"scopes\" must be an array of 1 to %d strings",
                   AI_LIST_MAX);
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(sc); i++) {
        const json_t *e = json_array_get(sc, i);
        if (!json_is_string(e)) {
            ai_err_set(err, AI_EINVAL, "\"scopes\" must hold strings");
            goto fail;
        }
        out->scopes[i] = json_string_value(e);
    }
    out->params.scopes = out->scopes;
    out->params.nscopes = json_array_size(sc);
    if (!root_options(out, err))
        goto fail;
    return AI_OK;
fail:
    admin_root_free(out);
    return err->code;
}

void admin_root_free(admin_root_body *b)
{
    for (int i = 0; i < 4; i++)
        ai_free(b->texts[i]);
    json_decref(b->root);
    memset(b, 0, sizeof *b);
}

ai_code admin_target_parse(const char *body, size_t len, bool with_reason,
                           admin_target_body *out, ai_err *err)
{
    const char *tok, *agent, *exp;

    memset(out, 0, sizeof *out);
    if ((out->root = body_object(body, len, false, err)) == NULL)
        return err->code;
    if (!body_str(out->root, "tokenId", false, &tok, err) ||
        !body_str(out->root, "agentId", false, &agent, err))
        goto fail;
    if ((tok == NULL) == (agent == NULL) || (tok ? *tok : *agent) == '\0') {
        ai_err_set(err, AI_EINVAL,
                   "give one non-empty \"tokenId\" or \"agentId\"");
        goto fail;
    }
    out->target = tok ? REVOKE_TOKEN : REVOKE_AGENT;
    out->id = tok ? tok : agent;
    if (!with_reason)
        return AI_OK;
    if (!body_str(out->root, "reason", false, &out->reason, err) ||
        !body_str(out->root, "expiresAt", false, &exp, err))
        goto fail;
    if (exp != NULL) {
        ai_err terr;
        ai_err_clear(&terr);
        if (ai_time_parse(exp, strlen(exp), &out->expires_ms, &terr) !=
            AI_OK) {
            ai_err_set(err, AI_EINVAL, "\"expiresAt\": %s", terr.msg);
            goto fail;
        }
    }
    return AI_OK;
fail:
    admin_target_free(out);
    return err->code;
}

void admin_target_free(admin_target_body *b)
{
    json_decref(b->root);
    memset(b, 0, sizeof *b);
}

ai_code admin_rotate_parse(const char *body, size_t len, int64_t *grace_ms,
                           ai_err *err)
{
    long long grace = -1;
    bool has;
    ai_code rc = body_int_only(body, len, "graceMs", 0, ADMIN_GRACE_MS_MAX,
                               &has, &grace, err);

    *grace_ms = rc == AI_OK && has ? grace : -1;
    return rc;
}

ai_code admin_provider_parse(const char *body, size_t len, char **text,
                             ai_err *err)
{
    json_t *o;

    *text = NULL;
    if ((o = body_object(body, len, false, err)) == NULL)
        return err->code;
    *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return *text != NULL ? AI_OK : ai_err_set(err, AI_ENOMEM, "out of memory");
}

ai_code admin_apikey_parse(const char *body, size_t len,
                           admin_apikey_body *out, ai_err *err)
{
    long long ttl = 0;
    bool has;

    memset(out, 0, sizeof *out);
    if ((out->root = body_object(body, len, false, err)) == NULL)
        return err->code;
    if (!body_str(out->root, "provider", true, &out->provider, err) ||
        !body_str(out->root, "key", true, &out->key, err) ||
        !body_str(out->root, "baseUrl", false, &out->base_url, err) ||
        !body_int(out->root, "ttlMinutes", 1, ADMIN_APIKEY_TTL_MAX, &has,
                  &ttl, err))
        goto fail;
    if (!word_valid(out->provider, 64)) {
        ai_err_set(err, AI_EINVAL,
                   "\"provider\" is 1 to 64 of A-Z a-z 0-9 . _ -");
        goto fail;
    }
    if (*out->key == '\0') {
        ai_err_set(err, AI_EINVAL, "\"key\" is empty");
        goto fail;
    }
    if (out->base_url != NULL && !prov_url_ok(out->base_url)) {
        ai_err_set(err, AI_EINVAL, "\"baseUrl\" must be an https:// URL");
        goto fail;
    }
    out->ttl_minutes = has ? (int)ttl : 0;
    return AI_OK;
fail:
    admin_apikey_free(out);
    return err->code;
}

void admin_apikey_free(admin_apikey_body *b)
{
    const json_t *k = json_object_get(b->root, "key");

    if (json_is_string(k)) /* jansson's copy of the secret */
        explicit_bzero((char *)(uintptr_t)json_string_value(k),
                       json_string_length(k));
    json_decref(b->root);
    memset(b, 0, sizeof *b);
}
