/* cmd_config.c - `agent-iam config` and `apikey` (being written). */
#include "cli/cli.h"

int cli_config(cli_ctx *c, int argc, char **argv)
{
    (void)c, (void)argc, (void)argv;
    return cli_failf("config: not built yet");
}

int cli_apikey(cli_ctx *c, int argc, char **argv)
{
    (void)c, (void)argc, (void)argv;
    return cli_failf("apikey: not built yet");
}
