/* cmd_revoke.c - `agent-iam revoke` and `unrevoke` on the local home (or,
 * with --leader-url, on a running leader):
 * one token id (the token and, through the ancestors every token carries,
 * its descendants) or one agent id (--agent) per call.
 *
 * A token id is a tokenId, AI_TOKEN_ID_CHARS base64url characters; since
 * '-' is one of them, one id in 64 begins with it and is taken as the id
 * all the same (any argument that is not one of the command's options),
 * but "-h" and "--help" ask for the usage and anything that is not a
 * tokenId is a usage error (DESIGN §6): a mistyped flag never becomes a
 * revocation. An agent id is any id the store accepts. An id this home
 * never issued is accepted, since it may come from another home. The
 * result is printed only once the commit has returned, so an id on
 * stdout is durable. */
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "core/core.h"

static const char revoke_usage[] =
    "agent-iam revoke TOKEN_ID [--reason R] | revoke --agent AGENT_ID "
    "[--reason R] " CLI_REMOTE_USAGE;
static const char unrevoke_usage[] =
    "agent-iam unrevoke TOKEN_ID | unrevoke --agent AGENT_ID "
    CLI_REMOTE_USAGE;

/* The one id of the command line: a positional argument or --agent's
 * value, never both, never none. CLI_OK or the usage error. */
static int pick_id(const char *usage, char **pos, int npos,
                   const char *agent, revoke_target *t, const char **id)
{
    if (agent != NULL && npos > 0)
        return cli_usage(usage, "give a token id or --agent AGENT_ID, not "
                                "both");
    if (agent == NULL && npos == 0)
        return cli_usage(usage, "a token id (or --agent AGENT_ID) is "
                                "required");
    *t = agent != NULL ? REVOKE_AGENT : REVOKE_TOKEN;
    *id = agent != NULL ? agent : pos[0];
    if (*t == REVOKE_AGENT && **id == '\0')
        return cli_usage(usage, "the agent id is empty");
    if (*t == REVOKE_TOKEN && !cli_token_id_ok(*id))
        return cli_usage(usage, "not a token id: a tokenId is %d base64url "
                                "characters (A-Z a-z 0-9 - _); for an agent, "
                                "--agent AGENT_ID",
                         AI_TOKEN_ID_CHARS);
    return CLI_OK;
}

/* A refusal of the arguments (bad id or reason) is a usage error;
 * anything else is a failure (as cli_exec does on the local home). */
static int store_error(const char *usage, const ai_err *err)
{
    if (err->code == AI_EINVAL)
        return cli_usage(usage, "%s", err->msg);
    return cli_fail(err);
}

/* revoke or unrevoke on the leader: POST /v1/admin/revoke {"tokenId" |
 * "agentId", "reason"?} or /v1/admin/unrevoke; errors as the store's
 * (a 400 is a usage error, a 404 "not revoked" a failure). */
static int remote(const cli_remote *r, bool revoke, revoke_target t,
                  const char *id, const char *reason)
{
    const char *usage = revoke ? revoke_usage : unrevoke_usage;
    json_t *body = json_pack("{s:s}", t == REVOKE_AGENT ? "agentId"
                                                         : "tokenId", id);
    json_t *ans = NULL;
    ai_err err;

    if (body != NULL && reason != NULL &&
        json_object_set_new(body, "reason", json_string(reason)) != 0) {
        json_decref(body);
        body = NULL; /* not UTF-8: refused as such below */
    }
    if (cli_remote_call(r, "POST",
                        revoke ? "/v1/admin/revoke" : "/v1/admin/unrevoke",
                        body, &ans, &err) != AI_OK)
        return store_error(usage, &err);
    json_decref(ans);
    return CLI_OK;
}

static void print_result(const cli_ctx *c, bool revoked, revoke_target t,
                         const char *id, const char *reason, int64_t now)
{
    const char *kind = t == REVOKE_AGENT ? "agent" : "token";

    if (c->json) {
        char at[AI_TIME_BUF];
        json_t *o;

        ai_time_format(now, at);
        o = json_pack("{s:b, s:s, s:s}", revoked ? "revoked" : "unrevoked",
                      1, "target", kind, "id", id);
        if (o != NULL && revoked) {
            json_object_set_new(o, "reason", json_string(reason ? reason : ""));
            json_object_set_new(o, "revokedAt", json_string(at));
        }
        cli_print_json(o);
    } else {
        printf("%s %s %s\n", revoked ? "revoked" : "unrevoked", kind, id);
    }
    fflush(stdout);
}

/* revoke (with --reason) or unrevoke: exit 0 once durable, 1 when the home
 * cannot be opened or written (or, unrevoking, it was not revoked), 2 for
 * argument errors. */
static int revocation(cli_ctx *c, bool revoke, int argc, char **argv)
{
    const char *usage = revoke ? revoke_usage : unrevoke_usage;
    const char *agent = NULL, *reason = NULL, *id = NULL;
    cli_remote r = {0};
    /* unrevoke has no --reason: its entry ends the table there */
    const cli_opt opts[] = {{"agent", &agent, NULL},
                            CLI_REMOTE_OPTS(&r),
                            {revoke ? "reason" : NULL, &reason, NULL},
                            {NULL, NULL, NULL}};
    revoke_target t = REVOKE_TOKEN;
    int64_t now = time_now_ms();
    broker_cmd cmd = {.op = revoke ? BROKER_REVOKE : BROKER_UNREVOKE,
                      .at_ms = now};
    char *pos[1];
    int npos, rc;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 1, &npos, true)) !=
            CLI_OK ||
        (rc = pick_id(usage, pos, npos, agent, &t, &id)) != CLI_OK ||
        (rc = cli_remote_open(c, &r, usage, true)) != CLI_OK)
        return rc;
    if (r.on) {
        rc = remote(&r, revoke, t, id, reason);
        cli_remote_close(&r);
    } else {
        /* Durable, with its audit row, before anything is printed;
         * AI_ENOTFOUND ("token "X" is not revoked") is a failure: exit 1. */
        cmd.target = t;
        cmd.id = id;
        cmd.reason = reason;
        rc = cli_exec(c, &cmd, NULL, usage);
    }
    if (rc == CLI_OK)
        print_result(c, revoke, t, id, reason, now);
    return rc;
}

/* `revoke ID [--reason R]` and `revoke --agent ID [--reason R]`
 * (idempotent: revoking again updates the reason). */
int cli_revoke(cli_ctx *c, int argc, char **argv)
{
    return revocation(c, true, argc, argv);
}

/* `unrevoke ID` and `unrevoke --agent ID`. */
int cli_unrevoke(cli_ctx *c, int argc, char **argv)
{
    return revocation(c, false, argc, argv);
}
