/* token.c - `agent-iam token ...` subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent_iam.h"
#include "cli/cli.h"

/* `token show TOKEN`: the decoded claims, pretty-printed, unverified. */
static int show(int argc, char **argv)
{
    ai_err err = {0};
    ai_token *tok = NULL;
    json_t *doc = NULL;
    char *wire, *out = NULL;
    size_t len;
    int rc = CLI_FAIL;

    if (argc != 1) {
        fprintf(stderr, "usage: agent-iam token show TOKEN|-|@FILE\n");
        return CLI_USAGE;
    }
    if ((wire = cli_read_token(argv[0], &len)) == NULL)
        return CLI_FAIL;
    if (ai_token_deserialize(wire, len, &tok, &err) != AI_OK) {
        fprintf(stderr, "agent-iam: %s\n", err.msg);
        goto done;
    }
    doc = json_loads(ai_token_json(tok), JSON_REJECT_DUPLICATES, NULL);
    out = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (out == NULL) {
        fprintf(stderr, "agent-iam: out of memory\n");
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
    (void)c;
    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return show(argc - 1, argv + 1);
    fprintf(stderr, "usage: agent-iam token show TOKEN|-|@FILE\n"
                    "(token create-root, delegate, verify, check and refresh "
                    "need a broker home, which is not built yet)\n");
    return CLI_USAGE;
}
