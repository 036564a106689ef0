/* cmd_audit.c - `agent-iam audit tail|verify` (being written). */
#include "cli/cli.h"

int cli_audit(cli_ctx *c, int argc, char **argv)
{
    (void)c, (void)argc, (void)argv;
    return cli_failf("audit: not built yet");
}
