/* cmd_follower.c - `agent-iam follower` (replicate and serve until
 * SIGTERM/SIGINT) and `agent-iam sync` (one forced sync of the home; on a
 * terminal, with its progress on stderr). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"

static const char follower_usage[] =
    "agent-iam follower --leader-url URL --auth-token T|--auth-token-file F "
    "--follower-id ID\n"
    "                   [--ca-cert F] [--port N] [--host ADDR] [--tls-cert F "
    "--tls-key F]\n"
    "                   [--insecure-http] [--threads N] [--max-conns N]\n"
    "                   [--metrics-token T|--metrics-token-file F] "
    "[--public-metrics]\n"
    "                   [--max-conns-per-ip N] [--access-log "
    "FILE|-|off]\n"
    "                   [--sync-interval 60s] [--max-staleness 1h] "
    "[--long-poll 25s]\n"
    "                   [--degraded-after 5m] [--limited-after 1h] "
    "[--offline-after 24h]\n"
    "                   [--agent-rate N[/s|/m]|off] [--agent-burst N] "
    "[--audit-retain-days D|off]";
static const char sync_usage[] =
    "agent-iam sync --leader-url URL --auth-token T|--auth-token-file F "
    "--follower-id ID [--ca-cert F]";

/* The leader flags shared by both commands. */
typedef struct lead_opts {
    const char *url, *token, *token_file, *id, *ca;
} lead_opts;

static int leader_config(const char *usage, lead_opts *o,
                         ai_follower_config *cfg, char **secret)
{
    const char *e;
    int rc;

    if (o->url == NULL && (e = getenv("AGENT_IAM_LEADER_URL")) && *e)
        o->url = e;
    if (o->ca == NULL && (e = getenv("AGENT_IAM_CA_CERT")) && *e)
        o->ca = e;
    if (o->url == NULL || o->id == NULL)
        return cli_usage(usage, "--leader-url and --follower-id are required");
    if (o->token != NULL && o->token_file != NULL)
        return cli_usage(usage, "give --auth-token or --auth-token-file");
    if ((rc = cli_secret_opt(usage, o->token, o->token_file,
                             "AGENT_IAM_AUTH_TOKEN", "--auth-token",
                             secret)) != CLI_OK)
        return rc;
    if (*secret == NULL)
        return cli_usage(usage, "--auth-token (or --auth-token-file, or "
                                "$AGENT_IAM_AUTH_TOKEN) is required");
    if (o->ca != NULL && access(o->ca, R_OK) != 0) {
        cli_wipe_free(*secret);
        *secret = NULL;
        return cli_failf("cannot read the CA file %s: %s", o->ca,
                         strerror(errno));
    }
    cfg->leader_url = o->url;
    cfg->auth_token = *secret;
    cfg->follower_id = o->id;
    cfg->ca_cert_file = o->ca;
    return CLI_OK;
}

static int duration(const char *usage, const char *flag, const char *v,
                    int64_t *ms)
{
    if (v != NULL && (!cli_duration(v, ms) || *ms <= 0))
        return cli_usage(usage, "--%s is a duration such as 30s, 5m, 1h", flag);
    return CLI_OK;
}

int cli_follower(cli_ctx *c, int argc, char **argv)
{
    lead_opts lo = {0};
    cli_listen li = {NULL, NULL, NULL, NULL, NULL, NULL, false};
    cli_listen_vals lv = {0, 0, 0, 0, NULL, false};
    const char *host = NULL, *cert = NULL, *key = NULL, *log = NULL,
               *interval = NULL, *stale = NULL, *poll = NULL, *deg = NULL, *lim = NULL, *off = NULL;
    bool insecure = false;
    cli_limits limits = {NULL, NULL, NULL};
    const cli_opt opts[] = {
        {"leader-url", &lo.url, NULL}, {"auth-token", &lo.token, NULL},
        {"auth-token-file", &lo.token_file, NULL},
        {"follower-id", &lo.id, NULL}, {"ca-cert", &lo.ca, NULL},
        {"host", &host, NULL}, CLI_LISTEN_OPTS(&li),
        {"tls-cert", &cert, NULL}, {"tls-key", &key, NULL},
        {"insecure-http", NULL, &insecure}, {"access-log", &log, NULL},
        {"sync-interval", &interval, NULL},
        {"max-staleness", &stale, NULL}, {"long-poll", &poll, NULL},
        {"degraded-after", &deg, NULL}, {"limited-after", &lim, NULL},
        {"offline-after", &off, NULL}, CLI_LIMITS_OPTS(&limits),
        {NULL, NULL, NULL}};
    ai_follower_config cfg;
    ai_follower *f = NULL;
    char home[4096], *secret = NULL, *pos[1];
    int64_t pl = 25000;
    int npos, rc, log_fd = 2;
    sigset_t set;
    ai_err err;

    ai_follower_config_init(&cfg);
    if ((rc = cli_parse(follower_usage, argc, argv, opts, pos, 0, &npos,
                        false)) ||
        (rc = cli_host_check(follower_usage, host)) ||
        (rc = cli_limits_parse(follower_usage, &limits, &cfg.agent_rate,
                               &cfg.agent_burst, &cfg.audit_retain_ms)) !=
            CLI_OK)
        return rc;
    lv.port = cfg.port;
    if ((rc = cli_listen_parse(follower_usage, &li, &lv)) != CLI_OK)
        return rc;
    CLI_LISTEN_APPLY(cfg, lv);
    if ((cert == NULL) != (key == NULL)) {
        rc = cli_usage(follower_usage,
                       "give --tls-cert and --tls-key together");
        goto done;
    }
    if ((rc = duration(follower_usage, "sync-interval", interval,
                       &cfg.sync_interval_ms)) ||
        (rc = duration(follower_usage, "max-staleness", stale,
                       &cfg.max_staleness_ms)) ||
        (rc = duration(follower_usage, "long-poll", poll, &pl)) ||
        (rc = duration(follower_usage, "degraded-after", deg,
                       &cfg.degraded_ms)) ||
        (rc = duration(follower_usage, "limited-after", lim,
                       &cfg.limited_ms)) ||
        (rc = duration(follower_usage, "offline-after", off,
                       &cfg.offline_ms)))
        goto done;
    if (pl < 1000 || pl > 60000) {
        rc = cli_usage(follower_usage, "--long-poll is 1s to 60s");
        goto done;
    }
    cfg.long_poll_s = (int)(pl / 1000);
    if ((rc = leader_config(follower_usage, &lo, &cfg, &secret)) != CLI_OK)
        goto done;
    if ((rc = cli_access_log(log, &log_fd)) != CLI_OK)
        goto done;
    if (store_home_path(c->home_flag, home, sizeof home, &err) != AI_OK) {
        rc = cli_fail(&err);
        goto done;
    }
    cfg.home = home;
    cfg.host = host;
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    cfg.insecure_http = insecure;
    cfg.access_log_fd = log_fd;
    cli_block_stop_signals(&set);
    if (ai_follower_start(&cfg, &f, &err) != AI_OK) {
        rc = cli_fail(&err);
        goto done;
    }
    cli_wipe_free(secret); /* the connections keep their own copy */
    secret = NULL;
    if (insecure)
        fprintf(stderr, "agent-iam: WARNING: plain HTTP (--insecure-http): "
                        "tokens and secrets cross the network in clear\n");
    if (!insecure && ai_follower_ca_path(f)[0] != '\0')
        fprintf(stderr, "agent-iam: clients trust the CA %s\n",
                ai_follower_ca_path(f));
    fprintf(stderr,
            "agent-iam: follower %s of %s listening on %s://%s:%u (home %s)\n",
            lo.id, lo.url, insecure ? "http" : "https",
            host ? host : "0.0.0.0", (unsigned)ai_follower_port(f), home);
    cli_wait_stop(&set);
    ai_follower_stop(f, 10000);
    fprintf(stderr, "agent-iam: follower stopped\n");
    rc = CLI_OK;
done:
    if (log_fd > 2)
        close(log_fd);
    cli_wipe_free(secret);
    cli_listen_free(&lv);
    return rc;
}

/* `sync` on a terminal: one line on stderr, rewritten in place (\r) at
 * most every METER_MS once the sync has taken that long (a quick one shows
 * nothing), ended with a newline before the final line. */
#define METER_MS 200

typedef struct sync_meter {
    int64_t last;            /* ms (monotonic) of the last line, or start */
    ai_follower_progress p;  /* the latest told */
    bool pending;            /* p is newer than the line shown */
    int width;               /* of the line shown; 0: none yet */
} sync_meter;

/* v with thousands separators: 1234567 as "1,234,567". */
static const char *grouped(long long v, char buf[32])
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", v < 0 ? 0 : v), k = 0;

    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static void meter_show(sync_meter *m)
{
    char line[160], a[32], b[32];
    int n;

    if (m->p.snapshot && m->p.bytes < (1u << 20))
        n = snprintf(line, sizeof line, "agent-iam: snapshot %s revocations, "
                     "%llu KiB", grouped(m->p.revocations, a),
                     (unsigned long long)(m->p.bytes >> 10));
    else if (m->p.snapshot)
        n = snprintf(line, sizeof line, "agent-iam: snapshot %s revocations, "
                     "%.1f MiB", grouped(m->p.revocations, a),
                     (double)m->p.bytes / (1 << 20));
    else
        n = snprintf(line, sizeof line, "agent-iam: applied seq %s of %s",
                     grouped(m->p.applied_seq, a),
                     grouped(m->p.leader_seq, b));
    /* spaces over what a longer line before left */
    fprintf(stderr, "\r%s%*s", line, m->width > n ? m->width - n : 0, "");
    fflush(stderr);
    m->width = n;
    m->pending = false;
}

/* ai_follower_config.progress */
static void meter_tell(void *ud, const ai_follower_progress *p)
{
    sync_meter *m = ud;
    int64_t now = time_mono_ns() / 1000000;

    m->p = *p;
    m->pending = true;
    if (now - m->last < METER_MS)
        return;
    m->last = now;
    meter_show(m);
}

/* The last state told, then the newline, if a line was shown at all. */
static void meter_end(sync_meter *m)
{
    if (m->width == 0)
        return;
    if (m->pending)
        meter_show(m);
    fputc('\n', stderr);
}

int cli_sync(cli_ctx *c, int argc, char **argv)
{
    lead_opts lo = {0};
    const cli_opt opts[] = {
        {"leader-url", &lo.url, NULL}, {"auth-token", &lo.token, NULL},
        {"auth-token-file", &lo.token_file, NULL},
        {"follower-id", &lo.id, NULL}, {"ca-cert", &lo.ca, NULL},
        {NULL, NULL, NULL}};
    ai_follower_config cfg;
    char home[4096], *secret = NULL, *pos[1];
    int64_t applied = 0;
    int npos, rc;
    sync_meter meter = {0};
    ai_code sc;
    ai_err err;

    ai_follower_config_init(&cfg);
    cfg.serve = false;
    if ((rc = cli_parse(sync_usage, argc, argv, opts, pos, 0, &npos, false)) ||
        (rc = leader_config(sync_usage, &lo, &cfg, &secret)) != CLI_OK)
        return rc;
    if (store_home_path(c->home_flag, home, sizeof home, &err) != AI_OK) {
        cli_wipe_free(secret);
        return cli_fail(&err);
    }
    cfg.home = home;
    if (!c->json && isatty(2)) { /* scripts keep the one last line */
        meter.last = time_mono_ns() / 1000000;
        cfg.progress = meter_tell;
        cfg.progress_ud = &meter;
    }
    sc = ai_follower_sync(&cfg, &applied, &err);
    meter_end(&meter);
    rc = sc == AI_OK ? CLI_OK : cli_fail(&err);
    cli_wipe_free(secret);
    if (rc != CLI_OK)
        return rc;
    if (c->json)
        cli_print_json(json_pack("{s:s, s:I}", "home", home, "appliedSeq",
                                 (json_int_t)applied));
    else
        printf("synced %s from %s: leader seq %lld\n", home, lo.url,
               (long long)applied);
    return CLI_OK;
}
