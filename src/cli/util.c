/* util.c - what the commands share: the store, messages, option parsing,
 * numbers and durations, secrets from files or stdin, JSON output. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "core/core.h"

store *cli_store(cli_ctx *c)
{
    char home[4096];
    ai_err err;

    const char *leader = getenv("AGENT_IAM_LEADER_URL");
    /* With a leader URL in the environment and no --home, a command that
     * only acts on a local home does not create one by surprise. */
    bool create = c->home_flag != NULL || leader == NULL || *leader == '\0';

    if (c->st != NULL)
        return c->st;
    if (store_home_path(c->home_flag, home, sizeof home, &err) != AI_OK) {
        cli_fail(&err);
        return NULL;
    }
    if (!create && access(home, F_OK) != 0) {
        cli_failf("no home at %s: $AGENT_IAM_LEADER_URL is set and this "
                  "command acts on a local home only (give --home DIR to "
                  "create one)",
                  home);
        return NULL;
    }
    if (store_open(home, create, &c->st, &err) != AI_OK) {
        cli_fail(&err);
        return NULL;
    }
    return c->st;
}

ai_broker *cli_broker(cli_ctx *c)
{
    ai_broker *b = NULL;
    ai_err err;
    store *st = cli_store(c);

    if (st == NULL)
        return NULL;
    if (broker_wrap(st, &b, &err) != AI_OK)
        cli_fail(&err);
    return b;
}

int cli_broker_json(store *st,
                    ai_code (*get)(ai_broker *, char **, ai_err *),
                    json_t **out)
{
    ai_broker *b = NULL;
    char *text = NULL;
    ai_err err;

    *out = NULL;
    if (broker_wrap(st, &b, &err) != AI_OK || get(b, &text, &err) != AI_OK) {
        ai_broker_close(b);
        return cli_fail(&err);
    }
    ai_broker_close(b);
    *out = json_loads(text, 0, NULL);
    ai_free_string(text);
    return *out != NULL ? CLI_OK : cli_failf("out of memory");
}

int cli_exec(cli_ctx *c, broker_cmd *cmd, broker_result *out,
             const char *usage)
{
    ai_broker *b = cli_broker(c);
    ai_code code;
    ai_err err;

    if (b == NULL) {
        broker_cmd_wipe(cmd);
        return CLI_FAIL;
    }
    cmd->actor = "cli";
    if (cmd->at_ms == 0)
        cmd->at_ms = time_now_ms();
    code = broker_exec(b, cmd, out, &err);
    broker_cmd_wipe(cmd);
    ai_broker_close(b);
    if (code == AI_OK)
        return CLI_OK;
    if (code == AI_EINVAL && usage != NULL)
        return cli_usage(usage, "%s", err.msg);
    return cli_fail(&err);
}

static bool json_errors;

void cli_json_errors(bool on)
{
    json_errors = on;
}

/* The one place an error leaves the CLI. */
static void report(const char *code, const char *fmt, va_list ap)
{
    char msg[1024];
    json_t *o;
    char *s;

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!json_errors) {
        fprintf(stderr, "agent-iam: %s\n", msg);
        return;
    }
    if ((o = json_pack("{s:s, s:s}", "error", msg, "code", code)) == NULL) {
        /* not UTF-8 (a file name): the bytes that are not ASCII as '?' */
        for (char *p = msg; *p != '\0'; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        o = json_pack("{s:s, s:s}", "error", msg, "code", code);
    }
    s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (s != NULL)
        printf("%s\n", s);
    else
        fprintf(stderr, "agent-iam: %s\n", msg);
    fflush(stdout);
    free(s);
    json_decref(o);
}

static void reportf(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reportf(const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(code, fmt, ap);
    va_end(ap);
}

int cli_fail(const ai_err *err)
{
    reportf(err_code_name(err->code), "%s",
            err->msg[0] ? err->msg : ai_strerror(err->code));
    return CLI_FAIL;
}

int cli_failf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report("failed", fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_failc(const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(code, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        report("usage", fmt, ap);
        va_end(ap);
    } else if (json_errors) {
        reportf("usage", "usage: %s", usage);
    }
    fprintf(stderr, "usage: %s\n", usage);
    return CLI_USAGE;
}

static const cli_opt *lookup(const cli_opt *opts, const char *name,
                             size_t n)
{
    for (; opts != NULL && opts->name != NULL; opts++)
        if (strlen(opts->name) == n && strncmp(opts->name, name, n) == 0)
            return opts;
    return NULL;
}

/* The options whose value is a secret, in every command that has them:
 * API keys, provider secrets, service credentials and bearer tokens. A
 * new secret option goes here (tests/security/cli_test.py fails for a
 * secret-looking flag of `agent-iam help` it does not try). */
static const char *const secret_opts[] = {
    "key",           "auth-token",    "admin-token",       "metrics-token",
    "client-secret", "refresh-token", "secret-access-key", "token",
    "parent",
};

static bool secret_opt(const char *name)
{
    for (size_t i = 0; i < sizeof secret_opts / sizeof *secret_opts; i++)
        if (strcmp(name, secret_opts[i]) == 0)
            return true;
    return false;
}

/* Move argv[i] to the heap and zero the original from byte off on (the
 * value), so /proc/PID/cmdline no longer shows it. The copy's value, or
 * NULL when memory ran out (the original is zeroed all the same). */
static const char *take_secret(char **argv, int i, size_t off)
{
    char *orig = argv[i], *copy = strdup(orig);

    explicit_bzero(orig + off, strlen(orig + off));
    if (copy == NULL)
        return NULL;
    argv[i] = copy;
    return copy + off;
}

bool cli_is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

static int help(const char *usage)
{
    printf("usage: %s\n", usage);
    return CLI_HELP;
}

int cli_parse(const char *usage, int argc, char **argv, const cli_opt *opts,
              char **pos, int maxpos, int *npos, bool loose)
{
    bool options = true;

    *npos = 0;
    /* Help first, wherever it stands (even as an option's value): the
     * command then does nothing else. */
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (cli_is_help(argv[i]))
            return help(usage);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const cli_opt *o = NULL;
        const char *eq = NULL;

        if (options && strcmp(a, "--") == 0) {
            options = false; /* everything after "--" is positional */
            continue;
        }
        if (options && a[0] == '-' && a[1] == '-' && a[2] != '\0') {
            eq = strchr(a + 2, '=');
            o = lookup(opts, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
        }
        if (o != NULL) {
            if (o->flag != NULL) {
                if (eq != NULL)
                    return cli_usage(usage, "--%s takes no value", o->name);
                *o->flag = true;
                continue;
            }
            if (eq == NULL && ++i == argc)
                return cli_usage(usage, "--%s needs a value", o->name);
            *o->value = eq != NULL ? eq + 1 : argv[i];
            if (secret_opt(o->name) &&
                (*o->value = take_secret(argv, i, eq != NULL
                                                      ? (size_t)(eq - a + 1)
                                                      : 0)) == NULL) {
                cli_failf("out of memory");
                return CLI_FAIL;
            }
            continue;
        }
        if (options && !loose && a[0] == '-' && a[1] != '\0')
            return cli_usage(usage, "unknown option %s", a);
        if (*npos == maxpos)
            return cli_usage(usage, "unexpected argument \"%s\"", a);
        pos[(*npos)++] = argv[i];
    }
    return CLI_OK;
}

int cli_group_usage(const char *usage, const char *what, int argc,
                    char **argv)
{
    if (argc > 0 && cli_is_help(argv[0]))
        return help(usage);
    if (argc == 0)
        return cli_usage(usage, "%s %s is required",
                         strchr("aeiou", what[0]) != NULL ? "an" : "a",
                         what);
    return cli_usage(usage, "unknown %s \"%s\"", what, argv[0]);
}

bool cli_token_id_ok(const char *s)
{
    return strlen(s) == AI_TOKEN_ID_CHARS &&
           b64url_valid(s, AI_TOKEN_ID_CHARS);
}

bool cli_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_duration(const char *s, int64_t *ms)
{
    char num[32];
    size_t n = s ? strlen(s) : 0;
    long long v, unit = 1000;

    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, s, n + 1);
    switch (num[n - 1]) {
    case 's': unit = 1000, num[n - 1] = '\0'; break;
    case 'm': unit = 60000, num[n - 1] = '\0'; break;
    case 'h': unit = 3600000, num[n - 1] = '\0'; break;
    case 'd': unit = 86400000, num[n - 1] = '\0'; break;
    default: break;
    }
    if (!cli_int(num, 0, 100LL * 365 * 86400000 / unit, &v))
        return false;
    *ms = v * unit;
    return true;
}

static char *read_line(FILE *f, const char *what)
{
    char buf[8192];
    size_t n;

    if (fgets(buf, sizeof buf, f) == NULL) {
        cli_failf("nothing to read for %s", what);
        return NULL;
    }
    n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    char *s = strdup(buf);
    explicit_bzero(buf, sizeof buf);
    if (s == NULL)
        cli_failf("out of memory");
    return s;
}

char *cli_secret(const char *value, const char *file, const char *what)
{
    FILE *f;
    char *s;

    if (value != NULL && file != NULL) {
        cli_failf("give %s once, not also as a file", what);
        return NULL;
    }
    if (file != NULL) {
        if ((f = fopen(file, "r")) == NULL) {
            cli_failf("cannot open %s: %s", file,
                    strerror(errno));
            return NULL;
        }
        s = read_line(f, what);
        fclose(f);
        return s;
    }
    if (value == NULL) {
        cli_failf("%s is required", what);
        return NULL;
    }
    if (strcmp(value, "-") == 0)
        return read_line(stdin, what);
    if ((s = strdup(value)) == NULL)
        cli_failf("out of memory");
    return s;
}

void cli_print_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

    if (s != NULL)
        printf("%s\n", s);
    else
        cli_failf("out of memory");
    free(s);
    json_decref(j);
}

int cli_secret_opt(const char *usage, const char *flag, const char *file,
                   const char *env, const char *what, char **out)
{
    const char *e = getenv(env);

    *out = NULL;
    if (flag == NULL && file == NULL && (e == NULL || *e == '\0'))
        return CLI_OK;
    if (flag == NULL && file == NULL)
        flag = e;
    if ((*out = cli_secret(flag, file, what)) == NULL)
        return CLI_USAGE;
    /* cli_parse's copy of an argv value: not kept while the service runs */
    if (flag != NULL && flag != e && strcmp(flag, "-") != 0)
        explicit_bzero((char *)(uintptr_t)flag, strlen(flag));
    if (**out == '\0') {
        free(*out);
        *out = NULL;
        return cli_usage(usage, "%s is empty", what);
    }
    return CLI_OK;
}

void cli_wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int cli_access_log(const char *arg, int *fd)
{
    *fd = 2;
    if (arg == NULL || strcmp(arg, "-") == 0)
        return CLI_OK;
    if (strcmp(arg, "off") == 0) {
        *fd = -1;
        return CLI_OK;
    }
    if ((*fd = open(arg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) <
        0)
        return cli_failf("--access-log %s: %s", arg, strerror(errno));
    return CLI_OK;
}

void cli_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void cli_wait_stop(const sigset_t *set)
{
    int sig = 0;

    while (sigwait(set, &sig) != 0)
        ;
    fprintf(stderr, "agent-iam: %s: finishing in-flight requests\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
}
