/* main.c - the agent-iam command: global options, then one subcommand.
 * No logic of its own; the only place in the project that may exit.
 * Exit codes: 0 ok, 1 denied/invalid/failed, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char usage_text[] =
    "usage: agent-iam [--home DIR] [--json] <command> [options]\n"
    "\n"
    "tokens:\n"
    "  token show TOKEN              a token's claims as JSON (not verified)\n"
    "  cred SCOPE RESOURCE --token TOKEN [--format json|token]\n"
    "                                a provider credential (CredentialResult);\n"
    "                                provider TLS trusts\n"
    "                                $AGENT_IAM_PROVIDER_CA_FILE when set\n"
    "\n"
    "keys and revocation (local home):\n"
    "  key list                      signing key versions and their states\n"
    "  key import --file F [--force] a raw 32-byte secret as version 1\n"
    "  key export --version N        a key's 32 raw bytes on stdout\n"
    "  rotate-key [--grace DURATION] a new signing key; older ones verify\n"
    "                                for DURATION (default 90d)\n"
    "  revoke ID [--reason R]        revoke a token (and its descendants)\n"
    "  revoke --agent ID [--reason R]  revoke every token of an agent\n"
    "  unrevoke ID | --agent ID      take a revocation back\n"
    "  audit tail [-n N]             the last audit rows\n"
    "  audit verify                  check the audit chain\n"
    "\n"
    "providers:\n"
    "  config show                   configuration, secrets redacted\n"
    "  config init github|google|aws [options]\n"
    "  apikey add --name N --provider P --key K|--key-file F|--key -\n"
    "  apikey list | apikey remove NAME\n"
    "\n"
    "  status                        the home, keys, revocations\n"
    "  backup FILE [--force]         a consistent copy of the home's database,\n"
    "                                also while a server runs on it (sealed\n"
    "                                under the home's master.key: keep both)\n"
    "\n"
    "service:\n"
    "  serve [--port 8443] [--host ADDR] --auth-token T|--auth-token-file F\n"
    "        [--admin-token T] [--tls-cert F --tls-key F] [--insecure-http]\n"
    "                                the leader over HTTPS (docs/http-api.md)\n"
    "  follower --leader-url URL --auth-token T --follower-id ID [--ca-cert F]\n"
    "        [--port 8443] [--sync-interval 60s] [--max-staleness 1h]\n"
    "                                a replica of the leader serving agents\n"
    "  sync --leader-url URL --auth-token T --follower-id ID [--ca-cert F]\n"
    "                                one forced sync of the home from the leader\n"
    "  version | help\n"
    "\n"
    "on a running leader instead of the home (rotate-key, revoke, unrevoke,\n"
    "token create-root, config init, apikey add|remove, status):\n"
    "  --leader-url URL --auth-token T|--auth-token-file F [--ca-cert F]\n"
    "  (else $AGENT_IAM_LEADER_URL, $AGENT_IAM_AUTH_TOKEN, $AGENT_IAM_CA_CERT)\n"
    "\n"
    "The home is --home, else $AGENT_IAM_HOME, else ~/.agent-iam. TOKEN is\n"
    "the token, '-' to read it from stdin, or @PATH to read it from a file\n"
    "(tokens in argv are visible to other users).\n";

typedef struct command {
    const char *name;
    int (*run)(cli_ctx *c, int argc, char **argv);
} command;

static const command commands[] = {
    {"token", cli_token},       {"key", cli_key},
    {"rotate-key", cli_rotate_key}, {"revoke", cli_revoke},
    {"unrevoke", cli_unrevoke}, {"audit", cli_audit},
    {"config", cli_config},     {"apikey", cli_apikey},
    {"status", cli_status},     {"cred", cli_cred},
    {"serve", cli_serve},       {"follower", cli_follower},
    {"sync", cli_sync},
    {"backup", cli_backup},
};

int main(int argc, char **argv)
{
    cli_ctx c = {NULL, false, NULL};
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int n = 0, rc = CLI_USAGE;

    if (args == NULL)
        return CLI_FAIL;
    /* --home and --json may stand anywhere; take them out first. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (strcmp(argv[i], "--home") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "agent-iam: --home needs a directory\n");
                goto done;
            }
            c.home_flag = argv[++i];
        } else if (strncmp(argv[i], "--home=", 7) == 0) {
            c.home_flag = argv[i] + 7;
        } else {
            args[n++] = argv[i];
        }
    }
    if (n == 0) {
        fputs(usage_text, stderr);
        goto done;
    }
    if (strcmp(args[0], "help") == 0 || strcmp(args[0], "--help") == 0 ||
        strcmp(args[0], "-h") == 0) {
        fputs(usage_text, stdout);
        rc = CLI_OK;
        goto done;
    }
    if (strcmp(args[0], "version") == 0 || strcmp(args[0], "--version") == 0) {
        printf("agent-iam %s\n", ai_version());
        rc = CLI_OK;
        goto done;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(args[0], commands[i].name) == 0) {
            rc = commands[i].run(&c, n - 1, args + 1);
            goto done;
        }
    fprintf(stderr, "agent-iam: unknown command \"%s\"\n\n", args[0]);
    fputs(usage_text, stderr);
done:
    store_close(c.st);
    free(args);
    return rc;
}
