/* cmd_serve.c - `agent-iam serve`: run the leader until SIGTERM/SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] =
    "agent-iam serve [--port N] [--host ADDR] [--admin-token T|"
    "--admin-token-file F]\n"
    "                [--auth-token T|--auth-token-file F] [--metrics-token T|"
    "\n                --metrics-token-file F] [--public-metrics] "
    "[--tls-cert F --tls-key F]\n"
    "                [--insecure-http] [--threads N] [--max-conns N]\n"
    "                [--max-conns-per-ip N] [--access-log FILE|-|off]"
    "\n                [--changelog-retain N] [--agent-rate N[/s|/m]|off] "
    "[--agent-burst N]\n                [--audit-retain-days D|off] "
    "\n                [--cluster FILE] [--node-id N] [--election-timeout MS] "
    "[--join]\n                [--snapshot-every N]";

int cli_serve(cli_ctx *c, int argc, char **argv)
{
    cli_listen li = {NULL, NULL, NULL, NULL, NULL, NULL, false};
    cli_listen_vals lv = {0, 0, 0, 0, NULL, false};
    const char *host = NULL, *auth = NULL, *auth_file = NULL,
               *admin = NULL, *admin_file = NULL, *cert = NULL, *key = NULL,
               *log = NULL, *retain = NULL, *cluster = NULL,
               *node_id = NULL, *election = NULL, *snap_every = NULL;
    bool insecure = false, join = false;
    cli_limits limits = {NULL, NULL, NULL};
    const cli_opt opts[] = {CLI_LISTEN_OPTS(&li),
                            {"host", &host, NULL},
                            {"auth-token", &auth, NULL},
                            {"auth-token-file", &auth_file, NULL},
                            {"admin-token", &admin, NULL},
                            {"admin-token-file", &admin_file, NULL},
                            {"tls-cert", &cert, NULL},
                            {"tls-key", &key, NULL},
                            {"insecure-http", NULL, &insecure},
                            {"access-log", &log, NULL},
                            {"changelog-retain", &retain, NULL},
                            {"cluster", &cluster, NULL},
                            {"node-id", &node_id, NULL},
                            {"election-timeout", &election, NULL},
                            {"join", NULL, &join},
                            {"snapshot-every", &snap_every, NULL},
                            CLI_LIMITS_OPTS(&limits),
                            {NULL, NULL, NULL}};
    ai_leader_config cfg;
    ai_leader *l = NULL;
    char home[4096], *auth_s = NULL, *admin_s = NULL, *pos[1];
    long long n;
    int npos, rc, log_fd = 2;
    sigset_t set;
    ai_err err;

    ai_leader_config_init(&cfg);
    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if ((rc = cli_host_check(usage, host)) != CLI_OK)
        return rc;
    if ((rc = cli_limits_parse(usage, &limits, &cfg.agent_rate,
                               &cfg.agent_burst, &cfg.audit_retain_ms)) !=
        CLI_OK)
        return rc;
    lv.port = cfg.port;
    if ((rc = cli_listen_parse(usage, &li, &lv)) != CLI_OK)
        return rc;
    CLI_LISTEN_APPLY(cfg, lv);
    if (retain != NULL) {
        if (!cli_int(retain, 1, 100000000, &n)) {
            cli_listen_free(&lv);
            return cli_usage(usage, "--changelog-retain must be 1 or more");
        }
        cfg.changelog_retain = (long)n;
    }
    if ((cluster == NULL) != (node_id == NULL) ||
        ((election != NULL || join || snap_every != NULL) &&
         cluster == NULL)) {
        cli_listen_free(&lv);
        return cli_usage(usage, "--cluster and --node-id go together "
                                "(--election-timeout, --join and "
                                "--snapshot-every with them)");
    }
    cfg.join = join;
    if (cluster != NULL) {
        if (!cli_int(node_id, 1, INT64_C(2147483648), &n)) {
            cli_listen_free(&lv);
            return cli_usage(usage, "--node-id is a node's id in the "
                                    "cluster file (1 or more)");
        }
        cfg.cluster_file = cluster;
        cfg.node_id = (uint64_t)n;
        if (snap_every != NULL) {
            if (!cli_int(snap_every, 16, 10000000, &n)) {
                cli_listen_free(&lv);
                return cli_usage(usage, "--snapshot-every is 16 to "
                                        "10000000 entries");
            }
            cfg.snapshot_every = (unsigned)n;
        }
        if (election != NULL) {
            if (!cli_int(election, 100, 60000, &n)) {
                cli_listen_free(&lv);
                return cli_usage(usage, "--election-timeout is 100 to "
                                        "60000 ms");
            }
            cfg.election_ms = (unsigned)n;
        }
    }
    if ((cert == NULL) != (key == NULL) || (insecure && cert != NULL)) {
        cli_listen_free(&lv);
        return cli_usage(usage, insecure && cert != NULL
                                    ? "--insecure-http takes no certificate"
                                    : "give --tls-cert and --tls-key "
                                      "together");
    }
    if ((rc = cli_secret_opt(usage, auth, auth_file, "AGENT_IAM_AUTH_TOKEN",
                             "--auth-token", &auth_s)) != CLI_OK) {
        cli_listen_free(&lv);
        return rc;
    }
    if ((rc = cli_secret_opt(usage, admin, admin_file,
                             "AGENT_IAM_ADMIN_TOKEN", "--admin-token",
                             &admin_s)) != CLI_OK) {
        cli_wipe_free(auth_s);
        cli_listen_free(&lv);
        return rc;
    }
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
    cfg.auth_token = auth_s;
    cfg.admin_token = admin_s;
    cfg.access_log_fd = log_fd;

    /* Signals are taken by this thread alone: block them before the
     * server's threads exist, so they inherit the mask. */
    cli_block_stop_signals(&set);

    if (ai_leader_start(&cfg, &l, &err) != AI_OK) {
        rc = cli_fail(&err);
        goto done;
    }
    cli_wipe_free(auth_s); /* the server keeps digests only */
    cli_wipe_free(admin_s);
    auth_s = admin_s = NULL;
    cli_listen_free(&lv);
    if (insecure)
        fprintf(stderr, "agent-iam: WARNING: plain HTTP (--insecure-http): "
                        "tokens and secrets cross the network in clear\n");
    if (cfg.admin_token == NULL)
        fprintf(stderr, "agent-iam: no --admin-token: the admin API is off "
                        "(administer the home with the CLI on this "
                        "machine)\n");
    if (cfg.auth_token != NULL)
        fprintf(stderr, "agent-iam: --auth-token is a secret shared by "
                        "every follower (replication only, no provider "
                        "secrets): prefer `agent-iam followers add`\n");
    if (ai_leader_tls_generated(l))
        fprintf(stderr, "agent-iam: generated a local CA and a server "
                        "certificate in %s/tls\n", home);
    if (!insecure && ai_leader_ca_path(l)[0] != '\0')
        fprintf(stderr, "agent-iam: clients trust the CA %s "
                        "(curl --cacert, agent-iam --ca-cert)\n",
                ai_leader_ca_path(l));
    if (cfg.cluster_file != NULL)
        fprintf(stderr, "agent-iam: voter %llu of the leader group in %s\n",
                (unsigned long long)cfg.node_id, cfg.cluster_file);
    fprintf(stderr, "agent-iam: leader listening on %s://%s:%u (home %s)\n",
            insecure ? "http" : "https", host ? host : "0.0.0.0",
            (unsigned)ai_leader_port(l), home);
    cli_wait_stop(&set);
    ai_leader_stop(l, 10000);
    fprintf(stderr, "agent-iam: leader stopped\n");
    rc = CLI_OK;
done:
    if (log_fd > 2)
        close(log_fd);
    cli_wipe_free(auth_s);
    cli_wipe_free(admin_s);
    cli_listen_free(&lv);
    return rc;
}
