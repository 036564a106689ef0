/* remote.c - the admin commands acting on a running leader instead of the
 * local home: the options that say so (--leader-url, --auth-token,
 * --auth-token-file, --ca-cert and their environment fallbacks) and the
 * one call that sends a JSON body and reads the JSON answer.
 *
 * Which home: --leader-url, else $AGENT_IAM_LEADER_URL, unless --home was
 * given (a flag wins over the environment, as --home wins over
 * $AGENT_IAM_HOME); --home and --leader-url together are a usage error.
 * The auth token is --auth-token (argv, or "-" for a line of stdin), else
 * --auth-token-file, else $AGENT_IAM_AUTH_TOKEN; the CA file --ca-cert,
 * else $AGENT_IAM_CA_CERT, else the system's CAs. The token is wiped
 * once the command is done and never printed. The agent verbs
 * (cli_agent_open) send the agent's own token as the bearer instead. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

/* An environment variable's value, or NULL when unset or empty. */
static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

int cli_remote_open(const cli_ctx *c, cli_remote *r, const char *usage,
                    bool need_token)
{
    const char *url = r->url, *ca = r->ca, *tok;
    bool argv_token = false;
    FILE *f;

    r->on = false;
    r->secret = NULL;
    memset(&r->lc, 0, sizeof r->lc);
    if (url != NULL && c->home_flag != NULL)
        return cli_usage(usage, "give --home or --leader-url, not both");
    if (url == NULL && c->home_flag == NULL)
        url = env("AGENT_IAM_LEADER_URL");
    if (url == NULL) {
        if (r->token != NULL || r->token_file != NULL || r->ca != NULL)
            return cli_usage(usage, "--%s goes with --leader-url",
                             r->token      ? "auth-token"
                             : r->token_file ? "auth-token-file"
                                             : "ca-cert");
        return CLI_OK; /* the local home */
    }
    if (!leader_url_ok(url))
        return cli_usage(usage,
                         "the leader URL must be https://HOST[:PORT] "
                         "without user info, query or fragment (http:// "
                         "only to localhost, 127.0.0.1 or [::1]), at most "
                         "%d characters",
                         LEADER_URL_MAX);
    if (r->token != NULL && r->token_file != NULL)
        return cli_usage(usage, "give --auth-token or --auth-token-file, "
                                "not both");
    if (ca == NULL)
        ca = env("AGENT_IAM_CA_CERT");
    if (ca != NULL) {
        /* libcurl would only say "error setting certificate file" */
        if ((f = fopen(ca, "r")) == NULL)
            return cli_failf("cannot open the CA file %s: %s", ca,
                             strerror(errno));
        fclose(f);
    }
    if (r->token != NULL || r->token_file != NULL) {
        r->secret = cli_secret(r->token, r->token_file, "--auth-token");
        if (r->secret == NULL)
            return CLI_FAIL;
        argv_token = r->token != NULL && strcmp(r->token, "-") != 0;
        /* cli_parse's copy (argv itself was zeroed at once): not kept
         * for the rest of the run */
        if (argv_token)
            explicit_bzero((char *)(uintptr_t)r->token, strlen(r->token));
    } else if (!r->agent && (tok = env("AGENT_IAM_AUTH_TOKEN")) != NULL) {
        if ((r->secret = strdup(tok)) == NULL)
            return cli_failf("out of memory");
    } else if (need_token) {
        return cli_usage(usage, "--auth-token (or --auth-token-file, or "
                                "$AGENT_IAM_AUTH_TOKEN) is required with "
                                "--leader-url");
    }
    if (r->secret != NULL && !leader_token_ok(r->secret)) {
        cli_remote_close(r);
        if (argv_token)
            return cli_usage(usage, "the auth token must be 1 to %d "
                                    "visible ASCII characters",
                             LEADER_TOKEN_MAX);
        return cli_failf("the auth token must be 1 to %d visible ASCII "
                         "characters", LEADER_TOKEN_MAX);
    }
    r->lc.url = url;
    r->lc.token = r->secret;
    r->lc.ca_file = ca;
    r->on = true;
    return CLI_OK;
}

int cli_agent_open(const cli_ctx *c, cli_remote *r, const char *usage)
{
    r->agent = true;
    r->token = r->token_file = NULL;
    return cli_remote_open(c, r, usage, false);
}

ai_code cli_agent_bearer(cli_remote *r, const char *wire, ai_err *err)
{
    ai_err_clear(err);
    if (!leader_token_ok(wire))
        return ai_err_set(err, AI_ETOKEN, "invalid token: not 1 to %d "
                                          "visible ASCII characters",
                          LEADER_TOKEN_MAX);
    r->lc.token = wire;
    return AI_OK;
}

ai_code cli_agent_scope_call(cli_remote *r, const char *wire,
                             const char *path, const char *scope,
                             const char *resource, json_t **out, ai_err *err)
{
    *out = NULL;
    if (cli_agent_bearer(r, wire, err) != AI_OK)
        return err->code;
    return cli_remote_call(r, "POST", path,
                           json_pack("{s:s, s:s}", "scope", scope,
                                     "resource", resource),
                           out, err);
}

int cli_remote_group(cli_ctx *c, const cli_remote_cmd *cmds, size_t n,
                     const char *usage, const char *what, int argc,
                     char **argv)
{
    for (size_t i = 0; argc >= 1 && i < n; i++) {
        if (strcmp(argv[0], cmds[i].name) == 0) {
            cli_remote r = {0};
            int rc = cmds[i].fn(c, &r, argc - 1, argv + 1);

            cli_remote_close(&r);
            return rc;
        }
    }
    return cli_group_usage(usage, what, argc, argv);
}

void cli_remote_close(cli_remote *r)
{
    if (r->secret != NULL) {
        explicit_bzero(r->secret, strlen(r->secret));
        free(r->secret);
    }
    r->secret = NULL;
    r->lc.token = NULL;
    r->on = false;
}

ai_code cli_remote_send(const cli_remote *r, const char *method,
                        const char *path, const char *body, json_t **out,
                        ai_err *err)
{
    json_error_t jerr;
    char *text = NULL;
    long status = 0;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    rc = leader_client_call(&r->lc, method, path, body, &status, &text, err);
    if (rc != AI_OK)
        return rc;
    /* XXX jansson's lexer frees its copies of strings (a new token)
     * unwiped; the answer text itself is wiped. */
    *out = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    leader_body_free(text);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ai_err_set(err, AI_EINTERNAL, "leader: the answer to %s %s "
                                             "is not a JSON object (%ld)",
                          method, path, status);
    }
    return AI_OK;
}

/* Overwrite every string of a JSON value (bodies hold secrets). jansson
 * lends its writable buffers as const, hence the cast through uintptr_t. */
void cli_json_free(json_t *j)
{
    json_wipe_decref(j);
}

ai_code cli_remote_call(const cli_remote *r, const char *method,
                        const char *path, json_t *body, json_t **out,
                        ai_err *err)
{
    char *text = NULL;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    if (body == NULL && (strcmp(method, "POST") == 0 ||
                         strcmp(method, "PUT") == 0))
        return ai_err_set(err, AI_EINVAL, "an argument is not UTF-8 text "
                                          "(or out of memory)");
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        cli_json_free(body);
        if (text == NULL)
            return ai_err_set(err, AI_ENOMEM, "out of memory");
    }
    rc = cli_remote_send(r, method, path, text, out, err);
    if (text != NULL) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    return rc;
}
