/* fuzz_body.c - libFuzzer target for the JSON request bodies of the HTTP
 * API. Every input is read by every body parser, as the handler of its
 * route would (server/body.c, leader/admin_body.c), and what a parser
 * accepts goes on where the handler sends it, short of the store:
 *   POST /v1/check, /v1/credentials  body_scope_parse -> ai_token_check
 *   POST /v1/tokens/delegate         body_delegation_parse -> ai_token_delegate
 *   POST /v1/tokens/refresh          body_refresh_parse -> ai_token_refresh
 *   POST /v1/admin/tokens            admin_root_parse -> ai_token_create_root
 *   POST /v1/admin/revoke, unrevoke  admin_target_parse
 *   POST /v1/admin/rotate-key        admin_rotate_parse
 *   PUT  /v1/admin/providers/{name}  admin_provider_parse -> prov_config_check
 *   PUT  /v1/admin/apikeys/{name}    admin_apikey_parse -> apikey_check
 * Any result is fine; crashes, leaks, hangs and UB are findings, and so is
 * a refusal without a one-line message or an acceptance with an output
 * missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "leader/admin_body.h"
#include "providers/providers.h"
#include "server/body.h"
#include "store/db.h"

#define NOW INT64_C(1796040000000)

static const unsigned char key[AI_KEY_BYTES] = "fuzz-key-0123456789abcdef-012345";
static ai_keyring *kr;
static ai_token *parent; /* what the bearer of an agent request holds */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const scopes[] = {"github:repo:*", "aws:s3:read",
                                         "google:*", "system:token:refresh"};
    ai_root_params p;
    ai_err err = {0};

    (void)argc;
    (void)argv;
    kr = ai_keyring_new();
    ai_root_params_init(&p);
    p.agent_id = "fuzz-parent";
    p.scopes = scopes;
    p.nscopes = sizeof scopes / sizeof *scopes;
    p.max_ttl_days = 30;
    p.constraints_json =
        "{\"github:repo:*\":{\"resources\":[\"myorg/*\"],\"maxUses\":5}}";
    if (kr == NULL || ai_keyring_add(kr, 1, key, 0, &err) != AI_OK ||
        ai_token_create_root(kr, &p, NOW, &parent, &err) != AI_OK) {
        fprintf(stderr, "fuzz_body: set-up: %s\n", err.msg);
        abort();
    }
    return 0;
}

/* A refusal carries a code and a one-line printable message. */
static void refused(const ai_err *err)
{
    if (err->code == AI_OK || err->msg[0] == '\0')
        abort();
    for (const char *p = err->msg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
}

static void agent_bodies(const char *s, size_t n)
{
    body_scope sb;
    ai_delegation d;
    ai_delegation_storage *storage = NULL;
    ai_token *t = NULL;
    int ttl = -1;
    ai_err err;

    if (body_scope_parse(s, n, &sb, &err) == AI_OK) {
        if (sb.scope == NULL || sb.resource == NULL)
            abort();
        (void)!ai_token_check(parent, sb.scope, sb.resource, NOW, &err);
        body_scope_free(&sb);
    } else {
        refused(&err);
    }
    if (body_delegation_parse(s, n, &d, &storage, &err) == AI_OK) {
        (void)ai_token_delegate(kr, parent, &d, NOW, &t, &err);
        ai_token_free(t);
        t = NULL;
    } else {
        refused(&err);
        if (storage != NULL)
            abort();
    }
    ai_delegation_storage_free(storage);
    if (body_refresh_parse(s, n, &ttl, &err) == AI_OK) {
        if (ttl < 0 || ttl > BODY_REFRESH_TTL_MAX)
            abort();
        (void)ai_token_refresh(kr, parent, ttl, NOW, &t, &err);
        ai_token_free(t);
    } else {
        refused(&err);
    }
}

static void admin_bodies(const char *s, size_t n)
{
    static const char *const providers[] = {"github", "google", "aws"};
    admin_root_body rb;
    admin_target_body tb;
    admin_apikey_body ab;
    ai_token *t = NULL;
    int64_t grace;
    char *text = NULL;
    ai_err err;

    if (admin_root_parse(s, n, &rb, &err) == AI_OK) {
        (void)ai_token_create_root(kr, &rb.params, NOW, &t, &err);
        ai_token_free(t);
        admin_root_free(&rb);
    } else {
        refused(&err);
    }
    for (int with_reason = 0; with_reason < 2; with_reason++) {
        if (admin_target_parse(s, n, with_reason, &tb, &err) == AI_OK) {
            if (tb.id == NULL || tb.id[0] == '\0')
                abort();
            admin_target_free(&tb);
        } else {
            refused(&err);
        }
    }
    if (admin_rotate_parse(s, n, &grace, &err) == AI_OK) {
        if (grace < -1 || grace > ADMIN_GRACE_MS_MAX)
            abort();
    } else {
        refused(&err);
    }
    if (admin_provider_parse(s, n, &text, &err) == AI_OK) {
        for (size_t i = 0; i < sizeof providers / sizeof *providers; i++)
            (void)prov_config_check(providers[i], text, &err);
        explicit_bzero(text, strlen(text));
        ai_free(text);
    } else {
        refused(&err);
    }
    if (admin_apikey_parse(s, n, &ab, &err) == AI_OK) {
        apikey_info info = {"fuzz", ab.provider, ab.base_url, ab.ttl_minutes,
                            0};
        ai_err_clear(&err);
        (void)apikey_check(&info, ab.key, &err);
        admin_apikey_free(&ab);
    } else {
        refused(&err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The server hands handlers a NUL-terminated body of len bytes; an
     * exact copy lets ASan see any read past it. */
    char *s = malloc(size + 1);

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    agent_bodies(s, size);
    admin_bodies(s, size);
    free(s);
    return 0;
}
