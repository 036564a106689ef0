/* body.c - request bodies from their bytes: the generic JSON readers of
 * the handlers and the agent API's bodies (see body.h). */
#include <string.h>

#include "core/core.h"
#include "server/body.h"

json_t *body_object(const char *body, size_t len, bool empty_ok, ai_err *err)
{
    json_error_t je;
    json_t *o;

    ai_err_clear(err);
    if (len == 0 && empty_ok) {
        if ((o = json_object()) == NULL)
            ai_err_set(err, AI_ENOMEM, "out of memory");
        return o;
    }
    o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        ai_err_set(err, AI_EINVAL, "malformed JSON body: %s", je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        ai_err_set(err, AI_EINVAL, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

bool body_str(const json_t *o, const char *key, bool required,
              const char **out, ai_err *err)
{
    const json_t *v = json_object_get(o, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            ai_err_set(err, AI_EINVAL, "\"%s\" is required", key);
        return !required;
    }
    if (!json_is_string(v) ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        ai_err_set(err, AI_EINVAL, "\"%s\" must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool body_int(const json_t *o, const char *key, long long min, long long max,
              bool *present, long long *out, ai_err *err)
{
    const json_t *v = json_object_get(o, key);

    *present = false;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        ai_err_set(err, AI_EINVAL,
                   "\"%s\" must be a whole number from %lld to %lld", key,
                   min, max);
        return false;
    }
    *present = true;
    *out = json_integer_value(v);
    return true;
}

ai_code body_scope_parse(const char *body, size_t len, body_scope *out,
                         ai_err *err)
{
    memset(out, 0, sizeof *out);
    if ((out->root = body_object(body, len, false, err)) == NULL)
        return err->code;
    if (!body_str(out->root, "scope", true, &out->scope, err) ||
        !body_str(out->root, "resource", false, &out->resource, err)) {
        body_scope_free(out);
        return err->code;
    }
    if (out->resource == NULL)
        out->resource = "";
    return AI_OK;
}

void body_scope_free(body_scope *b)
{
    json_decref(b->root);
    memset(b, 0, sizeof *b);
}

ai_code body_delegation_parse(const char *body, size_t len, ai_delegation *d,
                              ai_delegation_storage **storage, ai_err *err)
{
    json_t *o;

    *storage = NULL;
    if ((o = body_object(body, len, false, err)) == NULL)
        return err->code;
    json_decref(o); /* well-formed object; the core parses it strictly */
    return ai_delegation_from_json(body, len, d, storage, err);
}

ai_code body_int_only(const char *body, size_t len, const char *key,
                      long long min, long long max, bool *present,
                      long long *out, ai_err *err)
{
    json_t *o;
    bool ok;

    *present = false;
    if ((o = body_object(body, len, true, err)) == NULL)
        return err->code;
    ok = body_int(o, key, min, max, present, out, err);
    json_decref(o);
    return ok ? AI_OK : err->code;
}

ai_code body_refresh_parse(const char *body, size_t len, int *ttl_minutes,
                           ai_err *err)
{
    long long ttl = 0;
    bool has;
    ai_code rc = body_int_only(body, len, "ttlMinutes", 1,
                               BODY_REFRESH_TTL_MAX, &has, &ttl, err);

    *ttl_minutes = rc == AI_OK && has ? (int)ttl : 0;
    return rc;
}
