/* cmd_config.c - `agent-iam config show|init github|google|aws` and
 * `apikey add|list|remove`: the provider configs and API keys of the local
 * home, or (config init, apikey add|remove with --leader-url) of a
 * running leader. The config object is built, then checked with
 * prov_config_check (the check the leader and the broker apply) by the
 * broker that stores it, or here before it is sent.
 *
 * Secrets (a GitHub App's private key, OAuth client secrets and refresh
 * tokens, AWS secret keys, API keys) come from argv, a file or stdin; they
 * are wiped from memory once stored, never printed (config show redacts
 * them), never put in an error message or an audit row. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "core/core.h"
#include "providers/providers.h"

#define REDACTED "***REDACTED***"
#define PEM_MAX PROV_PEM_MAX
#define SECRET_MAX PROV_SECRET_MAX
#define TEXT_MAX PROV_TEXT_MAX
#define URL_MAX PROV_URL_MAX
#define WORD_MAX 64      /* API key names and providers */
#define TTL_MAX_MIN (AI_DEFAULT_ROOT_TTL_MAX_DAYS * 24 * 60)

static const char *const providers[] = {"github", "google", "aws"};

/* ---- secrets in memory ------------------------------------------------ */

static void secret_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void config_free(json_t *obj)
{
    json_wipe_decref(obj);
}

/* ---- checking flag values --------------------------------------------- */

static int bad_url(const char *usage, const char *flag)
{
    return cli_usage(usage,
                     "--%s must be an https:// URL without user info "
                     "(http:// only to localhost, 127.0.0.1 or [::1]), at "
                     "most %d characters",
                     flag, URL_MAX);
}

/* One secret flag: --FLAG VALUE, --FLAG - (one line of stdin) or
 * --FLAG-file F. NULL with *rc set when absent (*rc = CLI_OK: the caller
 * decides whether it is required) or refused (after printing why). A bad
 * value on argv is a usage error; bad content of a file or stdin fails. */
static char *get_secret(const char *usage, const char *flag,
                        const char *value, const char *file, int *rc)
{
    char what[64];
    char *s;
    size_t n;

    *rc = CLI_OK;
    if (value == NULL && file == NULL)
        return NULL;
    if (value != NULL && file != NULL) {
        *rc = cli_usage(usage, "give --%s or --%s-file, not both", flag,
                        flag);
        return NULL;
    }
    snprintf(what, sizeof what, "--%s", flag);
    if ((s = cli_secret(value, file, what)) == NULL) {
        *rc = CLI_FAIL;
        return NULL;
    }
    n = strlen(s);
    if (prov_secret_ok(s, n))
        return s;
    secret_free(s);
    if (file == NULL && strcmp(value, "-") != 0)
        *rc = cli_usage(usage, "%s must be 1 to %d bytes without control "
                               "characters", what, SECRET_MAX);
    else
        *rc = cli_failf("%s (from %s) must be 1 to %d bytes without control "
                        "characters", what, file ? file : "stdin",
                        SECRET_MAX);
    return NULL;
}

/* Add a string member; false (after printing why) when the value is not
 * UTF-8 or memory ran out. The message names the flag, not the value. */
static bool put(json_t *obj, const char *key, const char *value,
                const char *flag)
{
    json_t *s = json_string(value);

    if (s == NULL || json_object_set_new(obj, key, s) != 0) {
        cli_failf("--%s is not UTF-8 text (or out of memory)", flag);
        return false;
    }
    return true;
}

/* ---- config init ------------------------------------------------------ */

/* Store `cfg` (a config object, stolen and wiped) as provider `name`, in
 * the local home (broker_exec checks it) or (r->on) on the leader: PUT
 * /v1/admin/providers/NAME, after prov_config_check, the leader's own
 * check, so a config the flags allowed is never refused there. */
static int save_provider(cli_ctx *c, const cli_remote *r, const char *name,
                         const char *title, json_t *cfg)
{
    char *text = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char path[64];
    json_t *ans = NULL;
    broker_cmd cmd = {.op = BROKER_PROVIDER_SET, .name = name};
    ai_err err;
    int rc;

    config_free(cfg);
    if (text == NULL)
        return cli_failf("out of memory");
    if (r->on) {
        snprintf(path, sizeof path, "/v1/admin/providers/%s", name);
        rc = prov_config_check(name, text, &err) == AI_OK &&
                     cli_remote_send(r, "PUT", path, text, &ans, &err) ==
                         AI_OK
                 ? CLI_OK
                 : cli_fail(&err);
        json_decref(ans);
    } else {
        /* broker_exec checks it (prov_config_check) before it stores it */
        cmd.config_json = text; /* audit row "config-init" (the name) */
        rc = cli_exec(c, &cmd, NULL, NULL);
    }
    secret_free(text);
    if (rc != CLI_OK)
        return rc;
    if (c->json)
        cli_print_json(
            json_pack("{s:s, s:b}", "provider", name, "configured", 1));
    else
        printf("%s provider configured\n", title);
    return CLI_OK;
}

/* The contents of a PEM file ("-": stdin) holding an unencrypted RSA
 * private key (malloc'd, NUL-terminated: wipe it); NULL after printing
 * why. */
static char *read_pem(const char *path)
{
    char *buf = malloc(PEM_MAX + 2);
    bool in = strcmp(path, "-") == 0;
    FILE *f = in ? stdin : NULL;
    size_t n;
    const char *why = NULL;

    if (buf == NULL) {
        cli_failf("out of memory");
        return NULL;
    }
    if (!in && (f = fopen(path, "rb")) == NULL) {
        cli_failf("cannot open %s: %s", path, strerror(errno));
        free(buf);
        return NULL;
    }
    n = fread(buf, 1, PEM_MAX + 1, f);
    if (ferror(f))
        why = "cannot be read";
    if (!in)
        fclose(f);
    buf[n] = '\0';
    /* size, binary data, PEM, encryption, RSA: the providers' own check */
    if (why == NULL)
        why = prov_rsa_pem_why(buf, n);
    if (why != NULL) {
        cli_failf("--private-key %s %s", in ? "(stdin)" : path, why);
        explicit_bzero(buf, PEM_MAX + 2);
        free(buf);
        return NULL;
    }
    return buf;
}

/* The init_* commands: r is the caller's (cli_config closes it). */
static int init_github(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam config init github --app-id ID --installation-id ID "
        "--private-key FILE|- [--owner LOGIN] [--api-url URL] "
        CLI_REMOTE_USAGE;
    const char *app = NULL, *inst = NULL, *keyfile = NULL, *api = NULL,
               *owner = NULL;
    const cli_opt opts[] = {{"app-id", &app, NULL},
                            {"installation-id", &inst, NULL},
                            {"private-key", &keyfile, NULL},
                            {"owner", &owner, NULL},
                            {"api-url", &api, NULL},
                            CLI_REMOTE_OPTS(r),
                            {NULL, NULL, NULL}};
    long long app_id, inst_id;
    char num[32], *pem;
    char *pos[1];
    int npos, rc;
    json_t *cfg;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if (app == NULL || inst == NULL || keyfile == NULL)
        return cli_usage(usage, "--%s is required",
                         app == NULL    ? "app-id"
                         : inst == NULL ? "installation-id"
                                        : "private-key");
    if (!cli_int(app, 1, INT64_MAX, &app_id))
        return cli_usage(usage, "--app-id must be a positive whole number");
    if (!cli_int(inst, 1, INT64_MAX, &inst_id))
        return cli_usage(usage,
                         "--installation-id must be a positive whole number");
    if (owner != NULL && !prov_login_ok(owner))
        return cli_usage(usage,
                         "--owner must be the installation's account login: "
                         "1 to 100 of A-Z a-z 0-9 . _ -");
    if (api != NULL && !prov_url_ok(api))
        return bad_url(usage, "api-url");
    if ((rc = cli_remote_open(c, r, usage, true)) != CLI_OK)
        return rc;
    if ((pem = read_pem(keyfile)) == NULL)
        return CLI_FAIL;
    if ((cfg = json_object()) == NULL) {
        secret_free(pem);
        return cli_failf("out of memory");
    }
    snprintf(num, sizeof num, "%lld", app_id);
    bool ok = put(cfg, "appId", num, "app-id");
    snprintf(num, sizeof num, "%lld", inst_id);
    ok = ok && put(cfg, "installationId", num, "installation-id") &&
         put(cfg, "privateKey", pem, "private-key") &&
         (owner == NULL || put(cfg, "owner", owner, "owner")) &&
         (api == NULL || put(cfg, "apiUrl", api, "api-url"));
    secret_free(pem);
    if (!ok) {
        config_free(cfg);
        return CLI_FAIL;
    }
    return save_provider(c, r, "github", "GitHub", cfg);
}

static int init_google(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam config init google --client-id ID "
        "--client-secret S|--client-secret-file F "
        "--refresh-token T|--refresh-token-file F [--token-url URL] "
        CLI_REMOTE_USAGE;
    const char *id = NULL, *sec = NULL, *sec_file = NULL, *ref = NULL,
               *ref_file = NULL, *token_url = NULL;
    const cli_opt opts[] = {{"client-id", &id, NULL},
                            {"client-secret", &sec, NULL},
                            {"client-secret-file", &sec_file, NULL},
                            {"refresh-token", &ref, NULL},
                            {"refresh-token-file", &ref_file, NULL},
                            {"token-url", &token_url, NULL},
                            CLI_REMOTE_OPTS(r),
                            {NULL, NULL, NULL}};
    char *secret = NULL, *refresh = NULL;
    char *pos[1];
    int npos, rc;
    json_t *cfg = NULL;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if (id == NULL)
        return cli_usage(usage, "--client-id is required");
    if (sec == NULL && sec_file == NULL)
        return cli_usage(usage, "--client-secret (or --client-secret-file) "
                                "is required");
    if (ref == NULL && ref_file == NULL)
        return cli_usage(usage, "--refresh-token (or --refresh-token-file) "
                                "is required");
    if (!prov_text_ok(id, TEXT_MAX))
        return cli_usage(usage,
                         "--client-id must be 1 to %d printable characters",
                         TEXT_MAX);
    if (token_url != NULL && !prov_url_ok(token_url))
        return bad_url(usage, "token-url");
    if ((rc = cli_remote_open(c, r, usage, true)) != CLI_OK)
        return rc;
    if ((secret = get_secret(usage, "client-secret", sec, sec_file, &rc)) ==
            NULL ||
        (refresh = get_secret(usage, "refresh-token", ref, ref_file, &rc)) ==
            NULL)
        goto done;
    rc = CLI_FAIL;
    if ((cfg = json_object()) == NULL) {
        cli_failf("out of memory");
        goto done;
    }
    if (!put(cfg, "clientId", id, "client-id") ||
        !put(cfg, "clientSecret", secret, "client-secret") ||
        !put(cfg, "refreshToken", refresh, "refresh-token") ||
        (token_url != NULL && !put(cfg, "tokenUrl", token_url, "token-url")))
        goto done;
    secret_free(secret);
    secret_free(refresh);
    rc = save_provider(c, r, "google", "Google", cfg);
    return rc;
done:
    secret_free(secret);
    secret_free(refresh);
    config_free(cfg);
    return rc;
}

static int init_aws(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam config init aws --region R --role-arn ARN "
        "[--access-key-id ID --secret-access-key K|--secret-access-key-file "
        "F] [--external-id ID] [--duration-seconds N] [--sts-url URL] "
        CLI_REMOTE_USAGE;
    const char *region = NULL, *arn = NULL, *key_id = NULL, *sak = NULL,
               *sak_file = NULL, *ext = NULL, *dur = NULL, *dur2 = NULL,
               *sts = NULL;
    const cli_opt opts[] = {{"region", &region, NULL},
                            {"role-arn", &arn, NULL},
                            {"access-key-id", &key_id, NULL},
                            {"secret-access-key", &sak, NULL},
                            {"secret-access-key-file", &sak_file, NULL},
                            {"external-id", &ext, NULL},
                            {"duration-seconds", &dur, NULL},
                            {"session-duration", &dur2, NULL}, /* Node's */
                            {"sts-url", &sts, NULL},
                            CLI_REMOTE_OPTS(r),
                            {NULL, NULL, NULL}};
    long long seconds = 0;
    char *secret = NULL;
    char *pos[1];
    int npos, rc;
    json_t *cfg = NULL;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if (region == NULL || arn == NULL)
        return cli_usage(usage, "--%s is required",
                         region == NULL ? "region" : "role-arn");
    if (!prov_aws_region_ok(region))
        return cli_usage(usage, "--region must be an AWS region such as "
                                "us-east-1");
    if (!prov_aws_role_arn_ok(arn))
        return cli_usage(usage, "--role-arn must be an ARN "
                                "(arn:aws:iam::ACCOUNT:role/NAME)");
    if (key_id != NULL && !prov_aws_key_id_ok(key_id))
        return cli_usage(usage, "--access-key-id must be 16 to 128 of "
                                "A-Z 0-9");
    if ((key_id == NULL) != (sak == NULL && sak_file == NULL))
        return cli_usage(usage, "--access-key-id and --secret-access-key "
                                "(or --secret-access-key-file) go together");
    if (ext != NULL && !prov_aws_external_id_ok(ext))
        return cli_usage(usage, "--external-id must be 2 to 1224 printable "
                                "characters");
    if (dur != NULL && dur2 != NULL)
        return cli_usage(usage, "give --duration-seconds once");
    if (dur == NULL)
        dur = dur2;
    if (dur != NULL && !cli_int(dur, 900, 43200, &seconds))
        return cli_usage(usage, "--duration-seconds must be a whole number "
                                "from 900 to 43200");
    if (sts != NULL && !prov_url_ok(sts))
        return bad_url(usage, "sts-url");
    if ((rc = cli_remote_open(c, r, usage, true)) != CLI_OK)
        return rc;
    if (key_id != NULL &&
        (secret = get_secret(usage, "secret-access-key", sak, sak_file,
                             &rc)) == NULL)
        return rc;
    rc = CLI_FAIL;
    if ((cfg = json_object()) == NULL) {
        cli_failf("out of memory");
        goto done;
    }
    if (!put(cfg, "region", region, "region") ||
        !put(cfg, "roleArn", arn, "role-arn") ||
        (key_id != NULL &&
         (!put(cfg, "accessKeyId", key_id, "access-key-id") ||
          !put(cfg, "secretAccessKey", secret, "secret-access-key"))) ||
        (ext != NULL && !put(cfg, "externalId", ext, "external-id")) ||
        (sts != NULL && !put(cfg, "stsUrl", sts, "sts-url")))
        goto done;
    if (seconds != 0 &&
        json_object_set_new(cfg, "sessionDuration",
                            json_integer((json_int_t)seconds)) != 0) {
        cli_failf("out of memory");
        goto done;
    }
    secret_free(secret);
    return save_provider(c, r, "aws", "AWS", cfg);
done:
    secret_free(secret);
    config_free(cfg);
    return rc;
}

/* ---- config show ------------------------------------------------------ */

typedef struct keys_ctx {
    json_t *arr; /* the details of each key */
    bool oom;
} keys_ctx;

/* The details of an API key as apikey list has them, without its secret.
 * (config show's are the broker's: ai_broker_show_config.) */
static json_t *apikey_json(const apikey_info *k)
{
    char at[AI_TIME_BUF];
    json_t *o = json_object();

    ai_time_format(k->created_at, at);
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "name", json_string(k->name));
    json_object_set_new(o, "provider", json_string(k->provider));
    /* Both always there, as in the text: null is the provider's default
     * (the text's "-" and "default"). */
    json_object_set_new(o, "baseUrl", k->base_url != NULL
                                          ? json_string(k->base_url)
                                          : json_null());
    json_object_set_new(o, "ttlMinutes", k->ttl_minutes != 0
                                             ? json_integer(k->ttl_minutes)
                                             : json_null());
    json_object_set_new(o, "createdAt", json_string(at));
    return o;
}

static void collect_key(void *ud, const apikey_info *k)
{
    keys_ctx *kc = ud;
    json_t *o = apikey_json(k);

    if (o == NULL || json_array_append_new(kc->arr, o) != 0)
        kc->oom = true;
}

/* Print a string with anything unprintable as '?': values come from the
 * store and must not drive the terminal. */
static void put_clean(const char *s)
{
    for (; *s != '\0'; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void print_value(const json_t *v)
{
    if (json_is_string(v)) {
        put_clean(json_string_value(v));
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        fputs(s ? s : "?", stdout);
        free(s);
    }
}

static void print_text(const char *home, json_t *provs, json_t *keys)
{
    const char *k;
    json_t *v, *cfg;

    printf("home: ");
    put_clean(home);
    putchar('\n');
    for (size_t i = 0; i < sizeof providers / sizeof *providers; i++) {
        if ((cfg = json_object_get(provs, providers[i])) == NULL) {
            printf("%s: not configured\n", providers[i]);
            continue;
        }
        printf("%s:\n", providers[i]);
        json_object_foreach(cfg, k, v) {
            printf("  ");
            put_clean(k);
            printf(": ");
            print_value(v);
            putchar('\n');
        }
    }
    if (json_object_size(keys) == 0) {
        printf("apikeys: none\n");
        return;
    }
    printf("apikeys:\n");
    json_object_foreach(keys, k, v) {
        const json_t *url = json_object_get(v, "baseUrl");
        const json_t *ttl = json_object_get(v, "ttlMinutes");
        printf("  %s: provider %s, key %s", k,
               json_string_value(json_object_get(v, "providerName")),
               REDACTED);
        if (url != NULL) {
            printf(", base URL ");
            put_clean(json_string_value(url));
        }
        if (ttl != NULL)
            printf(", TTL %lld min", (long long)json_integer_value(ttl));
        printf(", added %s\n",
               json_string_value(json_object_get(v, "createdAt")));
    }
}

static int show(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] = "agent-iam config show [--json]";
    json_t *out, *provs;
    char *pos[1];
    int npos, rc;
    store *st;

    if ((rc = cli_parse(usage, argc, argv, NULL, pos, 0, &npos, false)))
        return rc;
    if ((st = cli_store(c)) == NULL)
        return CLI_FAIL;
    /* The broker builds it (secrets redacted), as for a library caller. */
    if ((rc = cli_broker_json(st, ai_broker_show_config, &out)) != CLI_OK)
        return rc;
    if (c->json) {
        cli_print_json(out);
        return CLI_OK;
    }
    provs = json_object_get(out, "providers");
    print_text(store_home(st), provs, json_object_get(provs, "apikeys"));
    json_decref(out);
    return CLI_OK;
}

/* `agent-iam config show|init PROVIDER ...`: returns the exit code. */
int cli_config(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam config show | init github|google|aws [options]";
    static const char init_usage[] =
        "agent-iam config init github|google|aws [options] (agent-iam "
        "config init PROVIDER --help: its usage; API keys: agent-iam "
        "apikey add)";

    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return show(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "init") == 0) {
        int (*init)(cli_ctx *, cli_remote *, int, char **) = NULL;
        cli_remote r = {0};
        int rc;

        if (argc >= 2 && strcmp(argv[1], "github") == 0)
            init = init_github;
        else if (argc >= 2 && strcmp(argv[1], "google") == 0)
            init = init_google;
        else if (argc >= 2 && strcmp(argv[1], "aws") == 0)
            init = init_aws;
        if (init != NULL) {
            rc = init(c, &r, argc - 2, argv + 2);
            cli_remote_close(&r);
            return rc;
        }
        return cli_group_usage(init_usage, "provider", argc - 1, argv + 1);
    }
    return cli_group_usage(usage, "config command", argc, argv);
}

/* ---- apikey ----------------------------------------------------------- */

/* apikey add on the leader: PUT /v1/admin/apikeys/NAME {"provider",
 * "key", "baseUrl"?, "ttlMinutes"?}. */
static int apikey_add_remote(const cli_remote *r, const char *name,
                             const apikey_info *info, const char *secret)
{
    json_t *body = json_pack("{s:s, s:s}", "provider", info->provider,
                             "key", secret);
    json_t *ans = NULL;
    char path[128];
    ai_err err;

    if (body != NULL && info->base_url != NULL &&
        json_object_set_new(body, "baseUrl",
                            json_string(info->base_url)) != 0) {
        cli_json_free(body);
        body = NULL; /* refused as not UTF-8 text */
    }
    if (body != NULL && info->ttl_minutes != 0)
        json_object_set_new(body, "ttlMinutes",
                            json_integer(info->ttl_minutes));
    snprintf(path, sizeof path, "/v1/admin/apikeys/%s", name);
    if (cli_remote_call(r, "PUT", path, body, &ans, &err) != AI_OK)
        return cli_fail(&err);
    json_decref(ans);
    return CLI_OK;
}

/* The apikey commands: r is the caller's (cli_apikey closes it). */
static int apikey_add(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam apikey add --name N --provider P --key K|--key-file F|"
        "--key - [--base-url URL] [--ttl-minutes N] " CLI_REMOTE_USAGE;
    const char *name = NULL, *prov = NULL, *key = NULL, *key_file = NULL,
               *base = NULL, *ttl = NULL, *ttl2 = NULL;
    const cli_opt opts[] = {{"name", &name, NULL},
                            {"provider", &prov, NULL},
                            {"key", &key, NULL},
                            {"key-file", &key_file, NULL},
                            {"base-url", &base, NULL},
                            {"ttl-minutes", &ttl, NULL},
                            {"ttl", &ttl2, NULL}, /* Node's */
                            CLI_REMOTE_OPTS(r),
                            {NULL, NULL, NULL}};
    long long minutes = 0;
    char *secret, *pos[1];
    int npos, rc;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 0, &npos, false)))
        return rc;
    if (name == NULL || prov == NULL)
        return cli_usage(usage, "--%s is required",
                         name == NULL ? "name" : "provider");
    if (key == NULL && key_file == NULL)
        return cli_usage(usage, "--key (or --key-file) is required");
    if (!word_valid(name, WORD_MAX) || !word_valid(prov, WORD_MAX))
        return cli_usage(usage, "--%s must be 1 to %d of A-Z a-z 0-9 . _ -",
                         word_valid(name, WORD_MAX) ? "provider" : "name",
                         WORD_MAX);
    if (ttl != NULL && ttl2 != NULL)
        return cli_usage(usage, "give --ttl-minutes once");
    if (ttl == NULL)
        ttl = ttl2;
    if (ttl != NULL && !cli_int(ttl, 1, TTL_MAX_MIN, &minutes))
        return cli_usage(usage, "--ttl-minutes must be a whole number from "
                                "1 to %d",
                         TTL_MAX_MIN);
    if (base != NULL && !prov_url_ok(base))
        return bad_url(usage, "base-url");
    if ((rc = cli_remote_open(c, r, usage, true)) != CLI_OK)
        return rc;
    if ((secret = get_secret(usage, "key", key, key_file, &rc)) == NULL)
        return rc;
    apikey_info info = {name, prov, base, (int)minutes, 0};
    if (r->on) {
        rc = apikey_add_remote(r, name, &info, secret);
        secret_free(secret);
        if (rc != CLI_OK)
            return rc;
    } else {
        broker_cmd cmd = {.op = BROKER_APIKEY_ADD, .name = name,
                          .provider = prov, .secret = secret,
                          .base_url = base, .ttl_minutes = (int)minutes};
        /* audit row "apikey-add", "NAME (provider P)" */
        rc = cli_exec(c, &cmd, NULL, NULL);
        secret_free(secret);
        if (rc != CLI_OK)
            return rc;
    }
    if (c->json)
        cli_print_json(json_pack("{s:s, s:b}", "name", name, "added", 1));
    else
        printf("API key \"%s\" added\n", name);
    return CLI_OK;
}

static int apikey_list(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] = "agent-iam apikey list [--json]";
    keys_ctx kc = {NULL, false};
    char *pos[1];
    int npos, rc;
    ai_err err;
    store *st;

    if ((rc = cli_parse(usage, argc, argv, NULL, pos, 0, &npos, false)))
        return rc;
    if ((st = cli_store(c)) == NULL)
        return CLI_FAIL;
    if ((kc.arr = json_array()) == NULL)
        return cli_failf("out of memory");
    if (store_apikey_list(st, collect_key, &kc, &err) != AI_OK) {
        json_decref(kc.arr);
        return cli_fail(&err);
    }
    if (kc.oom) {
        json_decref(kc.arr);
        return cli_failf("out of memory");
    }
    if (c->json) {
        cli_print_json(kc.arr);
        return CLI_OK;
    }
    if (json_array_size(kc.arr) == 0) {
        printf("No API keys configured\n");
    } else {
        size_t i;
        json_t *k;
        printf("%-24s %-16s %-8s %-25s %s\n", "NAME", "PROVIDER", "TTL",
               "CREATED", "BASE URL");
        json_array_foreach(kc.arr, i, k) {
            const json_t *ttl = json_object_get(k, "ttlMinutes");
            const json_t *url = json_object_get(k, "baseUrl");
            char t[24] = "default";
            if (json_is_integer(ttl))
                snprintf(t, sizeof t, "%lldm",
                         (long long)json_integer_value(ttl));
            printf("%-24s %-16s %-8s %-25s ",
                   json_string_value(json_object_get(k, "name")),
                   json_string_value(json_object_get(k, "provider")), t,
                   json_string_value(json_object_get(k, "createdAt")));
            put_clean(json_is_string(url) ? json_string_value(url) : "-");
            putchar('\n');
        }
    }
    json_decref(kc.arr);
    return CLI_OK;
}

static int apikey_remove(cli_ctx *c, cli_remote *r, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam apikey remove NAME " CLI_REMOTE_USAGE;
    const cli_opt opts[] = {CLI_REMOTE_OPTS(r), {NULL, NULL, NULL}};
    char *pos[1], path[128];
    json_t *ans = NULL;
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 1, &npos, false)))
        return rc;
    if (npos != 1)
        return cli_usage(usage, "the name of the API key is required");
    if (!word_valid(pos[0], WORD_MAX))
        return cli_usage(usage, "an API key name is 1 to %d of "
                                "A-Z a-z 0-9 . _ -",
                         WORD_MAX);
    if ((rc = cli_remote_open(c, r, usage, true)) != CLI_OK)
        return rc;
    if (r->on) {
        /* DELETE /v1/admin/apikeys/NAME: a word, nothing to encode */
        snprintf(path, sizeof path, "/v1/admin/apikeys/%s", pos[0]);
        if (cli_remote_call(r, "DELETE", path, NULL, &ans, &err) != AI_OK)
            return cli_fail(&err);
        json_decref(ans);
    } else {
        broker_cmd cmd = {.op = BROKER_APIKEY_REMOVE, .name = pos[0]};
        if ((rc = cli_exec(c, &cmd, NULL, NULL)) != CLI_OK)
            return rc;
    }
    if (c->json)
        cli_print_json(
            json_pack("{s:s, s:b}", "name", pos[0], "removed", 1));
    else
        printf("API key \"%s\" removed\n", pos[0]);
    return CLI_OK;
}

/* `agent-iam apikey add|list|remove ...`: returns the exit code. */
int cli_apikey(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] =
        "agent-iam apikey add --name N --provider P --key K|--key-file F|"
        "--key - [--base-url URL] [--ttl-minutes N] | list | remove NAME";
    static const cli_remote_cmd cmds[] = {{"add", apikey_add},
                                          {"remove", apikey_remove}};

    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return apikey_list(c, argc - 1, argv + 1);
    return cli_remote_group(c, cmds, sizeof cmds / sizeof *cmds, usage,
                            "apikey command", argc, argv);
}
