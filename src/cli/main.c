/* main.c - the agent-iam command: global options, then one subcommand;
 * the help list. No logic of its own; the only place in the project that
 * may exit. It owns the argv array the commands parse, and frees the
 * copies cli_parse puts in it in place of secrets.
 * Exit codes: 0 ok, 1 denied/invalid/failed, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Every command with its flags, in the words of its own usage (-h);
 * tests/security/cli_test.py holds the two to each other. An entry is
 * indented two spaces, its further flags six, its description 32. */
static const char usage_text[] =
    "usage: agent-iam [--home DIR] [--json] COMMAND [options]\n"
    "       agent-iam COMMAND -h|--help, agent-iam help COMMAND: its usage\n"
    "\n"
    "tokens:\n"
    "  token create-root --agent-id ID --scopes a,b [--constraints JSON]\n"
    "      [--ttl-days N] [--max-ttl-days N] [--max-depth N]\n"
    "      [--no-delegatable] [--identity JSON] [--federation JSON]\n"
    "      [--capabilities JSON] [LEADER]\n"
    "                                a root token, printed alone\n"
    "  token delegate --parent TOKEN --scopes a,b [--agent-id ID]\n"
    "      [--constraints JSON] [--ttl-minutes N] [--no-delegatable]\n"
    "      [--no-inherit-identity] [--federation JSON] [--capabilities JSON]\n"
    "      [SERVER]                  a child token, printed alone\n"
    "  token verify TOKEN [SERVER]   \"valid\", or why not (exit 1)\n"
    "  token check TOKEN SCOPE RESOURCE [SERVER]\n"
    "                                \"allowed\", or why not (exit 1)\n"
    "  token refresh TOKEN [--ttl-minutes N] [SERVER]\n"
    "                                a new token for the same grant\n"
    "  token show TOKEN              a token's claims as JSON (not verified)\n"
    "  cred SCOPE RESOURCE --token TOKEN [--format json|token] [SERVER]\n"
    "                                a provider credential (CredentialResult);\n"
    "                                provider TLS trusts\n"
    "                                $AGENT_IAM_PROVIDER_CA_FILE when set\n"
    "\n"
    "keys, revocation, audit:\n"
    "  key list                      signing key versions and their states\n"
    "  key import --file F [--force]\n"
    "                                a raw 32-byte secret as version 1\n"
    "  key export --version N        a key's 32 raw bytes on stdout\n"
    "  rotate-key [--grace DURATION] [--force] [LEADER]\n"
    "                                a new signing key; older ones verify\n"
    "                                for DURATION (default 90d)\n"
    "  revoke TOKEN_ID [--reason R] [LEADER]\n"
    "                                revoke a token (and its descendants);\n"
    "                                TOKEN_ID is 22 base64url characters\n"
    "  revoke --agent AGENT_ID [--reason R] [LEADER]\n"
    "                                revoke every token of an agent\n"
    "  unrevoke TOKEN_ID | --agent AGENT_ID [LEADER]\n"
    "                                take a revocation back\n"
    "  audit tail [-n N]             the last audit rows\n"
    "  audit verify                  check the audit chain\n"
    "\n"
    "providers:\n"
    "  config show                   configuration, secrets redacted\n"
    "  config init github --app-id ID --installation-id ID\n"
    "      --private-key FILE|- [--owner LOGIN] [--api-url URL] [LEADER]\n"
    "  config init google --client-id ID --client-secret S|\n"
    "      --client-secret-file F --refresh-token T|--refresh-token-file F\n"
    "      [--token-url URL] [LEADER]\n"
    "  config init aws --region R --role-arn ARN [--access-key-id ID\n"
    "      --secret-access-key K|--secret-access-key-file F]\n"
    "      [--external-id ID] [--duration-seconds N] [--sts-url URL]\n"
    "      [LEADER]\n"
    "  apikey add --name N --provider P --key K|--key-file F|--key -\n"
    "      [--base-url URL] [--ttl-minutes N] [LEADER]\n"
    "  apikey list                   the API keys, without their secrets\n"
    "  apikey remove NAME [LEADER]\n"
    "\n"
    "home:\n"
    "  status [LEADER]               the home (or a server), keys, revocations\n"
    "  backup FILE [--force]         a consistent copy of the home's database,\n"
    "                                also while a server runs on it (sealed\n"
    "                                under the home's master.key: keep both)\n"
    "\n"
    "service:\n"
    "  serve [--port N] [--host ADDR] [--admin-token T|--admin-token-file F]\n"
    "      [--auth-token T|--auth-token-file F] [--metrics-token T|\n"
    "      --metrics-token-file F] [--public-metrics] [--tls-cert F\n"
    "      --tls-key F] [--insecure-http] [--threads N] [--max-conns N]\n"
    "      [--max-conns-per-ip N] [--access-log FILE|-|off]\n"
    "      [--changelog-retain N] [--agent-rate N[/s|/m]|off]\n"
    "      [--agent-burst N] [--audit-retain-days D|off]\n"
    "      [--cluster FILE] [--node-id N] [--election-timeout MS] [--join]\n"
    "      [--snapshot-every N]\n"
    "                                the leader over HTTPS (docs/http-api.md);\n"
    "                                with --cluster, a voter of a leader group\n"
    "  cluster status [LEADER]       a leader group as one of its voters sees\n"
    "                                it (serve --cluster)\n"
    "  cluster transfer [ID] [LEADER]\n"
    "                                hand the group's leadership to voter ID\n"
    "  cluster add ID [LEADER]       make node ID (started with --join) a voter\n"
    "  cluster remove ID [LEADER]    take node ID out of the group\n"
    "  followers add ID [--providers P,Q|'*'] [LEADER]\n"
    "                                register a follower: prints its own\n"
    "                                credential, once\n"
    "  followers list [LEADER]       the registered followers\n"
    "  followers remove ID [LEADER]  its credential stops working at once\n"
    "  follower --leader-url URL --auth-token T|--auth-token-file F\n"
    "      --follower-id ID [--ca-cert F] [--port N] [--host ADDR]\n"
    "      [--tls-cert F --tls-key F] [--insecure-http] [--threads N]\n"
    "      [--max-conns N] [--max-conns-per-ip N] [--access-log FILE|-|off]\n"
    "      [--metrics-token T|--metrics-token-file F] [--public-metrics]\n"
    "      [--sync-interval 60s] [--max-staleness 1h] [--long-poll 25s]\n"
    "      [--degraded-after 5m] [--limited-after 1h] [--offline-after 24h]\n"
    "      [--agent-rate N[/s|/m]|off] [--agent-burst N]\n"
    "      [--audit-retain-days D|off]\n"
    "                                a replica of the leader serving agents\n"
    "  sync --leader-url URL --auth-token T|--auth-token-file F\n"
    "      --follower-id ID [--ca-cert F]\n"
    "                                one forced sync of the home from the leader\n"
    "  version                       the version of agent-iam\n"
    "  help [COMMAND]                this list, or one command's usage\n"
    "\n"
    "LEADER: act on a running leader instead of the home:\n"
    "  --leader-url URL --auth-token T|--auth-token-file F [--ca-cert F]\n"
    "  (else $AGENT_IAM_LEADER_URL, $AGENT_IAM_AUTH_TOKEN, $AGENT_IAM_CA_CERT)\n"
    "SERVER: act on a running leader or follower, the token as the bearer:\n"
    "  --leader-url URL [--ca-cert F]\n"
    "  (else $AGENT_IAM_LEADER_URL, $AGENT_IAM_CA_CERT)\n"
    "\n"
    "The home is --home, else $AGENT_IAM_HOME, else ~/.agent-iam. TOKEN is\n"
    "the token, '-' to read it from stdin, or @PATH to read it from a file.\n"
    "A secret (TOKEN, --token, --parent, --key, a provider's secret, an auth\n"
    "or admin token) may be '-' for one line of stdin or come from its\n"
    "-file option; one given in argv is zeroed there at once, but it was\n"
    "visible to other users until then.\n";

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
    {"backup", cli_backup},     {"followers", cli_followers},
    {"cluster", cli_cluster},
};

static int run(cli_ctx *c, int n, char **args)
{
    if (n == 0) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    if (strcmp(args[0], "help") == 0 || cli_is_help(args[0])) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (strcmp(args[0], "version") == 0 || strcmp(args[0], "--version") == 0) {
        if (n > 1 && cli_is_help(args[1]))
            printf("usage: agent-iam version\n");
        else if (c->json)
            cli_print_json(json_pack("{s:s}", "version", ai_version()));
        else
            printf("agent-iam %s\n", ai_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(args[0], commands[i].name) == 0)
            return commands[i].run(c, n - 1, args + 1);
    cli_failc("usage", "unknown command \"%s\"", args[0]);
    fputc('\n', stderr);
    fputs(usage_text, stderr);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    static char help_word[] = "--help";
    cli_ctx c = {NULL, false, NULL};
    /* args: the words after the global options; given: the same pointers,
     * to find the slots cli_parse moved to the heap (secrets). */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    char **given = calloc((size_t)argc + 1, sizeof *given);
    int n = 0, rc = CLI_USAGE;

    if (args == NULL || given == NULL) {
        free(args);
        free(given);
        return CLI_FAIL;
    }
    /* --home and --json may stand anywhere; take them out first (--json
     * before anything can fail, so that every error is JSON). */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli_json_errors(true);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (strcmp(argv[i], "--home") == 0) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                cli_usage("agent-iam --home DIR COMMAND ...",
                          "--home needs a directory");
                goto done;
            }
            c.home_flag = argv[++i];
        } else if (strncmp(argv[i], "--home=", 7) == 0) {
            c.home_flag = argv[i] + 7;
        } else {
            args[n++] = argv[i];
        }
    }
    /* `help COMMAND...` is `COMMAND... --help` */
    if (n > 1 && strcmp(args[0], "help") == 0) {
        memmove(args, args + 1, (size_t)(n - 1) * sizeof *args);
        args[n - 1] = help_word;
    }
    memcpy(given, args, (size_t)n * sizeof *args);
    rc = run(&c, n, args);
    if (rc == CLI_HELP)
        rc = CLI_OK;
done:
    store_close(c.st);
    for (int i = 0; i < n; i++)
        if (given[i] != NULL && args[i] != given[i])
            cli_wipe_free(args[i]);
    free(args);
    free(given);
    return rc;
}
