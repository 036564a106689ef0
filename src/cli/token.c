/* token.c - `agent-iam token create-root|delegate|verify|show|check|
 * refresh` on the local home, through the broker, or with --leader-url on
 * a running server: create-root through the admin API (the admin auth
 * token), verify, check, delegate and refresh through the agent API of a
 * leader or a follower (the token itself as the bearer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "core/core.h"

#define MAX_SCOPES AI_LIST_MAX

/* "a,b, c" into scopes[] (pointers into buf); false on an empty entry. */
static bool split(char *buf, const char **scopes, size_t *n)
{
    *n = 0;
    for (char *p = buf;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        while (*p == ' ')
            p++;
        for (char *e = p + strlen(p); e > p && e[-1] == ' ';)
            *--e = '\0';
        if (*p == '\0' || *n == MAX_SCOPES)
            return false;
        scopes[(*n)++] = p;
        if (comma == NULL)
            return true;
        p = comma + 1;
    }
}

/* --scopes "a,b, c" into scopes[], pointing into *buf (a copy of the
 * text: the caller frees it; NULL on error). */
static int split_scopes(const char *usage, const char *text, char **buf,
                        const char **scopes, size_t *n)
{
    if ((*buf = strdup(text)) == NULL)
        return cli_failf("out of memory");
    if (!split(*buf, scopes, n)) {
        free(*buf);
        *buf = NULL;
        return cli_usage(usage, "--scopes is a comma-separated list of 1 to "
                                "%d scopes",
                         MAX_SCOPES);
    }
    return CLI_OK;
}

/* The scopes as a JSON array of strings; NULL on out of memory. */
static json_t *scope_array(const char *const *scopes, size_t n)
{
    json_t *arr = json_array();
    bool ok = arr != NULL;

    for (size_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(arr, json_string(scopes[i])) == 0;
    if (!ok) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* A JSON flag value must parse as an object (exit 2 otherwise). */
static bool json_object_arg(const char *usage, const char *flag,
                            const char *v, int *rc)
{
    json_error_t je;
    json_t *j;

    if (v == NULL)
        return true;
    j = json_loads(v, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL || !json_is_object(j)) {
        *rc = cli_usage(usage, "--%s is not a JSON object%s%s", flag,
                        j ? "" : ": ", j ? "" : je.text);
        json_decref(j);
        return false;
    }
    json_decref(j);
    return true;
}

/* Exit code for a broker error: bad arguments 2, the rest 1. */
static int failed(const ai_err *err)
{
    cli_fail(err);
    return err->code == AI_EINVAL ? CLI_USAGE : CLI_FAIL;
}

static void print_token(const cli_ctx *c, const ai_token *t)
{
    if (c->json) {
        char when[AI_TIME_BUF];
        ai_time_format(ai_token_expires_at(t), when);
        cli_print_json(json_pack("{s:s, s:s, s:s}", "token",
                                 ai_token_serialize(t), "tokenId",
                                 ai_token_id(t), "expiresAt", when));
    } else {
        printf("%s\n", ai_token_serialize(t));
    }
}

/* Add the JSON object text v (checked by json_object_arg) as key. */
static bool put_object(json_t *o, const char *key, const char *v)
{
    json_t *j;

    if (v == NULL)
        return true;
    j = json_loads(v, JSON_REJECT_DUPLICATES, NULL);
    return j != NULL && json_object_set_new(o, key, j) == 0;
}

/* What a delegation narrowed (ai_token_narrowed) as a new JSON array of
 * strings; NULL: out of memory. */
static json_t *narrowed_list(const ai_token *t)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < ai_token_narrowed_count(t); i++)
        if (json_array_append_new(a, json_string(ai_token_narrowed(t, i)))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The narrowed fields (a JSON array of strings) as one notice line on
 * stderr; nothing when there are none. A control character (a custom
 * capability's name may hold one) prints as '?', so it stays one line. */
static void narrowed_notice(const json_t *list)
{
    const json_t *v;
    size_t i;

    if (json_array_size(list) == 0)
        return;
    fputs("agent-iam: notice: narrowed to the parent's: ", stderr);
    json_array_foreach(list, i, v) {
        const char *p = json_string_value(v);
        if (i > 0)
            fputs(", ", stderr);
        for (; p != NULL && *p != '\0'; p++)
            fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
    }
    fputc('\n', stderr);
}

/* A delegated child: as print_token, plus what was narrowed (taken): the
 * notice on stderr, or "narrowed" in the JSON, [] when nothing was. */
static int print_child(const cli_ctx *c, const char *tok, const char *id,
                       const char *exp, json_t *narrowed)
{
    if (narrowed == NULL)
        return cli_failf("out of memory");
    if (c->json) {
        cli_print_json(json_pack("{s:s, s:s, s:s, s:o}", "token", tok,
                                 "tokenId", id, "expiresAt", exp, "narrowed",
                                 narrowed));
        return CLI_OK;
    }
    printf("%s\n", tok);
    fflush(stdout);
    narrowed_notice(narrowed);
    json_decref(narrowed);
    return CLI_OK;
}

static int print_answer(const cli_ctx *c, json_t *ans, bool child);

/* create-root on the leader: POST /v1/admin/tokens with the parameters
 * (only the numbers given on the command line: the leader has its own
 * defaults), then print the answer as print_token does. A 400 is a usage
 * error, as the broker's AI_EINVAL is locally. */
static int root_remote(const cli_ctx *c, const cli_remote *r,
                       const ai_root_params *p, bool ttl, bool maxttl,
                       bool depth)
{
    json_t *body = json_object(), *ans = NULL;
    json_t *arr = scope_array(p->scopes, p->nscopes);
    bool ok = body != NULL && arr != NULL;
    ai_err err;

    ok = ok && json_object_set_new(body, "agentId",
                                   json_string(p->agent_id)) == 0 &&
         json_object_set(body, "scopes", arr) == 0 &&
         put_object(body, "constraints", p->constraints_json) &&
         json_object_set_new(body, "delegatable",
                             json_boolean(p->delegatable)) == 0 &&
         (!depth || json_object_set_new(body, "maxDelegationDepth",
                                        json_integer(
                                            p->max_delegation_depth)) ==
                        0) &&
         (!ttl || json_object_set_new(body, "ttlDays",
                                      json_integer(p->ttl_days)) == 0) &&
         (!maxttl || json_object_set_new(body, "maxTtlDays",
                                         json_integer(p->max_ttl_days)) ==
                         0) &&
         put_object(body, "identity", p->identity_json) &&
         put_object(body, "federation", p->federation_json) &&
         put_object(body, "agentCapabilities", p->capabilities_json);
    json_decref(arr);
    if (!ok) {
        json_decref(body);
        body = NULL; /* refused below as not UTF-8 text */
    }
    if (cli_remote_call(r, "POST", "/v1/admin/tokens", body, &ans, &err) !=
        AI_OK)
        return failed(&err);
    return print_answer(c, ans, false);
}

/* A leader's token answer ({token, tokenId, expiresAt}, taken: wiped and
 * freed here) printed as print_token prints a token; a delegated child's
 * (child) as print_child, with the answer's "narrowed" (none: []). */
static int print_answer(const cli_ctx *c, json_t *ans, bool child)
{
    const char *tok, *id, *exp;

    tok = json_string_value(json_object_get(ans, "token"));
    id = json_string_value(json_object_get(ans, "tokenId"));
    exp = json_string_value(json_object_get(ans, "expiresAt"));
    if (tok == NULL || id == NULL || exp == NULL) {
        cli_json_free(ans);
        return cli_failf("leader: the answer has no token, tokenId or "
                         "expiresAt");
    }
    if (child) {
        json_t *n = json_object_get(ans, "narrowed");
        int rc = print_child(c, tok, id, exp,
                             json_is_array(n) ? json_incref(n) : json_array());
        cli_json_free(ans);
        return rc;
    }
    if (c->json)
        cli_print_json(json_pack("{s:s, s:s, s:s}", "token", tok, "tokenId",
                                 id, "expiresAt", exp));
    else
        printf("%s\n", tok);
    cli_json_free(ans);
    return CLI_OK;
}

static int create_root(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam token create-root --agent-id ID --scopes a,b "
        "[--constraints JSON] [--ttl-days N] [--max-ttl-days N] "
        "[--max-depth N] [--no-delegatable] [--identity JSON] "
        "[--federation JSON] [--capabilities JSON] " CLI_REMOTE_USAGE;
    const char *agent = NULL, *scopes = NULL, *cons = NULL, *ttl = NULL,
               *maxttl = NULL, *depth = NULL, *ident = NULL, *fed = NULL,
               *caps = NULL;
    bool nodeleg = false;
    cli_remote r = {0};
    const cli_opt opts[] = {
        {"agent-id", &agent, NULL},     {"scopes", &scopes, NULL},
        {"constraints", &cons, NULL},   {"ttl-days", &ttl, NULL},
        {"max-ttl-days", &maxttl, NULL}, {"max-depth", &depth, NULL},
        {"no-delegatable", NULL, &nodeleg}, {"identity", &ident, NULL},
        {"federation", &fed, NULL},     {"capabilities", &caps, NULL},
        CLI_REMOTE_OPTS(&r),            {NULL, NULL, NULL}};
    const char *list[MAX_SCOPES];
    char *pos[1], *sbuf;
    long long v;
    int npos, rc;
    ai_root_params p;
    ai_broker *b;
    ai_token *t = NULL;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    ai_root_params_init(&p);
    if (agent == NULL || scopes == NULL)
        return cli_usage(usage, "--agent-id and --scopes are required");
    if (ttl != NULL) {
        if (!cli_int(ttl, 1, 3650, &v))
            return cli_usage(usage, "--ttl-days is a whole number of days, "
                                    "1 or more");
        p.ttl_days = (int)v;
    }
    if (maxttl != NULL) {
        if (!cli_int(maxttl, 1, 3650, &v))
            return cli_usage(usage, "--max-ttl-days is a whole number of "
                                    "days, 1 or more");
        p.max_ttl_days = (int)v;
    }
    if (depth != NULL) {
        if (!cli_int(depth, 0, AI_MAX_DEPTH, &v))
            return cli_usage(usage, "--max-depth is 0 to %d", AI_MAX_DEPTH);
        p.max_delegation_depth = (int)v;
    }
    if (!json_object_arg(usage, "constraints", cons, &rc) ||
        !json_object_arg(usage, "identity", ident, &rc) ||
        !json_object_arg(usage, "federation", fed, &rc) ||
        !json_object_arg(usage, "capabilities", caps, &rc))
        return rc;
    if ((rc = split_scopes(usage, scopes, &sbuf, list, &p.nscopes)) !=
        CLI_OK)
        return rc;
    p.scopes = list;
    p.agent_id = agent;
    p.constraints_json = cons;
    p.identity_json = ident;
    p.federation_json = fed;
    p.capabilities_json = caps;
    p.delegatable = !nodeleg;
    if ((rc = cli_remote_open(c, &r, usage, true)) != CLI_OK) {
        free(sbuf);
        return rc;
    }
    if (r.on) {
        rc = root_remote(c, &r, &p, ttl != NULL, maxttl != NULL,
                         depth != NULL);
        cli_remote_close(&r);
        free(sbuf);
        return rc;
    }
    if ((b = cli_broker(c)) == NULL) {
        free(sbuf);
        return CLI_FAIL;
    }
    if (ai_broker_create_root_token(b, &p, &t, &err) != AI_OK)
        rc = failed(&err);
    else
        print_token(c, t);
    ai_token_free(t);
    ai_broker_close(b);
    free(sbuf);
    return rc;
}

/* delegate on a leader or follower: POST /v1/tokens/delegate with the
 * parent as the bearer and a DelegationRequest (the members given; the
 * server has the defaults). */
static int delegate_remote(const cli_ctx *c, cli_remote *r,
                           const char *wire, const ai_delegation *d)
{
    json_t *body, *arr, *ans = NULL;
    bool ok;
    ai_err err;

    if (cli_agent_bearer(r, wire, &err) != AI_OK)
        return cli_fail(&err);
    body = json_object();
    arr = scope_array(d->scopes, d->nscopes);
    ok = body != NULL && arr != NULL;
    ok = ok && json_object_set(body, "requestedScopes", arr) == 0 &&
         (d->agent_id == NULL ||
          json_object_set_new(body, "agentId",
                              json_string(d->agent_id)) == 0) &&
         put_object(body, "requestedConstraints", d->constraints_json) &&
         json_object_set_new(body, "delegatable",
                             json_boolean(d->delegatable)) == 0 &&
         json_object_set_new(body, "inheritIdentity",
                             json_boolean(d->inherit_identity)) == 0 &&
         json_object_set_new(body, "ttlMinutes",
                             json_integer(d->ttl_minutes)) == 0 &&
         put_object(body, "federation", d->federation_json) &&
         put_object(body, "agentCapabilities", d->capabilities_json);
    json_decref(arr);
    if (!ok) {
        json_decref(body);
        body = NULL; /* refused by cli_remote_call as not UTF-8 text */
    }
    if (cli_remote_call(r, "POST", "/v1/tokens/delegate", body, &ans,
                        &err) != AI_OK)
        return failed(&err);
    return print_answer(c, ans, true);
}

static int delegate(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam token delegate --parent TOKEN --scopes a,b "
        "[--agent-id ID] [--constraints JSON] [--ttl-minutes N] "
        "[--no-delegatable] [--no-inherit-identity] [--federation JSON] "
        "[--capabilities JSON] " CLI_AGENT_REMOTE_USAGE;
    const char *parent = NULL, *agent = NULL, *scopes = NULL, *cons = NULL,
               *ttl = NULL, *fed = NULL, *caps = NULL;
    bool nodeleg = false, noident = false;
    cli_remote r = {0};
    const cli_opt opts[] = {
        {"parent", &parent, NULL},       {"agent-id", &agent, NULL},
        {"scopes", &scopes, NULL},       {"constraints", &cons, NULL},
        {"ttl-minutes", &ttl, NULL},     {"no-delegatable", NULL, &nodeleg},
        {"no-inherit-identity", NULL, &noident},
        {"federation", &fed, NULL},      {"capabilities", &caps, NULL},
        CLI_AGENT_REMOTE_OPTS(&r),       {NULL, NULL, NULL}};
    const char *list[MAX_SCOPES];
    char *pos[1], *sbuf = NULL, *wire = NULL;
    size_t len = 0;
    long long v;
    int npos, rc;
    ai_delegation d;
    ai_broker *b = NULL;
    ai_token *t = NULL;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    ai_delegation_init(&d);
    if (parent == NULL || scopes == NULL)
        return cli_usage(usage, "--parent and --scopes are required");
    if (ttl != NULL) {
        if (!cli_int(ttl, 1, 5256000, &v))
            return cli_usage(usage, "--ttl-minutes is a whole number of "
                                    "minutes, 1 or more");
        d.ttl_minutes = (int)v;
    }
    if (!json_object_arg(usage, "constraints", cons, &rc) ||
        !json_object_arg(usage, "federation", fed, &rc) ||
        !json_object_arg(usage, "capabilities", caps, &rc))
        return rc;
    if ((rc = split_scopes(usage, scopes, &sbuf, list, &d.nscopes)) !=
        CLI_OK)
        return rc;
    d.scopes = list;
    d.agent_id = agent;
    d.constraints_json = cons;
    d.federation_json = fed;
    d.capabilities_json = caps;
    d.delegatable = !nodeleg;
    d.inherit_identity = !noident;
    if ((rc = cli_agent_open(c, &r, usage)) != CLI_OK)
        goto done;
    if ((wire = cli_read_token(parent, &len)) == NULL) {
        rc = CLI_FAIL;
        goto done;
    }
    if (r.on) {
        rc = delegate_remote(c, &r, wire, &d);
        goto done;
    }
    if ((b = cli_broker(c)) == NULL) {
        rc = CLI_FAIL;
        goto done;
    }
    if (ai_broker_delegate(b, wire, len, &d, &t, &err) != AI_OK) {
        rc = failed(&err);
    } else {
        char when[AI_TIME_BUF];
        ai_time_format(ai_token_expires_at(t), when);
        rc = print_child(c, ai_token_serialize(t), ai_token_id(t), when,
                         narrowed_list(t));
    }
done:
    cli_remote_close(&r);
    ai_token_free(t);
    ai_broker_close(b);
    if (wire != NULL) {
        explicit_bzero(wire, len);
        free(wire);
    }
    free(sbuf);
    return rc;
}

/* What verify says of a valid token (NULL for check). */
typedef struct claims {
    const char *agent, *id, *expires;
} claims;

/* verify and check: exit 0 valid/allowed, 1 with the reason. */
static int verdict(cli_ctx *c, ai_code code, const ai_err *err,
                   const claims *t)
{
    if (c->json) {
        json_t *o = json_pack("{s:b}", "valid", code == AI_OK);
        if (code != AI_OK) {
            json_object_set_new(o, "error", json_string(err->msg));
            json_object_set_new(o, "code",
                                json_string(err_code_name(err->code)));
        }
        if (t != NULL) {
            if (t->agent != NULL)
                json_object_set_new(o, "agentId", json_string(t->agent));
            if (t->id != NULL)
                json_object_set_new(o, "tokenId", json_string(t->id));
            if (t->expires != NULL)
                json_object_set_new(o, "expiresAt", json_string(t->expires));
        }
        cli_print_json(o);
    } else if (code == AI_OK) {
        printf("%s\n", t != NULL ? "valid" : "allowed");
    } else {
        cli_fail(err);
    }
    return code == AI_OK ? CLI_OK : CLI_FAIL;
}

/* Is a leader's error about the token (a verdict: exit 1, and in JSON
 * {"valid":false}) rather than about the call (the transport, the
 * server)? */
static bool token_refused(ai_code code)
{
    return code == AI_ETOKEN || code == AI_EEXPIRED || code == AI_EREVOKED ||
           code == AI_EDENIED;
}

/* verify on a leader or follower: GET /v1/whoami with the token as the
 * bearer; 200 is valid. */
static int verify_remote(cli_ctx *c, cli_remote *r, const char *wire)
{
    json_t *ans = NULL;
    claims t;
    ai_code code;
    ai_err err;
    int rc;

    if ((code = cli_agent_bearer(r, wire, &err)) == AI_OK)
        code = cli_remote_send(r, "GET", "/v1/whoami", NULL, &ans, &err);
    if (code != AI_OK && !token_refused(code))
        return failed(&err);
    t.agent = json_string_value(json_object_get(ans, "agentId"));
    t.id = json_string_value(json_object_get(ans, "tokenId"));
    t.expires = json_string_value(json_object_get(ans, "expiresAt"));
    rc = verdict(c, code, &err, code == AI_OK ? &t : NULL);
    cli_json_free(ans);
    return rc;
}

/* check on a leader or follower: POST /v1/check {scope, resource} with
 * the token as the bearer; the answer's valid is the permission. */
static int check_remote(cli_ctx *c, cli_remote *r, const char *wire,
                        const char *scope, const char *resource)
{
    json_t *ans = NULL;
    const char *why;
    ai_code code;
    ai_err err;
    int rc;

    code = cli_agent_scope_call(r, wire, "/v1/check", scope, resource, &ans,
                                &err);
    if (code == AI_OK && !json_is_true(json_object_get(ans, "valid"))) {
        why = json_string_value(json_object_get(ans, "error"));
        code = ai_err_set(&err, AI_EDENIED, "%s",
                          why != NULL ? why : "not allowed");
    }
    if (code != AI_OK && !token_refused(code))
        rc = failed(&err); /* 400: a malformed scope or resource, exit 2 */
    else
        rc = verdict(c, code, &err, NULL);
    cli_json_free(ans);
    return rc;
}

static int verify(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam token verify TOKEN|-|@FILE " CLI_AGENT_REMOTE_USAGE;
    cli_remote r = {0};
    const cli_opt opts[] = {CLI_AGENT_REMOTE_OPTS(&r), {NULL, NULL, NULL}};
    char *pos[1], *wire;
    size_t len;
    int npos, rc;
    ai_broker *b;
    ai_token *t = NULL;
    ai_code code;
    ai_err err;
    char when[AI_TIME_BUF];
    claims cl;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 1, &npos, true)))
        return rc;
    if (npos != 1)
        return cli_usage(usage, "a token is required");
    if ((rc = cli_agent_open(c, &r, usage)) != CLI_OK)
        return rc;
    if ((wire = cli_read_token(pos[0], &len)) == NULL) {
        cli_remote_close(&r);
        return CLI_FAIL;
    }
    if (r.on) {
        rc = verify_remote(c, &r, wire);
        cli_remote_close(&r);
        explicit_bzero(wire, len);
        free(wire);
        return rc;
    }
    if ((b = cli_broker(c)) == NULL) {
        free(wire);
        return CLI_FAIL;
    }
    code = ai_broker_verify(b, wire, len, &t, &err);
    if (t != NULL) {
        ai_time_format(ai_token_expires_at(t), when);
        cl.agent = ai_token_agent_id(t);
        cl.id = ai_token_id(t);
        cl.expires = when;
    }
    rc = verdict(c, code, &err, t != NULL ? &cl : NULL);
    ai_token_free(t);
    ai_broker_close(b);
    explicit_bzero(wire, len);
    free(wire);
    return rc;
}

static int check(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam token check TOKEN|-|@FILE SCOPE RESOURCE "
        CLI_AGENT_REMOTE_USAGE;
    cli_remote r = {0};
    const cli_opt opts[] = {CLI_AGENT_REMOTE_OPTS(&r), {NULL, NULL, NULL}};
    char *pos[3], *wire;
    size_t len;
    int npos, rc;
    ai_broker *b;
    ai_code code;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 3, &npos, true)))
        return rc;
    if (npos != 3)
        return cli_usage(usage, "a token, a scope and a resource are "
                                "required");
    if ((rc = cli_agent_open(c, &r, usage)) != CLI_OK)
        return rc;
    if ((wire = cli_read_token(pos[0], &len)) == NULL) {
        cli_remote_close(&r);
        return CLI_FAIL;
    }
    if (r.on) {
        rc = check_remote(c, &r, wire, pos[1], pos[2]);
        cli_remote_close(&r);
        explicit_bzero(wire, len);
        free(wire);
        return rc;
    }
    if ((b = cli_broker(c)) == NULL) {
        free(wire);
        return CLI_FAIL;
    }
    code = ai_broker_check_permission(b, wire, len, pos[1], pos[2], &err);
    rc = verdict(c, code, &err, NULL);
    if (code == AI_EINVAL && err.msg[0] != '\0' &&
        strstr(err.msg, "invalid token") == NULL)
        rc = CLI_USAGE; /* a malformed scope or resource argument */
    ai_broker_close(b);
    explicit_bzero(wire, len);
    free(wire);
    return rc;
}

/* refresh on a leader or follower: POST /v1/tokens/refresh with the
 * token as the bearer ({"ttlMinutes"} when given). Errors exit 1, as the
 * local refresh's do. */
static int refresh_remote(const cli_ctx *c, cli_remote *r, const char *wire,
                          int ttl)
{
    json_t *ans = NULL;
    ai_err err;

    if (cli_agent_bearer(r, wire, &err) != AI_OK ||
        cli_remote_call(r, "POST", "/v1/tokens/refresh",
                        ttl > 0 ? json_pack("{s:i}", "ttlMinutes", ttl)
                                : json_object(),
                        &ans, &err) != AI_OK)
        return cli_fail(&err);
    return print_answer(c, ans, false);
}

static int refresh(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam token refresh TOKEN|-|@FILE [--ttl-minutes N] "
        CLI_AGENT_REMOTE_USAGE;
    const char *ttl = NULL;
    cli_remote r = {0};
    const cli_opt opts[] = {{"ttl-minutes", &ttl, NULL},
                            CLI_AGENT_REMOTE_OPTS(&r),
                            {NULL, NULL, NULL}};
    char *pos[1], *wire;
    size_t len;
    long long v = 0;
    int npos, rc;
    ai_broker *b;
    ai_token *t = NULL;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 1, &npos, true)))
        return rc;
    if (npos != 1)
        return cli_usage(usage, "a token is required");
    if (ttl != NULL && !cli_int(ttl, 1, 5256000, &v))
        return cli_usage(usage, "--ttl-minutes is a whole number of minutes, "
                                "1 or more");
    if ((rc = cli_agent_open(c, &r, usage)) != CLI_OK)
        return rc;
    if ((wire = cli_read_token(pos[0], &len)) == NULL) {
        cli_remote_close(&r);
        return CLI_FAIL;
    }
    if (r.on) {
        rc = refresh_remote(c, &r, wire, (int)v);
        cli_remote_close(&r);
        explicit_bzero(wire, len);
        free(wire);
        return rc;
    }
    if ((b = cli_broker(c)) == NULL) {
        free(wire);
        return CLI_FAIL;
    }
    if (ai_broker_refresh(b, wire, len, (int)v, &t, &err) != AI_OK)
        rc = cli_fail(&err);
    else
        print_token(c, t);
    ai_token_free(t);
    ai_broker_close(b);
    explicit_bzero(wire, len);
    free(wire);
    return rc;
}

/* `token show TOKEN`: the decoded claims, pretty-printed, unverified. */
static int show(int argc, char **argv)
{
    static const char usage[] = "agent-iam token show TOKEN|-|@FILE";
    ai_err err = {0};
    ai_token *tok = NULL;
    json_t *doc = NULL;
    char *wire, *out = NULL, *pos[1];
    size_t len;
    int npos, rc = CLI_FAIL;

    if ((rc = cli_parse(usage, argc, argv, NULL, pos, 1, &npos, true)))
        return rc;
    if (npos != 1)
        return cli_usage(usage, "a token is required");
    rc = CLI_FAIL;
    if ((wire = cli_read_token(pos[0], &len)) == NULL)
        return CLI_FAIL;
    if (ai_token_deserialize(wire, len, &tok, &err) != AI_OK) {
        cli_fail(&err);
        goto done;
    }
    doc = json_loads(ai_token_json(tok), JSON_REJECT_DUPLICATES, NULL);
    out = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (out == NULL) {
        cli_failf("out of memory");
        goto done;
    }
    printf("%s\n", out);
    rc = CLI_OK;
done:
    free(out);
    json_decref(doc);
    ai_token_free(tok);
    explicit_bzero(wire, len); /* a bearer credential */
    free(wire);
    return rc;
}

int cli_token(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam token create-root|delegate|verify|show|check|refresh "
        "... (agent-iam token COMMAND --help: its usage)";

    if (argc >= 1) {
        if (strcmp(argv[0], "create-root") == 0)
            return create_root(c, argc - 1, argv + 1);
        if (strcmp(argv[0], "delegate") == 0)
            return delegate(c, argc - 1, argv + 1);
        if (strcmp(argv[0], "verify") == 0)
            return verify(c, argc - 1, argv + 1);
        if (strcmp(argv[0], "check") == 0)
            return check(c, argc - 1, argv + 1);
        if (strcmp(argv[0], "refresh") == 0)
            return refresh(c, argc - 1, argv + 1);
        if (strcmp(argv[0], "show") == 0)
            return show(argc - 1, argv + 1);
    }
    return cli_group_usage(usage, "token command", argc, argv);
}
