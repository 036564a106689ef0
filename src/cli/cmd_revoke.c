/* cmd_revoke.c - `agent-iam revoke` and `unrevoke` (being written). */
#include "cli/cli.h"

int cli_revoke(cli_ctx *c, int argc, char **argv)
{
    (void)c, (void)argc, (void)argv;
    return cli_failf("revoke: not built yet");
}

int cli_unrevoke(cli_ctx *c, int argc, char **argv)
{
    (void)c, (void)argc, (void)argv;
    return cli_failf("unrevoke: not built yet");
}
