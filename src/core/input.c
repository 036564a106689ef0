/* input.c - user-supplied constraints, identity, federation and
 * capabilities (CLI flags, API parameters) into token fields. The same
 * strict readers as signed tokens, in input mode: unknown fields are
 * refused and requested budgets ignored. Errors name the parameter. */
#include <string.h>

#include "core.h"

typedef bool (*reader_fn)(jr *r, ai_token *t, void *out);

static ai_code run(ai_token *t, const char *json, const char *what,
                   reader_fn fn, void *out, ai_err *err)
{
    size_t n = strlen(json);
    char *scratch;
    jr r;

    if (n > AI_TOKEN_JSON_MAX)
        return ai_err_set(err, AI_EINVAL, "%s: larger than %d bytes", what,
                          AI_TOKEN_JSON_MAX);
    scratch = tk_strdup(t, json, n);
    if (scratch == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    r.p = scratch;
    r.end = scratch + n;
    r.depth = 0;
    r.why = NULL;
    r.input = true;
    r.esc = false;
    if (!fn(&r, t, out) || (jr_ws(&r), r.p != r.end)) {
        if (r.why == NULL)
            r.why = "trailing bytes after JSON";
        if (strcmp(r.why, "out of memory") == 0)
            return ai_err_set(err, AI_ENOMEM, "out of memory");
        return ai_err_set(err, AI_EINVAL, "%s: %s", what, r.why);
    }
    return AI_OK;
}

typedef struct cons_out {
    tk_constraint **cons;
    size_t *n;
} cons_out;

static bool rd_cons(jr *r, ai_token *t, void *out)
{
    cons_out *o = out;
    return codec_read_constraints(r, t, o->cons, o->n);
}

static bool rd_ident(jr *r, ai_token *t, void *out)
{
    return jr_peek(r, '{') ? codec_read_identity(r, t, out)
                           : jr_fail(r, "must be a JSON object");
}

static bool rd_fed(jr *r, ai_token *t, void *out)
{
    return codec_read_federation(r, t, out);
}

static bool rd_caps(jr *r, ai_token *t, void *out)
{
    return codec_read_caps(r, t, out);
}

ai_code input_constraints(ai_token *t, const char *json, tk_constraint **out,
                          size_t *n, ai_err *err)
{
    cons_out o = {out, n};
    ai_code rc = run(t, json, "constraints", rd_cons, &o, err);

    if (rc != AI_OK)
        return rc;
    for (size_t i = 0; i < *n; i++) {
        tk_constraint *c = &(*out)[i];
        for (size_t j = 0; j < c->nres; j++)
            if (!utf8_valid(c->resources[j], strlen(c->resources[j])))
                return ai_err_set(err, AI_EINVAL,
                                  "constraints: bad resource pattern");
    }
    return AI_OK;
}

ai_code input_identity(ai_token *t, const char *json, char **out, ai_err *err)
{
    return run(t, json, "identity", rd_ident, out, err);
}

ai_code input_federation(ai_token *t, const char *json, tk_federation *out,
                         ai_err *err)
{
    memset(out, 0, sizeof *out);
    return run(t, json, "federation", rd_fed, out, err);
}

ai_code input_caps(ai_token *t, const char *json, tk_caps *out, ai_err *err)
{
    memset(out, 0, sizeof *out);
    out->visibility = -1;
    return run(t, json, "agentCapabilities", rd_caps, out, err);
}

ai_code input_id(ai_token *t, const char *s, const char *what, char **out,
                 ai_err *err)
{
    size_t n;

    if (s == NULL || (n = strlen(s)) == 0)
        return ai_err_set(err, AI_EINVAL, "%s is required", what);
    if (n > AI_ID_MAX || !utf8_valid(s, n))
        return ai_err_set(err, AI_EINVAL,
                          "%s must be 1 to %d bytes of UTF-8", what,
                          AI_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return ai_err_set(err, AI_EINVAL,
                              "%s must not contain control characters", what);
    *out = tk_strdup(t, s, n);
    return *out ? AI_OK : ai_err_set(err, AI_ENOMEM, "out of memory");
}

ai_code input_scopes(ai_token *t, const char *const *scopes, size_t n,
                     ai_err *err)
{
    if (scopes == NULL || n == 0)
        return ai_err_set(err, AI_EINVAL, "at least one scope is required");
    if (n > AI_LIST_MAX)
        return ai_err_set(err, AI_EINVAL, "at most %d scopes", AI_LIST_MAX);
    t->scopes = tk_alloc(t, n * sizeof(char *));
    if (t->scopes == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = scopes[i] ? strlen(scopes[i]) : 0;
        if (scopes[i] == NULL || !scope_valid(scopes[i], len) ||
            !utf8_valid(scopes[i], len))
            return ai_err_set(err, AI_EINVAL,
                              "scope %zu is empty, longer than %d bytes or "
                              "not printable UTF-8",
                              i + 1, AI_SCOPE_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->scopes[j], scopes[i]) == 0)
                return ai_err_set(err, AI_EINVAL,
                                  "scope \"%s\" is listed twice", scopes[i]);
        t->scopes[i] = tk_strdup(t, scopes[i], len);
        if (t->scopes[i] == NULL)
            return ai_err_set(err, AI_ENOMEM, "out of memory");
    }
    t->nscopes = n;
    return AI_OK;
}
