/* codec.c - the token's JSON: the strict schema decoder for signed bytes
 * and the writer that produces the exact bytes that are signed (field
 * order of DESIGN §2, JSON.stringify escaping). */
#include <stdio.h>
#include <string.h>

#include "core.h"

/* ---- decoding --------------------------------------------------------- */

enum {
    F_AGENT = 1 << 0, F_PARENT = 1 << 1, F_SCOPES = 1 << 2,
    F_CONS = 1 << 3, F_DELEG = 1 << 4, F_MAXD = 1 << 5, F_DEPTH = 1 << 6,
    F_EXP = 1 << 7, F_MAXEXP = 1 << 8, F_IDENT = 1 << 9, F_FED = 1 << 10,
    F_CAPS = 1 << 11, F_TID = 1 << 12, F_ANC = 1 << 13, F_KV = 1 << 14,
    F_SIG = 1 << 15, F_ANCA = 1 << 16
};

#define REQUIRED (F_AGENT | F_SCOPES | F_CONS | F_DELEG | F_MAXD | F_DEPTH)

#define is_b64url b64url_valid

static bool read_time(jr *r, int64_t *ms)
{
    char *s;
    size_t n;

    if (!jr_string(r, &s, &n))
        return false;
    if (!time_parse(s, n, ms))
        return jr_fail(r, "timestamp is not RFC 3339");
    return true;
}

/* Scope rules for a string just read. One without escapes or non-ASCII
 * bytes (r->esc unset) holds no byte below 0x20; DEL may still be there. */
static bool scope_ok(const jr *r, const char *s, size_t n)
{
    return r->esc ? scope_valid(s, n) : memchr(s, 0x7f, n) == NULL;
}

/* Skip the value of member k, not one of the object's known members; k
 * seen before in the same object (seen[0..*n)) is a duplicate. */
static bool skip_unknown(jr *r, char **seen, size_t *n, size_t max, char *k)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(seen[i], k) == 0)
            return jr_fail(r, "duplicate key in JSON object");
    if (*n == max)
        return jr_fail(r, "too many unknown fields");
    seen[(*n)++] = k;
    return jr_skip(r);
}

/* An array of strings, each 1..maxlen bytes (scope rules when scope);
 * not_array: the message when the value is of another type. */
static bool read_strings(jr *r, ai_token *t, char ***out, size_t *nout,
                         size_t maxn, size_t maxlen, bool scope,
                         const char *what, const char *not_array)
{
    char *tmp[AI_LIST_MAX];
    size_t n = 0;

    if (!jr_peek(r, '['))
        return jr_fail(r, not_array);
    if (!jr_lit(r, '['))
        return jr_fail(r, what);
    if (jr_peek(r, ']')) {
        r->p++;
    } else {
        for (;;) {
            char *s;
            size_t len;
            if (n == maxn)
                return jr_fail(r, "too many list entries");
            r->esc = false;
            if (!jr_string(r, &s, &len))
                return false;
            if (len == 0 || len > maxlen ||
                (scope && !scope_ok(r, s, len)))
                return jr_fail(r, what);
            tmp[n++] = s;
            if (jr_peek(r, ',')) {
                r->p++;
                continue;
            }
            if (!jr_lit(r, ']'))
                return false;
            break;
        }
    }
    *out = tk_alloc(t, n * sizeof(char *));
    if (*out == NULL)
        return jr_fail(r, "out of memory");
    memcpy(*out, tmp, n * sizeof(char *));
    *nout = n;
    return true;
}

static bool key_is(const char *k, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(k, lit, n) == 0;
}

/* Iterate over the members of an object: call with *first = true. */
static bool next_member(jr *r, bool *first, char **k, size_t *n, bool *done)
{
    if (*first) {
        if (!jr_lit(r, '{'))
            return false;
        *first = false;
        if (jr_peek(r, '}')) {
            r->p++;
            *done = true;
            return true;
        }
    } else {
        if (jr_peek(r, ',')) {
            r->p++;
        } else {
            if (!jr_lit(r, '}'))
                return false;
            *done = true;
            return true;
        }
    }
    *done = false;
    if (!jr_string(r, k, n))
        return false;
    return jr_lit(r, ':');
}

static bool read_budgets(jr *r, ai_token *t, tk_constraint *c)
{
    tk_budget tmp[AI_BUDGETS_MAX];
    size_t n = 0;

    if (!jr_lit(r, '['))
        return false;
    if (jr_peek(r, ']')) {
        r->p++;
    } else {
        for (;;) {
            bool first = true, done, have_id = false, have_max = false;
            char *k;
            size_t kn;
            if (n == AI_BUDGETS_MAX)
                return jr_fail(r, "too many budgets");
            for (;;) {
                if (!next_member(r, &first, &k, &kn, &done))
                    return false;
                if (done)
                    break;
                if (key_is(k, kn, "id") && !have_id) {
                    size_t len;
                    if (!jr_string(r, &tmp[n].id, &len))
                        return false;
                    if (len == 0 || len > 200)
                        return jr_fail(r, "bad budget id");
                    have_id = true;
                } else if (key_is(k, kn, "maxUses") && !have_max) {
                    int64_t v;
                    if (!jr_int(r, 1, INT64_C(1) << 31, &v))
                        return false;
                    tmp[n].max_uses = (uint32_t)v;
                    have_max = true;
                } else {
                    return jr_fail(r, "bad budget entry");
                }
            }
            if (!have_id || !have_max)
                return jr_fail(r, "bad budget entry");
            n++;
            if (jr_peek(r, ',')) {
                r->p++;
                continue;
            }
            if (!jr_lit(r, ']'))
                return false;
            break;
        }
    }
    c->budgets = tk_alloc(t, n * sizeof *c->budgets);
    if (c->budgets == NULL)
        return jr_fail(r, "out of memory");
    memcpy(c->budgets, tmp, n * sizeof *tmp);
    c->nbudgets = n;
    c->has_budgets = true;
    return true;
}

static bool read_constraint(jr *r, ai_token *t, tk_constraint *c)
{
    bool first = true, done;
    char *k;
    size_t n;
    unsigned seen = 0;

    if (!jr_peek(r, '{'))
        return jr_fail(r, "a constraint must be an object "
                          "({\"resources\":[...],\"maxUses\":N})");
    for (;;) {
        unsigned bit;
        if (!next_member(r, &first, &k, &n, &done))
            return false;
        if (done)
            break;
        if (key_is(k, n, "resources")) {
            bit = 1;
            if (!(seen & bit) &&
                !read_strings(r, t, &c->resources, &c->nres, AI_LIST_MAX,
                              AI_PATTERN_MAX, false, "bad resources list",
                              "\"resources\" must be an array of strings "
                              "(\"resources\":[\"myorg/*\"])"))
                return false;
            c->has_res = true;
        } else if (key_is(k, n, "notBefore")) {
            bit = 2;
            if (!(seen & bit) && !read_time(r, &c->nb))
                return false;
            c->has_nb = true;
        } else if (key_is(k, n, "notAfter")) {
            bit = 4;
            if (!(seen & bit) && !read_time(r, &c->na))
                return false;
            c->has_na = true;
        } else if (key_is(k, n, "maxUses")) {
            int64_t v = 0;
            bit = 8;
            if (seen & bit)
                return jr_fail(r, "duplicate key in JSON object");
            jr_ws(r);
            if (r->p >= r->end ||
                (*r->p != '-' && (*r->p < '0' || *r->p > '9')))
                return jr_fail(r, "\"maxUses\" must be a whole number "
                                  "from 1 to 2147483648");
            if (!jr_int(r, 1, INT64_C(1) << 31, &v))
                return false;
            c->max_uses = (uint32_t)v;
            c->has_max = true;
        } else if (key_is(k, n, "budgets")) {
            bit = 16;
            /* The broker computes budgets: a requested one is ignored. */
            if (!(seen & bit) && !(r->input ? jr_skip(r) : read_budgets(r, t, c)))
                return false;
        } else {
            return jr_fail(r, "unknown field in constraint");
        }
        if (seen & bit)
            return jr_fail(r, "duplicate key in JSON object");
        seen |= bit;
    }
    if (c->has_budgets && !c->has_max)
        return jr_fail(r, "budgets without maxUses");
    if (c->has_budgets) {
        /* maxUses is the smallest budget: anything else (or no budget at
         * all) would let uses go uncounted, so it is refused. */
        uint32_t least = UINT32_MAX;
        for (size_t i = 0; i < c->nbudgets; i++)
            if (c->budgets[i].max_uses < least)
                least = c->budgets[i].max_uses;
        if (c->nbudgets == 0 || least != c->max_uses)
            return jr_fail(r, "maxUses does not match its budgets");
    }
    if (c->has_nb && c->has_na && c->nb > c->na)
        return jr_fail(r, "notBefore is after notAfter");
    return true;
}

bool codec_read_constraints(jr *r, ai_token *t, tk_constraint **out,
                            size_t *nout)
{
    tk_constraint tmp[AI_LIST_MAX];
    bool first = true, done;
    char *k;
    size_t n, count = 0;

    for (;;) {
        r->esc = false;
        if (!next_member(r, &first, &k, &n, &done))
            return false;
        if (done)
            break;
        if (count == AI_LIST_MAX)
            return jr_fail(r, "too many constraints");
        memset(&tmp[count], 0, sizeof tmp[count]);
        if (n == 0 || n > AI_SCOPE_MAX || !scope_ok(r, k, n))
            return jr_fail(r, "bad constraint key");
        for (size_t i = 0; i < count; i++)
            if (strcmp(tmp[i].key, k) == 0)
                return jr_fail(r, "duplicate key in JSON object");
        tmp[count].key = k;
        if (!read_constraint(r, t, &tmp[count]))
            return false;
        count++;
    }
    *out = tk_alloc(t, count * sizeof **out);
    if (*out == NULL)
        return jr_fail(r, "out of memory");
    memcpy(*out, tmp, count * sizeof *tmp);
    *nout = count;
    return true;
}

static bool read_tb(jr *r, uint8_t *v)
{
    bool b;

    if (!jr_bool(r, &b))
        return false;
    *v = b ? TB_TRUE : TB_FALSE;
    return true;
}

bool codec_read_federation(jr *r, ai_token *t, tk_federation *f)
{
    bool first = true, done;
    char *k;
    size_t n;
    unsigned seen = 0;
    char *unknown[32];
    size_t nunknown = 0;

    for (;;) {
        unsigned bit;
        int64_t v;
        if (!next_member(r, &first, &k, &n, &done))
            return false;
        if (done)
            return true;
        if (key_is(k, n, "crossSystemAllowed")) {
            bit = 1;
            if (!read_tb(r, &f->cross))
                return false;
        } else if (key_is(k, n, "allowedSystems")) {
            bit = 2;
            if ((seen & bit) ||
                !read_strings(r, t, &f->systems, &f->nsystems, AI_LIST_MAX,
                              AI_ID_MAX, false, "bad allowedSystems",
                              "\"allowedSystems\" must be an array of "
                              "strings"))
                return jr_fail(r, "bad federation");
            f->has_systems = true;
        } else if (key_is(k, n, "originSystem")) {
            size_t len;
            bit = 4;
            if (!jr_string(r, &f->origin, &len) || len == 0 ||
                len > AI_ID_MAX)
                return jr_fail(r, "bad originSystem");
        } else if (key_is(k, n, "hopCount")) {
            bit = 8;
            if (!jr_int(r, 0, 255, &v))
                return false;
            f->hop = (int)v, f->has_hop = true;
        } else if (key_is(k, n, "maxHops")) {
            bit = 16;
            if (!jr_int(r, 0, 255, &v))
                return false;
            f->max_hops = (int)v, f->has_max_hops = true;
        } else if (key_is(k, n, "allowFurtherFederation")) {
            bit = 32;
            if (!read_tb(r, &f->further))
                return false;
        } else {
            bit = 0;
            if (r->input)
                return jr_fail(r, "unknown federation field");
            if (!skip_unknown(r, unknown, &nunknown, 32, k))
                return false;
        }
        if (seen & bit)
            return jr_fail(r, "duplicate key in JSON object");
        seen |= bit;
    }
}

static bool read_custom(jr *r, ai_token *t, tk_caps *c)
{
    tk_custom tmp[AI_LIST_MAX];
    bool first = true, done;
    char *k;
    size_t n, count = 0;

    for (;;) {
        if (!next_member(r, &first, &k, &n, &done))
            return false;
        if (done)
            break;
        if (count == AI_LIST_MAX || n == 0 || n > AI_SCOPE_MAX)
            return jr_fail(r, "bad custom capabilities");
        for (size_t i = 0; i < count; i++)
            if (strcmp(tmp[i].name, k) == 0)
                return jr_fail(r, "duplicate key in JSON object");
        tmp[count].name = k;
        if (!jr_bool(r, &tmp[count].value))
            return false;
        count++;
    }
    c->custom = tk_alloc(t, count * sizeof *tmp);
    if (c->custom == NULL)
        return jr_fail(r, "out of memory");
    memcpy(c->custom, tmp, count * sizeof *tmp);
    c->ncustom = count;
    c->has_custom = true;
    return true;
}

bool codec_read_caps(jr *r, ai_token *t, tk_caps *c)
{
    bool first = true, done;
    char *k;
    size_t n;
    unsigned seen = 0;
    char *unknown[32];
    size_t nunknown = 0;

    for (;;) {
        unsigned bit = 0;
        int i;
        if (!next_member(r, &first, &k, &n, &done))
            return false;
        if (done)
            return true;
        for (i = 0; i < TK_CAP_BOOLS; i++)
            if (key_is(k, n, tk_cap_names[i]))
                break;
        if (i < TK_CAP_BOOLS) {
            bit = 1u << i;
            if (!read_tb(r, &c->b[i]))
                return false;
        } else if (key_is(k, n, "visibility")) {
            char *s;
            size_t len;
            bit = 1u << 8;
            if (!jr_string(r, &s, &len))
                return false;
            for (i = 0; i < 4; i++)
                if (strcmp(s, tk_visibility_names[i]) == 0)
                    break;
            if (i == 4)
                return jr_fail(r, "bad visibility");
            c->visibility = i;
        } else if (key_is(k, n, "custom")) {
            bit = 1u << 9;
            if ((seen & bit) || !read_custom(r, t, c))
                return jr_fail(r, "bad custom capabilities");
        } else if (r->input) {
            return jr_fail(r, "unknown capability (custom ones go in \"custom\")");
        } else if (!skip_unknown(r, unknown, &nunknown, 32, k)) {
            return false;
        }
        if (seen & bit)
            return jr_fail(r, "duplicate key in JSON object");
        seen |= bit;
    }
}

/* identity: an object; its known members of their types; kept as
 * canonical text since the broker only carries it. */
bool codec_read_identity(jr *r, ai_token *t, char **out)
{
    static const char *const strs[] = {"systemId", "principalId",
                                       "principalType", "tenantId",
                                       "organizationId"};
    jr probe;
    ai_buf b;
    bool first = true, done, ok;
    char *k;
    size_t n;

    /* Canonicalize a copy first; validate member types from the output,
     * which is plain compact JSON. */
    buf_init(&b);
    ok = jr_canon(r, &b) && !b.oom;
    if (!ok) {
        bool oom = b.oom; /* buf_free resets it */
        buf_free(&b);
        return jr_fail(r, oom ? "out of memory" : "bad identity");
    }
    *out = tk_strdup(t, b.p, b.len);
    buf_free(&b);
    if (*out == NULL)
        return jr_fail(r, "out of memory");
    /* Parse the canonical text (a scratch copy) for member types. */
    char *scratch = tk_strdup(t, *out, strlen(*out));
    if (scratch == NULL)
        return jr_fail(r, "out of memory");
    probe.p = scratch;
    probe.end = scratch + strlen(scratch);
    probe.depth = 0;
    probe.why = NULL;
    probe.input = false;
    probe.esc = false;
    for (;;) {
        size_t i;
        if (!next_member(&probe, &first, &k, &n, &done))
            return jr_fail(r, "identity must be an object");
        if (done)
            return true;
        for (i = 0; i < sizeof strs / sizeof *strs; i++)
            if (key_is(k, n, strs[i]))
                break;
        if (i < sizeof strs / sizeof *strs) {
            char *s;
            size_t len;
            if (!jr_string(&probe, &s, &len))
                return jr_fail(r, "identity member of the wrong type");
        } else if (key_is(k, n, "externalAuth") ||
                   key_is(k, n, "federatedFrom")) {
            if (!jr_peek(&probe, '{') || !jr_skip(&probe))
                return jr_fail(r, "identity member of the wrong type");
        } else if (!jr_skip(&probe)) {
            return jr_fail(r, "bad identity");
        }
    }
}

bool token_parse(ai_token *t, char *json, size_t len, const char **why)
{
    jr r = {json, json + len, 0, NULL, false, false};
    char *unknown[32];
    size_t nunknown = 0;
    unsigned seen = 0;
    bool first = true, done;
    char *k;
    size_t n;
    int64_t v;

    for (;;) {
        unsigned bit;
        if (!next_member(&r, &first, &k, &n, &done))
            goto bad;
        if (done)
            break;
        switch (n) {
        case 7:
            if (memcmp(k, "agentId", 7) == 0) {
                size_t l;
                bit = F_AGENT;
                if (!jr_string(&r, &t->agent_id, &l))
                    goto bad;
                if (l == 0 || l > AI_ID_MAX)
                    jr_fail(&r, "bad agentId");
                goto known;
            }
            if (memcmp(k, "tokenId", 7) == 0) {
                size_t l;
                bit = F_TID;
                if (!jr_string(&r, &t->token_id, &l))
                    goto bad;
                if (l != AI_TOKEN_ID_CHARS || !is_b64url(t->token_id, l))
                    jr_fail(&r, "bad tokenId");
                goto known;
            }
            break;
        case 8:
            if (memcmp(k, "parentId", 8) == 0) {
                size_t l;
                bit = F_PARENT;
                if (!jr_string(&r, &t->parent_id, &l))
                    goto bad;
                if (l == 0 || l > AI_ID_MAX)
                    jr_fail(&r, "bad parentId");
                goto known;
            }
            if (memcmp(k, "identity", 8) == 0) {
                bit = F_IDENT;
                if (seen & bit)
                    goto dup;
                if (!codec_read_identity(&r, t, &t->identity))
                    goto bad;
                goto known;
            }
            break;
        case 6:
            if (memcmp(k, "scopes", 6) == 0) {
                bit = F_SCOPES;
                if (seen & bit)
                    goto dup;
                if (!read_strings(&r, t, &t->scopes, &t->nscopes, AI_LIST_MAX,
                                  AI_SCOPE_MAX, true, "bad scopes list",
                                  "\"scopes\" must be an array of strings"))
                    goto bad;
                goto known;
            }
            break;
        case 11:
            if (memcmp(k, "constraints", 11) == 0) {
                bit = F_CONS;
                if (seen & bit)
                    goto dup;
                if (!codec_read_constraints(&r, t, &t->cons, &t->ncons))
                    goto bad;
                goto known;
            }
            if (memcmp(k, "delegatable", 11) == 0) {
                bit = F_DELEG;
                if (!jr_bool(&r, &t->delegatable))
                    goto bad;
                goto known;
            }
            break;
        case 18:
            if (memcmp(k, "maxDelegationDepth", 18) == 0) {
                bit = F_MAXD;
                if (!jr_int(&r, 0, AI_MAX_DEPTH, &v))
                    goto bad;
                t->max_depth = (int)v;
                goto known;
            }
            break;
        case 12:
            if (memcmp(k, "currentDepth", 12) == 0) {
                bit = F_DEPTH;
                if (!jr_int(&r, 0, AI_MAX_DEPTH, &v))
                    goto bad;
                t->depth = (int)v;
                goto known;
            }
            if (memcmp(k, "maxExpiresAt", 12) == 0) {
                bit = F_MAXEXP;
                if (!read_time(&r, &t->max_expires_at))
                    goto bad;
                goto known;
            }
            break;
        case 9:
            if (memcmp(k, "expiresAt", 9) == 0) {
                bit = F_EXP;
                if (!read_time(&r, &t->expires_at))
                    goto bad;
                goto known;
            }
            if (memcmp(k, "ancestors", 9) == 0) {
                bit = F_ANC;
                if (seen & bit)
                    goto dup;
                if (!read_strings(&r, t, &t->ancestors, &t->nanc,
                                  AI_MAX_DEPTH, AI_TOKEN_ID_CHARS, false,
                                  "bad ancestors list",
                                  "\"ancestors\" must be an array of strings"))
                    goto bad;
                for (size_t i = 0; i < t->nanc; i++)
                    if (strlen(t->ancestors[i]) != AI_TOKEN_ID_CHARS ||
                        !is_b64url(t->ancestors[i], AI_TOKEN_ID_CHARS))
                        jr_fail(&r, "bad ancestors list");
                goto known;
            }
            if (memcmp(k, "signature", 9) == 0) {
                char *s;
                size_t l;
                bit = F_SIG;
                if (!jr_string(&r, &s, &l))
                    goto bad;
                /* Its characters were checked with the token's shape: a
                 * second "signature" member would be a duplicate key. */
                if (l != 43)
                    jr_fail(&r, "bad signature field");
                else
                    memcpy(t->sig, s, 44);
                goto known;
            }
            break;
        case 10:
            if (memcmp(k, "federation", 10) == 0) {
                bit = F_FED;
                if (seen & bit)
                    goto dup;
                if (!codec_read_federation(&r, t, &t->fed))
                    goto bad;
                t->has_fed = true;
                goto known;
            }
            if (memcmp(k, "keyVersion", 10) == 0) {
                bit = F_KV;
                if (!jr_int(&r, 1, INT64_C(1) << 31, &v))
                    goto bad;
                t->key_version = (uint32_t)v;
                t->has_key_version = true;
                goto known;
            }
            break;
        case 14:
            if (memcmp(k, "ancestorAgents", 14) == 0) {
                bit = F_ANCA;
                if (seen & bit)
                    goto dup;
                /* agentIds, as agentId: 1..AI_ID_MAX bytes each */
                if (!read_strings(&r, t, &t->ancestor_agents, &t->nanc_agents,
                                  AI_MAX_DEPTH, AI_ID_MAX, false,
                                  "bad ancestorAgents list",
                                  "\"ancestorAgents\" must be an array of "
                                  "strings"))
                    goto bad;
                goto known;
            }
            break;
        case 17:
            if (memcmp(k, "agentCapabilities", 17) == 0) {
                bit = F_CAPS;
                if (seen & bit)
                    goto dup;
                if (!codec_read_caps(&r, t, &t->caps))
                    goto bad;
                t->has_caps = true;
                goto known;
            }
            break;
        default:
            break;
        }
        /* An unknown member: allowed when signed, never carried. */
        for (size_t i = 0; i < nunknown; i++)
            if (strcmp(unknown[i], k) == 0)
                goto dup;
        if (nunknown == sizeof unknown / sizeof *unknown) {
            jr_fail(&r, "too many unknown fields");
            goto bad;
        }
        unknown[nunknown++] = k;
        if (!jr_skip(&r))
            goto bad;
        continue;
    known:
        if (r.why != NULL)
            goto bad;
        if (seen & bit)
            goto dup;
        seen |= bit;
    }
    jr_ws(&r);
    if (r.p != r.end) {
        jr_fail(&r, "trailing bytes after JSON");
        goto bad;
    }
    if ((seen & REQUIRED) != REQUIRED) {
        jr_fail(&r, (seen & F_AGENT) == 0    ? "missing agentId"
                    : (seen & F_SCOPES) == 0 ? "missing scopes"
                    : (seen & F_CONS) == 0   ? "missing constraints"
                    : (seen & F_DELEG) == 0  ? "missing delegatable"
                                             : "missing delegation depth");
        goto bad;
    }
    if (t->depth > t->max_depth) {
        jr_fail(&r, "currentDepth exceeds maxDelegationDepth");
        goto bad;
    }
    /* Each ancestor is one level up: never more of them than the depth. */
    if (t->nanc_agents > (size_t)t->depth) {
        jr_fail(&r, "more ancestorAgents than currentDepth");
        goto bad;
    }
    if (!t->has_key_version)
        t->key_version = 1;
    /* maxUses without budgets (a Node.js token): one budget of this token
     * alone, named by its signature since it may lack a tokenId. */
    for (size_t i = 0; i < t->ncons; i++) {
        tk_constraint *c = &t->cons[i];
        if (!c->has_max || c->has_budgets)
            continue;
        c->budgets = tk_alloc(t, sizeof *c->budgets);
        if (c->budgets == NULL) {
            jr_fail(&r, "out of memory");
            goto bad;
        }
        size_t kl = strlen(c->key);
        c->budgets->id = tk_alloc(t, 44 + 1 + kl + 1);
        if (c->budgets->id == NULL) {
            jr_fail(&r, "out of memory");
            goto bad;
        }
        snprintf(c->budgets->id, 44 + 1 + kl + 1, "%s:%s",
                 (seen & F_SIG) ? t->sig : "unsigned", c->key);
        c->budgets->max_uses = c->max_uses;
        c->nbudgets = 1;
        c->has_budgets = true;
    }
    return true;
dup:
    jr_fail(&r, "duplicate key in JSON object");
bad:
    *why = r.why ? r.why : "malformed JSON";
    return false;
}

/* ---- writing ---------------------------------------------------------- */

static void write_strings(ai_buf *b, char *const *v, size_t n)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(b, ',');
        jw_str(b, v[i], strlen(v[i]));
    }
    buf_putc(b, ']');
}

void token_write_constraints(ai_buf *b, const ai_token *t)
{
    size_t i = t->ncons;
    bool any = false;

    /* in JavaScript's key order, as JSON.stringify in Node's verify */
    buf_putc(b, '{');
    while ((i = jw_js_next(t->cons, t->ncons, sizeof *t->cons,
                           offsetof(tk_constraint, key), i)) < t->ncons) {
        const tk_constraint *c = &t->cons[i];
        bool first = true;
        if (any)
            buf_putc(b, ',');
        any = true;
        jw_str(b, c->key, strlen(c->key));
        buf_put(b, ":{", 2);
        if (c->has_res) {
            jw_key(b, "resources", first), first = false;
            write_strings(b, c->resources, c->nres);
        }
        if (c->has_nb) {
            jw_key(b, "notBefore", first), first = false;
            jw_time(b, c->nb);
        }
        if (c->has_na) {
            jw_key(b, "notAfter", first), first = false;
            jw_time(b, c->na);
        }
        if (c->has_max) {
            jw_key(b, "maxUses", first), first = false;
            buf_put_u64(b, c->max_uses);
        }
        if (c->has_budgets) {
            jw_key(b, "budgets", first);
            buf_putc(b, '[');
            for (size_t j = 0; j < c->nbudgets; j++) {
                if (j)
                    buf_putc(b, ',');
                buf_puts(b, "{\"id\":");
                jw_str(b, c->budgets[j].id, strlen(c->budgets[j].id));
                buf_puts(b, ",\"maxUses\":");
                buf_put_u64(b, c->budgets[j].max_uses);
                buf_putc(b, '}');
            }
            buf_putc(b, ']');
        }
        buf_putc(b, '}');
    }
    buf_putc(b, '}');
}

static void write_tb(ai_buf *b, const char *k, uint8_t v, bool *first)
{
    if (v == TB_UNSET)
        return;
    jw_key(b, k, *first);
    *first = false;
    buf_puts(b, v == TB_TRUE ? "true" : "false");
}

void token_write_federation(ai_buf *b, const tk_federation *f)
{
    bool first = false;

    /* crossSystemAllowed is required by the type: unset is written false */
    buf_puts(b, "{\"crossSystemAllowed\":");
    buf_puts(b, f->cross == TB_TRUE ? "true" : "false");
    if (f->has_systems) {
        jw_key(b, "allowedSystems", first);
        write_strings(b, f->systems, f->nsystems);
    }
    if (f->origin != NULL) {
        jw_key(b, "originSystem", first);
        jw_str(b, f->origin, strlen(f->origin));
    }
    if (f->has_hop) {
        jw_key(b, "hopCount", first);
        buf_put_u64(b, (uint64_t)f->hop);
    }
    if (f->has_max_hops) {
        jw_key(b, "maxHops", first);
        buf_put_u64(b, (uint64_t)f->max_hops);
    }
    write_tb(b, "allowFurtherFederation", f->further, &first);
    buf_putc(b, '}');
}

void token_write_caps(ai_buf *b, const tk_caps *c)
{
    bool first = true;

    buf_putc(b, '{');
    for (int i = 0; i < TK_CAP_BOOLS; i++)
        write_tb(b, tk_cap_names[i], c->b[i], &first);
    if (c->visibility >= 0) {
        jw_key(b, "visibility", first), first = false;
        jw_str(b, tk_visibility_names[c->visibility],
               strlen(tk_visibility_names[c->visibility]));
    }
    if (c->has_custom) {
        size_t i = c->ncustom;
        bool any = false;
        jw_key(b, "custom", first);
        buf_putc(b, '{');
        /* in JavaScript's key order, as JSON.stringify in Node's verify */
        while ((i = jw_js_next(c->custom, c->ncustom, sizeof *c->custom,
                               offsetof(tk_custom, name), i)) < c->ncustom) {
            if (any)
                buf_putc(b, ',');
            any = true;
            jw_str(b, c->custom[i].name, strlen(c->custom[i].name));
            buf_puts(b, c->custom[i].value ? ":true" : ":false");
        }
        buf_putc(b, '}');
    }
    buf_putc(b, '}');
}

static void write_body(ai_buf *b, const ai_token *t)
{
    buf_puts(b, "{\"agentId\":");
    jw_str(b, t->agent_id, strlen(t->agent_id));
    if (t->parent_id != NULL) {
        jw_key(b, "parentId", false);
        jw_str(b, t->parent_id, strlen(t->parent_id));
    }
    jw_key(b, "scopes", false);
    write_strings(b, t->scopes, t->nscopes);
    jw_key(b, "constraints", false);
    token_write_constraints(b, t);
    jw_key(b, "delegatable", false);
    buf_puts(b, t->delegatable ? "true" : "false");
    jw_key(b, "maxDelegationDepth", false);
    buf_put_u64(b, (uint64_t)t->max_depth);
    jw_key(b, "currentDepth", false);
    buf_put_u64(b, (uint64_t)t->depth);
    jw_key(b, "expiresAt", false);
    jw_time(b, t->expires_at);
    if (t->max_expires_at != 0) {
        jw_key(b, "maxExpiresAt", false);
        jw_time(b, t->max_expires_at);
    }
    if (t->identity != NULL) {
        jw_key(b, "identity", false);
        buf_puts(b, t->identity);
    }
    if (t->has_fed) {
        jw_key(b, "federation", false);
        token_write_federation(b, &t->fed);
    }
    if (t->has_caps) {
        jw_key(b, "agentCapabilities", false);
        token_write_caps(b, &t->caps);
    }
    jw_key(b, "tokenId", false);
    jw_str(b, t->token_id, strlen(t->token_id));
    if (t->nanc > 0) {
        jw_key(b, "ancestors", false);
        write_strings(b, t->ancestors, t->nanc);
    }
    if (t->nanc_agents > 0) {
        jw_key(b, "ancestorAgents", false);
        write_strings(b, t->ancestor_agents, t->nanc_agents);
    }
    jw_key(b, "keyVersion", false);
    buf_put_u64(b, t->key_version);
    buf_putc(b, '}');
}

ai_code token_sign(ai_token *t, const key_entry *k, ai_err *err)
{
    ai_buf b;
    unsigned char mac[32];
    size_t wl;
    ai_code rc = AI_ENOMEM;

    t->key_version = k->version;
    t->has_key_version = true;
    buf_init(&b);
    write_body(&b, t);
    if (b.oom)
        goto done;
    key_hmac2(k, b.p, b.len, NULL, 0, mac);
    b64url_encode(mac, sizeof mac, t->sig);
    explicit_bzero(mac, sizeof mac);
    /* J' = J with ,"signature":"..." as its last member */
    b.len--;
    buf_puts(&b, ",\"signature\":\"");
    buf_put(&b, t->sig, 43);
    buf_put(&b, "\"}", 2);
    if (b.oom)
        goto done;
    if (b.len > AI_TOKEN_JSON_MAX) {
        rc = ai_err_set(err, AI_EINVAL,
                        "token would exceed %d bytes of JSON",
                        AI_TOKEN_JSON_MAX);
        goto out;
    }
    t->json = tk_strdup(t, b.p, b.len);
    wl = b64url_encoded_len(b.len);
    t->wire = tk_alloc(t, wl + 1);
    if (t->json == NULL || t->wire == NULL)
        goto done;
    t->json_len = b.len;
    b64url_encode((const unsigned char *)b.p, b.len, t->wire);
    t->wire_len = wl;
    t->verified = true;
    rc = AI_OK;
    goto out;
done:
    rc = ai_err_set(err, AI_ENOMEM, "out of memory");
out:
    buf_free(&b);
    return rc;
}
