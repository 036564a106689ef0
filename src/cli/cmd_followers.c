/* cmd_followers.c - `agent-iam followers add|list|remove`: the followers
 * registered on a leader, each with a credential of its own (DESIGN §8),
 * on the local home (through the broker) or on a running leader. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "core/core.h"

static const char add_usage[] =
    "agent-iam followers add ID [--providers P,Q|'*'] " CLI_REMOTE_USAGE;
static const char list_usage[] =
    "agent-iam followers list [--json] " CLI_REMOTE_USAGE;
static const char remove_usage[] =
    "agent-iam followers remove ID " CLI_REMOTE_USAGE;

static int one_id(const char *usage, int npos, char **pos)
{
    if (npos != 1)
        return cli_usage(usage, "the follower id is required");
    if (!word_valid(pos[0], 64))
        return cli_usage(usage,
                         "a follower id is 1 to 64 of A-Z a-z 0-9 . _ -");
    return CLI_OK;
}

static int add(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    const char *providers = NULL;
    const cli_opt opts[] = {{"providers", &providers, NULL},
                            CLI_REMOTE_OPTS(r),
                            {NULL, NULL, NULL}};
    char *pos[1], *secret = NULL;
    json_t *ans = NULL;
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(add_usage, argc, argv, opts, pos, 1, &npos, false)) ||
        (rc = one_id(add_usage, npos, pos)) ||
        (rc = cli_remote_open(c, r, add_usage, true)) != CLI_OK)
        return rc;
    if (r->on) {
        if (cli_remote_call(r, "POST", "/v1/admin/followers",
                            json_pack("{s:s, s:s}", "id", pos[0],
                                      "providers", providers ? providers : ""),
                            &ans, &err) != AI_OK)
            return cli_fail(&err);
        {
            const char *sv =
                json_string_value(json_object_get(ans, "secret"));
            size_t n = sv ? strlen(sv) : 0;
            if (n > 0 && (secret = ai_malloc(n + 1)) != NULL)
                memcpy(secret, sv, n + 1);
        }
        cli_json_free(ans);
        if (secret == NULL)
            return cli_failf("the leader sent no credential\n");
    } else {
        ai_broker *b = cli_broker(c);
        if (b == NULL)
            return CLI_FAIL;
        /* Registered and audited in one transaction, or neither. */
        rc = ai_broker_add_follower(b, pos[0], providers, &secret, &err);
        ai_broker_close(b);
        if (rc != AI_OK)
            return cli_fail(&err);
    }
    if (c->json) {
        cli_print_json(json_pack("{s:s, s:s, s:s}", "id", pos[0], "providers",
                                 providers ? providers : "", "secret",
                                 secret));
    } else {
        printf("%s\n", secret);
        fprintf(stderr,
                "agent-iam: follower \"%s\" registered (providers: %s); its "
                "credential is printed once: start it with "
                "--auth-token-file FILE holding that line\n",
                pos[0], providers && *providers ? providers : "none");
    }
    OPENSSL_cleanse(secret, strlen(secret));
    ai_free(secret);
    return CLI_OK;
}

static void print_list(const json_t *reg, const json_t *seen)
{
    size_t i;
    json_t *f;

    if (json_array_size(reg) == 0) {
        printf("No followers registered\n");
        return;
    }
    printf("%-24s %-25s %-10s %s\n", "ID", "CREATED", "LAG", "PROVIDERS");
    json_array_foreach(reg, i, f) {
        const char *id = json_string_value(json_object_get(f, "id"));
        const char *pv = json_string_value(json_object_get(f, "providers"));
        char lag[24] = "-";
        size_t k;
        json_t *s;
        json_array_foreach(seen, k, s)
            if (id && strcmp(id, json_string_value(json_object_get(s, "id")) ?
                                     json_string_value(json_object_get(s, "id"))
                                     : "") == 0)
                snprintf(lag, sizeof lag, "%lld",
                         (long long)json_integer_value(
                             json_object_get(s, "lag")));
        printf("%-24s %-25s %-10s %s\n", id ? id : "?",
               json_string_value(json_object_get(f, "createdAt")), lag,
               pv && *pv ? pv : "(none)");
    }
}

static int list(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    const cli_opt opts[] = {CLI_REMOTE_OPTS(r), {NULL, NULL, NULL}};
    json_t *ans = NULL, *reg, *seen = NULL;
    char *pos[1], *text = NULL;
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(list_usage, argc, argv, opts, pos, 0, &npos,
                        false)) ||
        (rc = cli_remote_open(c, r, list_usage, true)) != CLI_OK)
        return rc;
    if (r->on) {
        if (cli_remote_call(r, "GET", "/v1/admin/followers", NULL, &ans,
                            &err) != AI_OK)
            return cli_fail(&err);
        reg = json_incref(json_object_get(ans, "registered"));
        seen = json_incref(json_object_get(ans, "followers"));
        json_decref(ans);
    } else {
        ai_broker *b = cli_broker(c);
        if (b == NULL)
            return CLI_FAIL;
        rc = ai_broker_list_followers(b, &text, &err);
        ai_broker_close(b);
        if (rc != AI_OK)
            return cli_fail(&err);
        reg = json_loads(text, 0, NULL);
        ai_free_string(text);
    }
    if (!json_is_array(reg)) {
        json_decref(reg);
        json_decref(seen);
        return cli_failf("no list of followers in the answer\n");
    }
    if (c->json)
        cli_print_json(json_incref(reg));
    else
        print_list(reg, seen);
    json_decref(reg);
    json_decref(seen);
    return CLI_OK;
}

static int remove_one(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    const cli_opt opts[] = {CLI_REMOTE_OPTS(r), {NULL, NULL, NULL}};
    char *pos[1], path[128];
    json_t *ans = NULL;
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(remove_usage, argc, argv, opts, pos, 1, &npos,
                        false)) ||
        (rc = one_id(remove_usage, npos, pos)) ||
        (rc = cli_remote_open(c, r, remove_usage, true)) != CLI_OK)
        return rc;
    if (r->on) {
        snprintf(path, sizeof path, "/v1/admin/followers/%s", pos[0]);
        if (cli_remote_call(r, "DELETE", path, NULL, &ans, &err) != AI_OK)
            return cli_fail(&err);
        json_decref(ans);
    } else {
        ai_broker *b = cli_broker(c);
        if (b == NULL)
            return CLI_FAIL;
        rc = ai_broker_remove_follower(b, pos[0], &err);
        ai_broker_close(b);
        if (rc != AI_OK)
            return cli_fail(&err);
    }
    if (c->json)
        cli_print_json(json_pack("{s:s, s:b}", "id", pos[0], "removed", 1));
    else
        printf("follower \"%s\" removed: its credential no longer works\n",
               pos[0]);
    return CLI_OK;
}

/* `agent-iam followers add|list|remove ...`: the exit code. */
int cli_followers(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam followers add ID [--providers P,Q|'*'] | list | "
        "remove ID";
    static const cli_remote_cmd cmds[] = {{"add", add},
                                          {"list", list},
                                          {"remove", remove_one}};

    return cli_remote_group(c, cmds, sizeof cmds / sizeof *cmds, usage,
                            "followers command", argc, argv);
}
