/* check.c - checkPermission on a verified token, and the use budgets that
 * apply to a scope. Every constraint whose key matches the scope applies
 * (the Node.js package applies only the first: we may deny where it
 * allows, never the reverse). */
#include <string.h>

#include "core.h"

ai_code ai_token_check(const ai_token *t, const char *scope,
                       const char *resource, int64_t now_ms, ai_err *err)
{
    char when[AI_TIME_BUF];
    bool ok = false;

    ai_err_clear(err); /* callers need not zero it */

    if (t == NULL || scope == NULL)
        return ai_err_set(err, AI_EINVAL, "token and scope are required");
    if (!t->verified)
        return ai_err_set(err, AI_EINVAL, "token has not been verified");
    if (resource == NULL)
        resource = "";
    if (!scope_valid(scope, strlen(scope)))
        return ai_err_set(err, AI_EINVAL, "malformed scope");
    /* A pattern would slip past constraints written for the scopes it
     * covers: a check names one scope. */
    if (!scope_concrete(scope))
        return ai_err_set(err, AI_EINVAL,
                          "scope \"%s\" has a \"*\" segment: name one scope",
                          scope);
    if (strlen(resource) > AI_RESOURCE_MAX)
        return ai_err_set(err, AI_EINVAL, "resource longer than %d bytes",
                          AI_RESOURCE_MAX);
    if (now_ms >= t->expires_at) {
        ai_time_format(t->expires_at, when);
        return ai_err_set(err, AI_EEXPIRED, "token expired at %s", when);
    }
    for (size_t i = 0; i < t->nscopes && !ok; i++)
        ok = ai_scope_matches(t->scopes[i], scope);
    if (!ok)
        return ai_err_set(err, AI_EDENIED, "Scope \"%s\" not allowed", scope);
    for (size_t i = 0; i < t->ncons; i++) {
        const tk_constraint *c = &t->cons[i];
        if (!ai_scope_matches(c->key, scope))
            continue;
        if (c->has_nb && now_ms < c->nb) {
            ai_time_format(c->nb, when);
            return ai_err_set(err, AI_EDENIED,
                              "Scope \"%s\" not valid before %s", scope, when);
        }
        if (c->has_na && now_ms > c->na) {
            ai_time_format(c->na, when);
            return ai_err_set(err, AI_EEXPIRED, "Scope \"%s\" expired at %s",
                              scope, when);
        }
        if (c->has_res) {
            /* A resource with `*` or `?` asks for every resource it
             * matches (AWS reads it as a wildcard): it must lie within a
             * pattern, not merely be matched by one as a literal string. */
            bool wild = strpbrk(resource, "*?") != NULL, any = false;
            for (size_t j = 0; j < c->nres && !any; j++)
                any = wild ? ai_glob_within(resource, c->resources[j])
                           : ai_glob_matches(c->resources[j], resource);
            if (!any)
                return ai_err_set(err, AI_EDENIED,
                                  "Resource \"%.80s\" not allowed for scope "
                                  "\"%s\"",
                                  resource, scope);
        }
    }
    return AI_OK;
}

ai_code ai_token_budgets(const ai_token *t, const char *scope,
                         ai_budget_ref *out, size_t cap, size_t *n,
                         ai_err *err)
{
    /* A token holds at most AI_LIST_MAX * AI_BUDGETS_MAX budgets. */
    ai_budget_ref all[AI_LIST_MAX * AI_BUDGETS_MAX];
    size_t count = 0;

    ai_err_clear(err); /* callers need not zero it */

    if (n != NULL)
        *n = 0;
    if (t == NULL || scope == NULL || n == NULL)
        return ai_err_set(err, AI_EINVAL, "token, scope and count required");
    if (!scope_valid(scope, strlen(scope)) || !scope_concrete(scope))
        return ai_err_set(err, AI_EINVAL,
                          "scope must be one concrete scope, without \"*\"");
    for (size_t i = 0; i < t->ncons; i++) {
        const tk_constraint *c = &t->cons[i];
        if (!c->has_max || !ai_scope_matches(c->key, scope))
            continue;
        for (size_t j = 0; j < c->nbudgets; j++) {
            size_t k;
            for (k = 0; k < count; k++)
                if (strcmp(all[k].id, c->budgets[j].id) == 0)
                    break;
            if (k < count) {
                if (c->budgets[j].max_uses < all[k].max_uses)
                    all[k].max_uses = c->budgets[j].max_uses;
                continue;
            }
            all[count].id = c->budgets[j].id;
            all[count].max_uses = c->budgets[j].max_uses;
            count++;
        }
    }
    *n = count;
    if (count > cap || (count > 0 && out == NULL))
        return ai_err_set(err, AI_ENOBUFS, "room for %zu budgets needed",
                          count);
    if (count > 0)
        memcpy(out, all, count * sizeof *all);
    return AI_OK;
}
