/* fuzz_token.c - libFuzzer target for everything that reads untrusted
 * bytes in src/core. The first byte picks the mode:
 *   0: the input is a serialized token: deserialize and verify it;
 *   1: the input is token JSON that gets signed first, so the strict
 *      parser behind the HMAC is reached, then verified, checked,
 *      delegated from and refreshed;
 *   2: the input is user JSON for constraints / federation / capabilities
 *      / identity of a new root token, and for a delegation request;
 *   3: the input is two patterns: scope and glob matching and containment.
 * Any result is fine; crashes, leaks, hangs and UB are findings. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const unsigned char key[AI_KEY_BYTES] = "fuzz-key-0123456789abcdef-012345";
#define NOW INT64_C(1796040000000)

static bool revoked(void *ud, ai_revoke_kind kind, const char *id)
{
    (void)ud;
    return kind == AI_REVOKED_AGENT && strcmp(id, "revoked-agent") == 0;
}

static void use(ai_keyring *kr, ai_token *t)
{
    static const char *const scopes[] = {"github:repo:read"};
    ai_delegation d;
    ai_token *child = NULL, *fresh = NULL;
    ai_budget_ref refs[8];
    size_t n;
    ai_err e = {0};

    (void)!ai_token_check(t, "github:repo:read", "myorg/x", NOW, &e);
    (void)ai_token_budgets(t, "github:repo:read", refs, 8, &n, &e);
    (void)ai_token_constraints_json(t);
    (void)ai_token_federation_json(t);
    (void)ai_token_capabilities_json(t);
    (void)ai_token_json(t);
    ai_delegation_init(&d);
    d.scopes = scopes;
    d.nscopes = 1;
    d.constraints_json = "{\"github:repo:read\":{\"resources\":[\"myorg/*\"],\"maxUses\":3}}";
    d.federation_json = "{\"crossSystemAllowed\":false,\"maxHops\":1}";
    d.capabilities_json = "{\"canSpawn\":false,\"visibility\":\"scope\"}";
    (void)ai_token_delegate(kr, t, &d, NOW, &child, &e);
    (void)ai_token_refresh(kr, t, 0, NOW, &fresh, &e);
    ai_token_free(child);
    ai_token_free(fresh);
}

static void verify_wire(ai_keyring *kr, const char *wire, size_t len)
{
    ai_verifier v = {kr, revoked, NULL};
    ai_token *t = NULL;
    ai_err e = {0};

    if (ai_token_deserialize(wire, len, &t, &e) == AI_OK)
        (void)ai_token_json(t);
    ai_token_free(t);
    t = NULL;
    if (ai_token_verify(&v, wire, len, NOW, &t, &e) == AI_OK)
        use(kr, t);
    ai_token_free(t);
}

static void signed_json(ai_keyring *kr, const uint8_t *data, size_t size)
{
    const key_entry *k = keyring_find(kr, 1, NOW);
    unsigned char mac[32];
    char sig[44], *json, *wire;
    size_t jl;

    if (size < 2 || data[size - 1] != '}' || size > AI_TOKEN_JSON_MAX)
        return;
    key_hmac2(k, data, size, NULL, 0, mac);
    b64url_encode(mac, sizeof mac, sig);
    json = malloc(size + 64);
    memcpy(json, data, size - 1);
    jl = size - 1;
    memcpy(json + jl, ",\"signature\":\"", 14);
    jl += 14;
    memcpy(json + jl, sig, 43);
    jl += 43;
    memcpy(json + jl, "\"}", 2);
    jl += 2;
    wire = malloc(b64url_encoded_len(jl) + 1);
    b64url_encode((const unsigned char *)json, jl, wire);
    verify_wire(kr, wire, strlen(wire));
    free(wire);
    free(json);
}

static void user_json(ai_keyring *kr, const char *s, size_t len)
{
    static const char *const scopes[] = {"github:repo:*", "aws:s3:read"};
    ai_root_params p;
    ai_delegation d;
    ai_delegation_storage *st = NULL;
    ai_token *t = NULL;
    ai_err e = {0};

    ai_root_params_init(&p);
    p.agent_id = "fuzz";
    p.scopes = scopes;
    p.nscopes = 2;
    switch (len % 4) {
    case 0: p.constraints_json = s; break;
    case 1: p.federation_json = s; break;
    case 2: p.capabilities_json = s; break;
    default: p.identity_json = s; break;
    }
    if (ai_token_create_root(kr, &p, NOW, &t, &e) == AI_OK)
        use(kr, t);
    if (ai_delegation_from_json(s, len, &d, &st, &e) == AI_OK && t != NULL) {
        ai_token *c = NULL;
        (void)ai_token_delegate(kr, t, &d, NOW, &c, &e);
        ai_token_free(c);
    }
    ai_delegation_storage_free(st);
    ai_token_free(t);
}

static void patterns(const char *s, size_t len)
{
    const char *nl = memchr(s, '\n', len);
    char a[AI_PATTERN_MAX + 2], b[AI_PATTERN_MAX + 2];
    size_t an, bn;

    if (nl == NULL)
        return;
    an = (size_t)(nl - s);
    bn = len - an - 1;
    if (an > AI_PATTERN_MAX + 1 || bn > AI_PATTERN_MAX + 1)
        return;
    memcpy(a, s, an);
    a[an] = '\0';
    memcpy(b, nl + 1, bn);
    b[bn] = '\0';
    (void)ai_glob_matches(a, b);
    (void)ai_glob_within(a, b);
    (void)ai_scope_matches(a, b);
    (void)ai_scope_within(a, b);
    (void)ai_scope_overlaps(a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ai_keyring *kr;
    ai_err e = {0};
    char *s;

    if (size < 1)
        return 0;
    kr = ai_keyring_new();
    if (ai_keyring_add(kr, 1, key, 0, &e) != AI_OK)
        abort();
    /* A NUL-terminated copy of the rest: exact size, so ASan sees any
     * read past it. */
    s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0: verify_wire(kr, s, size - 1); break;
    case 1: signed_json(kr, data + 1, size - 1); break;
    case 2: user_json(kr, s, strlen(s)); break;
    default: patterns(s, size - 1); break;
    }
    free(s);
    ai_keyring_free(kr);
    return 0;
}
