/* listen.c - the listening flags that `serve` and `follower` share: port,
 * worker threads, connection limits, who may read /metrics and
 * /v1/status. */
#include <arpa/inet.h>
#include <string.h>

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
    out->public_metrics = in->public_metrics;
    return cli_secret_opt(usage, in->metrics, in->metrics_file,
                          "AGENT_IAM_METRICS_TOKEN", "--metrics-token",
                          &out->metrics_token);
}

int cli_host_check(const char *usage, const char *host)
{
    unsigned char a[16];
    char buf[64];
    size_t n;

    if (host == NULL || *host == '\0' || strcmp(host, "localhost") == 0 ||
        inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1)
        return CLI_OK;
    n = strlen(host);
    if (n > 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        if (inet_pton(AF_INET6, buf, a) == 1)
            return CLI_OK;
    }
    return cli_usage(usage, "--host must be an IP address (or localhost), "
                            "not %.64s", host);
}

void cli_listen_free(cli_listen_vals *v)
{
    cli_wipe_free(v->metrics_token);
    v->metrics_token = NULL;
}

/* --agent-rate: "off", or N, N/s (per second) or N/m (per minute), N a
 * whole number; 0 is off too. */
static bool agent_rate(const char *s, double *rate)
{
    char num[24];
    size_t n = strlen(s);
    double per = 1;
    long long v;

    if (strcmp(s, "off") == 0) {
        *rate = 0;
        return true;
    }
    if (n >= 2 && s[n - 2] == '/' && (s[n - 1] == 's' || s[n - 1] == 'm')) {
        per = s[n - 1] == 'm' ? 60 : 1;
        n -= 2;
    }
    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, s, n);
    num[n] = '\0';
    if (!cli_int(num, 0, 1000000, &v))
        return false;
    *rate = (double)v / per;
    return true;
}

/* --audit-retain-days: "off", or days as a decimal number with up to six
 * places (0.5 is 12 hours), at most 36500; 0 is off too. */
static bool retain_days(const char *s, int64_t *ms)
{
    const char *dot = strchr(s, '.');
    char whole[8], frac[7] = "000000";
    size_t wn = dot ? (size_t)(dot - s) : strlen(s), fn;
    long long w, f;

    if (strcmp(s, "off") == 0) {
        *ms = 0;
        return true;
    }
    fn = dot ? strlen(dot + 1) : 0;
    if (wn == 0 || wn >= sizeof whole || (dot && (fn == 0 || fn > 6)))
        return false;
    memcpy(whole, s, wn);
    whole[wn] = '\0';
    if (dot)
        memcpy(frac, dot + 1, fn);
    if (!cli_int(whole, 0, 36500, &w) || !cli_int(frac, 0, 999999, &f) ||
        (dot && (dot[1] < '0' || dot[1] > '9')) || (w == 36500 && f > 0))
        return false;
    /* millionths of a day: 86400000 ms / 1000000 = 86.4 ms each */
    *ms = (w * 1000000 + f) * 864 / 10;
    return true;
}

int cli_limits_parse(const char *usage, const cli_limits *in, double *rate,
                     unsigned *burst, int64_t *retain_ms)
{
    long long n;

    if (in->agent_rate != NULL && !agent_rate(in->agent_rate, rate))
        return cli_usage(usage, "--agent-rate is N, N/s or N/m (N a whole "
                                "number up to 1000000), or off");
    if (in->agent_burst != NULL) {
        if (!cli_int(in->agent_burst, 1, 10000000, &n))
            return cli_usage(usage, "--agent-burst must be 1 to 10000000");
        *burst = (unsigned)n;
    }
    if (in->audit_retain != NULL && !retain_days(in->audit_retain, retain_ms))
        return cli_usage(usage, "--audit-retain-days is a number of days "
                                "(0.5, 90; at most 36500), or off");
    return CLI_OK;
}
