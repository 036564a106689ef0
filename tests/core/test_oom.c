/* test_oom.c - every allocation of the token core fails in turn: each call
 * either succeeds or returns AI_ENOMEM (or NULL from a *_new), never
 * crashes, and frees what it made (the suite runs under ASan's leak
 * checker in `make asan`). The library's allocator hook
 * (ai_set_alloc_funcs) injects the failures. */
#include <stdlib.h>
#include <string.h>

#include "../tests.h"

static long countdown = -1; /* allocations left before one fails; -1 never */
static long failures;

static void *failing_malloc(size_t n)
{
    if (countdown == 0) {
        countdown = -1;
        failures++;
        return NULL;
    }
    if (countdown > 0)
        countdown--;
    return malloc(n);
}

static int bad_line; /* first line whose result was wrong */
static ai_err bad_err;

#define EXPECT(cond, e)                                                      \
    do {                                                                     \
        if (!(cond) && bad_line == 0) {                                      \
            bad_line = __LINE__;                                             \
            bad_err = (e);                                                   \
        }                                                                    \
    } while (0)

static bool oom_or_ok(ai_code rc)
{
    return rc == AI_OK || rc == AI_ENOMEM;
}

/* One run of the whole token life cycle; returns false on a wrong code. */
static bool life_cycle(void)
{
    static const char *const scopes[] = {"github:repo:*", "system:token:refresh"};
    static const char *const child_scopes[] = {"github:repo:read"};
    ai_keyring *kr = ai_keyring_new();
    ai_token *root = NULL, *child = NULL, *seen = NULL, *fresh = NULL,
             *cached = NULL;
    ai_token_cache *cache = NULL;
    ai_delegation d, parsed;
    ai_delegation_storage *st = NULL;
    ai_root_params p;
    ai_verifier v = {kr, NULL, NULL};
    ai_err err;

    if (kr == NULL)
        return true; /* a clean NULL is the allowed outcome */
    if (!oom_or_ok(ai_keyring_add(kr, 1, t_key1, 0, &err)) ||
        ai_keyring_signing_version(kr) == 0)
        goto done;
    ai_root_params_init(&p);
    p.agent_id = "orchestrator";
    p.scopes = scopes;
    p.nscopes = 2;
    p.constraints_json =
        "{\"github:repo:*\":{\"resources\":[\"myorg/*\",\"a*b?c*\"],"
        "\"maxUses\":9}}";
    p.identity_json = "{\"systemId\":\"s\",\"externalAuth\":{\"issuer\":\"i\"}}";
    p.federation_json = "{\"crossSystemAllowed\":true,\"allowedSystems\":[\"b\"]}";
    p.capabilities_json = "{\"canSpawn\":true,\"custom\":{\"x\":true}}";
    EXPECT(oom_or_ok(ai_token_create_root(kr, &p, T_NOW, &root, &err)), err);
    if (root == NULL)
        goto done;
    (void)ai_token_constraints_json(root);
    (void)ai_token_federation_json(root);
    (void)ai_token_capabilities_json(root);
    ai_delegation_init(&d);
    d.scopes = child_scopes;
    d.nscopes = 1;
    d.constraints_json =
        "{\"github:repo:read\":{\"resources\":[\"myorg/a*\"],\"maxUses\":3}}";
    d.federation_json = "{\"maxHops\":1}";
    d.capabilities_json = "{\"canSpawn\":false}";
    EXPECT(oom_or_ok(ai_token_delegate(kr, root, &d, T_NOW, &child, &err)), err);
    if (child == NULL)
        goto done;
    EXPECT(oom_or_ok(ai_token_verify(&v, ai_token_serialize(child),
                                      ai_token_serialized_len(child), T_NOW,
                                      &seen, &err)), err);
    if (seen != NULL) {
        (void)ai_token_json(seen);
        EXPECT(ai_token_check(seen, "github:repo:read", "myorg/ab", T_NOW,
                              &err) == AI_OK, err);
    }
    EXPECT(oom_or_ok(ai_token_refresh(kr, root, 10, T_NOW, &fresh, &err)), err);
    if ((cache = ai_token_cache_new(16)) != NULL) {
        for (int i = 0; i < 2; i++) {
            ai_token_free(cached);
            cached = NULL;
            EXPECT(oom_or_ok(ai_token_cache_verify(
                cache, &v, ai_token_serialize(child),
                ai_token_serialized_len(child), T_NOW, &cached, &err)), err);
        }
    }
    {
        static const char body[] =
            "{\"agentId\":\"w\",\"requestedScopes\":[\"github:repo:read\"],"
            "\"requestedConstraints\":{\"github:repo:read\":{\"maxUses\":1}}}";
        EXPECT(oom_or_ok(
            ai_delegation_from_json(body, sizeof body - 1, &parsed, &st, &err)), err);
    }
done:
    ai_delegation_storage_free(st);
    ai_token_cache_free(cache);
    ai_token_free(cached);
    ai_token_free(fresh);
    ai_token_free(seen);
    ai_token_free(child);
    ai_token_free(root);
    ai_keyring_free(kr);
    return bad_line == 0;
}

START_TEST(test_oom_every_allocation_failure_is_clean)
{
    long n;

    ai_set_alloc_funcs(failing_malloc, free);
    for (n = 0; n < 100000; n++) {
        long before = failures;
        countdown = n;
        ck_assert_msg(life_cycle(),
                      "allocation %ld failing: line %d gave %s: %s", n,
                      bad_line, ai_strerror(bad_err.code), bad_err.msg);
        if (failures == before)
            break; /* the whole cycle ran without reaching allocation n */
    }
    countdown = -1;
    ai_set_alloc_funcs(NULL, NULL);
    ck_assert_int_gt(n, 20); /* the cycle does allocate, and each was tried */
}
END_TEST

Suite *suite_core_oom(void)
{
    Suite *s = suite_create("core_oom");
    TCase *tc = tcase_create("oom");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_oom_every_allocation_failure_is_clean);
    suite_add_tcase(s, tc);
    return s;
}
