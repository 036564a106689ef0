/* cli.h - the subcommands of the agent-iam command and their helpers.
 * Commands parse arguments and call the library; nothing else. Exit codes:
 * CLI_OK, CLI_FAIL (denied, invalid, failed: one line on stderr) and
 * CLI_USAGE (bad arguments: the usage on stderr). */
#ifndef AI_CLI_H
#define AI_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_iam.h"
#include "cli/leader_client.h"
#include "store/store.h"

/* CLI_HELP: -h or --help printed the command's usage on stdout; main
 * exits 0 then. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_HELP = 3 };

/* What every command gets: the global options (accepted anywhere on the
 * command line) and the home's store, opened on first use. */
typedef struct cli_ctx {
    const char *home_flag; /* --home DIR, or NULL */
    bool json;             /* --json */
    store *st;
} cli_ctx;

/* The store of the home (created on first use, except when
 * $AGENT_IAM_LEADER_URL is set and --home is not given: then only an
 * existing home is opened). NULL after printing why. */
store *cli_store(cli_ctx *c);
/* A broker over cli_store (actor "cli"; close it with ai_broker_close,
 * which leaves the store open); NULL after printing why. */
ai_broker *cli_broker(cli_ctx *c);
/* Apply one change (a broker_cmd, broker/command.h) to the local home
 * through the broker, with the actor "cli" and, unless cmd->at_ms is set,
 * the time now; out (may be NULL) as broker_exec fills it. The exit code:
 * CLI_OK, or the failure reported (a refusal of the arguments, AI_EINVAL,
 * as a usage error of `usage` when usage is not NULL). The command's
 * secret arrays are wiped. */
struct broker_cmd;
struct broker_result;
int cli_exec(cli_ctx *c, struct broker_cmd *cmd, struct broker_result *out,
             const char *usage);

/* Errors: "agent-iam: <message>" on stderr, or with --json (once
 * cli_json_errors(true)) {"error": message, "code": name} on stdout; the
 * exit code is the same either way. cli_fail names err's code
 * (err_code_name), cli_failf says "failed", cli_failc names its own. */
void cli_json_errors(bool on);
int cli_fail(const ai_err *err);
int cli_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_failc(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The message (code "usage") and the usage lines; return CLI_USAGE. */
int cli_usage(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One command option: --name (a flag) or --name VALUE / --name=VALUE. */
typedef struct cli_opt {
    const char *name;   /* without the dashes */
    const char **value; /* set for an option with a value, else NULL */
    bool *flag;         /* set for a flag, else NULL */
} cli_opt;

/* Parse argv (after the command words) against opts, leaving positional
 * arguments in pos[0..*npos). An argument that is not one of opts is
 * positional even when it begins with '-' (ids may), but an unknown
 * "--name" that looks like an option is a usage error unless loose. A
 * lone "--" ends the options: what follows is positional.
 *
 * "-h" or "--help" anywhere before "--" prints the usage on stdout and
 * returns CLI_HELP before anything else is looked at: every command calls
 * this first, so help does nothing else (DESIGN §6).
 *
 * The value of an option that carries a secret (an API key, a provider
 * secret, a service credential, a bearer token: one list in util.c for
 * every command) is taken out of argv at once: argv[i] is replaced by a
 * malloc'd copy, and the value's bytes in the original, which
 * /proc/PID/cmdline shows, are zeroed (DESIGN §8). The owner of the argv
 * array (main) wipes and frees every slot it did not put there.
 *
 * Returns CLI_OK, CLI_HELP, or, after printing the usage, CLI_USAGE. */
int cli_parse(const char *usage, int argc, char **argv, const cli_opt *opts,
              char **pos, int maxpos, int *npos, bool loose);

/* Is a the word that asks for help ("-h" or "--help")? */
bool cli_is_help(const char *a);

/* The end of a command group's dispatch (token, key, config, config init,
 * apikey, audit) when argv[0] names none of its commands: "-h" or
 * "--help" prints the group's usage on stdout (CLI_HELP); no word or an
 * unknown one is a usage error naming `what` ("token command"). */
int cli_group_usage(const char *usage, const char *what, int argc,
                    char **argv);

/* Is s a tokenId: AI_TOKEN_ID_CHARS base64url characters (a leading '-'
 * is one of them)? */
bool cli_token_id_ok(const char *s);

/* Whole number in [min, max]; false for anything else. */
bool cli_int(const char *s, long long min, long long max, long long *out);

/* A duration: N followed by s, m, h or d (N alone is seconds). */
bool cli_duration(const char *s, int64_t *ms);

/* A secret given as VALUE, "-" (one line from stdin) or through a file
 * option: malloc'd, trailing newline dropped; NULL after printing why. */
char *cli_secret(const char *value, const char *file, const char *what);

/* A service's secret: --flag VALUE, --flag-file F, else $env; *out NULL
 * when none is given. A value given on the command line (cli_parse's
 * copy) is wiped once read, so a long-running service does not keep it.
 * CLI_OK, or CLI_USAGE after printing why. */
int cli_secret_opt(const char *usage, const char *flag, const char *file,
                   const char *env, const char *what, char **out);
/* --access-log FILE|-|off: *fd is 2 (stderr, also for NULL), -1 (off) or
 * FILE opened for appending (0600). CLI_OK or CLI_FAIL after saying why. */
int cli_access_log(const char *arg, int *fd);

/* The listening flags of serve and follower (listen.c): the strings given
 * (NULL: not given), and their values (left as they were when not given).
 * CLI_LISTEN_OPTS(&li) goes in the command's cli_opt table. */
typedef struct cli_listen {
    const char *port, *threads, *max_conns, *per_ip, *metrics,
        *metrics_file;
    bool public_metrics;
} cli_listen;
typedef struct cli_listen_vals {
    int port;
    unsigned threads, max_conns, max_conns_per_ip;
    char *metrics_token; /* owned: cli_listen_free wipes it */
    bool public_metrics;
} cli_listen_vals;
#define CLI_LISTEN_OPTS(l)                                                 \
    {"port", &(l)->port, NULL}, {"threads", &(l)->threads, NULL},          \
        {"max-conns", &(l)->max_conns, NULL},                              \
        {"max-conns-per-ip", &(l)->per_ip, NULL},                          \
        {"metrics-token", &(l)->metrics, NULL},                            \
        {"metrics-token-file", &(l)->metrics_file, NULL},                  \
        {"public-metrics", NULL, &(l)->public_metrics}
/* CLI_OK, or the usage error's exit code after printing it. The metrics
 * token may also come from $AGENT_IAM_METRICS_TOKEN. */
int cli_listen_parse(const char *usage, const cli_listen *in,
                     cli_listen_vals *out);
/* CLI_OK if HOST is NULL, an IP address or localhost (what the server
 * binds), else the usage error's exit code after printing it. */
int cli_host_check(const char *usage, const char *host);
void cli_listen_free(cli_listen_vals *v);
/* The parsed values into an ai_leader_config or ai_follower_config (the
 * same member names); the metrics token stays owned by v. */
#define CLI_LISTEN_APPLY(cfg, v)                                           \
    ((cfg).port = (v).port, (cfg).threads = (v).threads,                   \
     (cfg).max_conns = (v).max_conns,                                      \
     (cfg).max_conns_per_ip = (v).max_conns_per_ip,                        \
     (cfg).metrics_token = (v).metrics_token,                              \
     (cfg).public_metrics = (v).public_metrics)
/* A service's signals: SIGINT and SIGTERM blocked (call before any thread
 * starts, so they all inherit the mask) for cli_wait_stop to take; SIGPIPE
 * ignored. */
void cli_block_stop_signals(sigset_t *set);
/* Wait for SIGINT or SIGTERM and say which came. */
void cli_wait_stop(const sigset_t *set);
/* Wipe and free a malloc'd secret string (NULL is fine). */
void cli_wipe_free(char *s);

/* What agents may write, flags of serve and follower (listen.c): the
 * strings given (NULL: not given). CLI_LIMITS_OPTS(&lim) goes in the
 * command's cli_opt table; cli_limits_parse sets the values given (the
 * others stay as they were): --agent-rate N, N/s or N/m (a whole N up to
 * 1000000; off or 0: no limit) into *rate (per second), --agent-burst N
 * into *burst, --audit-retain-days D (a decimal number of days up to
 * 36500, six places at most; off or 0: kept for ever) into *retain_ms.
 * CLI_OK, or the usage error's exit code after printing it. */
typedef struct cli_limits {
    const char *agent_rate, *agent_burst, *audit_retain;
} cli_limits;
#define CLI_LIMITS_OPTS(l)                                                 \
    {"agent-rate", &(l)->agent_rate, NULL},                                \
        {"agent-burst", &(l)->agent_burst, NULL},                          \
        {"audit-retain-days", &(l)->audit_retain, NULL}
int cli_limits_parse(const char *usage, const cli_limits *in, double *rate,
                     unsigned *burst, int64_t *retain_ms);

/* Read a token argument: the token itself, "-" for stdin or "@PATH" for a
 * file; one trailing newline (or CRLF) is dropped. Returns a malloc'd
 * string (its length in *len) or NULL after printing why to stderr. A
 * token given itself is zeroed in arg once copied: arg is a string of
 * argv or a copy cli_parse made, writable either way, and a positional
 * TOKEN is not left in /proc/PID/cmdline for the rest of the run. */
char *cli_read_token(const char *arg, size_t *len);

/* Print a JSON value (stolen) on stdout, indented. */
void cli_print_json(json_t *j);
/* The JSON document a broker over st writes with get (ai_broker_status,
 * ai_broker_show_config): *out is new (json_decref it), NULL on error. */
int cli_broker_json(store *st,
                    ai_code (*get)(ai_broker *, char **, ai_err *),
                    json_t **out);

/* ---- admin commands on a running leader (remote.c) ------------------- */

/* The options of a command that may act on a leader: put
 * CLI_REMOTE_OPTS(&r) in its cli_opt table, then call cli_remote_open. */
typedef struct cli_remote {
    const char *url, *token, *token_file, *ca; /* the flags (argv) */
    bool on;          /* set by cli_remote_open: act on the leader */
    leader_client lc; /* set by cli_remote_open when on */
    char *secret;     /* the auth token (owned; cli_remote_close wipes) */
    bool agent;       /* an agent verb: no auth token (cli_agent_open) */
} cli_remote;

#define CLI_REMOTE_OPTS(r)                                                 \
    {"leader-url", &(r)->url, NULL}, {"auth-token", &(r)->token, NULL},   \
        {"auth-token-file", &(r)->token_file, NULL},                       \
        {"ca-cert", &(r)->ca, NULL}
#define CLI_REMOTE_USAGE                                                   \
    "[--leader-url URL --auth-token T|--auth-token-file F [--ca-cert F]]"

/* After cli_parse: decide between the local home and a leader (flags,
 * then $AGENT_IAM_LEADER_URL, $AGENT_IAM_AUTH_TOKEN, $AGENT_IAM_CA_CERT;
 * --home wins over the environment) and read the auth token (required
 * when need_token). CLI_OK with r->on telling which; CLI_USAGE or
 * CLI_FAIL after printing why (nothing to close then). When r->on, call
 * cli_remote_close once done. */
int cli_remote_open(const cli_ctx *c, cli_remote *r, const char *usage,
                    bool need_token);
/* Wipe and free the auth token. */
void cli_remote_close(cli_remote *r);

/* A command group whose commands may call a leader (followers, cluster,
 * apikey): the command argv[0] names runs with a cli_remote of its own,
 * closed after it; no word, an unknown one or --help: cli_group_usage. */
typedef struct cli_remote_cmd {
    const char *name;
    int (*fn)(cli_ctx *c, cli_remote *r, int argc, char **argv);
} cli_remote_cmd;
int cli_remote_group(cli_ctx *c, const cli_remote_cmd *cmds, size_t n,
                     const char *usage, const char *what, int argc,
                     char **argv);

/* The agent verbs (token verify|check|delegate|refresh, cred) on a leader
 * or a follower: --leader-url (else $AGENT_IAM_LEADER_URL unless --home
 * is given) and --ca-cert (else $AGENT_IAM_CA_CERT); the agent's token is
 * the bearer ($AGENT_IAM_AUTH_TOKEN is not read). */
#define CLI_AGENT_REMOTE_OPTS(r)                                           \
    {"leader-url", &(r)->url, NULL}, {"ca-cert", &(r)->ca, NULL}
#define CLI_AGENT_REMOTE_USAGE "[--leader-url URL [--ca-cert F]]"
/* After cli_parse: decide as cli_remote_open does, without an auth token.
 * CLI_OK with r->on telling which; CLI_USAGE or CLI_FAIL after printing
 * why. When r->on, the caller sets the agent's token as the bearer
 * (cli_agent_bearer) and calls cli_remote_close. */
int cli_agent_open(const cli_ctx *c, cli_remote *r, const char *usage);
/* Put the agent's token (borrowed, kept until cli_remote_close) as the
 * bearer of r; AI_OK, or AI_ETOKEN in err when it cannot be one. */
ai_code cli_agent_bearer(cli_remote *r, const char *wire, ai_err *err);
/* POST {scope, resource} to path with the token wire as the bearer
 * (check, credentials); as cli_remote_call, *out NULL on error. */
ai_code cli_agent_scope_call(cli_remote *r, const char *wire,
                             const char *path, const char *scope,
                             const char *resource, json_t **out, ai_err *err);

/* METHOD path on the leader with a JSON body (body: stolen, its strings
 * wiped; NULL sends none, refused for POST and PUT as "not UTF-8 text"
 * since that is why json_pack returns NULL). *out (OUT: NULL on error) is
 * the answer, a JSON object; err holds the leader's or the transport's
 * reason (leader_client_call). cli_remote_send takes the body as text. */
ai_code cli_remote_call(const cli_remote *r, const char *method,
                        const char *path, json_t *body, json_t **out,
                        ai_err *err);
ai_code cli_remote_send(const cli_remote *r, const char *method,
                        const char *path, const char *body, json_t **out,
                        ai_err *err);

/* Wipe every string of j (an answer may hold a token), then decref it. */
void cli_json_free(json_t *j);

/* Commands; argv starts after the command word. */
int cli_token(cli_ctx *c, int argc, char **argv);
int cli_key(cli_ctx *c, int argc, char **argv);
int cli_rotate_key(cli_ctx *c, int argc, char **argv);
int cli_revoke(cli_ctx *c, int argc, char **argv);
int cli_unrevoke(cli_ctx *c, int argc, char **argv);
int cli_audit(cli_ctx *c, int argc, char **argv);
int cli_config(cli_ctx *c, int argc, char **argv);
int cli_apikey(cli_ctx *c, int argc, char **argv);
int cli_serve(cli_ctx *c, int argc, char **argv);
int cli_follower(cli_ctx *c, int argc, char **argv);
int cli_sync(cli_ctx *c, int argc, char **argv);
int cli_status(cli_ctx *c, int argc, char **argv);
int cli_cred(cli_ctx *c, int argc, char **argv);
int cli_backup(cli_ctx *c, int argc, char **argv);
int cli_followers(cli_ctx *c, int argc, char **argv);
int cli_cluster(cli_ctx *c, int argc, char **argv);

#endif
