/* cmd_key.c - `agent-iam key list|import|export` and `rotate-key`: the
 * changes (import, rotate) and the audited export go through the broker,
 * which writes their audit rows. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "core/core.h"

static const char *const state_names[] = {"signing", "verifying", "retired"};

static int list(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] = "agent-iam key list [--json]";
    key_info *keys = NULL;
    size_t n = 0;
    char *pos[1];
    int npos, rc;
    ai_err err;
    ai_broker *b;
    store *st;

    if ((rc = cli_parse(usage, argc, argv, NULL, pos, 0, &npos, false)))
        return rc;
    if ((st = cli_store(c)) == NULL || (b = cli_broker(c)) == NULL)
        return CLI_FAIL;
    /* A new home gets its version 1 here, as on first signing. */
    const ai_keyring *kr;
    ai_code krc = broker_signing_keyring(b, time_now_ms(), &kr, &err);
    ai_broker_close(b);
    if (krc != AI_OK ||
        store_list_keys(st, time_now_ms(), &keys, &n, &err) != AI_OK)
        return cli_fail(&err);
    if (c->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            char t1[AI_TIME_BUF], t2[AI_TIME_BUF];
            ai_time_format(keys[i].created_at, t1);
            json_t *o = json_pack("{s:I, s:s, s:s}", "version",
                                  (json_int_t)keys[i].version, "state",
                                  state_names[keys[i].state], "createdAt", t1);
            if (keys[i].verify_until != 0) {
                ai_time_format(keys[i].verify_until, t2);
                json_object_set_new(o, "verifyUntil", json_string(t2));
            }
            json_array_append_new(arr, o);
        }
        cli_print_json(arr);
    } else {
        printf("%-8s %-10s %-25s %s\n", "VERSION", "STATE", "CREATED",
               "VERIFIES UNTIL");
        for (size_t i = 0; i < n; i++) {
            char t1[AI_TIME_BUF], t2[AI_TIME_BUF];
            ai_time_format(keys[i].created_at, t1);
            if (keys[i].verify_until != 0)
                ai_time_format(keys[i].verify_until, t2);
            printf("%-8u %-10s %-25s %s\n", (unsigned)keys[i].version,
                   state_names[keys[i].state], t1,
                   keys[i].verify_until ? t2 : "-");
        }
    }
    store_free(keys);
    return CLI_OK;
}

/* Exactly 32 raw bytes from a file (the Node package's token_secret). */
static int read_raw_key(const char *path, unsigned char key[AI_KEY_BYTES])
{
    unsigned char extra;
    ssize_t got;
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return cli_failf("cannot open %s: %s", path, strerror(errno));
    got = read(fd, key, AI_KEY_BYTES);
    if (got == AI_KEY_BYTES && read(fd, &extra, 1) != 0)
        got = -2;
    if (fd != 0)
        close(fd);
    if (got != AI_KEY_BYTES) {
        explicit_bzero(key, AI_KEY_BYTES);
        return cli_failf("%s must hold exactly %d raw bytes", path,
                         AI_KEY_BYTES);
    }
    return CLI_OK;
}

static int import(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] = "agent-iam key import --file F [--force]";
    const char *file = NULL;
    bool force = false;
    const cli_opt opts[] = {{"file", &file, NULL}, {"force", NULL, &force},
                            {NULL, NULL, NULL}};
    broker_cmd cmd = {.op = BROKER_KEY_IMPORT};
    char *pos[1];
    int npos, rc;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if (file == NULL)
        return cli_usage(usage, "--file is required");
    if ((rc = read_raw_key(file, cmd.key)) != CLI_OK)
        return rc;
    cmd.force = force;
    /* cli_exec wipes cmd.key */
    if ((rc = cli_exec(c, &cmd, NULL, NULL)) != CLI_OK)
        return rc;
    if (c->json)
        cli_print_json(json_pack("{s:b, s:i}", "imported", 1, "version", 1));
    else
        fprintf(stderr, "imported as key version 1\n");
    return CLI_OK;
}

static int export(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] = "agent-iam key export --version N > FILE";
    const char *vs = NULL;
    const cli_opt opts[] = {{"version", &vs, NULL}, {NULL, NULL, NULL}};
    unsigned char key[AI_KEY_BYTES];
    ai_broker *b;
    long long v;
    char *pos[1];
    int npos, rc;
    ai_code code;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if (vs == NULL || !cli_int(vs, 1, 2147483648LL, &v))
        return cli_usage(usage, "--version must be a key version (1 or more)");
    if (isatty(1))
        return cli_failf("refusing to write key bytes to a terminal: "
                         "redirect stdout to a file");
    if ((b = cli_broker(c)) == NULL)
        return CLI_FAIL;
    /* Audited ("key-export") before the bytes leave: no row, no key. */
    code = broker_export_key(b, (uint32_t)v, key, &err);
    ai_broker_close(b);
    if (code != AI_OK)
        return cli_fail(&err);
    rc = fwrite(key, 1, sizeof key, stdout) == sizeof key && fflush(stdout) == 0
             ? CLI_OK
             : cli_failf("cannot write the key: %s", strerror(errno));
    explicit_bzero(key, sizeof key);
    return rc;
}

int cli_key(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam key list | import --file F [--force] | export --version N";

    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return list(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "import") == 0)
        return import(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "export") == 0)
        return export(c, argc - 1, argv + 1);
    return cli_group_usage(usage, "key command", argc, argv);
}

/* rotate-key on the leader: POST /v1/admin/rotate-key {"graceMs"?}. */
static int rotate_remote(const cli_remote *r, int64_t grace_ms,
                         uint32_t *v)
{
    json_t *body = json_object(), *ans = NULL;
    const json_t *jv;
    ai_err err;

    if (body != NULL && grace_ms >= 0)
        json_object_set_new(body, "graceMs", json_integer(grace_ms));
    if (cli_remote_call(r, "POST", "/v1/admin/rotate-key", body, &ans,
                        &err) != AI_OK)
        return cli_fail(&err);
    jv = json_object_get(ans, "version");
    if (!json_is_integer(jv) || json_integer_value(jv) < 1 ||
        json_integer_value(jv) > UINT32_MAX) {
        json_decref(ans);
        return cli_failf("leader: the answer has no key version");
    }
    *v = (uint32_t)json_integer_value(jv);
    json_decref(ans);
    return CLI_OK;
}

/* How many keys verify now (the signing one too): the local home's list,
 * or the leader's status; -1 when it cannot be said. */
static long long verifying_now(cli_ctx *c, const cli_remote *r)
{
    json_t *ans = NULL;
    key_info *keys = NULL;
    size_t n = 0;
    long long count = -1;
    ai_err err;
    store *st;

    if (r->on) {
        if (cli_remote_call(r, "GET", "/v1/status", NULL, &ans, &err) ==
                AI_OK &&
            json_is_integer(json_object_get(ans, "verifyingKeys")))
            count = json_integer_value(json_object_get(ans, "verifyingKeys"));
        json_decref(ans);
        return count;
    }
    if ((st = cli_store(c)) == NULL ||
        store_list_keys(st, time_now_ms(), &keys, &n, &err) != AI_OK)
        return -1;
    count = 0;
    for (size_t i = 0; i < n; i++)
        count += keys[i].state != KEY_RETIRED;
    free(keys);
    return count;
}

/* --grace 0 cuts off every token in circulation: say so, and on a
 * terminal ask for --force. CLI_OK to go on. */
static int confirm_no_grace(cli_ctx *c, const cli_remote *r, bool force,
                            const char *usage)
{
    long long n = verifying_now(c, r);
    char keys[64] = "every key that verifies now";

    if (n == 0) /* a new home: nothing to cut off */
        return CLI_OK;
    if (n > 0)
        snprintf(keys, sizeof keys, "the %lld key%s that verif%s now", n,
                 n == 1 ? "" : "s", n == 1 ? "ies" : "y");
    fprintf(stderr,
            "agent-iam: warning: --grace 0 retires %s at once: every token "
            "issued before this rotation stops verifying%s, and its agents "
            "need new tokens\n",
            keys, r->on ? " on the leader and, within a poll, every follower"
                        : "");
    if (!force && isatty(STDIN_FILENO) && isatty(STDERR_FILENO))
        return cli_usage(usage, "not done: give --force to rotate with no "
                                "grace period");
    return CLI_OK;
}

int cli_rotate_key(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam rotate-key [--grace DURATION] [--force] " CLI_REMOTE_USAGE;
    const char *grace = NULL;
    bool force = false;
    cli_remote r = {0};
    const cli_opt opts[] = {{"grace", &grace, NULL},
                            {"force", NULL, &force},
                            CLI_REMOTE_OPTS(&r),
                            {NULL, NULL, NULL}};
    int64_t grace_ms = -1;
    broker_cmd cmd = {.op = BROKER_ROTATE_KEY};
    broker_result res = {0};
    uint32_t v = 0;
    char *pos[1];
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if (grace != NULL && !cli_duration(grace, &grace_ms))
        return cli_usage(usage, "--grace is a duration such as 90d, 12h or "
                                "30m");
    if ((rc = cli_remote_open(c, &r, usage, true)) != CLI_OK)
        return rc;
    if (grace_ms == 0 &&
        (rc = confirm_no_grace(c, &r, force, usage)) != CLI_OK) {
        cli_remote_close(&r);
        return rc;
    }
    if (r.on) {
        rc = rotate_remote(&r, grace_ms, &v);
        cli_remote_close(&r);
        if (rc != CLI_OK)
            return rc;
    } else {
        cmd.grace_ms = grace_ms;
        if (broker_cmd_new_key(&cmd, &err) != AI_OK)
            return cli_fail(&err);
        /* audit reason "new signing key version N"; cli_exec wipes the key */
        if ((rc = cli_exec(c, &cmd, &res, NULL)) != CLI_OK)
            return rc;
        v = res.version;
    }
    if (c->json)
        cli_print_json(json_pack("{s:I}", "version", (json_int_t)v));
    else
        printf("signing key version %u\n", (unsigned)v);
    return CLI_OK;
}
