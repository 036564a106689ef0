/* mint.c - new tokens: create a root token, delegate (attenuation only)
 * and refresh. Every widening is refused with an error naming the scope,
 * pattern or field; nothing the parent does not grant reaches a child. */
#include <stdio.h>
#include <string.h>


#include "core.h"

#define MS_PER_MIN INT64_C(60000)
#define MS_PER_DAY INT64_C(86400000)

void ai_root_params_init(ai_root_params *p)
{
    memset(p, 0, sizeof *p);
    p->delegatable = true;
    p->max_delegation_depth = AI_DEFAULT_MAX_DEPTH;
    p->ttl_days = AI_DEFAULT_ROOT_TTL_DAYS;
    p->ttl_limit_days = AI_DEFAULT_ROOT_TTL_MAX_DAYS;
}

void ai_delegation_init(ai_delegation *d)
{
    memset(d, 0, sizeof *d);
    d->delegatable = true;
    d->ttl_minutes = AI_DEFAULT_DELEGATE_TTL_MIN;
    d->inherit_identity = true;
}

static ai_code oom(ai_err *err)
{
    return ai_err_set(err, AI_ENOMEM, "out of memory");
}

/* The id of a new budget: "<tokenId>:<constraint key>". */
static char *budget_id(ai_token *t, const char *key)
{
    size_t n = strlen(t->token_id) + 1 + strlen(key) + 1;
    char *id = tk_alloc(t, n);

    if (id != NULL)
        snprintf(id, n, "%s:%s", t->token_id, key);
    return id;
}

/* Give every constraint with maxUses (and no budgets yet) its own. */
static ai_code own_budgets(ai_token *t, ai_err *err)
{
    for (size_t i = 0; i < t->ncons; i++) {
        tk_constraint *c = &t->cons[i];
        if (!c->has_max)
            continue;
        c->budgets = tk_alloc(t, sizeof *c->budgets);
        if (c->budgets == NULL || (c->budgets->id = budget_id(t, c->key)) == NULL)
            return oom(err);
        c->budgets->max_uses = c->max_uses;
        c->nbudgets = 1;
        c->has_budgets = true;
    }
    return AI_OK;
}

ai_code ai_token_create_root(const ai_keyring *keys, const ai_root_params *p,
                             int64_t now_ms, ai_token **out, ai_err *err)
{
    const key_entry *k;
    ai_token *t;
    ai_code rc;

    ai_err_clear(err); /* callers need not zero it */

    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *out = NULL;
    if (p == NULL)
        return ai_err_set(err, AI_EINVAL, "no parameters");
    if ((k = keyring_signing(keys, now_ms)) == NULL)
        return ai_err_set(err, AI_EINVAL, "no usable signing key");
    if (p->max_delegation_depth < 0 || p->max_delegation_depth > AI_MAX_DEPTH)
        return ai_err_set(err, AI_EINVAL,
                          "maxDelegationDepth must be 0 to %d", AI_MAX_DEPTH);
    if (p->ttl_limit_days < 1 || p->ttl_limit_days > 3650)
        return ai_err_set(err, AI_EINVAL,
                          "the root TTL limit must be 1 to 3650 days");
    if (p->ttl_days < 1 || p->ttl_days > p->ttl_limit_days)
        return ai_err_set(err, AI_EINVAL, "ttlDays must be 1 to %d",
                          p->ttl_limit_days);
    if (p->max_ttl_days != 0 &&
        (p->max_ttl_days < p->ttl_days || p->max_ttl_days > p->ttl_limit_days))
        return ai_err_set(err, AI_EINVAL,
                          "maxTtlDays must be at least ttlDays (%d) and at "
                          "most %d",
                          p->ttl_days, p->ttl_limit_days);
    if ((t = token_alloc(4096)) == NULL)
        return oom(err);
    if ((rc = input_id(t, p->agent_id, "agentId", &t->agent_id, err)) ||
        (rc = input_scopes(t, p->scopes, p->nscopes, err)) ||
        (rc = token_new_id(t, err)))
        goto fail;
    if (p->constraints_json != NULL &&
        ((rc = input_constraints(t, p->constraints_json, &t->cons, &t->ncons,
                                 err)) ||
         (rc = own_budgets(t, err))))
        goto fail;
    if (p->identity_json != NULL &&
        (rc = input_identity(t, p->identity_json, &t->identity, err)))
        goto fail;
    if (p->federation_json != NULL) {
        if ((rc = input_federation(t, p->federation_json, &t->fed, err)))
            goto fail;
        t->has_fed = true;
    }
    if (p->capabilities_json != NULL) {
        if ((rc = input_caps(t, p->capabilities_json, &t->caps, err)))
            goto fail;
        t->has_caps = true;
    }
    t->delegatable = p->delegatable;
    t->max_depth = p->max_delegation_depth;
    t->depth = 0;
    t->expires_at = now_ms + p->ttl_days * MS_PER_DAY;
    t->max_expires_at =
        p->max_ttl_days ? now_ms + p->max_ttl_days * MS_PER_DAY : t->expires_at;
    if ((rc = token_sign(t, k, err)) != AI_OK)
        goto fail;
    *out = t;
    return AI_OK;
fail:
    ai_token_free(t);
    return rc;
}

/* ---- deep copies into another token's arena --------------------------- */

static char *cp_str(ai_token *t, const char *s)
{
    return s ? tk_strdup(t, s, strlen(s)) : NULL;
}

static bool cp_strs(ai_token *t, char *const *src, size_t n, char ***dst)
{
    *dst = tk_alloc(t, n * sizeof(char *));
    if (*dst == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (((*dst)[i] = cp_str(t, src[i])) == NULL)
            return false;
    return true;
}

/* Copy c with room for `extra` more budgets. */
static bool cp_constraint(ai_token *t, const tk_constraint *c,
                          tk_constraint *d, size_t extra)
{
    *d = *c;
    if ((d->key = cp_str(t, c->key)) == NULL)
        return false;
    if (c->has_res && !cp_strs(t, c->resources, c->nres, &d->resources))
        return false;
    d->budgets = tk_alloc(t, (c->nbudgets + extra) * sizeof *d->budgets);
    if (d->budgets == NULL)
        return false;
    for (size_t i = 0; i < c->nbudgets; i++) {
        d->budgets[i].max_uses = c->budgets[i].max_uses;
        if ((d->budgets[i].id = cp_str(t, c->budgets[i].id)) == NULL)
            return false;
    }
    return true;
}

static bool cp_federation(ai_token *t, const tk_federation *f,
                          tk_federation *d)
{
    *d = *f;
    if (f->origin != NULL && (d->origin = cp_str(t, f->origin)) == NULL)
        return false;
    return !f->has_systems || cp_strs(t, f->systems, f->nsystems, &d->systems);
}

static bool cp_caps(ai_token *t, const tk_caps *c, tk_caps *d)
{
    *d = *c;
    if (!c->has_custom)
        return true;
    d->custom = tk_alloc(t, c->ncustom * sizeof *d->custom);
    if (d->custom == NULL)
        return false;
    for (size_t i = 0; i < c->ncustom; i++) {
        d->custom[i].value = c->custom[i].value;
        if ((d->custom[i].name = cp_str(t, c->custom[i].name)) == NULL)
            return false;
    }
    return true;
}

/* ---- attenuation ------------------------------------------------------ */

/* Room for `more` further entries of t->narrowed. false: out of memory. */
static bool narrowed_reserve(ai_token *t, size_t more)
{
    char **a = tk_alloc(t, (t->nnarrowed + more) * sizeof *a);

    if (a == NULL)
        return false;
    if (t->nnarrowed > 0)
        memcpy(a, t->narrowed, t->nnarrowed * sizeof *a);
    t->narrowed = a;
    return true;
}

/* Append "obj.name" (or "obj.custom.name") to t->narrowed, within the room
 * narrowed_reserve made. false: out of memory. */
static bool narrowed_add(ai_token *t, const char *obj, const char *mid,
                         const char *name)
{
    size_t n = strlen(obj) + strlen(mid) + strlen(name) + 2;
    char *s = tk_alloc(t, n);

    if (s == NULL)
        return false;
    snprintf(s, n, "%s.%s%s", obj, mid, name);
    t->narrowed[t->nnarrowed++] = s;
    return true;
}

static bool fed_note(ai_token *t, bool cond, const char *name)
{
    return !cond || narrowed_add(t, "federation", "", name);
}

static ai_code narrow_federation(ai_token *t, const ai_token *parent,
                                 const char *json, ai_err *err)
{
    tk_federation rf;
    const tk_federation *pf = &parent->fed;
    tk_federation *f = &t->fed;
    ai_code rc;

    if (json == NULL) {
        if (!parent->has_fed)
            return AI_OK;
        t->has_fed = true;
        return cp_federation(t, pf, f) ? AI_OK : oom(err);
    }
    if ((rc = input_federation(t, json, &rf, err)) != AI_OK)
        return rc;
    t->has_fed = true;
    if (!parent->has_fed) {
        if (rf.cross == TB_TRUE)
            return ai_err_set(err, AI_EDENIED,
                              "federation.crossSystemAllowed not allowed by "
                              "parent token (it has no federation)");
        *f = rf;
        f->cross = TB_FALSE;
        return AI_OK;
    }
    if (!cp_federation(t, pf, f) || !narrowed_reserve(t, 5))
        return oom(err);
    /* What the request asked for and the parent's took away, in the
     * order the members are written (the origin and hop count requested
     * are replaced by the parent's). */
    if (!fed_note(t, rf.cross == TB_TRUE && pf->cross != TB_TRUE,
                  "crossSystemAllowed") ||
        !fed_note(t, rf.origin != NULL &&
                         (pf->origin == NULL ||
                          strcmp(rf.origin, pf->origin) != 0),
                  "originSystem") ||
        !fed_note(t, rf.has_hop && (!pf->has_hop || rf.hop != pf->hop),
                  "hopCount") ||
        !fed_note(t, rf.has_max_hops && pf->has_max_hops &&
                         rf.max_hops > pf->max_hops,
                  "maxHops") ||
        !fed_note(t, rf.further == TB_TRUE && pf->further == TB_FALSE,
                  "allowFurtherFederation"))
        return oom(err);
    f->cross = rf.cross != TB_FALSE && pf->cross == TB_TRUE ? TB_TRUE
                                                             : TB_FALSE;
    if (rf.further != TB_UNSET || pf->further != TB_UNSET)
        f->further = rf.further != TB_FALSE && pf->further != TB_FALSE
                         ? TB_TRUE
                         : TB_FALSE;
    if (rf.has_max_hops &&
        (!pf->has_max_hops || rf.max_hops < pf->max_hops)) {
        f->max_hops = rf.max_hops;
        f->has_max_hops = true;
    }
    if (rf.has_systems) {
        for (size_t i = 0; pf->has_systems && i < rf.nsystems; i++) {
            size_t j;
            for (j = 0; j < pf->nsystems; j++)
                if (strcmp(rf.systems[i], pf->systems[j]) == 0)
                    break;
            if (j == pf->nsystems)
                return ai_err_set(err, AI_EDENIED,
                                  "federation.allowedSystems \"%s\" not "
                                  "allowed by parent token",
                                  rf.systems[i]);
        }
        f->systems = rf.systems;
        f->nsystems = rf.nsystems;
        f->has_systems = true;
    }
    return AI_OK;
}

static ai_code narrow_caps(ai_token *t, const ai_token *parent,
                           const char *json, ai_err *err)
{
    tk_caps rc_, none;
    const tk_caps *pc = &parent->caps;
    tk_caps *c = &t->caps;
    ai_code rc;

    if (json == NULL) {
        if (!parent->has_caps)
            return AI_OK;
        t->has_caps = true;
        return cp_caps(t, pc, c) ? AI_OK : oom(err);
    }
    if ((rc = input_caps(t, json, &rc_, err)) != AI_OK)
        return rc;
    if (!parent->has_caps) {
        memset(&none, 0, sizeof none);
        none.visibility = -1;
        pc = &none;
    }
    t->has_caps = true;
    memset(c, 0, sizeof *c);
    if (!narrowed_reserve(t, TK_CAP_BOOLS + 1 + rc_.ncustom))
        return oom(err);
    for (int i = 0; i < TK_CAP_BOOLS; i++) {
        if (pc->b[i] != TB_UNSET) {
            if (rc_.b[i] == TB_TRUE && pc->b[i] != TB_TRUE &&
                !narrowed_add(t, "agentCapabilities", "", tk_cap_names[i]))
                return oom(err);
            c->b[i] = rc_.b[i] != TB_FALSE && pc->b[i] == TB_TRUE ? TB_TRUE
                                                                  : TB_FALSE;
        } else {
            if (rc_.b[i] == TB_TRUE)
                return ai_err_set(err, AI_EDENIED,
                                  "agentCapabilities.%s not granted by parent "
                                  "token",
                                  tk_cap_names[i]);
            c->b[i] = rc_.b[i];
        }
    }
    if (rc_.visibility >= 0 && pc->visibility > rc_.visibility &&
        !narrowed_add(t, "agentCapabilities", "", "visibility"))
        return oom(err);
    c->visibility = pc->visibility > rc_.visibility ? pc->visibility
                                                    : rc_.visibility;
    if (pc->has_custom || rc_.has_custom) {
        size_t n = pc->ncustom + rc_.ncustom, k = 0;
        c->custom = tk_alloc(t, n * sizeof *c->custom);
        if (c->custom == NULL)
            return oom(err);
        c->has_custom = true;
        for (size_t i = 0; i < pc->ncustom; i++) {
            bool v = pc->custom[i].value;
            for (size_t j = 0; j < rc_.ncustom; j++) {
                if (strcmp(rc_.custom[j].name, pc->custom[i].name) != 0)
                    continue;
                if (rc_.custom[j].value && !v &&
                    !narrowed_add(t, "agentCapabilities", "custom.",
                                  rc_.custom[j].name))
                    return oom(err);
                v = v && rc_.custom[j].value;
            }
            c->custom[k].value = v;
            if ((c->custom[k++].name = cp_str(t, pc->custom[i].name)) == NULL)
                return oom(err);
        }
        for (size_t j = 0; j < rc_.ncustom; j++) {
            size_t i;
            for (i = 0; i < pc->ncustom; i++)
                if (strcmp(rc_.custom[j].name, pc->custom[i].name) == 0)
                    break;
            if (i < pc->ncustom)
                continue;
            if (rc_.custom[j].value)
                return ai_err_set(err, AI_EDENIED,
                                  "agentCapabilities.custom.%s not granted by "
                                  "parent token",
                                  rc_.custom[j].name);
            c->custom[k++] = rc_.custom[j];
        }
        if (k > AI_LIST_MAX)
            return ai_err_set(err, AI_EDENIED,
                              "A child would carry more than %d custom "
                              "capabilities",
                              AI_LIST_MAX);
        c->ncustom = k;
    }
    return AI_OK;
}

/* Carry the parent's constraints that touch the child's scopes, then fold
 * in the requested ones, each of which may only narrow. */
static ai_code narrow_constraints(ai_token *t, const ai_token *parent,
                                  const char *json, ai_err *err)
{
    tk_constraint *req = NULL;
    size_t nreq = 0, n = 0;
    uint64_t budget = GLOB_DELEGATION_BUDGET; /* bounds the work below */
    ai_code rc;

    if (json != NULL &&
        (rc = input_constraints(t, json, &req, &nreq, err)) != AI_OK)
        return rc;
    t->cons = tk_alloc(t, (parent->ncons + nreq) * sizeof *t->cons);
    if (t->cons == NULL)
        return oom(err);
    for (size_t i = 0; i < parent->ncons; i++) {
        const tk_constraint *pc = &parent->cons[i];
        bool touches = false;
        for (size_t s = 0; s < t->nscopes && !touches; s++)
            touches = ai_scope_overlaps(pc->key, t->scopes[s]);
        if (!touches)
            continue;
        if (!cp_constraint(t, pc, &t->cons[n++], 1))
            return oom(err);
    }
    for (size_t r = 0; r < nreq; r++) {
        tk_constraint *rq = &req[r], *dst = NULL;
        bool inside = false;
        uint32_t cap = UINT32_MAX;

        for (size_t s = 0; s < t->nscopes && !inside; s++)
            inside = ai_scope_within(rq->key, t->scopes[s]);
        if (!inside)
            return ai_err_set(err, AI_EDENIED,
                              "Constraint \"%s\" is outside the delegated "
                              "scopes",
                              rq->key);
        for (size_t i = 0; i < parent->ncons; i++) {
            const tk_constraint *pc = &parent->cons[i];
            if (!ai_scope_overlaps(pc->key, rq->key))
                continue;
            for (size_t j = 0; pc->has_res && rq->has_res && j < rq->nres; j++) {
                int ok = 0;
                bool undecided = false;
                for (size_t k = 0; k < pc->nres && ok != 1; k++) {
                    ok = glob_within_budget(rq->resources[j], pc->resources[k],
                                            &budget);
                    if (ok == -2)
                        return oom(err);
                    undecided |= ok < 0;
                }
                if (ok != 1 && undecided)
                    return ai_err_set(err, AI_EDENIED,
                                      "Resource pattern \"%.80s\" for \"%s\" "
                                      "is too complex to check against the "
                                      "parent token's",
                                      rq->resources[j], rq->key);
                if (ok != 1)
                    return ai_err_set(err, AI_EDENIED,
                                      "Resource pattern \"%.80s\" for \"%s\" "
                                      "not allowed by parent token",
                                      rq->resources[j], rq->key);
            }
            if (pc->has_nb && (!rq->has_nb || pc->nb > rq->nb))
                rq->nb = pc->nb, rq->has_nb = true;
            if (pc->has_na && (!rq->has_na || pc->na < rq->na))
                rq->na = pc->na, rq->has_na = true;
            if (pc->has_max && pc->max_uses < cap)
                cap = pc->max_uses;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(t->cons[i].key, rq->key) == 0)
                dst = &t->cons[i];
        if (dst == NULL) {
            dst = &t->cons[n++];
            memset(dst, 0, sizeof *dst);
            dst->key = rq->key;
            dst->budgets = tk_alloc(t, sizeof *dst->budgets);
            if (dst->budgets == NULL)
                return oom(err);
        }
        if (rq->has_res) {
            dst->resources = rq->resources;
            dst->nres = rq->nres;
            dst->has_res = true;
        }
        if (rq->has_nb && (!dst->has_nb || rq->nb > dst->nb))
            dst->nb = rq->nb, dst->has_nb = true;
        if (rq->has_na && (!dst->has_na || rq->na < dst->na))
            dst->na = rq->na, dst->has_na = true;
        if (rq->has_max) {
            uint32_t own = rq->max_uses < cap ? rq->max_uses : cap;
            if (dst->nbudgets == AI_BUDGETS_MAX)
                return ai_err_set(err, AI_EDENIED,
                                  "Constraint \"%s\" has too many nested use "
                                  "budgets",
                                  rq->key);
            dst->budgets[dst->nbudgets].max_uses = own;
            if ((dst->budgets[dst->nbudgets].id = budget_id(t, rq->key)) == NULL)
                return oom(err);
            dst->nbudgets++;
            dst->has_budgets = true;
            dst->has_max = true;
            dst->max_uses = own;
            for (size_t b = 0; b < dst->nbudgets; b++)
                if (dst->budgets[b].max_uses < dst->max_uses)
                    dst->max_uses = dst->budgets[b].max_uses;
        }
        if (dst->has_nb && dst->has_na && dst->nb > dst->na)
            return ai_err_set(err, AI_EDENIED,
                              "Constraint \"%s\" would never be valid "
                              "(notBefore after notAfter)",
                              rq->key);
    }
    if (n > AI_LIST_MAX)
        return ai_err_set(err, AI_EDENIED,
                          "A child would carry more than %d constraints",
                          AI_LIST_MAX);
    t->ncons = n;
    return AI_OK;
}

/* A child's ancestors and ancestorAgents (DESIGN §2, §8): the parent's
 * lists with the parent appended. ancestors names only the ancestors with
 * a tokenId; ancestorAgents names every ancestor, so revoking any
 * ancestor's agent reaches the child whatever minted the tokens between.
 * A parent without ancestorAgents (a Node.js token) names one ancestor of
 * its own, in parentId: it is kept. So the list holds at most one entry a
 * level, as many as the child's depth for a line minted here. false: out
 * of memory. */
static bool lineage(ai_token *t, const ai_token *p)
{
    size_t i, n = p->nanc_agents;
    bool from_parent_id = n == 0 && p->parent_id != NULL && p->depth >= 1;

    t->ancestors = tk_alloc(t, (p->nanc + 1) * sizeof(char *));
    t->ancestor_agents = tk_alloc(t, (n + 2) * sizeof(char *));
    if (t->ancestors == NULL || t->ancestor_agents == NULL)
        return false;
    for (i = 0; i < p->nanc; i++)
        if ((t->ancestors[i] = cp_str(t, p->ancestors[i])) == NULL)
            return false;
    if (p->token_id != NULL &&
        (t->ancestors[i++] = cp_str(t, p->token_id)) == NULL)
        return false;
    t->nanc = i;
    for (i = 0; i < n; i++)
        if ((t->ancestor_agents[i] = cp_str(t, p->ancestor_agents[i])) == NULL)
            return false;
    if (from_parent_id &&
        (t->ancestor_agents[i++] = cp_str(t, p->parent_id)) == NULL)
        return false;
    if ((t->ancestor_agents[i++] = cp_str(t, p->agent_id)) == NULL)
        return false;
    t->nanc_agents = i;
    return true;
}

static ai_code usable_parent(const ai_token *p, int64_t now_ms, ai_err *err)
{
    char when[AI_TIME_BUF];

    if (p == NULL)
        return ai_err_set(err, AI_EINVAL, "no parent token");
    if (!p->verified)
        return ai_err_set(err, AI_EINVAL, "token has not been verified");
    if (now_ms >= p->expires_at) {
        ai_time_format(p->expires_at, when);
        return ai_err_set(err, AI_EEXPIRED, "token expired at %s", when);
    }
    return AI_OK;
}

ai_code ai_token_delegate(const ai_keyring *keys, const ai_token *parent,
                          const ai_delegation *req, int64_t now_ms,
                          ai_token **out, ai_err *err)
{
    const key_entry *k;
    ai_token *t = NULL;
    ai_code rc;
    int64_t exp;

    ai_err_clear(err); /* callers need not zero it */

    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *out = NULL;
    if (req == NULL)
        return ai_err_set(err, AI_EINVAL, "no delegation request");
    if ((rc = usable_parent(parent, now_ms, err)) != AI_OK)
        return rc;
    if ((k = keyring_signing(keys, now_ms)) == NULL)
        return ai_err_set(err, AI_EINVAL, "no usable signing key");
    if (!parent->delegatable)
        return ai_err_set(err, AI_EDENIED, "Parent token is not delegatable");
    if (parent->depth >= parent->max_depth)
        return ai_err_set(err, AI_EDENIED, "Delegation depth exceeded: %d >= %d",
                          parent->depth, parent->max_depth);
    if (req->ttl_minutes < 1 || req->ttl_minutes > 5256000)
        return ai_err_set(err, AI_EINVAL, "ttlMinutes must be 1 to 5256000");
    if ((t = token_alloc(4096)) == NULL)
        return oom(err);
    if ((rc = input_scopes(t, req->scopes, req->nscopes, err)) != AI_OK)
        goto fail;
    for (size_t i = 0; i < t->nscopes; i++) {
        bool ok = false;
        for (size_t j = 0; j < parent->nscopes && !ok; j++)
            ok = ai_scope_within(t->scopes[i], parent->scopes[j]);
        if (!ok) {
            rc = ai_err_set(err, AI_EDENIED,
                            "Scope \"%s\" not allowed by parent token",
                            t->scopes[i]);
            goto fail;
        }
    }
    if ((rc = token_new_id(t, err)) != AI_OK)
        goto fail;
    if (req->agent_id != NULL) {
        if ((rc = input_id(t, req->agent_id, "agentId", &t->agent_id, err)))
            goto fail;
    } else {
        unsigned char r[4];
        if (!rand_fill(r, sizeof r)) {
            rc = ai_err_set(err, AI_EINTERNAL, "random generator failed");
            goto fail;
        }
        if ((t->agent_id = tk_alloc(t, 15)) == NULL)
            goto nomem;
        snprintf(t->agent_id, 15, "agent-%02x%02x%02x%02x", r[0], r[1], r[2],
                 r[3]);
    }
    if ((t->parent_id = cp_str(t, parent->agent_id)) == NULL)
        goto nomem;
    if ((rc = narrow_constraints(t, parent, req->constraints_json, err)) ||
        (rc = narrow_federation(t, parent, req->federation_json, err)) ||
        (rc = narrow_caps(t, parent, req->capabilities_json, err)))
        goto fail;
    if (req->inherit_identity && parent->identity != NULL &&
        (t->identity = cp_str(t, parent->identity)) == NULL)
        goto nomem;
    t->delegatable = req->delegatable && parent->delegatable;
    t->max_depth = parent->max_depth;
    t->depth = parent->depth + 1;
    exp = now_ms + req->ttl_minutes * MS_PER_MIN;
    t->expires_at = exp < parent->expires_at ? exp : parent->expires_at;
    t->max_expires_at = parent->max_expires_at;
    if (!lineage(t, parent))
        goto nomem;
    if ((rc = token_sign(t, k, err)) != AI_OK)
        goto fail;
    *out = t;
    return AI_OK;
nomem:
    rc = oom(err);
fail:
    ai_token_free(t);
    return rc;
}

ai_code ai_token_refresh(const ai_keyring *keys, const ai_token *tok,
                         int ttl_minutes, int64_t now_ms, ai_token **out,
                         ai_err *err)
{
    const key_entry *k;
    ai_token *t;
    ai_code rc;
    bool may = false;
    int64_t exp, remaining;

    ai_err_clear(err); /* callers need not zero it */

    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *out = NULL;
    if ((rc = usable_parent(tok, now_ms, err)) != AI_OK)
        return rc;
    if ((k = keyring_signing(keys, now_ms)) == NULL)
        return ai_err_set(err, AI_EINVAL, "no usable signing key");
    for (size_t i = 0; i < tok->nscopes && !may; i++)
        may = ai_scope_matches(tok->scopes[i], "system:token:refresh");
    if (!may)
        return ai_err_set(err, AI_EDENIED,
                          "Token does not have system:token:refresh scope");
    /* Its constraints on system:token:refresh apply as to any scope. */
    if ((rc = ai_token_check(tok, "system:token:refresh", "", now_ms, err)) !=
        AI_OK)
        return rc;
    if (tok->max_expires_at == 0)
        return ai_err_set(err, AI_EDENIED,
                          "Token has no maxExpiresAt and cannot be refreshed");
    if (now_ms >= tok->max_expires_at)
        return ai_err_set(err, AI_EEXPIRED,
                          "Token is past its maxExpiresAt");
    if (ttl_minutes < 0 || ttl_minutes > 5256000)
        return ai_err_set(err, AI_EINVAL, "ttlMinutes must be 1 to 5256000");
    if ((t = token_alloc(4096)) == NULL)
        return oom(err);
    if ((t->agent_id = cp_str(t, tok->agent_id)) == NULL ||
        (tok->parent_id && (t->parent_id = cp_str(t, tok->parent_id)) == NULL) ||
        !cp_strs(t, tok->scopes, tok->nscopes, &t->scopes) ||
        (t->cons = tk_alloc(t, tok->ncons * sizeof *t->cons)) == NULL ||
        (tok->identity && (t->identity = cp_str(t, tok->identity)) == NULL) ||
        (tok->has_fed && !cp_federation(t, &tok->fed, &t->fed)) ||
        (tok->has_caps && !cp_caps(t, &tok->caps, &t->caps)) ||
        !cp_strs(t, tok->ancestors, tok->nanc, &t->ancestors) ||
        !cp_strs(t, tok->ancestor_agents, tok->nanc_agents,
                 &t->ancestor_agents))
        goto nomem;
    for (size_t i = 0; i < tok->ncons; i++)
        if (!cp_constraint(t, &tok->cons[i], &t->cons[i], 0))
            goto nomem;
    t->nscopes = tok->nscopes;
    t->ncons = tok->ncons;
    t->nanc = tok->nanc;
    t->nanc_agents = tok->nanc_agents;
    t->has_fed = tok->has_fed;
    t->has_caps = tok->has_caps;
    t->delegatable = tok->delegatable;
    t->max_depth = tok->max_depth;
    t->depth = tok->depth;
    t->max_expires_at = tok->max_expires_at;
    /* A Node.js token has no tokenId: it gets one, as every token signed
     * here must (its budgets keep their signature-based ids). */
    if (tok->token_id != NULL) {
        if ((t->token_id = cp_str(t, tok->token_id)) == NULL)
            goto nomem;
    } else if ((rc = token_new_id(t, err)) != AI_OK) {
        goto fail;
    }
    remaining = tok->expires_at - now_ms;
    exp = ttl_minutes > 0
              ? now_ms + ttl_minutes * MS_PER_MIN
              : now_ms + (remaining > 60 * MS_PER_MIN ? remaining
                                                      : 60 * MS_PER_MIN);
    t->expires_at = exp < t->max_expires_at ? exp : t->max_expires_at;
    if ((rc = token_sign(t, k, err)) != AI_OK)
        goto fail;
    *out = t;
    return AI_OK;
nomem:
    rc = oom(err);
fail:
    ai_token_free(t);
    return rc;
}
