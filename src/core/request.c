/* request.c - a DelegationRequest as JSON (an HTTP body, a CLI argument)
 * into an ai_delegation. Parsed with jansson; the nested objects are kept
 * as compact JSON text for the strict token readers. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core.h"

struct ai_delegation_storage {
    json_t *root;
    const char **scopes;
    char *texts[3]; /* constraints, federation, capabilities */
};

void ai_delegation_storage_free(ai_delegation_storage *s)
{
    if (s == NULL)
        return;
    json_decref(s->root);
    ai_free(s->scopes);
    for (int i = 0; i < 3; i++)
        ai_free(s->texts[i]);
    ai_free(s);
}

static ai_code obj_text(json_t *root, const char *name, char **out,
                        ai_err *err)
{
    json_t *v = json_object_get(root, name);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return AI_OK;
    if (!json_is_object(v))
        return ai_err_set(err, AI_EINVAL, "%s must be a JSON object", name);
    *out = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    return *out ? AI_OK : ai_err_set(err, AI_ENOMEM, "out of memory");
}

ai_code ai_delegation_from_json(const char *text, size_t len, ai_delegation *d,
                                ai_delegation_storage **storage, ai_err *err)
{
    static const char *const known[] = {
        "agentId", "requestedScopes", "requestedConstraints", "delegatable",
        "ttlMinutes", "inheritIdentity", "federation", "agentCapabilities"};
    ai_delegation_storage *s;
    json_error_t jerr;
    json_t *v, *scopes;
    const char *key;
    ai_code rc;

    ai_err_clear(err); /* callers need not zero it */

    if (storage == NULL || d == NULL)
        return ai_err_set(err, AI_EINVAL, "no output");
    *storage = NULL;
    ai_delegation_init(d);
    if (text == NULL || len > 65536)
        return ai_err_set(err, AI_EINVAL, "delegation request too large");
    if ((s = ai_calloc(1, sizeof *s)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    alloc_json_oom_clear();
    s->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    /* Any failed allocation in the parse makes its result untrustworthy
     * (a string may have been cut short), whatever it returned. */
    if (alloc_json_oom() ||
        (s->root == NULL &&
         json_error_code(&jerr) == json_error_out_of_memory)) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto fail;
    }
    if (s->root == NULL || !json_is_object(s->root)) {
        rc = ai_err_set(err, AI_EINVAL,
                        "delegation request is not a JSON object");
        goto fail;
    }
    json_object_foreach(s->root, key, v) {
        size_t i;
        for (i = 0; i < sizeof known / sizeof *known; i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (i == sizeof known / sizeof *known) {
            rc = ai_err_set(err, AI_EINVAL,
                            "unknown delegation request field \"%.64s\"", key);
            goto fail;
        }
    }
    if ((v = json_object_get(s->root, "agentId")) != NULL &&
        !json_is_null(v)) {
        if (!json_is_string(v)) {
            rc = ai_err_set(err, AI_EINVAL, "agentId must be a string");
            goto fail;
        }
        d->agent_id = json_string_value(v);
    }
    scopes = json_object_get(s->root, "requestedScopes");
    if (!json_is_array(scopes) || json_array_size(scopes) == 0 ||
        json_array_size(scopes) > AI_LIST_MAX) {
        rc = ai_err_set(err, AI_EINVAL,
                        "requestedScopes must be an array of 1 to %d scopes",
                        AI_LIST_MAX);
        goto fail;
    }
    s->scopes = ai_calloc(json_array_size(scopes), sizeof *s->scopes);
    if (s->scopes == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(scopes); i++) {
        json_t *e = json_array_get(scopes, i);
        if (!json_is_string(e) || strlen(json_string_value(e)) !=
                                      json_string_length(e)) {
            rc = ai_err_set(err, AI_EINVAL,
                            "requestedScopes must hold strings");
            goto fail;
        }
        s->scopes[i] = json_string_value(e);
    }
    d->scopes = s->scopes;
    d->nscopes = json_array_size(scopes);
    if ((v = json_object_get(s->root, "delegatable")) != NULL) {
        if (!json_is_boolean(v)) {
            rc = ai_err_set(err, AI_EINVAL, "delegatable must be a boolean");
            goto fail;
        }
        d->delegatable = json_is_true(v);
    }
    if ((v = json_object_get(s->root, "inheritIdentity")) != NULL) {
        if (!json_is_boolean(v)) {
            rc = ai_err_set(err, AI_EINVAL,
                            "inheritIdentity must be a boolean");
            goto fail;
        }
        d->inherit_identity = json_is_true(v);
    }
    if ((v = json_object_get(s->root, "ttlMinutes")) != NULL &&
        !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 5256000) {
            rc = ai_err_set(err, AI_EINVAL,
                            "ttlMinutes must be a whole number from 1 to "
                            "5256000");
            goto fail;
        }
        d->ttl_minutes = (int)json_integer_value(v);
    }
    if ((rc = obj_text(s->root, "requestedConstraints", &s->texts[0], err)) ||
        (rc = obj_text(s->root, "federation", &s->texts[1], err)) ||
        (rc = obj_text(s->root, "agentCapabilities", &s->texts[2], err)))
        goto fail;
    d->constraints_json = s->texts[0];
    d->federation_json = s->texts[1];
    d->capabilities_json = s->texts[2];
    *storage = s;
    return AI_OK;
fail:
    ai_delegation_storage_free(s);
    ai_delegation_init(d);
    return rc;
}
