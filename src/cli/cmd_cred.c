/* cmd_cred.c - `agent-iam cred SCOPE RESOURCE --token T [--format
 * json|token]`: a provider credential for a token, through the broker
 * (permission check, one use consumed, audit row), or with --leader-url
 * from a leader or a follower (POST /v1/credentials, the token as the
 * bearer). json prints the README's CredentialResult; token prints only
 * the secret value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/broker.h"
#include "cli/cli.h"

static const char usage[] =
    "agent-iam cred SCOPE RESOURCE --token TOKEN|-|@FILE "
    "[--format json|token] " CLI_AGENT_REMOTE_USAGE;

/* A string member of obj, or NULL. */
static const char *member(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The secret value alone: the bearer token, the API key, or the AWS
 * triple as shell exports. */
static int print_token(const json_t *j)
{
    const json_t *cred = json_object_get(j, "credential");
    const char *type = member(j, "credentialType"), *v;
    int rc = CLI_OK;

    if (type != NULL && strcmp(type, "bearer_token") == 0 &&
        (v = member(cred, "token")) != NULL) {
        printf("%s\n", v);
    } else if (type != NULL && strcmp(type, "api_key") == 0 &&
               (v = member(cred, "apiKey")) != NULL) {
        printf("%s\n", v);
    } else if (type != NULL && strcmp(type, "aws_credentials") == 0 &&
               member(cred, "accessKeyId") != NULL &&
               member(cred, "secretAccessKey") != NULL) {
        printf("export AWS_ACCESS_KEY_ID=%s\n"
               "export AWS_SECRET_ACCESS_KEY=%s\n",
               member(cred, "accessKeyId"), member(cred, "secretAccessKey"));
        if ((v = member(cred, "sessionToken")) != NULL)
            printf("export AWS_SESSION_TOKEN=%s\n", v);
    } else {
        rc = cli_failf("the %s credential has no token value to print "
                       "(use --format json)",
                       type ? type : "provider's");
    }
    return rc;
}

/* The CredentialResult j (taken: wiped and freed) as --format says. */
static int print_result(json_t *j, bool as_token)
{
    char *text;
    int rc = CLI_OK;

    if (as_token) {
        rc = print_token(j);
    } else if ((text = json_dumps(j, JSON_INDENT(2) |
                                         JSON_PRESERVE_ORDER)) == NULL) {
        rc = cli_failf("out of memory");
    } else {
        printf("%s\n", text);
        explicit_bzero(text, strlen(text));
        free(text);
    }
    cli_json_free(j);
    return rc;
}

/* cred on a leader or follower: POST /v1/credentials {scope, resource}
 * with the token as the bearer. */
static int cred_remote(cli_remote *r, const char *wire, const char *scope,
                       const char *resource, bool as_token)
{
    json_t *ans = NULL;
    ai_err err;
    ai_code code;

    code = cli_agent_scope_call(r, wire, "/v1/credentials", scope, resource,
                                &ans, &err);
    if (code != AI_OK) {
        cli_fail(&err);
        return code == AI_EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    return print_result(ans, as_token);
}

/* `agent-iam cred ...`: returns the exit code. */
int cli_cred(cli_ctx *c, int argc, char **argv)
{
    const char *tok = NULL, *format = NULL;
    cli_remote r = {0};
    const cli_opt opts[] = {{"token", &tok, NULL},
                            {"format", &format, NULL},
                            CLI_AGENT_REMOTE_OPTS(&r),
                            {NULL, NULL, NULL}};
    char *pos[2], *wire = NULL, *result = NULL;
    size_t len;
    int npos, rc;
    bool as_token = false;
    ai_broker *b = NULL;
    ai_err err;
    ai_code code;
    store *st;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 2, &npos, false)))
        return rc;
    if (npos < 1)
        return cli_usage(usage, "a scope is required");
    if (tok == NULL)
        return cli_usage(usage, "--token is required");
    if (format != NULL) {
        if (strcmp(format, "token") == 0)
            as_token = true;
        else if (strcmp(format, "json") != 0)
            return cli_usage(usage, "--format is json or token");
    }
    /* Not a usage error: the arguments parse; the scope names no
     * provider, so no credential can be had (exit 1, as the issue asks). */
    if (strchr(pos[0], ':') == NULL || pos[0][0] == ':')
        return cli_failf("scope \"%s\" has no provider segment (use "
                         "provider:resource:action)",
                         pos[0]);
    if ((rc = cli_agent_open(c, &r, usage)) != CLI_OK)
        return rc;
    if ((wire = cli_read_token(tok, &len)) == NULL) {
        cli_remote_close(&r);
        return CLI_FAIL;
    }
    if (r.on) {
        rc = cred_remote(&r, wire, pos[0], npos > 1 ? pos[1] : "",
                         as_token);
        goto done;
    }
    if ((st = cli_store(c)) == NULL || broker_wrap(st, &b, &err) != AI_OK) {
        if (st != NULL)
            cli_fail(&err);
        rc = CLI_FAIL;
        goto done;
    }
    code = ai_broker_get_credential(b, wire, len, pos[0],
                                    npos > 1 ? pos[1] : "", &result, &err);
    if (code != AI_OK) {
        cli_fail(&err);
        rc = code == AI_EINVAL ? CLI_USAGE : CLI_FAIL;
    } else {
        json_t *j = json_loads(result, 0, NULL);
        if (j == NULL)
            rc = cli_failf("out of memory");
        else
            rc = print_result(j, as_token);
    }
done:
    cli_remote_close(&r);
    ai_free_string(result);
    ai_broker_close(b);
    explicit_bzero(wire, len);
    free(wire);
    return rc;
}
