/* cmd_status.c - `agent-iam status`: the home, its keys and revocations;
 * or, with --leader-url, what the server's GET /v1/status says. */
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "core/core.h"
#include "follower/follower.h"

/* Print a string with anything unprintable as '?': values come from the
 * server and must not drive the terminal. */
static void put_clean(const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* "name:" padded to the local format's column, then a scalar value. A
 * member name in camelCase is written as words ("uptimeSeconds" as
 * "uptime seconds"), as the local labels are. */
static void line(const char *name, const json_t *v)
{
    int n = 1;

    for (const char *p = name; *p != '\0' && n < 64; p++, n++) {
        if (*p >= 'A' && *p <= 'Z' && p != name) {
            putchar(' ');
            n++;
        }
        putchar((unsigned char)*p < 0x20 || *p == 0x7f
                    ? '?'
                    : (*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    }
    putchar(':');

    printf("%*s", n < 21 ? 21 - n : 1, "");
    if (json_is_string(v))
        put_clean(json_string_value(v));
    else if (json_is_integer(v))
        printf("%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        printf("%g", json_real_value(v));
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "yes" : "no", stdout);
    else
        fputs("-", stdout);
    putchar('\n');
}

static void print_follower(const json_t *f)
{
    const json_t *v;
    char when[AI_TIME_BUF];

    printf("  ");
    put_clean(json_string_value(json_object_get(f, "id")));
    if ((v = json_object_get(f, "address")) != NULL && json_is_string(v)) {
        printf(" at ");
        put_clean(json_string_value(v));
    }
    if ((v = json_object_get(f, "appliedSeq")) != NULL)
        printf(": applied seq %lld", (long long)json_integer_value(v));
    if ((v = json_object_get(f, "lag")) != NULL)
        printf(", lag %lld", (long long)json_integer_value(v));
    if ((v = json_object_get(f, "lastSeenMs")) != NULL &&
        json_integer_value(v) > 0) {
        ai_time_format(json_integer_value(v), when);
        printf(", last seen %s", when);
    }
    putchar('\n');
}

/* The server's status in the local format's style: the known members
 * first, any other scalar member after them (a follower adds its own). */
static void print_remote(const cli_remote *r, json_t *st)
{
    static const char *const known[] = {"version", "role",
                                        "signingKeyVersion", "revocations",
                                        "changelogSeq", "followers"};
    static const struct {
        const char *key, *label;
    } fixed[] = {{"signingKeyVersion", "signing key version"},
                 {"revocations", "revocations"},
                 {"changelogSeq", "changelog seq"}};
    const json_t *fol = json_object_get(st, "followers");
    const char *k;
    json_t *v;
    size_t i;

    printf("agent-iam ");
    put_clean(json_string_value(json_object_get(st, "version")));
    printf(" (");
    put_clean(json_string_value(json_object_get(st, "role")));
    printf(")\n");
    printf("%-21s", "url:");
    put_clean(r->lc.url);
    putchar('\n');
    for (i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if ((v = json_object_get(st, fixed[i].key)) != NULL)
            line(fixed[i].label, v);
    json_object_foreach(st, k, v) {
        bool skip = !(json_is_string(v) || json_is_number(v) ||
                      json_is_boolean(v));
        for (i = 0; !skip && i < sizeof known / sizeof *known; i++)
            skip = strcmp(k, known[i]) == 0;
        if (!skip)
            line(k, v);
    }
    if (json_is_array(fol)) {
        printf("%-21s%zu\n", "followers:", json_array_size(fol));
        json_array_foreach(fol, i, v) print_follower(v);
    }
}

/* status on a server: GET /v1/status (the auth token is sent when one is
 * given, but none is needed). */
static int status_remote(const cli_ctx *c, const cli_remote *r)
{
    json_t *st = NULL;
    ai_err err;

    if (cli_remote_call(r, "GET", "/v1/status", NULL, &st, &err) != AI_OK)
        return cli_fail(&err);
    if (c->json) {
        cli_print_json(st);
        return CLI_OK;
    }
    print_remote(r, st);
    json_decref(st);
    return CLI_OK;
}

/* A follower's home: what it replicates and how fresh it is (the state
 * by the default thresholds, from the last contact the follower wrote).
 * -1 when the home is not a replica. */
static int replica_status(cli_ctx *c, store *st, int64_t now)
{
    ai_follower_config def;
    const ai_keyring *kr;
    int64_t applied = 0, last = 0;
    char *url = NULL;
    bool yes = false;
    ai_err err;

    if (store_is_replica(st, &yes, &err) != AI_OK)
        return cli_fail(&err);
    if (!yes)
        return -1;
    ai_follower_config_init(&def);
    if (store_applied_seq(st, &applied, &err) != AI_OK ||
        store_follower_meta_get(st, &url, &last, &err) != AI_OK)
        return cli_fail(&err);
    if (c->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I}", "version",
            ai_version(), "mode", "follower", "home", store_home(st),
            "leaderUrl", url ? url : "", "appliedSeq", (json_int_t)applied,
            "lastContactMs", (json_int_t)last, "state",
            follower_state_at(last, now, &def), "revocations",
            (json_int_t)store_revocation_count(st));
        if (o != NULL && store_keyring(st, &kr, &err) == AI_OK &&
            ai_keyring_signing_version(kr) != 0)
            json_object_set_new(o, "signingKeyVersion",
                                json_integer(ai_keyring_signing_version(kr)));
        cli_print_json(o);
    } else {
        printf("agent-iam %s (follower replica)\n", ai_version());
        printf("home:                %s\n", store_home(st));
        printf("leader:              %s\n", url ? url : "-");
        printf("applied leader seq:  %lld\n", (long long)applied);
        if (last > 0)
            printf("last contact:        %llds ago (%s)\n",
                   (long long)((now - last) / 1000),
                   follower_state_at(last, now, &def));
        else
            printf("last contact:        never\n");
        if (store_keyring(st, &kr, &err) == AI_OK &&
            ai_keyring_signing_version(kr) != 0)
            printf("signing key version: %u\n",
                   (unsigned)ai_keyring_signing_version(kr));
        printf("revocations:         %zu\n", store_revocation_count(st));
    }
    store_free(url);
    return CLI_OK;
}

/* A standalone home: the broker's status (ai_broker_status, what a
 * library caller gets), as JSON or in words. */
static int local_status(cli_ctx *c, store *st)
{
    json_t *o;
    int rc;

    if ((rc = cli_broker_json(st, ai_broker_status, &o)) != CLI_OK)
        return rc;
    if (c->json) {
        cli_print_json(o);
        return CLI_OK;
    }
    printf("agent-iam %s (standalone)\n", ai_version());
    printf("home:                %s\n", store_home(st));
    printf("signing key version: %lld (%lld verifying)\n",
           (long long)json_integer_value(
               json_object_get(o, "signingKeyVersion")),
           (long long)json_integer_value(json_object_get(o, "verifyingKeys")));
    printf("revocations:         %lld\n",
           (long long)json_integer_value(json_object_get(o, "revocations")));
    printf("changelog seq:       %lld\n",
           (long long)json_integer_value(json_object_get(o, "changelogSeq")));
    json_decref(o);
    return CLI_OK;
}

int cli_status(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam status [--json] [--leader-url URL [--auth-token T|"
        "--auth-token-file F] [--ca-cert F]]";
    cli_remote r = {0};
    const cli_opt opts[] = {CLI_REMOTE_OPTS(&r), {NULL, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    ai_err err;
    store *st;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)) ||
        (rc = cli_remote_open(c, &r, usage, false)))
        return rc;
    if (r.on) {
        rc = status_remote(c, &r);
        cli_remote_close(&r);
        return rc;
    }
    if ((st = cli_store(c)) == NULL)
        return CLI_FAIL;
    if (store_sync(st, &err) != AI_OK)
        return cli_fail(&err);
    if ((rc = replica_status(c, st, time_now_ms())) != -1)
        return rc;
    return local_status(c, st);
}
