/* listen.c - the listening flags that `serve` and `follower` share: port,
 * worker threads, connection limits, per-agent rate. */
#include "cli/cli.h"

int cli_listen_parse(const char *usage, const cli_listen *in,
                     cli_listen_vals *out)
{
    long long n;

    if (in->port != NULL) {
        if (!cli_int(in->port, 0, 65535, &n))
            return cli_usage(usage, "--port must be 0 to 65535");
        out->port = (int)n;
    }
    if (in->threads != NULL) {
        if (!cli_int(in->threads, 1, 256, &n))
            return cli_usage(usage, "--threads must be 1 to 256");
        out->threads = (unsigned)n;
    }
    if (in->max_conns != NULL) {
        if (!cli_int(in->max_conns, 16, 1000000, &n))
            return cli_usage(usage, "--max-conns must be 16 to 1000000");
        out->max_conns = (unsigned)n;
    }
    if (in->per_ip != NULL) {
        if (!cli_int(in->per_ip, 1, 1000000, &n))
            return cli_usage(usage,
                             "--max-conns-per-ip must be 1 to 1000000");
        out->max_conns_per_ip = (unsigned)n;
    }
    return CLI_OK;
}
