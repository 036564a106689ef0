/* cmd_cluster.c - `agent-iam cluster status|transfer|add|remove`: a
 * leader group as one of its voters sees it, its leadership and its
 * members (DESIGN §9), on a running voter only. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

static const char status_usage[] =
    "agent-iam cluster status [--json] " CLI_REMOTE_USAGE;
static const char transfer_usage[] =
    "agent-iam cluster transfer [ID] " CLI_REMOTE_USAGE;
static const char add_usage[] = "agent-iam cluster add ID " CLI_REMOTE_USAGE;
static const char remove_usage[] =
    "agent-iam cluster remove ID " CLI_REMOTE_USAGE;

/* The voter named by --leader-url (or $AGENT_IAM_LEADER_URL): required. */
static int open_voter(cli_ctx *c, cli_remote *r, const char *usage)
{
    int rc = cli_remote_open(c, r, usage, true);

    if (rc == CLI_OK && !r->on)
        return cli_usage(usage, "give a voter with --leader-url URL[,URL...] "
                                "(or $AGENT_IAM_LEADER_URL)");
    return rc;
}

static int status(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    const cli_opt opts[] = {CLI_REMOTE_OPTS(r), {NULL, NULL, NULL}};
    json_t *ans = NULL, *g;
    char *pos[1];
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(status_usage, argc, argv, opts, pos, 0, &npos,
                        false)) ||
        (rc = open_voter(c, r, status_usage)) != CLI_OK)
        return rc;
    if (cli_remote_call(r, "GET", "/v1/status", NULL, &ans, &err) != AI_OK)
        return cli_fail(&err);
    g = json_object_get(ans, "cluster");
    if (!json_is_object(g)) {
        json_decref(ans);
        return cli_failf("this server is not a voter of a leader group "
                         "(serve --cluster)\n");
    }
    if (c->json) {
        cli_print_json(json_incref(g));
    } else {
        printf("node %" JSON_INTEGER_FORMAT ": %s%s, term %"
               JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(g, "nodeId")),
               json_string_value(json_object_get(g, "role")),
               json_is_true(json_object_get(g, "failed")) ? " (FAILED: "
                                                            "stopped)"
                                                          : "",
               json_integer_value(json_object_get(g, "term")));
        printf("leader: %" JSON_INTEGER_FORMAT " %s\n",
               json_integer_value(json_object_get(g, "leaderId")),
               json_string_value(json_object_get(g, "leaderUrl")));
        printf("voters: %" JSON_INTEGER_FORMAT ", commit index %"
               JSON_INTEGER_FORMAT ", applied index %" JSON_INTEGER_FORMAT
               "\n",
               json_integer_value(json_object_get(g, "voters")),
               json_integer_value(json_object_get(g, "commitIndex")),
               json_integer_value(json_object_get(g, "appliedIndex")));
    }
    json_decref(ans);
    return CLI_OK;
}

static int transfer(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    const cli_opt opts[] = {CLI_REMOTE_OPTS(r), {NULL, NULL, NULL}};
    json_t *ans = NULL;
    char *pos[1], body[64] = "{}";
    long long id = 0;
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(transfer_usage, argc, argv, opts, pos, 1, &npos,
                        false)))
        return rc;
    if (npos == 1 && !cli_int(pos[0], 1, INT64_C(2147483648), &id))
        return cli_usage(transfer_usage, "ID is a voter's id in the cluster "
                                         "file");
    if ((rc = open_voter(c, r, transfer_usage)) != CLI_OK)
        return rc;
    if (id > 0)
        snprintf(body, sizeof body, "{\"id\":%lld}", id);
    if (cli_remote_send(r, "POST", "/v1/admin/cluster/transfer", body, &ans,
                        &err) != AI_OK)
        return cli_fail(&err);
    if (c->json)
        cli_print_json(json_incref(ans));
    else
        printf("leadership handed to node %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(ans, "leaderId")));
    json_decref(ans);
    return CLI_OK;
}

/* cluster add ID / cluster remove ID: one member of the group. */
static int member(cli_ctx *c, cli_remote *r, int argc, char **argv,
                  bool add)
{
    const char *usage = add ? add_usage : remove_usage;
    const cli_opt opts[] = {CLI_REMOTE_OPTS(r), {NULL, NULL, NULL}};
    json_t *ans = NULL;
    char *pos[1], body[64];
    long long id = 0;
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 1, &npos, false)))
        return rc;
    if (npos != 1 || !cli_int(pos[0], 1, INT64_C(2147483648), &id))
        return cli_usage(usage, "ID is a node's id in the cluster file");
    if ((rc = open_voter(c, r, usage)) != CLI_OK)
        return rc;
    snprintf(body, sizeof body, "{\"id\":%lld}", id);
    if (cli_remote_send(r, "POST",
                        add ? "/v1/admin/cluster/add"
                            : "/v1/admin/cluster/remove",
                        body, &ans, &err) != AI_OK)
        return cli_fail(&err);
    if (c->json)
        cli_print_json(json_incref(ans));
    else
        printf("node %lld %s\n", id,
               add ? "is a voter of the group" : "left the group");
    json_decref(ans);
    return CLI_OK;
}

static int add(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    return member(c, r, argc, argv, true);
}

static int remove_one(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    return member(c, r, argc, argv, false);
}

/* `agent-iam cluster status|transfer|add|remove ...`: the exit code. */
int cli_cluster(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam cluster status | transfer [ID] | add ID | remove ID";
    static const cli_remote_cmd cmds[] = {{"status", status},
                                          {"transfer", transfer},
                                          {"add", add},
                                          {"remove", remove_one}};

    return cli_remote_group(c, cmds, sizeof cmds / sizeof *cmds, usage,
                            "cluster command", argc, argv);
}
