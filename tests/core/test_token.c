/* test_token.c - tokens (DESIGN §2): minting a root, verification in its
 * order (shape, key, HMAC, strict parse, key agreement, expiry,
 * revocation), the wire form and field order, refresh, budgets, and the
 * verified-token cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests.h"
#include "core/core.h"

/* Minted by the Node.js package's algorithm (JSON.stringify, HMAC-SHA256
 * base64url, base64url of the JSON with the signature) with key t_key1:
 * see the node one-liner in the test that uses it. */
static const char node_json[] =
    "{\"agentId\":\"orchestrator\",\"scopes\":[\"github:repo:read\","
    "\"system:token:refresh\"],\"constraints\":{\"github:repo:*\":"
    "{\"resources\":[\"myorg/*\"],\"maxUses\":5}},\"delegatable\":true,"
    "\"maxDelegationDepth\":3,\"currentDepth\":0,\"expiresAt\":"
    "\"2026-12-07T12:00:00.000Z\",\"identity\":{\"principalId\":"
    "\"\xc3\xa9\\u001f/\xe2\x80\xa8\\\"x\\\\\",\"tenantId\":\"t1\"},"
    "\"signature\":\"aDCJVeTPlh91vU_1_ritvJywnQiY9QFti6GR21EKaZg\"}";
static const char node_identity[] =
    "{\"principalId\":\"\xc3\xa9\\u001f/\xe2\x80\xa8\\\"x\\\\\","
    "\"tenantId\":\"t1\"}";
static const char node_wire[] =
    "eyJhZ2VudElkIjoib3JjaGVzdHJhdG9yIiwic2NvcGVzIjpbImdpdGh1YjpyZXBvOnJlYW"
    "QiLCJzeXN0ZW06dG9rZW46cmVmcmVzaCJdLCJjb25zdHJhaW50cyI6eyJnaXRodWI6cmVw"
    "bzoqIjp7InJlc291cmNlcyI6WyJteW9yZy8qIl0sIm1heFVzZXMiOjV9fSwiZGVsZWdhdG"
    "FibGUiOnRydWUsIm1heERlbGVnYXRpb25EZXB0aCI6MywiY3VycmVudERlcHRoIjowLCJl"
    "eHBpcmVzQXQiOiIyMDI2LTEyLTA3VDEyOjAwOjAwLjAwMFoiLCJpZGVudGl0eSI6eyJwcm"
    "luY2lwYWxJZCI6IsOpXHUwMDFmL-KAqFwieFxcIiwidGVuYW50SWQiOiJ0MSJ9LCJzaWdu"
    "YXR1cmUiOiJhRENKVmVUUGxoOTF2VV8xX3JpdHZKeXduUWlZOVFGdGk2R1IyMUVLYVpnIn"
    "0";

static ai_token *quick_root(const ai_keyring *kr)
{
    return t_root(kr, T_LIST("github:repo:read", "github:repo:write",
                             "openai:chat:*"),
                  "{\"github:repo:*\":{\"resources\":[\"myorg/*\"]}}");
}

static ai_token *refreshable_root(const ai_keyring *kr, int ttl_days,
                                  int max_ttl_days)
{
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err = {0};

    ai_root_params_init(&p);
    p.agent_id = "orchestrator";
    p.scopes = T_ARR("github:repo:read", "system:token:refresh");
    p.nscopes = 2;
    p.ttl_days = ttl_days;
    p.max_ttl_days = max_ttl_days;
    ck_assert_msg(ai_token_create_root(kr, &p, T_NOW, &t, &err) == AI_OK, "%s",
                  err.msg);
    return t;
}

static bool b64url_chars(const char *s)
{
    return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-_")] == '\0';
}

static ai_code verify_at(const ai_keyring *kr, const char *wire, int64_t now,
                         ai_token **out, ai_err *err)
{
    ai_verifier v = {kr, NULL, NULL};

    memset(err, 0, sizeof *err);
    return ai_token_verify(&v, wire, strlen(wire), now, out, err);
}

static ai_code verify_revoked(const ai_keyring *kr, const char *wire,
                              t_revoked *rv, ai_token **out, ai_err *err)
{
    ai_verifier v = {kr, t_revoked_fn, rv};

    memset(err, 0, sizeof *err);
    return ai_token_verify(&v, wire, strlen(wire), T_NOW, out, err);
}

/* ---- keyring ---------------------------------------------------------- */

START_TEST(test_keyring_refuses_out_of_range_versions)
{
    ai_keyring *kr = ai_keyring_new();
    ai_err err = {0};

    ck_assert_int_eq(ai_keyring_add(kr, 0, t_key1, 0, &err), AI_EINVAL);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_keyring_add(kr, (UINT32_C(1) << 31) + 1, t_key1, 0, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_keyring_signing_version(kr), 0);
    ck_assert_int_eq(ai_keyring_add(kr, UINT32_C(1) << 31, t_key1, 0, NULL),
                     AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), UINT32_C(1) << 31);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_keyring_first_key_signs_and_changes_bump_generation)
{
    ai_keyring *kr = ai_keyring_new();
    ai_err err = {0};
    uint64_t g0 = ai_keyring_generation(kr), g1, g2;

    ck_assert_int_eq(ai_keyring_add(kr, 3, t_key1, 0, &err), AI_OK);
    g1 = ai_keyring_generation(kr);
    ck_assert_uint_ne(g0, g1);
    ck_assert_int_eq(ai_keyring_add(kr, 4, t_key2, 0, &err), AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 3);
    ck_assert_int_eq(ai_keyring_set_signing(kr, 4, &err), AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 4);
    g2 = ai_keyring_generation(kr);
    ck_assert_uint_ne(g1, g2);
    ck_assert_int_eq(ai_keyring_set_signing(kr, 9, &err), AI_ENOTFOUND);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 4);
    ai_keyring_free(kr);
    ai_keyring_free(NULL);
}
END_TEST

/* ---- create root ------------------------------------------------------ */

START_TEST(test_token_root_has_defaults_and_fresh_id)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = t_root(kr, T_LIST("github:repo:read"), NULL);
    ai_token *u = t_root(kr, T_LIST("github:repo:read"), NULL);

    ck_assert(ai_token_is_verified(t));
    ck_assert_str_eq(ai_token_agent_id(t), "orchestrator");
    ck_assert_ptr_null(ai_token_parent_id(t));
    ck_assert_uint_eq(ai_token_scope_count(t), 1);
    ck_assert_str_eq(ai_token_scope(t, 0), "github:repo:read");
    ck_assert_ptr_null(ai_token_scope(t, 1));
    ck_assert(ai_token_delegatable(t));
    ck_assert_int_eq(ai_token_max_depth(t), 3);
    ck_assert_int_eq(ai_token_depth(t), 0);
    ck_assert_int_eq(ai_token_expires_at(t), T_NOW + 7 * T_DAY);
    ck_assert_int_eq(ai_token_max_expires_at(t), T_NOW + 7 * T_DAY);
    ck_assert_uint_eq(strlen(ai_token_id(t)), AI_TOKEN_ID_CHARS);
    ck_assert(b64url_chars(ai_token_id(t)));
    ck_assert_str_ne(ai_token_id(t), ai_token_id(u));
    ck_assert_uint_eq(ai_token_key_version(t), 1);
    ck_assert_uint_eq(ai_token_ancestor_count(t), 0);
    ck_assert_str_eq(ai_token_constraints_json(t), "{}");
    ck_assert_ptr_null(ai_token_identity_json(t));
    ck_assert_ptr_null(ai_token_federation_json(t));
    ck_assert_ptr_null(ai_token_capabilities_json(t));
    ck_assert_uint_eq(ai_token_serialized_len(t),
                      strlen(ai_token_serialize(t)));
    ai_token_free(t);
    ai_token_free(u);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_root_max_ttl_sets_max_expires_at)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 7, 30);

    ck_assert_int_eq(ai_token_expires_at(t), T_NOW + 7 * T_DAY);
    ck_assert_int_eq(ai_token_max_expires_at(t), T_NOW + 30 * T_DAY);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_root_refuses_bad_parameters)
{
    ai_keyring *kr = t_keyring(), *empty = ai_keyring_new();
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err;

#define ROOT_FAILS(setup, code, needle)                                     \
    do {                                                                    \
        ai_root_params_init(&p);                                            \
        p.agent_id = "a";                                                   \
        p.scopes = T_ARR("github:repo:read");                              \
        p.nscopes = 1;                                                      \
        setup;                                                              \
        memset(&err, 0, sizeof err);                                        \
        ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &t, &err),     \
                         code);                                             \
        ck_assert_ptr_null(t);                                              \
        ck_assert_msg(t_has(err.msg, needle), "%s", err.msg);               \
    } while (0)

    ROOT_FAILS(p.ttl_days = 91, AI_EINVAL, "ttlDays");
    ROOT_FAILS(p.ttl_days = 0, AI_EINVAL, "ttlDays");
    ROOT_FAILS((p.ttl_days = 10, p.max_ttl_days = 5), AI_EINVAL, "maxTtlDays");
    ROOT_FAILS(p.max_ttl_days = 91, AI_EINVAL, "maxTtlDays");
    ROOT_FAILS(p.max_delegation_depth = 17, AI_EINVAL, "maxDelegationDepth");
    ROOT_FAILS(p.max_delegation_depth = -1, AI_EINVAL, "maxDelegationDepth");
    ROOT_FAILS(p.agent_id = "", AI_EINVAL, "agentId");
    ROOT_FAILS(p.agent_id = NULL, AI_EINVAL, "agentId");
    ROOT_FAILS(p.agent_id = "a\nb", AI_EINVAL, "agentId");
    ROOT_FAILS(p.nscopes = 0, AI_EINVAL, "scope");
    ROOT_FAILS((p.scopes = T_ARR("a:b", "a:b"), p.nscopes = 2), AI_EINVAL, "twice");
    ROOT_FAILS(p.scopes = T_ARR("a:\tb"), AI_EINVAL, "scope");
    ROOT_FAILS(p.scopes = T_ARR(""), AI_EINVAL, "scope");
    ROOT_FAILS(p.constraints_json = "{\"a:b\":{\"color\":1}}", AI_EINVAL,
               "constraints");
    ROOT_FAILS(p.constraints_json = "[1]", AI_EINVAL, "constraints");
    ROOT_FAILS(p.constraints_json = "{\"a:b\":{\"maxUses\":0}}", AI_EINVAL,
               "constraints");
    ROOT_FAILS(p.identity_json = "\"me\"", AI_EINVAL, "identity");
    ROOT_FAILS(p.federation_json = "{\"hops\":1}", AI_EINVAL, "federation");
    ROOT_FAILS(p.capabilities_json = "{\"canFly\":true}", AI_EINVAL,
               "agentCapabilities");
    ai_root_params_init(&p);
    p.agent_id = "a";
    p.scopes = T_ARR("github:repo:read");
    p.nscopes = 1;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_create_root(empty, &p, T_NOW, &t, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "signing key"));
#undef ROOT_FAILS
    ai_keyring_free(kr);
    ai_keyring_free(empty);
}
END_TEST

START_TEST(test_token_root_refuses_json_over_16k)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err = {0};
    char *cons = malloc(40000), *ident = malloc(4000);
    size_t o = 0;

    /* Each input is under 16 KiB; the token holding both is not. */
    o += (size_t)snprintf(cons + o, 40000 - o, "{\"a:b\":{\"resources\":[");
    for (int i = 0; i < 60; i++) {
        o += (size_t)snprintf(cons + o, 40000 - o, "%s\"%03d", i ? "," : "", i);
        memset(cons + o, 'r', 247);
        o += 247;
        cons[o++] = '"';
    }
    snprintf(cons + o, 40000 - o, "]}}");
    ck_assert_uint_lt(strlen(cons), AI_TOKEN_JSON_MAX);
    o = (size_t)snprintf(ident, 4000, "{\"note\":\"");
    memset(ident + o, 'n', 2000);
    snprintf(ident + o + 2000, 4000 - o - 2000, "\"}");
    ai_root_params_init(&p);
    p.agent_id = "a";
    p.scopes = T_ARR("a:b");
    p.nscopes = 1;
    p.constraints_json = cons;
    p.identity_json = ident;
    ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &t, &err), AI_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_msg(t_has(err.msg, "would exceed 16384"), "%s", err.msg);
    free(cons);
    free(ident);
    ai_keyring_free(kr);
}
END_TEST

/* ---- the wire form and the signed JSON -------------------------------- */

START_TEST(test_token_json_fields_in_design_order)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_delegation d;
    ai_token *root = NULL, *child = NULL;
    ai_err err = {0};
    const char *rid, *cid, *json, *sig;
    char want[4096];

    ai_root_params_init(&p);
    p.agent_id = "orchestrator";
    p.scopes = T_ARR("github:repo:*", "system:token:refresh");
    p.nscopes = 2;
    p.constraints_json =
        "{\"github:repo:*\":{\"maxUses\":100,\"notAfter\":"
        "\"2026-12-31T00:00:00+01:00\",\"resources\":[\"myorg/*\"],"
        "\"notBefore\":\"2026-11-30T00:00:00Z\"}}";
    p.max_ttl_days = 30;
    p.identity_json = "{\"systemId\":\"sys\",\"principalId\":\"p\\u001F\\/\\u00e9\"}";
    p.federation_json =
        "{\"allowFurtherFederation\":true,\"maxHops\":3,\"hopCount\":1,"
        "\"originSystem\":\"o\",\"allowedSystems\":[\"a\",\"b\"],"
        "\"crossSystemAllowed\":true}";
    p.capabilities_json =
        "{\"custom\":{\"x\":true},\"visibility\":\"scope\",\"canSpawn\":true}";
    ck_assert_msg(ai_token_create_root(kr, &p, T_NOW, &root, &err) == AI_OK,
                  "%s", err.msg);
    rid = ai_token_id(root);
    json = ai_token_json(root);
    sig = json + strlen(json) - 45;
    snprintf(want, sizeof want,
             "{\"agentId\":\"orchestrator\",\"scopes\":[\"github:repo:*\","
             "\"system:token:refresh\"],\"constraints\":{\"github:repo:*\":"
             "{\"resources\":[\"myorg/*\"],\"notBefore\":"
             "\"2026-11-30T00:00:00.000Z\",\"notAfter\":"
             "\"2026-12-30T23:00:00.000Z\",\"maxUses\":100,\"budgets\":"
             "[{\"id\":\"%s:github:repo:*\",\"maxUses\":100}]}},"
             "\"delegatable\":true,\"maxDelegationDepth\":3,"
             "\"currentDepth\":0,\"expiresAt\":\"2026-12-07T12:00:00.000Z\","
             "\"maxExpiresAt\":\"2026-12-30T12:00:00.000Z\",\"identity\":"
             "{\"systemId\":\"sys\",\"principalId\":\"p\\u001f/\xc3\xa9\"},"
             "\"federation\":{\"crossSystemAllowed\":true,\"allowedSystems\":"
             "[\"a\",\"b\"],\"originSystem\":\"o\",\"hopCount\":1,"
             "\"maxHops\":3,\"allowFurtherFederation\":true},"
             "\"agentCapabilities\":{\"canSpawn\":true,\"visibility\":"
             "\"scope\",\"custom\":{\"x\":true}},\"tokenId\":\"%s\","
             "\"keyVersion\":1,\"signature\":\"%.43s\"}",
             rid, rid, sig);
    ck_assert_str_eq(json, want);

    ai_delegation_init(&d);
    d.agent_id = "code-reviewer";
    d.scopes = T_ARR("github:repo:read");
    d.nscopes = 1;
    d.constraints_json = "{\"github:repo:read\":{\"resources\":"
                         "[\"myorg/frontend\"],\"maxUses\":10}}";
    ck_assert_msg(ai_token_delegate(kr, root, &d, T_NOW, &child, &err) == AI_OK,
                  "%s", err.msg);
    cid = ai_token_id(child);
    json = ai_token_json(child);
    sig = json + strlen(json) - 45;
    snprintf(want, sizeof want,
             "{\"agentId\":\"code-reviewer\",\"parentId\":\"orchestrator\","
             "\"scopes\":[\"github:repo:read\"],\"constraints\":"
             "{\"github:repo:*\":{\"resources\":[\"myorg/*\"],\"notBefore\":"
             "\"2026-11-30T00:00:00.000Z\",\"notAfter\":"
             "\"2026-12-30T23:00:00.000Z\",\"maxUses\":100,\"budgets\":"
             "[{\"id\":\"%s:github:repo:*\",\"maxUses\":100}]},"
             "\"github:repo:read\":{\"resources\":[\"myorg/frontend\"],"
             "\"notBefore\":\"2026-11-30T00:00:00.000Z\",\"notAfter\":"
             "\"2026-12-30T23:00:00.000Z\",\"maxUses\":10,\"budgets\":"
             "[{\"id\":\"%s:github:repo:read\",\"maxUses\":10}]}},"
             "\"delegatable\":true,\"maxDelegationDepth\":3,"
             "\"currentDepth\":1,\"expiresAt\":\"2026-11-30T13:00:00.000Z\","
             "\"maxExpiresAt\":\"2026-12-30T12:00:00.000Z\",\"identity\":"
             "{\"systemId\":\"sys\",\"principalId\":\"p\\u001f/\xc3\xa9\"},"
             "\"federation\":{\"crossSystemAllowed\":true,\"allowedSystems\":"
             "[\"a\",\"b\"],\"originSystem\":\"o\",\"hopCount\":1,"
             "\"maxHops\":3,\"allowFurtherFederation\":true},"
             "\"agentCapabilities\":{\"canSpawn\":true,\"visibility\":"
             "\"scope\",\"custom\":{\"x\":true}},\"tokenId\":\"%s\","
             "\"ancestors\":[\"%s\"],\"ancestorAgents\":[\"orchestrator\"],"
             "\"keyVersion\":1,\"signature\":\"%.43s\"}",
             rid, cid, cid, rid, sig);
    ck_assert_str_eq(json, want);
    ai_token_free(child);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_wire_is_base64url_of_json_signed_with_hmac)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr);
    const char *json = ai_token_json(t);
    size_t n = strlen(json), body = n - (14 + 43 + 2);
    char *j = malloc(body + 2), *wire, *b64;

    /* J = J' without its signature member */
    memcpy(j, json, body);
    j[body] = '}';
    j[body + 1] = '\0';
    ck_assert(strncmp(json + body, ",\"signature\":\"", 14) == 0);
    wire = t_sign(t_key1, j);
    ck_assert_str_eq(wire, ai_token_serialize(t));
    b64 = t_b64url(json, n);
    ck_assert_str_eq(b64, ai_token_serialize(t));
    ck_assert_ptr_null(strchr(ai_token_serialize(t), '='));
    free(b64);
    free(wire);
    free(j);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_serialize_deserialize_round_trip)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *d = NULL, *v = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_deserialize(ai_token_serialize(t),
                                          ai_token_serialized_len(t), &d, &err),
                     AI_OK);
    ck_assert(!ai_token_is_verified(d));
    ck_assert_str_eq(ai_token_json(d), ai_token_json(t));
    ck_assert_str_eq(ai_token_serialize(d), ai_token_serialize(t));
    ck_assert_str_eq(ai_token_agent_id(d), "orchestrator");
    ck_assert_str_eq(ai_token_id(d), ai_token_id(t));
    ck_assert_uint_eq(ai_token_scope_count(d), 3);
    ck_assert_str_eq(ai_token_scope(d, 2), "openai:chat:*");
    ck_assert_int_eq(ai_token_expires_at(d), ai_token_expires_at(t));
    ck_assert_str_eq(ai_token_constraints_json(d), ai_token_constraints_json(t));
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(d), &v, &err), AI_OK);
    ck_assert(ai_token_is_verified(v));
    ck_assert_str_eq(ai_token_json(v), ai_token_json(t));
    ai_token_free(v);
    ai_token_free(d);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_deserialized_is_refused_by_check_delegate_refresh)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 7, 30), *d = NULL, *out = NULL;
    ai_delegation del;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_deserialize(ai_token_serialize(t),
                                          ai_token_serialized_len(t), &d, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_check(d, "github:repo:read", "x", T_NOW, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "verified"));
    ai_delegation_init(&del);
    del.scopes = T_ARR("github:repo:read");
    del.nscopes = 1;
    ck_assert_int_eq(t_delegate_err(kr, d, &del, &err), AI_EINVAL);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_refresh(kr, d, 0, T_NOW, &out, &err), AI_EINVAL);
    ck_assert_ptr_null(out);
    ai_token_free(d);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_deserialize_refuses_garbage)
{
    ai_token *d = (ai_token *)1;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_deserialize("not a token", 11, &d, &err),
                     AI_ETOKEN);
    ck_assert_ptr_null(d);
    ck_assert(strncmp(err.msg, "invalid token: ", 15) == 0);
}
END_TEST

START_TEST(test_token_objects_written_in_javascript_key_order)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err;

    /* JSON.stringify(JSON.parse(J)) in Node puts array-index keys first,
     * ascending: the bytes signed here must already be in that order. */
    ai_root_params_init(&p);
    p.agent_id = "a";
    p.scopes = T_ARR("z:a");
    p.nscopes = 1;
    p.constraints_json = "{\"z:a\":{\"maxUses\":1},\"10\":{},\"2\":{}}";
    p.capabilities_json = "{\"custom\":{\"b\":true,\"7\":false,\"0\":true}}";
    p.identity_json = "{\"tenantId\":\"t\",\"3\":1,\"1\":2}";
    ck_assert_msg(ai_token_create_root(kr, &p, T_NOW, &t, &err) == AI_OK, "%s",
                  err.msg);
    ck_assert(strncmp(ai_token_constraints_json(t), "{\"2\":{},\"10\":{},\"z:a\":",
                      22) == 0);
    ck_assert_str_eq(ai_token_capabilities_json(t),
                     "{\"custom\":{\"0\":true,\"7\":false,\"b\":true}}");
    ck_assert_str_eq(ai_token_identity_json(t), "{\"1\":2,\"3\":1,\"tenantId\":\"t\"}");
    ck_assert(t_has(ai_token_json(t), "\"constraints\":{\"2\":{},\"10\":{},"));
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_id_may_begin_with_dash)
{
    ai_keyring *kr = t_keyring();
    char *w = t_sign(t_key1,
                     "{\"agentId\":\"a\",\"scopes\":[\"a:b\"],\"constraints\":{},"
                     "\"delegatable\":true,\"maxDelegationDepth\":3,"
                     "\"currentDepth\":1,\"expiresAt\":\"2026-12-01T00:00:00Z\","
                     "\"tokenId\":\"-AAAAAAAAAAAAAAAAAAAA_\","
                     "\"ancestors\":[\"-BBBBBBBBBBBBBBBBBBBB-\"],\"keyVersion\":1}");
    ai_token *v = NULL;
    t_revoked rv = {NULL, "-BBBBBBBBBBBBBBBBBBBB-", NULL, 0};
    ai_verifier ver = {kr, t_revoked_fn, &rv};
    ai_err err;

    ck_assert_msg(t_verify(kr, w, &v, &err) == AI_OK, "%s", err.msg);
    ck_assert_str_eq(ai_token_id(v), "-AAAAAAAAAAAAAAAAAAAA_");
    ck_assert_str_eq(ai_token_ancestor(v, 0), "-BBBBBBBBBBBBBBBBBBBB-");
    ai_token_free(v);
    ck_assert_int_eq(ai_token_verify(&ver, w, strlen(w), T_NOW, &v, &err),
                     AI_EREVOKED);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

/* ---- verification ----------------------------------------------------- */

START_TEST(test_token_verify_accepts_good_token)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = NULL;
    ai_err err;

    ck_assert_int_eq(t_verify(kr, ai_token_serialize(t), &v, &err), AI_OK);
    ck_assert_int_eq(err.code, AI_OK);
    ck_assert(ai_token_is_verified(v));
    ck_assert_str_eq(ai_token_id(v), ai_token_id(t));
    ck_assert_str_eq(ai_token_constraints_json(v),
                     "{\"github:repo:*\":{\"resources\":[\"myorg/*\"]}}");
    ai_token_free(v);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_any_tampered_character)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v;
    char *wire = strdup(ai_token_serialize(t));
    size_t n = strlen(wire);
    ai_err err;

    for (size_t i = 0; i < n; i++) {
        char keep = wire[i];
        static const char alts[] = "AB_9";
        for (size_t a = 0; a < 4; a++) {
            if (alts[a] == keep)
                continue;
            wire[i] = alts[a];
            v = (ai_token *)1;
            ck_assert_msg(t_verify(kr, wire, &v, &err) == AI_ETOKEN,
                          "tampered position %zu accepted", i);
            ck_assert_ptr_null(v);
            ck_assert_msg(strncmp(err.msg, "invalid token: ", 15) == 0, "%s",
                          err.msg);
        }
        wire[i] = keep;
    }
    free(wire);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_truncated_or_extended_wire)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = NULL;
    const char *w = ai_token_serialize(t);
    size_t n = strlen(w);
    char *x = malloc(n + 8);
    ai_err err;
    ai_verifier ver = {kr, NULL, NULL};

    for (size_t cut = 1; cut <= 8; cut++) {
        memset(&err, 0, sizeof err);
        ck_assert_int_eq(ai_token_verify(&ver, w, n - cut, T_NOW, &v, &err),
                         AI_ETOKEN);
    }
    snprintf(x, n + 8, "%s=", w);
    ck_assert_int_eq(t_verify(kr, x, &v, &err), AI_ETOKEN);
    snprintf(x, n + 8, "%sAA", w);
    ck_assert_int_eq(t_verify(kr, x, &v, &err), AI_ETOKEN);
    snprintf(x, n + 8, " %s", w);
    ck_assert_int_eq(t_verify(kr, x, &v, &err), AI_ETOKEN);
    ck_assert_int_eq(t_verify(kr, "", &v, &err), AI_ETOKEN);
    ck_assert_ptr_null(v);
    free(x);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_edited_claims)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = NULL;
    char *json = strdup(ai_token_json(t)), *p, *wire;
    ai_err err;

    /* widen a scope in the JSON and re-encode: the HMAC no longer fits */
    p = strstr(json, "openai:chat:*");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "openai:*:*:*!", 13);
    wire = t_b64url(json, strlen(json));
    ck_assert_int_eq(t_verify(kr, wire, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: signature mismatch");
    free(wire);
    free(json);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_noncanonical_signature)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = NULL;
    char *json = strdup(ai_token_json(t)), *wire;
    size_t n = strlen(json);
    char *last = json + n - 3; /* ...X"} : the 43rd signature character */
    size_t val = (size_t)(strchr(alpha, *last) - alpha);
    ai_err err;

    /* 43 characters carry 258 bits: the last one's two low bits are spare.
     * Setting them gives the same MAC bytes, but not the same string. */
    ck_assert_uint_eq(val & 3, 0);
    for (size_t spare = 1; spare < 4; spare++) {
        *last = alpha[val | spare];
        wire = t_b64url(json, n);
        ck_assert_int_eq(t_verify(kr, wire, &v, &err), AI_ETOKEN);
        ck_assert_str_eq(err.msg, "invalid token: signature mismatch");
        free(wire);
    }
    free(json);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_signature_not_last)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL;
    ai_err err;
    const char *j = "{\"signature\":\"aDCJVeTPlh91vU_1_ritvJywnQiY9QFti6GR21EKaZg\","
                    "\"agentId\":\"a\"}";
    char *wire = t_b64url(j, strlen(j));

    ck_assert_int_eq(t_verify(kr, wire, &v, &err), AI_ETOKEN);
    ck_assert(t_has(err.msg, "signature"));
    free(wire);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_wire_over_22000_chars)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL;
    ai_err err;
    char *w = malloc(AI_TOKEN_WIRE_MAX + 2);

    memset(w, 'A', AI_TOKEN_WIRE_MAX + 1);
    w[AI_TOKEN_WIRE_MAX + 1] = '\0';
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: longer than 22000 characters");
    /* exactly 22000 decodes to more than 16 KiB of JSON */
    w[AI_TOKEN_WIRE_MAX] = '\0';
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: JSON larger than 16 KiB");
    ck_assert_ptr_null(v);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

/* J' of exactly 16384 bytes verifies; one byte more does not. */
START_TEST(test_token_verify_json_limit_is_16k)
{
    ai_keyring *kr = t_keyring();
    const char *head = "{\"agentId\":\"a\",\"scopes\":[\"s:x\"],"
                       "\"constraints\":{},\"delegatable\":true,"
                       "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                       "\"expiresAt\":\"2026-12-01T00:00:00Z\",\"pad\":\"";
    size_t hn = strlen(head);
    char *j = malloc(AI_TOKEN_JSON_MAX + 8), *wire;
    ai_token *v = NULL;
    ai_err err;

    for (size_t extra = 0; extra < 2; extra++) {
        /* J' = J + 58 bytes of signature member */
        size_t jlen = AI_TOKEN_JSON_MAX - 58 + extra;
        size_t pad = jlen - hn - 2;
        memcpy(j, head, hn);
        memset(j + hn, 'p', pad);
        memcpy(j + hn + pad, "\"}", 3);
        ck_assert_uint_eq(strlen(j), jlen);
        wire = t_sign(t_key1, j);
        if (extra == 0) {
            ck_assert_msg(t_verify(kr, wire, &v, &err) == AI_OK, "%s", err.msg);
            ck_assert_uint_eq(strlen(ai_token_json(v)), AI_TOKEN_JSON_MAX);
            ai_token_free(v);
        } else {
            ck_assert_int_eq(t_verify(kr, wire, &v, &err), AI_ETOKEN);
            ck_assert(t_has(err.msg, "16 KiB"));
        }
        free(wire);
    }
    free(j);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_unknown_key_version)
{
    ai_keyring *k2 = ai_keyring_new(), *k1 = t_keyring();
    ai_token *t, *v = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_keyring_add(k2, 2, t_key2, 0, &err), AI_OK);
    t = t_root(k2, T_LIST("a:b"), NULL);
    ck_assert_uint_eq(ai_token_key_version(t), 2);
    ck_assert_int_eq(t_verify(k1, ai_token_serialize(t), &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: unknown or retired signing key");
    ck_assert_int_eq(t_verify(k2, ai_token_serialize(t), &v, &err), AI_OK);
    ai_token_free(v);
    ai_token_free(t);
    ai_keyring_free(k1);
    ai_keyring_free(k2);
}
END_TEST

START_TEST(test_token_verify_refuses_retired_key_version)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = NULL;
    ai_err err = {0};

    /* version 1 verifies until T_NOW + 1 hour, not from then on */
    ck_assert_int_eq(ai_keyring_add(kr, 1, t_key1, T_NOW + T_HOUR, &err), AI_OK);
    ck_assert_int_eq(verify_at(kr, ai_token_serialize(t), T_NOW + T_HOUR - 1, &v,
                               &err),
                     AI_OK);
    ai_token_free(v);
    ck_assert_int_eq(verify_at(kr, ai_token_serialize(t), T_NOW + T_HOUR, &v,
                               &err),
                     AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: unknown or retired signing key");
    ck_assert_ptr_null(v);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_rotation_signs_with_new_key_and_old_still_verifies)
{
    ai_keyring *kr = t_keyring();
    ai_token *old = quick_root(kr), *new_, *v = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_keyring_add(kr, 2, t_key2, 0, &err), AI_OK);
    ck_assert_int_eq(ai_keyring_set_signing(kr, 2, &err), AI_OK);
    new_ = quick_root(kr);
    ck_assert_uint_eq(ai_token_key_version(new_), 2);
    ck_assert(t_has(ai_token_json(new_), ",\"keyVersion\":2,\"signature\":"));
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(new_), &v, &err), AI_OK);
    ai_token_free(v);
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(old), &v, &err), AI_OK);
    ck_assert_uint_eq(ai_token_key_version(v), 1);
    ai_token_free(v);
    ai_token_free(old);
    ai_token_free(new_);
    ai_keyring_free(kr);
}
END_TEST

#define KV_BASE                                                            \
    "{\"agentId\":\"a\",\"scopes\":[\"s:x\"],\"constraints\":{},"           \
    "\"delegatable\":true,\"maxDelegationDepth\":3,\"currentDepth\":0,"     \
    "\"expiresAt\":\"2026-12-01T00:00:00.000Z\""

START_TEST(test_token_verify_key_version_member_must_agree)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL;
    ai_err err = {0};
    char *w;

    ck_assert_int_eq(ai_keyring_add(kr, 2, t_key2, 0, &err), AI_OK);
    /* keyVersion 2 not just before the signature: key 1 is used, and the
     * parsed version disagrees */
    w = t_sign(t_key1, KV_BASE ",\"keyVersion\":2,\"x\":1}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg,
                     "invalid token: keyVersion does not match the signing key");
    free(w);
    /* an escaped name is not the trailing member the key is chosen by,
     * but the parser sees keyVersion 2: refused */
    w = t_sign(t_key1, KV_BASE ",\"key\\u0056ersion\":2}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg,
                     "invalid token: keyVersion does not match the signing key");
    free(w);
    /* trailing keyVersion 2 names key 2: signing with key 1 cannot pass */
    w = t_sign(t_key1, KV_BASE ",\"keyVersion\":2}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: signature mismatch");
    free(w);
    /* no keyVersion means version 1: key 2 cannot pass */
    w = t_sign(t_key2, KV_BASE "}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: signature mismatch");
    free(w);
    /* agreeing forms verify */
    w = t_sign(t_key2, KV_BASE ",\"keyVersion\":2}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_OK);
    ck_assert_uint_eq(ai_token_key_version(v), 2);
    ai_token_free(v);
    free(w);
    w = t_sign(t_key1, KV_BASE ",\"keyVersion\":1}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_OK);
    ai_token_free(v);
    free(w);
    /* a leading zero or a version past 2^31 is refused outright */
    w = t_sign(t_key1, KV_BASE ",\"keyVersion\":01}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: bad keyVersion");
    free(w);
    w = t_sign(t_key1, KV_BASE ",\"keyVersion\":2147483649}");
    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: bad keyVersion");
    free(w);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_expired)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = NULL;
    int64_t exp = ai_token_expires_at(t);
    ai_err err;

    ck_assert_int_eq(verify_at(kr, ai_token_serialize(t), exp - 1, &v, &err),
                     AI_OK);
    ai_token_free(v);
    ck_assert_int_eq(verify_at(kr, ai_token_serialize(t), exp, &v, &err),
                     AI_EEXPIRED);
    ck_assert_ptr_null(v);
    ck_assert_str_eq(err.msg, "token expired at 2026-12-07T12:00:00.000Z");
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_revoked_token_id)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = (ai_token *)1;
    t_revoked rv = {ai_token_id(t), NULL, NULL, 0};
    ai_err err;

    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(t), &rv, &v, &err),
                     AI_EREVOKED);
    ck_assert_ptr_null(v);
    ck_assert(t_has(err.msg, ai_token_id(t)));
    rv.token = "AAAAAAAAAAAAAAAAAAAAAA";
    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(t), &rv, &v, &err),
                     AI_OK);
    ai_token_free(v);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_revoked_ancestor)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    ai_token *child = t_child(kr, root, "c1", T_LIST("github:repo:read"), NULL);
    ai_token *grand = t_child(kr, child, "c2", T_LIST("github:repo:read"), NULL);
    ai_token *v = NULL;
    t_revoked rv = {NULL, ai_token_id(root), NULL, 0};
    ai_err err;

    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(child), &rv, &v, &err),
                     AI_EREVOKED);
    ck_assert(t_has(err.msg, ai_token_id(root)));
    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(grand), &rv, &v, &err),
                     AI_EREVOKED);
    rv.ancestor = ai_token_id(child);
    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(grand), &rv, &v, &err),
                     AI_EREVOKED);
    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(root), &rv, &v, &err),
                     AI_OK);
    ai_token_free(v);
    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(child), &rv, &v, &err),
                     AI_OK);
    ai_token_free(v);
    ai_token_free(grand);
    ai_token_free(child);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_revoked_agent)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    ai_token *child = t_child(kr, root, "code-reviewer",
                              T_LIST("github:repo:read"), NULL);
    ai_token *v = NULL;
    t_revoked rv = {NULL, NULL, "code-reviewer", 0};
    ai_err err;

    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(child), &rv, &v, &err),
                     AI_EREVOKED);
    ck_assert(t_has(err.msg, "code-reviewer"));
    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(root), &rv, &v, &err),
                     AI_OK);
    ai_token_free(v);
    ai_token_free(child);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* Records which ids were asked as ancestor agents; revokes `agent` under
 * AI_REVOKED_ANCESTOR_AGENT only, so a refusal proves the kind. */
typedef struct anc_rev {
    const char *agent;
    char asked[256];
} anc_rev;

static bool anc_revoked(void *ud, ai_revoke_kind kind, const char *id)
{
    anc_rev *r = ud;

    if (kind != AI_REVOKED_ANCESTOR_AGENT)
        return false;
    snprintf(r->asked + strlen(r->asked), sizeof r->asked - strlen(r->asked),
             "%s;", id);
    return r->agent != NULL && strcmp(r->agent, id) == 0;
}

static ai_code verify_anc(const ai_keyring *kr, const ai_token *t,
                          anc_rev *r, ai_err *err)
{
    ai_verifier v = {kr, anc_revoked, r};
    ai_token *out = NULL;
    ai_code rc;

    memset(err, 0, sizeof *err);
    r->asked[0] = '\0';
    rc = ai_token_verify(&v, ai_token_serialize(t), ai_token_serialized_len(t),
                         T_NOW, &out, err);
    ai_token_free(out);
    return rc;
}

START_TEST(test_token_verify_refuses_revoked_ancestor_agent_at_depth_3)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr); /* agent "orchestrator" */
    ai_token *c1 = t_child(kr, root, "planner", T_LIST("github:repo:read"),
                           NULL);
    ai_token *c2 = t_child(kr, c1, "coder", T_LIST("github:repo:read"), NULL);
    ai_token *c3 = t_child(kr, c2, "linter", T_LIST("github:repo:read"), NULL);
    static const char *const above[] = {"orchestrator", "planner", "coder"};
    anc_rev r = {NULL, ""};
    ai_err err;

    ck_assert_int_eq(ai_token_depth(c3), 3);
    ck_assert_int_eq(verify_anc(kr, c3, &r, &err), AI_OK);
    /* each ancestor's agent asked once, root first */
    ck_assert_str_eq(r.asked, "orchestrator;planner;coder;");
    for (size_t i = 0; i < 3; i++) {
        r.agent = above[i];
        ck_assert_int_eq(verify_anc(kr, c3, &r, &err), AI_EREVOKED);
        ck_assert_msg(t_has(err.msg, "ancestor agent") &&
                          t_has(err.msg, above[i]),
                      "%s", err.msg);
        /* the tokens above the revoked agent's are untouched */
        ck_assert_int_eq(verify_anc(kr, root, &r, &err), AI_OK);
    }
    r.agent = "planner";
    ck_assert_int_eq(verify_anc(kr, c1, &r, &err), AI_OK);
    ck_assert_int_eq(verify_anc(kr, c2, &r, &err), AI_EREVOKED);
    r.agent = "linter"; /* the token's own agent is AI_REVOKED_AGENT */
    ck_assert_int_eq(verify_anc(kr, c3, &r, &err), AI_OK);
    ai_token_free(c3);
    ai_token_free(c2);
    ai_token_free(c1);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_revoked_agent_of_node_parent)
{
    /* A Node.js child names its parent's agent only in parentId. */
    ai_keyring *kr = t_keyring();
    char *w = t_node_child();
    ai_token *v = NULL;
    anc_rev r = {"node-root", ""};
    ai_verifier ver = {kr, anc_revoked, &r};
    ai_err err = {0};

    ck_assert_int_eq(ai_token_verify(&ver, w, strlen(w), T_NOW, &v, &err),
                     AI_EREVOKED);
    ck_assert(t_has(err.msg, "node-root"));
    ck_assert_ptr_null(v);
    r.agent = "someone-else";
    ck_assert_int_eq(ai_token_verify(&ver, w, strlen(w), T_NOW, &v, &err),
                     AI_OK);
    ai_token_free(v);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_revocation_not_consulted_for_forgeries)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *v = NULL;
    t_revoked rv = {NULL, NULL, NULL, 0};
    char *w = strdup(ai_token_serialize(t));
    ai_err err;

    w[10] = w[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify_revoked(kr, w, &rv, &v, &err), AI_ETOKEN);
    ck_assert_int_eq(rv.calls, 0);
    ck_assert_int_eq(verify_revoked(kr, ai_token_serialize(t), &rv, &v, &err),
                     AI_OK);
    ck_assert_int_gt(rv.calls, 0);
    ai_token_free(v);
    free(w);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_refuses_missing_arguments)
{
    ai_keyring *kr = t_keyring();
    ai_verifier none = {NULL, NULL, NULL}, v = {kr, NULL, NULL};
    ai_token *t = (ai_token *)1;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_verify(&none, "abc", 3, T_NOW, &t, &err),
                     AI_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(ai_token_verify(NULL, "abc", 3, T_NOW, &t, NULL), AI_EINVAL);
    ck_assert_int_eq(ai_token_verify(&v, "abc", 3, T_NOW, NULL, NULL), AI_EINVAL);
    ck_assert_int_eq(ai_token_verify(&v, NULL, 0, T_NOW, &t, NULL), AI_ETOKEN);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_calls_clear_err_and_report_root_cause)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL;
    ai_err err;
    ai_verifier ver = {kr, NULL, NULL};

    /* an uninitialized-looking err is cleared on entry */
    memset(&err, 0x5a, sizeof err);
    err.msg[sizeof err.msg - 1] = '\0';
    ck_assert_int_eq(ai_token_verify(&ver, "", 0, T_NOW, &v, &err), AI_ETOKEN);
    ck_assert_int_eq(err.code, AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: empty");
    ck_assert_int_eq(ai_token_verify(&ver, "Z", 1, T_NOW, &v, &err), AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: not unpadded base64url");
    memset(&err, 0x5a, sizeof err);
    ck_assert_int_eq(ai_keyring_add(kr, 2, t_key2, 0, &err), AI_OK);
    ck_assert_int_eq(err.code, AI_OK);
    ck_assert_str_eq(err.msg, "");
    ck_assert_str_eq(ai_strerror(AI_ETOKEN), "invalid token");
    for (int c = AI_OK; c <= AI_EINTERNAL; c++)
        ck_assert_ptr_nonnull(ai_strerror((ai_code)c));
    ck_assert_ptr_nonnull(ai_strerror((ai_code)99));
    ck_assert_str_eq(ai_version(), AI_VERSION);
    ai_keyring_free(kr);
}
END_TEST

/* The machine names the HTTP API and --json give read back as their
 * codes, and only those. */
START_TEST(test_err_code_names_read_back)
{
    ai_code c = AI_OK;

    ck_assert(err_code_parse("token_revoked", &c));
    ck_assert_int_eq(c, AI_EREVOKED);
    ck_assert(err_code_parse("internal_error", &c));
    ck_assert_int_eq(c, AI_EINTERNAL);
    for (int k = AI_EINVAL; k <= AI_ESTORAGE_FULL; k++) {
        ck_assert(err_code_parse(err_code_name((ai_code)k), &c));
        ck_assert_str_eq(err_code_name(c), err_code_name((ai_code)k));
    }
    c = AI_OK;
    ck_assert(!err_code_parse("unauthorized", &c));
    ck_assert(!err_code_parse("", &c));
    ck_assert(!err_code_parse(NULL, &c));
    ck_assert_int_eq(c, AI_OK);
}
END_TEST

/* ---- the Node.js package's tokens ------------------------------------ */

/* node -e 'const c=require("crypto"),k=Buffer.from([...Array(32).keys()]);
 *   const o={agentId:"orchestrator",scopes:["github:repo:read",
 *   "system:token:refresh"],constraints:{"github:repo:*":{resources:
 *   ["myorg/\x2a"],maxUses:5}},delegatable:true,maxDelegationDepth:3,
 *   currentDepth:0,expiresAt:"2026-12-07T12:00:00.000Z",identity:
 *   {principalId:"\u00e9\u001f/\u2028\"x\\",tenantId:"t1"}};
 *   const s=c.createHmac("sha256",k).update(JSON.stringify(o))
 *   .digest("base64url");console.log(Buffer.from(JSON.stringify(
 *   {...o,signature:s})).toString("base64url"))' */
START_TEST(test_token_node_token_verifies_as_key_version_1)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL;
    ai_err err;

    ck_assert_msg(t_verify(kr, node_wire, &v, &err) == AI_OK, "%s", err.msg);
    ck_assert_str_eq(ai_token_json(v), node_json);
    ck_assert_ptr_null(ai_token_id(v));
    ck_assert_uint_eq(ai_token_key_version(v), 1);
    ck_assert_str_eq(ai_token_identity_json(v), node_identity);
    ck_assert_int_eq(ai_token_check(v, "github:repo:read", "myorg/x", T_NOW,
                                    &err),
                     AI_OK);
    ai_token_free(v);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_node_token_budget_is_its_own)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL;
    ai_budget_ref b[4];
    size_t n = 0;
    ai_err err;

    ck_assert_int_eq(t_verify(kr, node_wire, &v, &err), AI_OK);
    ck_assert_int_eq(ai_token_budgets(v, "github:repo:read", b, 4, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(b[0].id,
                     "aDCJVeTPlh91vU_1_ritvJywnQiY9QFti6GR21EKaZg:github:repo:*");
    ck_assert_uint_eq(b[0].max_uses, 5);
    ai_token_free(v);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_node_token_child_gets_token_id_and_same_identity)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL, *c;
    ai_budget_ref b[4];
    size_t n = 0;
    ai_err err;

    ck_assert_int_eq(t_verify(kr, node_wire, &v, &err), AI_OK);
    c = t_child(kr, v, "c", T_LIST("github:repo:read"), NULL);
    ck_assert_uint_eq(strlen(ai_token_id(c)), AI_TOKEN_ID_CHARS);
    ck_assert_uint_eq(ai_token_ancestor_count(c), 0);
    /* the Node root has no tokenId but an agent: ancestorAgents names it */
    ck_assert_uint_eq(ai_token_ancestor_agent_count(c), 1);
    ck_assert_str_eq(ai_token_ancestor_agent(c, 0), "orchestrator");
    ck_assert_str_eq(ai_token_identity_json(c), node_identity);
    ck_assert_int_eq(ai_token_max_expires_at(c), 0);
    /* the Node token's implicit budget is shared by name */
    ck_assert_int_eq(ai_token_budgets(c, "github:repo:read", b, 4, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(b[0].id,
                     "aDCJVeTPlh91vU_1_ritvJywnQiY9QFti6GR21EKaZg:github:repo:*");
    ai_token_free(c);
    ai_token_free(v);
    ai_keyring_free(kr);
}
END_TEST

/* ---- refresh ---------------------------------------------------------- */

START_TEST(test_token_refresh_needs_refresh_scope)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_token *t = NULL, *r = NULL;
    ai_err err = {0};

    ai_root_params_init(&p);
    p.agent_id = "a";
    p.scopes = T_ARR("github:repo:read", "system:token:read");
    p.nscopes = 2;
    p.max_ttl_days = 30;
    ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &t, &err), AI_OK);
    ck_assert_int_eq(ai_token_refresh(kr, t, 0, T_NOW, &r, &err), AI_EDENIED);
    ck_assert_ptr_null(r);
    ck_assert(t_has(err.msg, "system:token:refresh"));
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_accepts_wildcards_covering_refresh)
{
    static const char *const pats[] = {"system:token:refresh",
                                       "system:token:*", "system:*", "*"};
    ai_keyring *kr = t_keyring();

    for (size_t i = 0; i < 4; i++) {
        ai_root_params p;
        ai_token *t = NULL, *r = NULL;
        ai_err err = {0};
        ai_root_params_init(&p);
        p.agent_id = "a";
        p.scopes = &pats[i];
        p.nscopes = 1;
        p.max_ttl_days = 30;
        ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &t, &err), AI_OK);
        ck_assert_msg(ai_token_refresh(kr, t, 0, T_NOW, &r, &err) == AI_OK,
                      "%s: %s", pats[i], err.msg);
        ai_token_free(r);
        ai_token_free(t);
    }
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_keeps_token_id_and_claims)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = refreshable_root(kr, 7, 30);
    ai_token *child = t_child(kr, root, "c",
                              T_LIST("github:repo:read", "system:token:refresh"),
                              "{\"github:repo:read\":{\"resources\":[\"a/*\"],"
                              "\"maxUses\":3}}");
    ai_token *r = NULL, *v = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_refresh(kr, child, 120, T_NOW + T_MIN, &r, &err),
                     AI_OK);
    ck_assert_str_eq(ai_token_id(r), ai_token_id(child));
    ck_assert_str_eq(ai_token_agent_id(r), "c");
    ck_assert_str_eq(ai_token_parent_id(r), "orchestrator");
    ck_assert_str_eq(ai_token_constraints_json(r),
                     ai_token_constraints_json(child));
    ck_assert_uint_eq(ai_token_ancestor_count(r), 1);
    ck_assert_str_eq(ai_token_ancestor(r, 0), ai_token_id(root));
    ck_assert_uint_eq(ai_token_ancestor_agent_count(r), 1);
    ck_assert_str_eq(ai_token_ancestor_agent(r, 0), "orchestrator");
    ck_assert_int_eq(ai_token_depth(r), 1);
    ck_assert_int_eq(ai_token_max_expires_at(r), ai_token_max_expires_at(child));
    ck_assert_int_eq(ai_token_expires_at(r), T_NOW + T_MIN + 120 * T_MIN);
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(r), &v, &err), AI_OK);
    ai_token_free(v);
    ai_token_free(r);
    ai_token_free(child);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_default_extends_to_at_least_an_hour)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 7, 30), *r = NULL;
    int64_t exp = ai_token_expires_at(t), now;
    ai_err err = {0};

    /* plenty left: now + remaining, i.e. the same expiry */
    now = T_NOW + T_DAY;
    ck_assert_int_eq(ai_token_refresh(kr, t, 0, now, &r, &err), AI_OK);
    ck_assert_int_eq(ai_token_expires_at(r), exp);
    ai_token_free(r);
    /* ten minutes left: now + 1 hour */
    now = exp - 10 * T_MIN;
    ck_assert_int_eq(ai_token_refresh(kr, t, 0, now, &r, &err), AI_OK);
    ck_assert_int_eq(ai_token_expires_at(r), now + T_HOUR);
    ai_token_free(r);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_capped_at_max_expires_at)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 7, 30), *r = NULL;
    ai_token *once = refreshable_root(kr, 7, 0);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_refresh(kr, t, 60 * 24 * 60, T_NOW, &r, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_expires_at(r), T_NOW + 30 * T_DAY);
    ai_token_free(r);
    /* maxExpiresAt = expiresAt: the last ten minutes cannot grow */
    ck_assert_int_eq(ai_token_refresh(kr, once, 0, T_NOW + 7 * T_DAY - 10 * T_MIN,
                                      &r, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_expires_at(r), T_NOW + 7 * T_DAY);
    ai_token_free(r);
    ai_token_free(once);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_refused_past_max_expires_at)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 7, 30), *r = NULL, *r2 = NULL;
    ai_err err = {0};

    /* refresh up to the end of the 30 days, then try after them */
    ck_assert_int_eq(ai_token_refresh(kr, t, 60 * 24 * 10, T_NOW + 6 * T_DAY,
                                      &r, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_expires_at(r), T_NOW + 16 * T_DAY);
    ck_assert_int_eq(ai_token_refresh(kr, r, 60 * 24 * 30, T_NOW + 12 * T_DAY,
                                      &r2, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_expires_at(r2), T_NOW + 30 * T_DAY);
    ai_token_free(r);
    ck_assert_int_eq(ai_token_refresh(kr, r2, 0, T_NOW + 30 * T_DAY, &r, &err),
                     AI_EEXPIRED);
    ck_assert_ptr_null(r);
    ai_token_free(r2);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_refused_once_max_expires_at_passed)
{
    ai_keyring *kr = t_keyring();
    /* signed elsewhere: still valid, but its maxExpiresAt is over */
    char *w = t_sign(t_key1,
                     "{\"agentId\":\"a\",\"scopes\":[\"system:token:refresh\"],"
                     "\"constraints\":{},\"delegatable\":true,"
                     "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                     "\"expiresAt\":\"2026-12-01T12:00:00Z\","
                     "\"maxExpiresAt\":\"2026-11-30T11:00:00Z\"}");
    ai_token *v = NULL, *r = NULL;
    ai_err err;

    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_OK);
    ck_assert_int_eq(ai_token_refresh(kr, v, 0, T_NOW, &r, &err), AI_EEXPIRED);
    ck_assert(t_has(err.msg, "maxExpiresAt"));
    ck_assert_ptr_null(r);
    ai_token_free(v);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_verify_rejects_max_uses_not_matching_budgets)
{
    ai_keyring *kr = t_keyring();
    static const char *const bodies[] = {
        /* no budget at all: no use would be counted */
        "\"maxUses\":5,\"budgets\":[]",
        /* a budget larger than maxUses */
        "\"maxUses\":5,\"budgets\":[{\"id\":\"x:github:*\",\"maxUses\":9}]",
    };

    for (size_t i = 0; i < 2; i++) {
        char json[512];
        ai_token *v = NULL;
        ai_err err;
        snprintf(json, sizeof json,
                 "{\"agentId\":\"a\",\"scopes\":[\"github:*\"],"
                 "\"constraints\":{\"github:*\":{%s}},\"delegatable\":true,"
                 "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                 "\"expiresAt\":\"2026-12-01T12:00:00Z\"}",
                 bodies[i]);
        char *w = t_sign(t_key1, json);
        ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_ETOKEN);
        ck_assert(t_has(err.msg, "maxUses does not match its budgets"));
        ck_assert_ptr_null(v);
        free(w);
    }
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_refused_for_expired_token)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 1, 30), *r = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_refresh(kr, t, 0, T_NOW + T_DAY, &r, &err),
                     AI_EEXPIRED);
    ck_assert_ptr_null(r);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_refused_without_max_expires_at)
{
    ai_keyring *kr = t_keyring();
    ai_token *v = NULL, *r = NULL;
    ai_err err;

    ck_assert_int_eq(t_verify(kr, node_wire, &v, &err), AI_OK);
    ck_assert_int_eq(ai_token_refresh(kr, v, 0, T_NOW, &r, &err), AI_EDENIED);
    ck_assert(t_has(err.msg, "maxExpiresAt"));
    ck_assert_ptr_null(r);
    ai_token_free(v);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_resigns_with_current_key)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 7, 30), *r = NULL, *v = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_keyring_add(kr, 2, t_key2, 0, &err), AI_OK);
    ck_assert_int_eq(ai_keyring_set_signing(kr, 2, &err), AI_OK);
    ck_assert_int_eq(ai_token_refresh(kr, t, 0, T_NOW, &r, &err), AI_OK);
    ck_assert_uint_eq(ai_token_key_version(r), 2);
    ck_assert_str_eq(ai_token_id(r), ai_token_id(t));
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(r), &v, &err), AI_OK);
    ck_assert_uint_eq(ai_token_key_version(v), 2);
    ai_token_free(v);
    ai_token_free(r);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_drops_unknown_fields_and_rewrites_times)
{
    ai_keyring *kr = t_keyring();
    char *w = t_sign(t_key1,
                     "{\"agentId\":\"a\",\"scopes\":[\"system:*\"],"
                     "\"constraints\":{\"system:*\":{\"notAfter\":"
                     "\"2027-01-01T01:00:00+01:00\"}},\"delegatable\":true,"
                     "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                     "\"expiresAt\":\"2026-12-01T14:00:00.5+02:00\","
                     "\"maxExpiresAt\":\"2026-12-20T00:00:00Z\",\"vendor\":"
                     "{\"x\":1},\"tokenId\":\"AAAAAAAAAAAAAAAAAAAAAA\","
                     "\"keyVersion\":1}");
    ai_token *v = NULL, *r = NULL;
    ai_err err;

    ck_assert_msg(t_verify(kr, w, &v, &err) == AI_OK, "%s", err.msg);
    ck_assert_int_eq(ai_token_expires_at(v), T_NOW + T_DAY + 500);
    ck_assert_int_eq(ai_token_refresh(kr, v, 0, T_NOW, &r, &err), AI_OK);
    ck_assert(!t_has(ai_token_json(r), "vendor"));
    ck_assert(t_has(ai_token_json(r), "\"notAfter\":\"2027-01-01T00:00:00.000Z\""));
    ck_assert(t_has(ai_token_json(r), "\"maxExpiresAt\":\"2026-12-20T00:00:00.000Z\""));
    ck_assert(t_has(ai_token_json(r), "\"tokenId\":\"AAAAAAAAAAAAAAAAAAAAAA\""));
    /* a day remains: unchanged expiry, written in UTC ms form */
    ck_assert(t_has(ai_token_json(r), "\"expiresAt\":\"2026-12-01T12:00:00.500Z\""));
    ai_token_free(r);
    ai_token_free(v);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_refresh_refuses_bad_ttl)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = refreshable_root(kr, 7, 30), *r = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_refresh(kr, t, -1, T_NOW, &r, &err), AI_EINVAL);
    ck_assert_ptr_null(r);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

/* ---- check and budgets ----------------------------------------------- */

START_TEST(test_token_check_scope_and_resource)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "myorg/x", T_NOW, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_check(t, "openai:chat:completions", NULL, T_NOW,
                                    &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "other/x", T_NOW,
                                    &err),
                     AI_EDENIED);
    ck_assert(t_has(err.msg, "other/x"));
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_check(t, "github:repo:admin", "myorg/x", T_NOW,
                                    &err),
                     AI_EDENIED);
    ck_assert(t_has(err.msg, "github:repo:admin"));
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "myorg/x",
                                    ai_token_expires_at(t), &err),
                     AI_EEXPIRED);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_check(t, "", "x", T_NOW, &err), AI_EINVAL);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_root_budget_is_token_id_and_key)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = t_root(kr, T_LIST("github:repo:*"),
                         "{\"github:repo:*\":{\"maxUses\":100}}");
    ai_budget_ref b[2];
    size_t n = 0;
    char want[64];
    ai_err err = {0};

    ck_assert_int_eq(ai_token_budgets(t, "github:repo:read", b, 2, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 1);
    snprintf(want, sizeof want, "%s:github:repo:*", ai_token_id(t));
    ck_assert_str_eq(b[0].id, want);
    ck_assert_uint_eq(b[0].max_uses, 100);
    ck_assert_int_eq(ai_token_budgets(t, "openai:chat:x", b, 2, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 0);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_requested_budgets_are_ignored)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = t_root(kr, T_LIST("a:b"),
                         "{\"a:b\":{\"maxUses\":5,\"budgets\":[{\"id\":\"mine\","
                         "\"maxUses\":1000}]}}");
    ai_budget_ref b[2];
    size_t n = 0;
    ai_err err = {0};

    ck_assert(!t_has(ai_token_json(t), "mine"));
    ck_assert_int_eq(ai_token_budgets(t, "a:b", b, 2, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(b[0].max_uses, 5);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_budgets_union_without_repeats)
{
    ai_keyring *kr = t_keyring();
    char *w = t_sign(t_key1,
                     "{\"agentId\":\"a\",\"scopes\":[\"github:*\"],"
                     "\"constraints\":{\"github:*\":{\"maxUses\":7,\"budgets\":"
                     "[{\"id\":\"shared\",\"maxUses\":10},{\"id\":\"a\","
                     "\"maxUses\":7}]},\"github:repo:*\":{\"maxUses\":5,"
                     "\"budgets\":[{\"id\":\"shared\",\"maxUses\":5}]},"
                     "\"openai:*\":{\"maxUses\":1}},\"delegatable\":true,"
                     "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                     "\"expiresAt\":\"2026-12-01T00:00:00Z\"}");
    ai_token *v = NULL;
    ai_budget_ref b[4];
    size_t n = 0;
    ai_err err;

    ck_assert_int_eq(t_verify(kr, w, &v, &err), AI_OK);
    ck_assert_int_eq(ai_token_budgets(v, "github:repo:read", b, 4, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(b[0].id, "shared");
    ck_assert_uint_eq(b[0].max_uses, 5);
    ck_assert_str_eq(b[1].id, "a");
    ck_assert_uint_eq(b[1].max_uses, 7);
    ck_assert_int_eq(ai_token_budgets(v, "github:issues:read", b, 4, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(b[0].max_uses, 10);
    /* too small a buffer: the count that exists comes back */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_budgets(v, "github:repo:read", b, 1, &n, &err),
                     AI_ENOBUFS);
    ck_assert_uint_eq(n, 2);
    ai_token_free(v);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

/* ---- verified-token cache -------------------------------------------- */

START_TEST(test_cache_hit_returns_the_verified_token)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *a = NULL, *b = NULL;
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier v = {kr, NULL, NULL};
    const char *w = ai_token_serialize(t);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &a, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &b, &err),
                     AI_OK);
    ck_assert_ptr_eq(a, b);
    ck_assert(ai_token_is_verified(b));
    ai_token_free(a);
    ai_token_free(b);
    ai_token_cache_free(c);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_hit_still_refuses_expired)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *a = NULL;
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier v = {kr, NULL, NULL};
    const char *w = ai_token_serialize(t);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &a, &err),
                     AI_OK);
    ai_token_free(a);
    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w),
                                           ai_token_expires_at(t), &a, &err),
                     AI_EEXPIRED);
    ck_assert_ptr_null(a);
    ai_token_cache_free(c);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_hit_still_refuses_revoked)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    ai_token *t = t_child(kr, root, "c", T_LIST("github:repo:read"), NULL);
    ai_token *a = NULL;
    ai_token_cache *c = ai_token_cache_new(16);
    t_revoked rv = {NULL, NULL, NULL, 0};
    ai_verifier plain = {kr, NULL, NULL}, rev = {kr, t_revoked_fn, &rv};
    const char *w = ai_token_serialize(t);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(c, &plain, w, strlen(w), T_NOW, &a,
                                           &err),
                     AI_OK);
    ai_token_free(a);
    rv.ancestor = ai_token_id(root);
    ck_assert_int_eq(ai_token_cache_verify(c, &rev, w, strlen(w), T_NOW, &a, &err),
                     AI_EREVOKED);
    ck_assert_ptr_null(a);
    rv.ancestor = NULL;
    rv.token = ai_token_id(t);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_cache_verify(c, &rev, w, strlen(w), T_NOW, &a, &err),
                     AI_EREVOKED);
    rv.token = NULL;
    rv.agent = "c";
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_cache_verify(c, &rev, w, strlen(w), T_NOW, &a, &err),
                     AI_EREVOKED);
    /* unrevoked: valid again */
    rv.agent = NULL;
    ck_assert_int_eq(ai_token_cache_verify(c, &rev, w, strlen(w), T_NOW, &a, &err),
                     AI_OK);
    ai_token_free(a);
    ai_token_cache_free(c);
    ai_token_free(t);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_dropped_when_keyring_generation_changes)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *a = NULL, *b = NULL;
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier v = {kr, NULL, NULL};
    const char *w = ai_token_serialize(t);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &a, &err),
                     AI_OK);
    ck_assert_int_eq(ai_keyring_add(kr, 2, t_key2, 0, &err), AI_OK);
    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &b, &err),
                     AI_OK);
    ck_assert_ptr_ne(a, b); /* verified afresh */
    ai_token_free(b);
    /* retiring version 1 changes the generation: refused, not served */
    ck_assert_int_eq(ai_keyring_add(kr, 1, t_key1, T_NOW, &err), AI_OK);
    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &b, &err),
                     AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: unknown or retired signing key");
    ck_assert_ptr_null(b);
    ai_token_free(a);
    ai_token_cache_free(c);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_dropped_when_key_replaced)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *a = NULL;
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier v = {kr, NULL, NULL};
    const char *w = ai_token_serialize(t);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &a, &err),
                     AI_OK);
    ai_token_free(a);
    /* version 1 now has other bytes: the cached token must not pass */
    ck_assert_int_eq(ai_keyring_add(kr, 1, t_key2, 0, &err), AI_OK);
    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW, &a, &err),
                     AI_ETOKEN);
    ck_assert_str_eq(err.msg, "invalid token: signature mismatch");
    ai_token_cache_free(c);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_never_serves_forgeries)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *a = NULL;
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier v = {kr, NULL, NULL};
    char *w = strdup(ai_token_serialize(t));
    size_t n = strlen(w);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, n, T_NOW, &a, &err), AI_OK);
    ai_token_free(a);
    /* same tail (the set is chosen by it), different head */
    w[5] = w[5] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(ai_token_cache_verify(c, &v, w, n, T_NOW, &a, &err),
                     AI_ETOKEN);
    ck_assert_ptr_null(a);
    free(w);
    ai_token_cache_free(c);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_evicts_when_full)
{
    ai_keyring *kr = t_keyring();
    ai_token_cache *c = ai_token_cache_new(4);
    ai_verifier v = {kr, NULL, NULL};
    ai_token *toks[24];
    ai_err err = {0};

    for (int i = 0; i < 24; i++)
        toks[i] = t_root(kr, T_LIST("a:b"), NULL);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 24; i++) {
            ai_token *a = NULL;
            const char *w = ai_token_serialize(toks[i]);
            ck_assert_int_eq(ai_token_cache_verify(c, &v, w, strlen(w), T_NOW,
                                                   &a, &err),
                             AI_OK);
            ck_assert_str_eq(ai_token_id(a), ai_token_id(toks[i]));
            ai_token_free(a);
        }
    ai_token_cache_clear(c);
    for (int i = 0; i < 24; i++)
        ai_token_free(toks[i]);
    ai_token_cache_free(c);
    ai_token_cache_free(NULL);
    ai_keyring_free(kr);
}
END_TEST

/* A root of about 7,300 characters (48 resources of 104): it counts about
 * 27,800 bytes in a cache (its memory and room for its views), so a cache
 * of capacity 16 (64 KiB) holds two of them, and one of capacity 4
 * (16 KiB) none. */
static ai_token *big_root(const ai_keyring *kr)
{
    char cons[8192];
    size_t n = 0;

    n += (size_t)snprintf(cons, sizeof cons, "{\"a:b\":{\"resources\":[");
    for (int i = 0; i < 48; i++)
        n += (size_t)snprintf(cons + n, sizeof cons - n, "%s\"org/%0100d\"",
                              i ? "," : "", i);
    snprintf(cons + n, sizeof cons - n, "]}}");
    return t_root(kr, T_LIST("a:b"), cons);
}

/* Verify w through c: true when the answer is `seen` (a hit). */
static bool cache_hit(ai_token_cache *c, const ai_verifier *v,
                      const ai_token *t, ai_token *seen, ai_token **out)
{
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(c, v, ai_token_serialize(t),
                                           ai_token_serialized_len(t), T_NOW,
                                           out, &err),
                     AI_OK);
    return *out == seen;
}

START_TEST(test_cache_keeps_within_its_byte_bound)
{
    ai_keyring *kr = t_keyring();
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier v = {kr, NULL, NULL};
    ai_token *toks[6], *first[6], *again;
    int hits = 0;

    for (int i = 0; i < 6; i++) {
        toks[i] = big_root(kr);
        (void)cache_hit(c, &v, toks[i], NULL, &first[i]);
    }
    for (int i = 5; i >= 0; i--) {
        hits += cache_hit(c, &v, toks[i], first[i], &again);
        ai_token_free(again);
    }
    /* 16 entries would hold all six; 64 KiB holds two */
    ck_assert_int_ge(hits, 1);
    ck_assert_int_le(hits, 2);
    for (int i = 0; i < 6; i++) {
        ai_token_free(first[i]);
        ai_token_free(toks[i]);
    }
    ai_token_cache_free(c);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_verifies_but_does_not_keep_a_token_over_its_bound)
{
    ai_keyring *kr = t_keyring();
    ai_token_cache *c = ai_token_cache_new(4);
    ai_verifier v = {kr, NULL, NULL};
    ai_token *t = big_root(kr), *a, *b;

    ck_assert(!cache_hit(c, &v, t, NULL, &a));
    ck_assert(!cache_hit(c, &v, t, a, &b));
    ck_assert(ai_token_is_verified(b));
    ai_token_free(a);
    ai_token_free(b);
    ai_token_cache_free(c);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_eviction_spares_tokens_hit_lately)
{
    ai_keyring *kr = t_keyring();
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier v = {kr, NULL, NULL};
    ai_token *ta = big_root(kr), *tb = big_root(kr), *tc = big_root(kr);
    ai_token *a, *b, *x, *y;

    (void)cache_hit(c, &v, ta, NULL, &a);
    (void)cache_hit(c, &v, tb, NULL, &b);
    ck_assert(cache_hit(c, &v, ta, a, &x)); /* a hit marks it */
    ai_token_free(x);
    (void)cache_hit(c, &v, tc, NULL, &x);   /* room for one more: b goes */
    ck_assert(cache_hit(c, &v, ta, a, &y));
    ai_token_free(y);
    ck_assert(!cache_hit(c, &v, tb, b, &y));
    ai_token_free(y);
    ai_token_free(x);
    ai_token_free(a);
    ai_token_free(b);
    ai_token_cache_free(c);
    ai_token_free(ta);
    ai_token_free(tb);
    ai_token_free(tc);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_cache_null_falls_back_to_verify)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr), *a = NULL;
    ai_verifier v = {kr, NULL, NULL};
    const char *w = ai_token_serialize(t);
    ai_err err = {0};

    ck_assert_int_eq(ai_token_cache_verify(NULL, &v, w, strlen(w), T_NOW, &a,
                                           &err),
                     AI_OK);
    ai_token_free(a);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_token_ref_counts)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = quick_root(kr);

    ck_assert_ptr_eq(ai_token_ref(t), t);
    ai_token_free(t);
    ck_assert_str_eq(ai_token_agent_id(t), "orchestrator");
    ai_token_free(t);
    ai_token_free(NULL);
    ck_assert_ptr_null(ai_token_ref(NULL));
    ai_keyring_free(kr);
}
END_TEST

/* Keyrings replaced wholesale (the way to drop a key under load) never
 * share a generation, even when one is freed and the next lands at the
 * same address: the verified-token cache can tell them apart. */
START_TEST(test_keyring_generations_are_never_reused)
{
    ai_keyring *a = ai_keyring_new(), *b;
    ai_err err;
    uint64_t ga;

    ck_assert_int_eq(ai_keyring_add(a, 1, t_key1, 0, &err), AI_OK);
    ga = ai_keyring_generation(a);
    ai_keyring_free(a);
    b = ai_keyring_new();
    ck_assert_int_eq(ai_keyring_add(b, 1, t_key2, 0, &err), AI_OK);
    ck_assert_uint_ne(ai_keyring_generation(b), ga);
    ai_keyring_free(b);
}
END_TEST

/* A cached token is refused once its key is gone from a new keyring. */
START_TEST(test_cache_refuses_token_after_keyring_swap)
{
    ai_keyring *a = t_keyring(), *b = ai_keyring_new();
    ai_token *root = quick_root(a), *seen = NULL;
    ai_token_cache *c = ai_token_cache_new(16);
    ai_verifier va = {a, NULL, NULL}, vb = {b, NULL, NULL};
    ai_err err;

    ck_assert_int_eq(ai_keyring_add(b, 1, t_key2, 0, &err), AI_OK);
    ck_assert_int_eq(ai_token_cache_verify(c, &va, ai_token_serialize(root),
                                           ai_token_serialized_len(root),
                                           T_NOW, &seen, &err),
                     AI_OK);
    ai_token_free(seen);
    seen = NULL;
    ck_assert_int_eq(ai_token_cache_verify(c, &vb, ai_token_serialize(root),
                                           ai_token_serialized_len(root),
                                           T_NOW, &seen, &err),
                     AI_ETOKEN);
    ck_assert_ptr_null(seen);
    ai_token_cache_free(c);
    ai_token_free(root);
    ai_keyring_free(a);
    ai_keyring_free(b);
}
END_TEST

/* A check names one scope: a pattern could slip past constraints written
 * for the scopes it covers. */
START_TEST(test_check_refuses_wildcard_scope_and_long_resource)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = t_root(kr, T_LIST("github:*"),
                         "{\"github:repo:read\":{\"resources\":[\"org/allowed\"],"
                         "\"maxUses\":5}}");
    ai_budget_ref refs[4];
    size_t n;
    char big[AI_RESOURCE_MAX + 2];
    ai_err err;

    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "org/secret",
                                    T_NOW, &err),
                     AI_EDENIED);
    ck_assert_int_eq(ai_token_check(t, "github:repo:*", "org/secret", T_NOW,
                                    &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "\"*\""));
    ck_assert_int_eq(ai_token_check(t, "github:*:read", "org/secret", T_NOW,
                                    &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_token_budgets(t, "github:repo:*", refs, 4, &n, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_token_budgets(t, "github:repo:read", refs, 4, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 1);
    memset(big, 'o', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(ai_token_check(t, "github:repo:write", big, T_NOW, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "resource longer than"));
    big[AI_RESOURCE_MAX] = '\0';
    ck_assert_int_eq(ai_token_check(t, "github:repo:write", big, T_NOW, &err),
                     AI_OK);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

/* Constraints on system:token:refresh bind refresh like any scope. */
START_TEST(test_token_refresh_obeys_its_constraints)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_token *t = NULL, *r = NULL;
    ai_err err;

    ai_root_params_init(&p);
    p.agent_id = "a";
    p.scopes = T_ARR("system:*");
    p.nscopes = 1;
    p.constraints_json =
        "{\"system:token:refresh\":{\"notAfter\":\"2020-01-01T00:00:00Z\"}}";
    ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &t, &err), AI_OK);
    ck_assert_int_eq(ai_token_refresh(kr, t, 0, T_NOW, &r, &err), AI_EEXPIRED);
    ck_assert(t_has(err.msg, "system:token:refresh"));
    ck_assert_ptr_null(r);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

/* A resource with `*` or `?` asks for all it matches (AWS reads it as a
 * wildcard): it must lie within a pattern, not just be matched by one. */
START_TEST(test_check_wildcard_resource_needs_containment)
{
    ai_keyring *kr = t_keyring();
    ai_token *t = t_root(kr, T_LIST("aws:s3:read", "github:repo:read"),
                         "{\"aws:s3:read\":{\"resources\":["
                         "\"my-bucket/reports/2024-0?.csv\"]},"
                         "\"github:repo:read\":{\"resources\":[\"myorg/*\"]}}");
    ai_err err;

    ck_assert_int_eq(ai_token_check(t, "aws:s3:read",
                                    "my-bucket/reports/2024-01.csv", T_NOW,
                                    &err),
                     AI_OK);
    /* `?` matches the byte '*', but "2024-0*.csv" covers far more */
    ck_assert_int_eq(ai_token_check(t, "aws:s3:read",
                                    "my-bucket/reports/2024-0*.csv", T_NOW,
                                    &err),
                     AI_EDENIED);
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "myorg/front*",
                                    T_NOW, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "*", T_NOW, &err),
                     AI_EDENIED);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

Suite *suite_core_token(void)
{
    Suite *s = suite_create("core_token");
    TCase *kr = tcase_create("keyring");
    TCase *mint = tcase_create("mint");
    TCase *ver = tcase_create("verify");
    TCase *node = tcase_create("node");
    TCase *ref = tcase_create("refresh");
    TCase *chk = tcase_create("check");
    TCase *cache = tcase_create("cache");

    tcase_add_test(kr, test_keyring_refuses_out_of_range_versions);
    tcase_add_test(kr, test_keyring_generations_are_never_reused);
    tcase_add_test(cache, test_cache_refuses_token_after_keyring_swap);
    tcase_add_test(chk, test_check_refuses_wildcard_scope_and_long_resource);
    tcase_add_test(chk, test_check_wildcard_resource_needs_containment);
    tcase_add_test(ref, test_token_refresh_obeys_its_constraints);
    tcase_add_test(kr, test_keyring_first_key_signs_and_changes_bump_generation);
    suite_add_tcase(s, kr);

    tcase_add_test(mint, test_token_root_has_defaults_and_fresh_id);
    tcase_add_test(mint, test_token_root_max_ttl_sets_max_expires_at);
    tcase_add_test(mint, test_token_root_refuses_bad_parameters);
    tcase_add_test(mint, test_token_root_refuses_json_over_16k);
    tcase_add_test(mint, test_token_json_fields_in_design_order);
    tcase_add_test(mint, test_token_wire_is_base64url_of_json_signed_with_hmac);
    tcase_add_test(mint, test_token_serialize_deserialize_round_trip);
    tcase_add_test(mint, test_token_deserialized_is_refused_by_check_delegate_refresh);
    tcase_add_test(mint, test_token_deserialize_refuses_garbage);
    tcase_add_test(mint, test_token_ref_counts);
    tcase_add_test(mint, test_token_objects_written_in_javascript_key_order);
    tcase_add_test(mint, test_token_id_may_begin_with_dash);
    suite_add_tcase(s, mint);

    tcase_add_test(ver, test_token_verify_accepts_good_token);
    tcase_add_test(ver, test_token_verify_refuses_any_tampered_character);
    tcase_add_test(ver, test_token_verify_refuses_truncated_or_extended_wire);
    tcase_add_test(ver, test_token_verify_refuses_edited_claims);
    tcase_add_test(ver, test_token_verify_refuses_noncanonical_signature);
    tcase_add_test(ver, test_token_verify_refuses_signature_not_last);
    tcase_add_test(ver, test_token_verify_refuses_wire_over_22000_chars);
    tcase_add_test(ver, test_token_verify_json_limit_is_16k);
    tcase_add_test(ver, test_token_verify_refuses_unknown_key_version);
    tcase_add_test(ver, test_token_verify_refuses_retired_key_version);
    tcase_add_test(ver, test_token_rotation_signs_with_new_key_and_old_still_verifies);
    tcase_add_test(ver, test_token_verify_key_version_member_must_agree);
    tcase_add_test(ver, test_token_verify_refuses_expired);
    tcase_add_test(ver, test_token_verify_refuses_revoked_token_id);
    tcase_add_test(ver, test_token_verify_refuses_revoked_ancestor);
    tcase_add_test(ver, test_token_verify_refuses_revoked_agent);
    tcase_add_test(ver, test_token_verify_refuses_revoked_ancestor_agent_at_depth_3);
    tcase_add_test(ver, test_token_verify_refuses_revoked_agent_of_node_parent);
    tcase_add_test(ver, test_token_verify_revocation_not_consulted_for_forgeries);
    tcase_add_test(ver, test_token_verify_refuses_missing_arguments);
    tcase_add_test(ver, test_token_calls_clear_err_and_report_root_cause);
    suite_add_tcase(s, ver);

    tcase_add_test(node, test_token_node_token_verifies_as_key_version_1);
    tcase_add_test(node, test_token_node_token_budget_is_its_own);
    tcase_add_test(node, test_token_node_token_child_gets_token_id_and_same_identity);
    suite_add_tcase(s, node);

    tcase_add_test(ref, test_token_refresh_needs_refresh_scope);
    tcase_add_test(ref, test_token_refresh_accepts_wildcards_covering_refresh);
    tcase_add_test(ref, test_token_refresh_keeps_token_id_and_claims);
    tcase_add_test(ref, test_token_refresh_default_extends_to_at_least_an_hour);
    tcase_add_test(ref, test_token_refresh_capped_at_max_expires_at);
    tcase_add_test(ref, test_token_refresh_refused_past_max_expires_at);
    tcase_add_test(ref, test_token_refresh_refused_once_max_expires_at_passed);
    tcase_add_test(ref, test_token_verify_rejects_max_uses_not_matching_budgets);
    tcase_add_test(ref, test_token_refresh_refused_for_expired_token);
    tcase_add_test(ref, test_token_refresh_refused_without_max_expires_at);
    tcase_add_test(ref, test_token_refresh_resigns_with_current_key);
    tcase_add_test(ref, test_token_refresh_drops_unknown_fields_and_rewrites_times);
    tcase_add_test(ref, test_token_refresh_refuses_bad_ttl);
    suite_add_tcase(s, ref);

    tcase_add_test(chk, test_token_check_scope_and_resource);
    tcase_add_test(chk, test_token_root_budget_is_token_id_and_key);
    tcase_add_test(chk, test_token_requested_budgets_are_ignored);
    tcase_add_test(chk, test_token_budgets_union_without_repeats);
    suite_add_tcase(s, chk);

    tcase_add_test(cache, test_cache_hit_returns_the_verified_token);
    tcase_add_test(cache, test_cache_hit_still_refuses_expired);
    tcase_add_test(cache, test_cache_hit_still_refuses_revoked);
    tcase_add_test(cache, test_cache_dropped_when_keyring_generation_changes);
    tcase_add_test(cache, test_cache_dropped_when_key_replaced);
    tcase_add_test(cache, test_cache_never_serves_forgeries);
    tcase_add_test(cache, test_cache_evicts_when_full);
    tcase_add_test(cache, test_cache_keeps_within_its_byte_bound);
    tcase_add_test(cache,
                   test_cache_verifies_but_does_not_keep_a_token_over_its_bound);
    tcase_add_test(cache, test_cache_eviction_spares_tokens_hit_lately);
    tcase_add_test(cache, test_cache_null_falls_back_to_verify);
    tcase_add_test(cache, test_err_code_names_read_back);
    suite_add_tcase(s, cache);
    return s;
}
