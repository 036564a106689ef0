/* interop_tool.c - the C side of the interoperability test with the Node.js
 * package agent-iam@0.0.3 (tests/interop/run.sh). Uses only the public API.
 *
 *   interop_tool verify    KEYFILE TOKEN
 *   interop_tool check     KEYFILE TOKEN SCOPE RESOURCE
 *   interop_tool mint-root KEYFILE AGENT SCOPES_CSV [CONSTRAINTS_JSON] [opts]
 *   interop_tool delegate  KEYFILE PARENT AGENT SCOPES_CSV [CONSTRAINTS_JSON]
 *                          [opts]
 *   interop_tool show      TOKEN
 *
 * KEYFILE holds the raw 32-byte secret (like the Node package's
 * token_secret); it is loaded as key version 1. AGENT "-" on delegate lets
 * the library pick one. Options (anywhere after the subcommand):
 *   --identity JSON  --federation JSON  --caps JSON  (root: all three;
 *   delegate: federation and caps)  --max-depth N  --ttl-days N (root)
 *   --ttl-minutes N (delegate)  --no-delegate  --no-inherit-identity
 *
 * Output: verify and show print the token's signed JSON on stdout; mint-root
 * and delegate print the serialized token; check prints "allowed". Exit 0 on
 * success (valid / allowed), 1 when the library says no (the reason on
 * stderr), 2 on a usage or I/O error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_iam.h"

#define MAX_ARGS 8

typedef struct opts {
    const char *pos[MAX_ARGS]; /* positional arguments after the command */
    int npos;
    const char *identity, *federation, *caps;
    int max_depth, ttl_days, ttl_minutes;
    bool no_delegate, no_inherit_identity;
} opts;

static int usage(void)
{
    fputs("usage: interop_tool verify KEYFILE TOKEN\n"
          "       interop_tool check KEYFILE TOKEN SCOPE RESOURCE\n"
          "       interop_tool mint-root KEYFILE AGENT SCOPES_CSV "
          "[CONSTRAINTS_JSON] [opts]\n"
          "       interop_tool delegate KEYFILE PARENT AGENT SCOPES_CSV "
          "[CONSTRAINTS_JSON] [opts]\n"
          "       interop_tool show TOKEN\n",
          stderr);
    return 2;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_opts(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_depth = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--identity") == 0 && has_val) {
            o->identity = argv[++i];
        } else if (strcmp(a, "--federation") == 0 && has_val) {
            o->federation = argv[++i];
        } else if (strcmp(a, "--caps") == 0 && has_val) {
            o->caps = argv[++i];
        } else if (strcmp(a, "--max-depth") == 0 && has_val) {
            if (!parse_int(argv[++i], 0, 1000, &o->max_depth))
                return false;
        } else if (strcmp(a, "--ttl-days") == 0 && has_val) {
            if (!parse_int(argv[++i], 1, 100000, &o->ttl_days))
                return false;
        } else if (strcmp(a, "--ttl-minutes") == 0 && has_val) {
            if (!parse_int(argv[++i], 1, 100000000, &o->ttl_minutes))
                return false;
        } else if (strcmp(a, "--no-delegate") == 0) {
            o->no_delegate = true;
        } else if (strcmp(a, "--no-inherit-identity") == 0) {
            o->no_inherit_identity = true;
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "interop_tool: unknown option %s\n", a);
            return false;
        } else {
            if (o->npos == MAX_ARGS)
                return false;
            o->pos[o->npos++] = a;
        }
    }
    return true;
}

/* Load KEYFILE (exactly 32 raw bytes) as key version 1. */
static ai_keyring *load_keys(const char *path)
{
    unsigned char key[AI_KEY_BYTES + 1];
    ai_keyring *kr;
    ai_err err = {AI_OK, ""};
    size_t n;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        fprintf(stderr, "interop_tool: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    n = fread(key, 1, sizeof key, f);
    fclose(f);
    if (n != AI_KEY_BYTES) {
        fprintf(stderr, "interop_tool: %s: expected %d bytes\n", path,
                AI_KEY_BYTES);
        return NULL;
    }
    if ((kr = ai_keyring_new()) == NULL) {
        fputs("interop_tool: out of memory\n", stderr);
        return NULL;
    }
    if (ai_keyring_add(kr, 1, key, 0, &err) != AI_OK) {
        fprintf(stderr, "interop_tool: keyring: %s\n", err.msg);
        ai_keyring_free(kr);
        kr = NULL;
    }
    memset(key, 0, sizeof key);
    return kr;
}

/* Split a comma-separated list into a malloc'd array of pointers into a
 * malloc'd copy of the text. */
static char **split_csv(const char *csv, size_t *n, char **storage)
{
    size_t count = 1, i = 0;
    char **v, *p;

    for (const char *c = csv; *c; c++)
        count += *c == ',';
    *storage = strdup(csv);
    v = calloc(count, sizeof *v);
    if (*storage == NULL || v == NULL) {
        free(*storage);
        free(v);
        *storage = NULL;
        return NULL;
    }
    for (p = *storage;;) {
        char *comma = strchr(p, ',');
        v[i++] = p;
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    *n = count;
    return v;
}

static ai_code verify(const ai_keyring *kr, const char *wire, int64_t now,
                      ai_token **out)
{
    ai_verifier v = {kr, NULL, NULL};
    ai_err err = {AI_OK, ""};
    ai_code rc = ai_token_verify(&v, wire, strlen(wire), now, out, &err);

    if (rc != AI_OK)
        fprintf(stderr, "%s\n", err.msg);
    return rc;
}

/* Print the token's signed JSON (NULL only on out of memory). */
static int print_json(const ai_token *t)
{
    const char *json = ai_token_json(t);

    if (json == NULL) {
        fputs("interop_tool: no JSON for the token (out of memory)\n", stderr);
        return 2;
    }
    printf("%s\n", json);
    return 0;
}

static int cmd_verify(const opts *o)
{
    ai_keyring *kr;
    ai_token *t = NULL;
    int status;

    if (o->npos != 2)
        return usage();
    if ((kr = load_keys(o->pos[0])) == NULL)
        return 2;
    status = verify(kr, o->pos[1], now_ms(), &t) == AI_OK ? 0 : 1;
    if (status == 0)
        status = print_json(t);
    ai_token_free(t);
    ai_keyring_free(kr);
    return status;
}

static int cmd_check(const opts *o)
{
    ai_keyring *kr;
    ai_token *t = NULL;
    ai_err err = {AI_OK, ""};
    int64_t now = now_ms();
    int status = 1;

    if (o->npos != 4)
        return usage();
    if ((kr = load_keys(o->pos[0])) == NULL)
        return 2;
    if (verify(kr, o->pos[1], now, &t) == AI_OK) {
        if (ai_token_check(t, o->pos[2], o->pos[3], now, &err) == AI_OK) {
            puts("allowed");
            status = 0;
        } else {
            fprintf(stderr, "%s\n", err.msg);
        }
    }
    ai_token_free(t);
    ai_keyring_free(kr);
    return status;
}

static int cmd_mint_root(const opts *o)
{
    ai_root_params p;
    ai_keyring *kr;
    ai_token *t = NULL;
    ai_err err = {AI_OK, ""};
    char **scopes, *storage;
    size_t nscopes;
    int status = 1;

    if (o->npos < 3 || o->npos > 4)
        return usage();
    if ((kr = load_keys(o->pos[0])) == NULL)
        return 2;
    if ((scopes = split_csv(o->pos[2], &nscopes, &storage)) == NULL) {
        ai_keyring_free(kr);
        return 2;
    }
    ai_root_params_init(&p);
    p.agent_id = o->pos[1];
    p.scopes = (const char *const *)scopes;
    p.nscopes = nscopes;
    p.constraints_json = o->npos == 4 ? o->pos[3] : NULL;
    p.identity_json = o->identity;
    p.federation_json = o->federation;
    p.capabilities_json = o->caps;
    p.delegatable = !o->no_delegate;
    if (o->max_depth >= 0)
        p.max_delegation_depth = o->max_depth;
    if (o->ttl_days > 0)
        p.ttl_days = o->ttl_days;
    if (ai_token_create_root(kr, &p, now_ms(), &t, &err) == AI_OK) {
        printf("%s\n", ai_token_serialize(t));
        status = 0;
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    ai_token_free(t);
    free(scopes);
    free(storage);
    ai_keyring_free(kr);
    return status;
}

static int cmd_delegate(const opts *o)
{
    ai_delegation d;
    ai_keyring *kr;
    ai_token *parent = NULL, *child = NULL;
    ai_err err = {AI_OK, ""};
    char **scopes, *storage;
    size_t nscopes;
    int64_t now = now_ms();
    int status = 1;

    if (o->npos < 4 || o->npos > 5)
        return usage();
    if ((kr = load_keys(o->pos[0])) == NULL)
        return 2;
    if ((scopes = split_csv(o->pos[3], &nscopes, &storage)) == NULL) {
        ai_keyring_free(kr);
        return 2;
    }
    if (verify(kr, o->pos[1], now, &parent) == AI_OK) {
        ai_delegation_init(&d);
        d.agent_id = strcmp(o->pos[2], "-") == 0 ? NULL : o->pos[2];
        d.scopes = (const char *const *)scopes;
        d.nscopes = nscopes;
        d.constraints_json = o->npos == 5 ? o->pos[4] : NULL;
        d.federation_json = o->federation;
        d.capabilities_json = o->caps;
        d.delegatable = !o->no_delegate;
        d.inherit_identity = !o->no_inherit_identity;
        if (o->ttl_minutes > 0)
            d.ttl_minutes = o->ttl_minutes;
        if (ai_token_delegate(kr, parent, &d, now, &child, &err) == AI_OK) {
            printf("%s\n", ai_token_serialize(child));
            status = 0;
        } else {
            fprintf(stderr, "%s\n", err.msg);
        }
    }
    ai_token_free(child);
    ai_token_free(parent);
    free(scopes);
    free(storage);
    ai_keyring_free(kr);
    return status;
}

static int cmd_show(const opts *o)
{
    ai_token *t = NULL;
    ai_err err = {AI_OK, ""};
    int status;

    if (o->npos != 1)
        return usage();
    if (ai_token_deserialize(o->pos[0], strlen(o->pos[0]), &t, &err) != AI_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    status = print_json(t);
    ai_token_free(t);
    return status;
}

int main(int argc, char **argv)
{
    opts o;

    if (argc < 2)
        return usage();
    if (!parse_opts(argc - 2, argv + 2, &o))
        return usage();
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(&o);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(&o);
    if (strcmp(argv[1], "mint-root") == 0)
        return cmd_mint_root(&o);
    if (strcmp(argv[1], "delegate") == 0)
        return cmd_delegate(&o);
    if (strcmp(argv[1], "show") == 0)
        return cmd_show(&o);
    return usage();
}
