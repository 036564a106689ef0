/* test_delegate.c - delegation is attenuation only (DESIGN §2): the
 * README's examples, and every escalation refused with an error that names
 * the scope, pattern or field; constraints carried and narrowed, budgets,
 * MAP fields (identity, agentCapabilities, federation), the ancestor chain
 * and DelegationRequest JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests.h"

/* Delegation request with one scope list, and nothing else set. */
static ai_delegation req(const char *const *scopes, size_t n)
{
    ai_delegation d;

    ai_delegation_init(&d);
    d.scopes = scopes;
    d.nscopes = n;
    return d;
}

static ai_token *delegate_ok(const ai_keyring *kr, const ai_token *parent,
                             const ai_delegation *d)
{
    ai_token *t = NULL;
    ai_err err = {0};

    ck_assert_msg(ai_token_delegate(kr, parent, d, T_NOW, &t, &err) == AI_OK,
                  "delegate: %s", err.msg);
    return t;
}

/* Refused with AI_EDENIED and a message containing needle. */
static void expect_denied(const ai_keyring *kr, const ai_token *parent,
                          const ai_delegation *d, const char *needle)
{
    ai_err err;

    ck_assert_int_eq(t_delegate_err(kr, parent, d, &err), AI_EDENIED);
    ck_assert_int_eq(err.code, AI_EDENIED);
    ck_assert_msg(t_has(err.msg, needle), "\"%s\" lacks \"%s\"", err.msg,
                  needle);
}

static ai_code check(const ai_token *t, const char *scope, const char *res)
{
    ai_err err = {0};

    return ai_token_check(t, scope, res, T_NOW, &err);
}

static ai_token *root_with(const ai_keyring *kr, const char *const *scopes,
                           size_t n, const char *cons, const char *ident,
                           const char *fed, const char *caps)
{
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err = {0};

    ai_root_params_init(&p);
    p.agent_id = "orchestrator";
    p.scopes = scopes;
    p.nscopes = n;
    p.constraints_json = cons;
    p.identity_json = ident;
    p.federation_json = fed;
    p.capabilities_json = caps;
    ck_assert_msg(ai_token_create_root(kr, &p, T_NOW, &t, &err) == AI_OK, "%s",
                  err.msg);
    return t;
}

static ai_token *quick_root(const ai_keyring *kr)
{
    return t_root(kr, T_LIST("github:repo:read", "github:repo:write",
                             "openai:chat:*"),
                  "{\"github:repo:*\":{\"resources\":[\"myorg/*\"]}}");
}

/* ---- the README's examples ------------------------------------------- */

START_TEST(test_delegate_readme_quick_start)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    ai_delegation d = req(T_LIST("github:repo:read"));
    ai_token *child, *v = NULL;
    ai_err err = {0};

    d.agent_id = "code-reviewer";
    d.constraints_json =
        "{\"github:repo:read\":{\"resources\":[\"myorg/frontend\"]}}";
    d.ttl_minutes = 60;
    child = delegate_ok(kr, root, &d);
    /* verifyToken(childToken).valid */
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(child), &v, &err), AI_OK);
    /* checkPermission(child, "github:repo:read", "myorg/frontend") */
    ck_assert_int_eq(check(v, "github:repo:read", "myorg/frontend"), AI_OK);
    /* checkPermission(child, "github:repo:write", "myorg/frontend") */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(ai_token_check(v, "github:repo:write", "myorg/frontend",
                                    T_NOW, &err),
                     AI_EDENIED);
    ck_assert(t_has(err.msg, "github:repo:write"));
    /* and the single repo really is single */
    ck_assert_int_eq(check(v, "github:repo:read", "myorg/backend"), AI_EDENIED);
    ck_assert_int_eq(check(v, "openai:chat:x", ""), AI_EDENIED);
    ck_assert_str_eq(ai_token_agent_id(v), "code-reviewer");
    ck_assert_str_eq(ai_token_parent_id(v), "orchestrator");
    ck_assert_int_eq(ai_token_depth(v), 1);
    ck_assert_int_eq(ai_token_expires_at(v), T_NOW + 60 * T_MIN);
    ai_token_free(v);
    ai_token_free(child);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

static ai_token *readme_constraints_root(const ai_keyring *kr, int64_t now)
{
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err;

    ai_root_params_init(&p);
    p.agent_id = "restricted-agent";
    p.scopes = T_ARR("github:repo:read");
    p.nscopes = 1;
    p.constraints_json =
        "{\"github:repo:read\":{\"resources\":[\"myorg/*\",\"partner/shared-*\"],"
        "\"notBefore\":\"2024-01-01T00:00:00Z\","
        "\"notAfter\":\"2024-12-31T23:59:59Z\",\"maxUses\":100}}";
    p.ttl_days = 30;
    ck_assert_msg(ai_token_create_root(kr, &p, now, &t, &err) == AI_OK, "%s",
                  err.msg);
    return t;
}

START_TEST(test_delegate_readme_constraints_example)
{
    ai_keyring *kr = t_keyring();
    const int64_t mid2024 = INT64_C(1717243200000); /* 2024-06-01T12:00Z */
    const int64_t late2024 = INT64_C(1734696000000); /* 2024-12-20T12:00Z */
    ai_token *t = readme_constraints_root(kr, mid2024);
    ai_token *late = readme_constraints_root(kr, late2024);
    ai_budget_ref b[2];
    size_t n = 0;
    ai_err err;

    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "myorg/app", mid2024,
                                    &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "partner/shared-docs",
                                    mid2024, &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "partner/private",
                                    mid2024, &err),
                     AI_EDENIED);
    /* before the window */
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "myorg/app",
                                    INT64_C(1704067199999), &err),
                     AI_EDENIED);
    ck_assert(t_has(err.msg, "not valid before 2024-01-01T00:00:00.000Z"));
    ck_assert_int_eq(ai_token_check(t, "github:repo:read", "myorg/app",
                                    INT64_C(1704067200000), &err),
                     AI_OK);
    /* its last millisecond, and after it (the token is still valid) */
    ck_assert_int_eq(ai_token_check(late, "github:repo:read", "myorg/app",
                                    INT64_C(1735689599000), &err),
                     AI_OK);
    ck_assert_int_eq(ai_token_check(late, "github:repo:read", "myorg/app",
                                    INT64_C(1735689599001), &err),
                     AI_EEXPIRED);
    ck_assert(t_has(err.msg, "2024-12-31T23:59:59.000Z"));
    /* maxUses 100 is one budget */
    ck_assert_int_eq(ai_token_budgets(t, "github:repo:read", b, 2, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(b[0].max_uses, 100);
    ai_token_free(late);
    ai_token_free(t);
    ai_keyring_free(kr);
}
END_TEST

/* ---- scopes ----------------------------------------------------------- */

START_TEST(test_delegate_refuses_scope_outside_parent)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    ai_delegation d = req(T_LIST("github:repo:read", "aws:s3:read"));

    expect_denied(kr, root, &d, "Scope \"aws:s3:read\" not allowed");
    d = req(T_LIST("github:repo:admin"));
    expect_denied(kr, root, &d, "github:repo:admin");
    d = req(T_LIST("github:repo:*"));
    expect_denied(kr, root, &d, "github:repo:*");
    d = req(T_LIST("*"));
    expect_denied(kr, root, &d, "\"*\"");
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_wildcard_under_narrower_parent)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:repo:*"), NULL);
    ai_delegation d = req(T_LIST("github:*"));

    expect_denied(kr, root, &d, "Scope \"github:*\" not allowed by parent");
    d = req(T_LIST("github:*:read"));
    expect_denied(kr, root, &d, "github:*:read");
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_allows_narrower_wildcards)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:*"), NULL);
    ai_token *c = t_child(kr, root, "c", T_LIST("github:repo:*", "github:*:read"),
                          NULL);

    ck_assert_int_eq(check(c, "github:repo:write", "x"), AI_OK);
    ck_assert_int_eq(check(c, "github:issues:read", "x"), AI_OK);
    ck_assert_int_eq(check(c, "github:issues:write", "x"), AI_EDENIED);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_bad_scope_lists)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    ai_delegation d = req(T_LIST("github:repo:read", "github:repo:read"));
    ai_err err;

    ck_assert_int_eq(t_delegate_err(kr, root, &d, &err), AI_EINVAL);
    ck_assert(t_has(err.msg, "twice"));
    d = req(NULL, 0);
    ck_assert_int_eq(t_delegate_err(kr, root, &d, &err), AI_EINVAL);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* ---- depth, delegatable, TTL ----------------------------------------- */

START_TEST(test_delegate_refuses_when_depth_exceeded)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_token *root = NULL, *c1, *zero = NULL;
    ai_delegation d = req(T_LIST("a:b"));
    ai_err err = {0};

    ai_root_params_init(&p);
    p.agent_id = "r";
    p.scopes = T_ARR("a:b");
    p.nscopes = 1;
    p.max_delegation_depth = 1;
    ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &root, &err), AI_OK);
    c1 = delegate_ok(kr, root, &d);
    ck_assert_int_eq(ai_token_depth(c1), 1);
    ck_assert_int_eq(ai_token_max_depth(c1), 1);
    expect_denied(kr, c1, &d, "Delegation depth exceeded");
    p.max_delegation_depth = 0;
    ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &zero, &err), AI_OK);
    expect_denied(kr, zero, &d, "depth");
    ai_token_free(zero);
    ai_token_free(c1);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_chain_to_max_depth_16)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_token *cur = NULL, *next, *v = NULL;
    ai_delegation d = req(T_LIST("a:b"));
    ai_budget_ref b[AI_BUDGETS_MAX + 1];
    size_t n = 0;
    ai_err err = {0};

    ai_root_params_init(&p);
    p.agent_id = "r";
    p.scopes = T_ARR("a:b");
    p.nscopes = 1;
    p.max_delegation_depth = AI_MAX_DEPTH;
    p.constraints_json = "{\"a:b\":{\"maxUses\":1000}}";
    ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &cur, &err), AI_OK);
    /* each level narrows the same budgeted key: 17 budgets at depth 16 */
    d.constraints_json = "{\"a:b\":{\"maxUses\":500}}";
    for (int i = 0; i < AI_MAX_DEPTH; i++) {
        next = delegate_ok(kr, cur, &d);
        ai_token_free(cur);
        cur = next;
    }
    ck_assert_int_eq(ai_token_depth(cur), AI_MAX_DEPTH);
    ck_assert_uint_eq(ai_token_ancestor_count(cur), AI_MAX_DEPTH);
    ck_assert_int_eq(ai_token_budgets(cur, "a:b", b, AI_BUDGETS_MAX + 1, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, AI_BUDGETS_MAX);
    ck_assert_msg(t_verify(kr, ai_token_serialize(cur), &v, &err) == AI_OK, "%s",
                  err.msg);
    expect_denied(kr, cur, &d, "depth");
    ai_token_free(v);
    ai_token_free(cur);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_non_delegatable_parent)
{
    ai_keyring *kr = t_keyring();
    ai_root_params p;
    ai_token *root = NULL, *ok_root, *c;
    ai_delegation d = req(T_LIST("a:b"));
    ai_err err = {0};

    ai_root_params_init(&p);
    p.agent_id = "r";
    p.scopes = T_ARR("a:b");
    p.nscopes = 1;
    p.delegatable = false;
    ck_assert_int_eq(ai_token_create_root(kr, &p, T_NOW, &root, &err), AI_OK);
    expect_denied(kr, root, &d, "not delegatable");
    /* a child that asked not to be delegatable cannot delegate either */
    ok_root = t_root(kr, T_LIST("a:b"), NULL);
    d.delegatable = false;
    c = delegate_ok(kr, ok_root, &d);
    ck_assert(!ai_token_delegatable(c));
    d.delegatable = true;
    expect_denied(kr, c, &d, "not delegatable");
    ai_token_free(c);
    ai_token_free(ok_root);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_child_expiry_clamped_to_parent)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL), *c, *g;
    ai_delegation d = req(T_LIST("a:b"));

    d.ttl_minutes = 60 * 24 * 30; /* longer than the root's 7 days */
    c = delegate_ok(kr, root, &d);
    ck_assert_int_eq(ai_token_expires_at(c), ai_token_expires_at(root));
    ck_assert_int_eq(ai_token_max_expires_at(c), ai_token_max_expires_at(root));
    d.ttl_minutes = 30;
    g = delegate_ok(kr, c, &d);
    ck_assert_int_eq(ai_token_expires_at(g), T_NOW + 30 * T_MIN);
    ai_token_free(g);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_grandchild_expiry_clamped_to_child)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL), *c, *g;
    ai_delegation d = req(T_LIST("a:b"));

    d.ttl_minutes = 10;
    c = delegate_ok(kr, root, &d);
    d.ttl_minutes = 120;
    g = delegate_ok(kr, c, &d);
    ck_assert_int_eq(ai_token_expires_at(g), T_NOW + 10 * T_MIN);
    ai_token_free(g);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_bad_ttl)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL);
    ai_delegation d = req(T_LIST("a:b"));
    ai_err err;

    d.ttl_minutes = 0;
    ck_assert_int_eq(t_delegate_err(kr, root, &d, &err), AI_EINVAL);
    ck_assert(t_has(err.msg, "ttlMinutes"));
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_expired_parent)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL), *c = NULL;
    ai_delegation d = req(T_LIST("a:b"));
    ai_err err = {0};

    ck_assert_int_eq(ai_token_delegate(kr, root, &d, ai_token_expires_at(root),
                                       &c, &err),
                     AI_EEXPIRED);
    ck_assert_ptr_null(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_generates_agent_id_when_absent)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL), *c;
    ai_delegation d = req(T_LIST("a:b"));
    const char *id;

    c = delegate_ok(kr, root, &d);
    id = ai_token_agent_id(c);
    ck_assert_uint_eq(strlen(id), 14);
    ck_assert(strncmp(id, "agent-", 6) == 0);
    ck_assert_uint_eq(strspn(id + 6, "0123456789abcdef"), 8);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_ancestors_root_first)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL);
    ai_token *c = t_child(kr, root, "c", T_LIST("a:b"), NULL);
    ai_token *g = t_child(kr, c, "g", T_LIST("a:b"), NULL);

    ck_assert_uint_eq(ai_token_ancestor_count(c), 1);
    ck_assert_str_eq(ai_token_ancestor(c, 0), ai_token_id(root));
    ck_assert_uint_eq(ai_token_ancestor_count(g), 2);
    ck_assert_str_eq(ai_token_ancestor(g, 0), ai_token_id(root));
    ck_assert_str_eq(ai_token_ancestor(g, 1), ai_token_id(c));
    ck_assert_ptr_null(ai_token_ancestor(g, 2));
    ck_assert_str_eq(ai_token_parent_id(g), "c");
    ck_assert_int_eq(ai_token_depth(g), 2);
    ck_assert_str_ne(ai_token_id(g), ai_token_id(c));
    ck_assert_str_ne(ai_token_id(c), ai_token_id(root));
    ai_token_free(g);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_fills_ancestor_agents_root_first)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL); /* agent "root" */
    ai_token *c = t_child(kr, root, "c", T_LIST("a:b"), NULL);
    ai_token *g = t_child(kr, c, "g", T_LIST("a:b"), NULL);
    ai_token *gg = t_child(kr, g, "gg", T_LIST("a:b"), NULL);
    char want[256];

    ck_assert_uint_eq(ai_token_ancestor_agent_count(root), 0);
    ck_assert(!t_has(ai_token_json(root), "ancestorAgents"));
    ck_assert_uint_eq(ai_token_ancestor_agent_count(c), 1);
    ck_assert_str_eq(ai_token_ancestor_agent(c, 0), ai_token_agent_id(root));
    ck_assert_uint_eq(ai_token_ancestor_agent_count(gg), 3);
    ck_assert_str_eq(ai_token_ancestor_agent(gg, 0), ai_token_agent_id(root));
    ck_assert_str_eq(ai_token_ancestor_agent(gg, 1), "c");
    ck_assert_str_eq(ai_token_ancestor_agent(gg, 2), "g");
    ck_assert_ptr_null(ai_token_ancestor_agent(gg, 3));
    ck_assert_int_eq(ai_token_depth(gg), 3);
    /* right after ancestors, in the signed bytes */
    snprintf(want, sizeof want,
             "\"ancestors\":[\"%s\",\"%s\",\"%s\"],"
             "\"ancestorAgents\":[\"%s\",\"c\",\"g\"],\"keyVersion\":1,",
             ai_token_id(root), ai_token_id(c), ai_token_id(g),
             ai_token_agent_id(root));
    ck_assert_msg(t_has(ai_token_json(gg), want), "%s", ai_token_json(gg));
    ai_token_free(gg);
    ai_token_free(g);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* Ancestors without a tokenId (Node.js tokens) are not in ancestors but
 * are in ancestorAgents; a Node child's parentId is kept. */
START_TEST(test_delegate_ancestor_agents_name_ancestors_without_token_id)
{
    ai_keyring *kr = t_keyring();
    char *w = t_node_child();
    ai_token *node = NULL, *c, *g, *v = NULL;
    ai_err err = {0};

    ck_assert_int_eq(t_verify(kr, w, &node, &err), AI_OK);
    c = t_child(kr, node, "c", T_LIST("a:b"), NULL);
    ck_assert_uint_eq(ai_token_ancestor_count(c), 0);
    ck_assert_uint_eq(ai_token_ancestor_agent_count(c), 2);
    ck_assert_str_eq(ai_token_ancestor_agent(c, 0), "node-root");
    ck_assert_str_eq(ai_token_ancestor_agent(c, 1), "node-child");
    g = t_child(kr, c, "g", T_LIST("a:b"), NULL);
    ck_assert_uint_eq(ai_token_ancestor_count(g), 1);
    ck_assert_uint_eq(ai_token_ancestor_agent_count(g), 3);
    ck_assert_str_eq(ai_token_ancestor_agent(g, 2), "c");
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(g), &v, &err), AI_OK);
    ck_assert_uint_eq(ai_token_ancestor_agent_count(v), 3);
    ai_token_free(v);
    ai_token_free(g);
    ai_token_free(c);
    ai_token_free(node);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_unverified_parent)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL), *d = NULL;
    ai_delegation r = req(T_LIST("a:b"));
    ai_err err = {0};

    ck_assert_int_eq(ai_token_deserialize(ai_token_serialize(root),
                                          ai_token_serialized_len(root), &d, &err),
                     AI_OK);
    ck_assert_int_eq(t_delegate_err(kr, d, &r, &err), AI_EINVAL);
    ck_assert(t_has(err.msg, "verified"));
    ck_assert_int_eq(t_delegate_err(kr, NULL, &r, &err), AI_EINVAL);
    ai_token_free(d);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_drops_parent_unknown_fields)
{
    ai_keyring *kr = t_keyring();
    char *w = t_sign(t_key1,
                     "{\"agentId\":\"p\",\"scopes\":[\"a:b\"],\"constraints\":{},"
                     "\"delegatable\":true,\"maxDelegationDepth\":3,"
                     "\"currentDepth\":0,\"expiresAt\":\"2026-12-01T00:00:00Z\","
                     "\"vendorGrant\":[\"everything\"]}");
    ai_token *p = NULL, *c;
    ai_err err;

    ck_assert_int_eq(t_verify(kr, w, &p, &err), AI_OK);
    c = t_child(kr, p, "c", T_LIST("a:b"), NULL);
    ck_assert(!t_has(ai_token_json(c), "vendorGrant"));
    ai_token_free(c);
    ai_token_free(p);
    free(w);
    ai_keyring_free(kr);
}
END_TEST

/* ---- constraints ------------------------------------------------------ */

START_TEST(test_delegate_refuses_wider_resources)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:repo:*"),
                            "{\"github:repo:*\":{\"resources\":[\"myorg/front*\"]}}");
    ai_delegation d = req(T_LIST("github:repo:read"));

    d.constraints_json = "{\"github:repo:read\":{\"resources\":[\"myorg/*\"]}}";
    expect_denied(kr, root, &d, "Resource pattern \"myorg/*\"");
    d.constraints_json = "{\"github:repo:read\":{\"resources\":"
                         "[\"myorg/frontend\",\"other/x\"]}}";
    expect_denied(kr, root, &d, "\"other/x\"");
    d.constraints_json = "{\"github:repo:read\":{\"resources\":[\"*\"]}}";
    expect_denied(kr, root, &d, "\"*\"");
    d.constraints_json = "{\"github:repo:read\":{\"resources\":[\"myorg/front?nd*\",\"myorg/*\"]}}";
    expect_denied(kr, root, &d, "myorg/*");
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* Patterns whose containment is costly to decide: a delegation's work is
 * bounded, and past the bound it refuses (never allows). */
START_TEST(test_delegate_refuses_resources_too_complex_to_check)
{
    static const char *const scopes[] = {"github:repo:read"};
    char inner[AI_PATTERN_MAX + 1] = "", outer[AI_PATTERN_MAX + 1] = "";
    char *cons, *reqc;
    size_t cap = 64 * (AI_PATTERN_MAX + 4) + 128;
    ai_keyring *kr = t_keyring();
    ai_token *root;
    ai_delegation d = req(scopes, 1);

    for (int i = 0; i < 80; i++) {
        strcat(inner, "ab*");
        strcat(outer, "a?*");
    }
    strcat(inner, "ab");
    strcat(outer, "a?");
    cons = malloc(cap);
    reqc = malloc(cap);
    strcpy(cons, "{\"github:repo:*\":{\"resources\":[");
    for (int i = 0; i < 64; i++) {
        strcat(cons, i ? ",\"" : "\"");
        strcat(cons, outer);
        strcat(cons, "\"");
    }
    strcat(cons, "]}}");
    root = root_with(kr, scopes, 1, cons, NULL, NULL, NULL);
    snprintf(reqc, cap, "{\"github:repo:read\":{\"resources\":[\"%s\"]}}",
             inner);
    d.constraints_json = reqc;
    expect_denied(kr, root, &d, "too complex to check");
    free(cons);
    free(reqc);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* Literal resources checked against many long patterns: the work is
 * charged to the delegation's budget like any other containment check. */
START_TEST(test_delegate_literal_resources_share_the_work_bound)
{
    static const char *const scopes[] = {"github:repo:read"};
    size_t cap = 64 * (AI_PATTERN_MAX + 4) + 128;
    char *cons = malloc(cap), *reqc = malloc(cap);
    char pat[AI_PATTERN_MAX + 1], lit[AI_PATTERN_MAX];
    ai_keyring *kr = t_keyring();
    ai_token *root;
    ai_delegation d = req(scopes, 1);

    pat[0] = '*';
    memset(pat + 1, 'a', AI_PATTERN_MAX - 3);
    pat[AI_PATTERN_MAX - 2] = 'X';
    pat[AI_PATTERN_MAX - 1] = 'b';
    pat[AI_PATTERN_MAX] = '\0';
    memset(lit, 'a', sizeof lit - 1);
    lit[sizeof lit - 1] = '\0';
    strcpy(cons, "{\"github:repo:*\":{\"resources\":[");
    strcpy(reqc, "{\"github:repo:read\":{\"resources\":[");
    /* 49 long patterns that never contain the literals, then one that
     * does: every literal is tried against all 50 (a token stays within
     * 16 KiB). Allowing them would be right; the bound refuses first. */
    for (int i = 0; i < 50; i++) {
        strcat(cons, i ? ",\"" : "\"");
        strcat(cons, i < 49 ? pat : "a*");
        strcat(cons, "\"");
        strcat(reqc, i ? ",\"" : "\"");
        strcat(reqc, lit);
        strcat(reqc, "\"");
    }
    strcat(cons, "]}}");
    strcat(reqc, "]}}");
    root = root_with(kr, scopes, 1, cons, NULL, NULL, NULL);
    d.constraints_json = reqc;
    expect_denied(kr, root, &d, "too complex to check");
    free(cons);
    free(reqc);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* A child that would carry more than 64 constraints (and so could never
 * verify) is refused. */
START_TEST(test_delegate_refuses_more_constraints_than_a_token_holds)
{
    static const char *const scopes[] = {"svc:*"};
    char cons[64 * 40 + 16], reqc[64 * 40 + 16];
    ai_keyring *kr = t_keyring();
    ai_token *root;
    ai_delegation d = req(scopes, 1);

    strcpy(cons, "{");
    strcpy(reqc, "{");
    for (int i = 0; i < 40; i++) {
        char one[40];
        snprintf(one, sizeof one, "%s\"svc:p%d\":{\"maxUses\":5}", i ? "," : "",
                 i);
        strcat(cons, one);
        snprintf(one, sizeof one, "%s\"svc:c%d\":{\"maxUses\":5}", i ? "," : "",
                 i);
        strcat(reqc, one);
    }
    strcat(cons, "}");
    strcat(reqc, "}");
    root = root_with(kr, scopes, 1, cons, NULL, NULL, NULL);
    d.constraints_json = reqc;
    expect_denied(kr, root, &d, "more than 64 constraints");
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_allows_contained_resources)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:repo:*"),
                            "{\"github:repo:*\":{\"resources\":[\"myorg/*\","
                            "\"partner/shared-*\"]}}");
    ai_token *c = t_child(kr, root, "c", T_LIST("github:repo:read"),
                          "{\"github:repo:read\":{\"resources\":"
                          "[\"myorg/front*\",\"partner/shared-docs\"]}}");

    ck_assert_int_eq(check(c, "github:repo:read", "myorg/frontend"), AI_OK);
    ck_assert_int_eq(check(c, "github:repo:read", "partner/shared-docs"), AI_OK);
    ck_assert_int_eq(check(c, "github:repo:read", "myorg/backend"), AI_EDENIED);
    ck_assert_int_eq(check(c, "github:repo:read", "partner/shared-x"),
                     AI_EDENIED);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_constraint_outside_child_scopes)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    ai_delegation d = req(T_LIST("github:repo:read"));

    d.constraints_json = "{\"github:repo:*\":{\"resources\":[\"myorg/x\"]}}";
    expect_denied(kr, root, &d, "Constraint \"github:repo:*\"");
    d.constraints_json = "{\"openai:chat:*\":{\"maxUses\":1}}";
    expect_denied(kr, root, &d, "openai:chat:*");
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_carries_constraint_on_narrower_key)
{
    ai_keyring *kr = t_keyring();
    /* The parent constrains only github:repo:read; a child asking for all
     * of github:repo:* must keep that constraint. */
    ai_token *root = t_root(kr, T_LIST("github:repo:*"),
                            "{\"github:repo:read\":{\"resources\":[\"myorg/*\"]}}");
    ai_token *c = t_child(kr, root, "c", T_LIST("github:repo:*"), NULL);

    ck_assert_str_eq(ai_token_constraints_json(c),
                     "{\"github:repo:read\":{\"resources\":[\"myorg/*\"]}}");
    ck_assert_int_eq(check(c, "github:repo:read", "other/x"), AI_EDENIED);
    ck_assert_int_eq(check(c, "github:repo:read", "myorg/x"), AI_OK);
    ck_assert_int_eq(check(c, "github:repo:write", "other/x"), AI_OK);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_drops_constraints_of_other_scopes)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:repo:read", "openai:chat:*"),
                            "{\"openai:chat:*\":{\"maxUses\":3}}");
    ai_token *c = t_child(kr, root, "c", T_LIST("github:repo:read"), NULL);

    ck_assert_str_eq(ai_token_constraints_json(c), "{}");
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_several_constraints_all_apply)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:*"),
                            "{\"github:*\":{\"resources\":[\"myorg/*\"]},"
                            "\"github:repo:*\":{\"resources\":[\"*/frontend\"]}}");
    ai_token *c = t_child(kr, root, "c", T_LIST("github:repo:read"), NULL);

    /* the root itself: both constraints apply to github:repo:read */
    ck_assert_int_eq(check(root, "github:repo:read", "myorg/frontend"), AI_OK);
    ck_assert_int_eq(check(root, "github:repo:read", "myorg/backend"),
                     AI_EDENIED);
    ck_assert_int_eq(check(root, "github:repo:read", "other/frontend"),
                     AI_EDENIED);
    ck_assert_int_eq(check(root, "github:issues:read", "myorg/backend"), AI_OK);
    /* and the child carries both */
    ck_assert_int_eq(check(c, "github:repo:read", "myorg/frontend"), AI_OK);
    ck_assert_int_eq(check(c, "github:repo:read", "myorg/backend"), AI_EDENIED);
    ck_assert_int_eq(check(c, "github:repo:read", "other/frontend"), AI_EDENIED);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_requested_resources_checked_against_every_parent_constraint)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:*"),
                            "{\"github:*\":{\"resources\":[\"myorg/*\"]},"
                            "\"github:repo:*\":{\"resources\":[\"*/frontend\"]}}");
    ai_delegation d = req(T_LIST("github:repo:read"));
    ai_token *c;

    /* within github:* resources but not within github:repo:* ones */
    d.constraints_json = "{\"github:repo:read\":{\"resources\":[\"myorg/back*\"]}}";
    expect_denied(kr, root, &d, "myorg/back*");
    d.constraints_json = "{\"github:repo:read\":{\"resources\":[\"myorg/frontend\"]}}";
    c = delegate_ok(kr, root, &d);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_time_window_only_narrows)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:*"),
                            "{\"a:*\":{\"notBefore\":\"2026-11-30T00:00:00Z\","
                            "\"notAfter\":\"2026-12-31T00:00:00Z\"}}");
    ai_token *wide = t_child(kr, root, "w", T_LIST("a:b"),
                             "{\"a:b\":{\"notBefore\":\"2020-01-01T00:00:00Z\","
                             "\"notAfter\":\"2030-01-01T00:00:00Z\"}}");
    ai_token *narrow = t_child(kr, root, "n", T_LIST("a:b"),
                               "{\"a:b\":{\"notBefore\":\"2026-11-30T06:00:00Z\","
                               "\"notAfter\":\"2026-11-30T18:00:00Z\"}}");
    ai_err err = {0};
    const char *cj;

    /* the wider request is clamped to the parent's window: notBefore is
     * the later, notAfter the earlier */
    cj = ai_token_constraints_json(wide);
    ck_assert_msg(t_has(cj, "\"a:b\":{\"notBefore\":\"2026-11-30T00:00:00.000Z\","
                            "\"notAfter\":\"2026-12-31T00:00:00.000Z\"}"),
                  "%s", cj);
    cj = ai_token_constraints_json(narrow);
    ck_assert_msg(t_has(cj, "\"a:b\":{\"notBefore\":\"2026-11-30T06:00:00.000Z\","
                            "\"notAfter\":\"2026-11-30T18:00:00.000Z\"}"),
                  "%s", cj);
    ck_assert_int_eq(ai_token_check(narrow, "a:b", "", T_NOW + 7 * T_HOUR, &err),
                     AI_EEXPIRED);
    ai_token_free(narrow);
    ai_token_free(wide);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_window_that_never_opens)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:*"),
                            "{\"a:*\":{\"notAfter\":\"2026-12-31T00:00:00Z\"}}");
    ai_delegation d = req(T_LIST("a:b"));

    d.constraints_json = "{\"a:b\":{\"notBefore\":\"2027-01-01T00:00:00Z\"}}";
    expect_denied(kr, root, &d, "never be valid");
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_refuses_bad_requested_constraints)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:*"), NULL);
    ai_delegation d = req(T_LIST("a:b"));
    ai_err err;

    d.constraints_json = "{\"a:b\":{\"resources\":\"x\"}}";
    ck_assert_int_eq(t_delegate_err(kr, root, &d, &err), AI_EINVAL);
    ck_assert(t_has(err.msg, "constraints"));
    d.constraints_json = "{\"a:b\":{\"maxUses\":1.5}}";
    ck_assert_int_eq(t_delegate_err(kr, root, &d, &err), AI_EINVAL);
    d.constraints_json = "{\"a:b\":{},\"a:b\":{}}";
    ck_assert_int_eq(t_delegate_err(kr, root, &d, &err), AI_EINVAL);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* ---- budgets ---------------------------------------------------------- */

START_TEST(test_delegate_child_copies_budgets_and_adds_its_own_capped)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:repo:*"),
                            "{\"github:repo:*\":{\"maxUses\":100}}");
    ai_token *c = t_child(kr, root, "c", T_LIST("github:repo:read"),
                          "{\"github:repo:read\":{\"maxUses\":500}}");
    ai_budget_ref b[4];
    size_t n = 0;
    char rid[64], cid[64];
    ai_err err = {0};

    snprintf(rid, sizeof rid, "%s:github:repo:*", ai_token_id(root));
    snprintf(cid, sizeof cid, "%s:github:repo:read", ai_token_id(c));
    ck_assert_int_eq(ai_token_budgets(c, "github:repo:read", b, 4, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(b[0].id, rid);
    ck_assert_uint_eq(b[0].max_uses, 100);
    ck_assert_str_eq(b[1].id, cid);
    ck_assert_uint_eq(b[1].max_uses, 100); /* 500 capped at the carried 100 */
    ck_assert(t_has(ai_token_constraints_json(c),
                    "\"github:repo:read\":{\"maxUses\":100,\"budgets\""));
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_budget_on_same_key_joins_carried_constraint)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), "{\"a:b\":{\"maxUses\":100}}");
    ai_token *c = t_child(kr, root, "c", T_LIST("a:b"),
                          "{\"a:b\":{\"maxUses\":10}}");
    ai_token *g = t_child(kr, c, "g", T_LIST("a:b"), NULL);
    ai_budget_ref b[4];
    size_t n = 0;
    char want[512];
    ai_err err = {0};

    snprintf(want, sizeof want,
             "{\"a:b\":{\"maxUses\":10,\"budgets\":[{\"id\":\"%s:a:b\","
             "\"maxUses\":100},{\"id\":\"%s:a:b\",\"maxUses\":10}]}}",
             ai_token_id(root), ai_token_id(c));
    ck_assert_str_eq(ai_token_constraints_json(c), want);
    /* the grandchild shares both budgets: same ids, no new one */
    ck_assert_str_eq(ai_token_constraints_json(g), want);
    ck_assert_int_eq(ai_token_budgets(g, "a:b", b, 4, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 2);
    ai_token_free(g);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_budgets_union_over_constraints)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("github:*"),
                            "{\"github:*\":{\"maxUses\":50},"
                            "\"github:repo:*\":{\"maxUses\":20}}");
    ai_token *c = t_child(kr, root, "c", T_LIST("github:repo:read"),
                          "{\"github:repo:read\":{\"maxUses\":30}}");
    ai_budget_ref b[8];
    size_t n = 0;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_budgets(root, "github:repo:read", b, 8, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ai_token_budgets(c, "github:repo:read", b, 8, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(b[0].max_uses, 50);
    ck_assert_uint_eq(b[1].max_uses, 20);
    ck_assert_uint_eq(b[2].max_uses, 20); /* 30 capped at the smallest */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            ck_assert_str_ne(b[i].id, b[j].id);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_budget_without_parent_limit_keeps_value)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:*"), NULL);
    ai_token *c = t_child(kr, root, "c", T_LIST("a:b"),
                          "{\"a:b\":{\"maxUses\":7,\"budgets\":[{\"id\":\"x\","
                          "\"maxUses\":99}]}}");
    ai_budget_ref b[2];
    size_t n = 0;
    ai_err err = {0};

    ck_assert_int_eq(ai_token_budgets(c, "a:b", b, 2, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(b[0].max_uses, 7);
    ck_assert_str_ne(b[0].id, "x");
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* ---- identity --------------------------------------------------------- */

START_TEST(test_delegate_identity_inherited_or_dropped)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL,
                               "{\"systemId\":\"s\",\"principalId\":\"alice\","
                               "\"federatedFrom\":{\"x\":1}}",
                               NULL, NULL);
    ai_delegation d = req(T_LIST("a:b"));
    ai_token *keep, *drop;

    keep = delegate_ok(kr, root, &d);
    ck_assert_str_eq(ai_token_identity_json(keep), ai_token_identity_json(root));
    d.inherit_identity = false;
    drop = delegate_ok(kr, root, &d);
    ck_assert_ptr_null(ai_token_identity_json(drop));
    ck_assert(!t_has(ai_token_json(drop), "identity"));
    ai_token_free(drop);
    ai_token_free(keep);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* ---- agentCapabilities ----------------------------------------------- */

static ai_token *caps_child(const ai_keyring *kr, const ai_token *parent,
                            const char *caps)
{
    ai_delegation d = req(T_LIST("a:b"));

    d.capabilities_json = caps;
    return delegate_ok(kr, parent, &d);
}

START_TEST(test_delegate_caps_copied_when_not_requested)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, NULL,
                               "{\"canSpawn\":true,\"visibility\":\"scope\"}");
    ai_token *c = caps_child(kr, root, NULL);

    ck_assert_str_eq(ai_token_capabilities_json(c),
                     "{\"canSpawn\":true,\"visibility\":\"scope\"}");
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_caps_parent_booleans_anded)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, NULL,
                               "{\"canSpawn\":true,\"canMessage\":false,"
                               "\"canReceive\":true}");
    ai_token *c = caps_child(kr, root,
                             "{\"canSpawn\":false,\"canMessage\":true}");

    /* spawn: true AND false; message: false AND true; receive: kept */
    ck_assert_str_eq(ai_token_capabilities_json(c),
                     "{\"canSpawn\":false,\"canMessage\":false,"
                     "\"canReceive\":true}");
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_caps_unset_by_parent_may_only_be_false)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, NULL,
                               "{\"canSpawn\":true}");
    ai_token *bare = t_root(kr, T_LIST("a:b"), NULL);
    ai_delegation d = req(T_LIST("a:b"));
    ai_token *c;

    d.capabilities_json = "{\"canFederate\":true}";
    expect_denied(kr, root, &d, "agentCapabilities.canFederate");
    d.capabilities_json = "{\"canObserve\":true}";
    expect_denied(kr, bare, &d, "agentCapabilities.canObserve");
    c = caps_child(kr, root, "{\"canFederate\":false}");
    ck_assert_str_eq(ai_token_capabilities_json(c),
                     "{\"canSpawn\":true,\"canFederate\":false}");
    ai_token_free(c);
    c = caps_child(kr, bare, "{\"canCreateScopes\":false}");
    ck_assert_str_eq(ai_token_capabilities_json(c),
                     "{\"canCreateScopes\":false}");
    ai_token_free(c);
    ai_token_free(bare);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_caps_more_restrictive_visibility_wins)
{
    static const char *const names[] = {"public", "scope", "parent-only",
                                        "system"};
    ai_keyring *kr = t_keyring();

    for (int p = 0; p < 4; p++)
        for (int r = 0; r < 4; r++) {
            char pj[64], rj[64], want[64];
            ai_token *root, *c;
            snprintf(pj, sizeof pj, "{\"visibility\":\"%s\"}", names[p]);
            snprintf(rj, sizeof rj, "{\"visibility\":\"%s\"}", names[r]);
            snprintf(want, sizeof want, "{\"visibility\":\"%s\"}",
                     names[p > r ? p : r]);
            root = root_with(kr, T_LIST("a:b"), NULL, NULL, NULL, pj);
            c = caps_child(kr, root, rj);
            ck_assert_str_eq(ai_token_capabilities_json(c), want);
            ai_token_free(c);
            ai_token_free(root);
        }
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_caps_unset_visibility_is_public)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, NULL,
                               "{\"visibility\":\"parent-only\"}");
    ai_token *bare = t_root(kr, T_LIST("a:b"), NULL), *c;

    c = caps_child(kr, root, "{\"canSpawn\":false}");
    ck_assert_str_eq(ai_token_capabilities_json(c),
                     "{\"canSpawn\":false,\"visibility\":\"parent-only\"}");
    ai_token_free(c);
    c = caps_child(kr, bare, "{\"visibility\":\"scope\"}");
    ck_assert_str_eq(ai_token_capabilities_json(c), "{\"visibility\":\"scope\"}");
    ai_token_free(c);
    ai_token_free(bare);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_caps_custom_flags_narrow)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, NULL,
                               "{\"custom\":{\"x\":true,\"y\":false,\"k\":true}}");
    ai_delegation d = req(T_LIST("a:b"));
    ai_token *c;

    c = caps_child(kr, root, "{\"custom\":{\"x\":false,\"y\":true,\"z\":false}}");
    ck_assert_str_eq(ai_token_capabilities_json(c),
                     "{\"custom\":{\"x\":false,\"y\":false,\"k\":true,"
                     "\"z\":false}}");
    ai_token_free(c);
    d.capabilities_json = "{\"custom\":{\"w\":true}}";
    expect_denied(kr, root, &d, "agentCapabilities.custom.w");
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_caps_refuses_unknown_capability)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL);
    ai_delegation d = req(T_LIST("a:b"));
    ai_err err;

    d.capabilities_json = "{\"canEverything\":false}";
    ck_assert_int_eq(t_delegate_err(kr, root, &d, &err), AI_EINVAL);
    ck_assert(t_has(err.msg, "agentCapabilities"));
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* ---- federation ------------------------------------------------------- */

static ai_token *fed_child(const ai_keyring *kr, const ai_token *parent,
                           const char *fed)
{
    ai_delegation d = req(T_LIST("a:b"));

    d.federation_json = fed;
    return delegate_ok(kr, parent, &d);
}

START_TEST(test_delegate_federation_absent_parent_only_cross_false)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = t_root(kr, T_LIST("a:b"), NULL), *c;
    ai_delegation d = req(T_LIST("a:b"));

    d.federation_json = "{\"crossSystemAllowed\":true}";
    expect_denied(kr, root, &d, "federation.crossSystemAllowed");
    c = fed_child(kr, root, "{\"crossSystemAllowed\":false,\"maxHops\":2}");
    ck_assert_str_eq(ai_token_federation_json(c),
                     "{\"crossSystemAllowed\":false,\"maxHops\":2}");
    ai_token_free(c);
    /* unset means false */
    c = fed_child(kr, root, "{\"originSystem\":\"me\"}");
    ck_assert_str_eq(ai_token_federation_json(c),
                     "{\"crossSystemAllowed\":false,\"originSystem\":\"me\"}");
    ai_token_free(c);
    c = fed_child(kr, root, NULL);
    ck_assert_ptr_null(ai_token_federation_json(c));
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

#define PARENT_FED                                                         \
    "{\"crossSystemAllowed\":true,\"allowedSystems\":[\"sysA\",\"sysB\"],"  \
    "\"originSystem\":\"home\",\"hopCount\":1,\"maxHops\":3}"

START_TEST(test_delegate_federation_copied_when_not_requested)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, PARENT_FED, NULL);
    ai_token *c = fed_child(kr, root, NULL);

    ck_assert_str_eq(ai_token_federation_json(c), PARENT_FED);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_federation_flags_anded_and_min_hops)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, PARENT_FED, NULL);
    ai_token *c;

    c = fed_child(kr, root, "{\"crossSystemAllowed\":false,\"maxHops\":9}");
    ck_assert_str_eq(ai_token_federation_json(c),
                     "{\"crossSystemAllowed\":false,\"allowedSystems\":"
                     "[\"sysA\",\"sysB\"],\"originSystem\":\"home\","
                     "\"hopCount\":1,\"maxHops\":3}");
    ai_token_free(c);
    c = fed_child(kr, root, "{\"crossSystemAllowed\":true,\"maxHops\":2,"
                            "\"allowFurtherFederation\":false}");
    ck_assert_str_eq(ai_token_federation_json(c),
                     "{\"crossSystemAllowed\":true,\"allowedSystems\":"
                     "[\"sysA\",\"sysB\"],\"originSystem\":\"home\","
                     "\"hopCount\":1,\"maxHops\":2,"
                     "\"allowFurtherFederation\":false}");
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_federation_parent_false_stays_false)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL,
                               "{\"crossSystemAllowed\":false,"
                               "\"allowFurtherFederation\":false}",
                               NULL);
    ai_token *c = fed_child(kr, root, "{\"crossSystemAllowed\":true,"
                                      "\"allowFurtherFederation\":true}");

    ck_assert_str_eq(ai_token_federation_json(c),
                     "{\"crossSystemAllowed\":false,"
                     "\"allowFurtherFederation\":false}");
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_federation_allowed_systems_subset)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, PARENT_FED, NULL);
    ai_token *open = root_with(kr, T_LIST("a:b"), NULL, NULL,
                               "{\"crossSystemAllowed\":true}", NULL);
    ai_delegation d = req(T_LIST("a:b"));
    ai_token *c;

    c = fed_child(kr, root, "{\"allowedSystems\":[\"sysB\"]}");
    ck_assert(t_has(ai_token_federation_json(c),
                    "\"allowedSystems\":[\"sysB\"]"));
    ai_token_free(c);
    d.federation_json = "{\"allowedSystems\":[\"sysA\",\"sysC\"]}";
    expect_denied(kr, root, &d, "federation.allowedSystems \"sysC\"");
    /* a parent without a list allows any list */
    c = fed_child(kr, open, "{\"allowedSystems\":[\"anything\"]}");
    ck_assert_str_eq(ai_token_federation_json(c),
                     "{\"crossSystemAllowed\":true,\"allowedSystems\":"
                     "[\"anything\"]}");
    ai_token_free(c);
    ai_token_free(open);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_federation_keeps_origin_and_hop_count)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, PARENT_FED, NULL);
    ai_token *c = fed_child(kr, root, "{\"originSystem\":\"forged\","
                                      "\"hopCount\":0}");

    ck_assert(t_has(ai_token_federation_json(c), "\"originSystem\":\"home\""));
    ck_assert(t_has(ai_token_federation_json(c), "\"hopCount\":1"));
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* ---- what was narrowed ------------------------------------------------ */

/* The narrowed list of t joined with ",". */
static void narrowed_is(const ai_token *t, const char *want)
{
    char got[512] = "";

    for (size_t i = 0; i < ai_token_narrowed_count(t); i++) {
        if (i > 0)
            strcat(got, ",");
        strcat(got, ai_token_narrowed(t, i));
    }
    ck_assert_ptr_null(ai_token_narrowed(t, ai_token_narrowed_count(t)));
    ck_assert_str_eq(got, want);
}

START_TEST(test_delegate_reports_narrowed_federation_fields)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL,
                               "{\"crossSystemAllowed\":false,"
                               "\"originSystem\":\"home\",\"hopCount\":1,"
                               "\"maxHops\":3,"
                               "\"allowFurtherFederation\":false}",
                               NULL);
    ai_token *c;

    c = fed_child(kr, root, "{\"allowFurtherFederation\":true,"
                            "\"maxHops\":9,\"hopCount\":0,"
                            "\"originSystem\":\"forged\","
                            "\"crossSystemAllowed\":true}");
    narrowed_is(c, "federation.crossSystemAllowed,federation.originSystem,"
                   "federation.hopCount,federation.maxHops,"
                   "federation.allowFurtherFederation");
    ai_token_free(c);
    /* what the parent allows, or less, or the parent's own values */
    c = fed_child(kr, root, "{\"crossSystemAllowed\":false,\"maxHops\":3,"
                            "\"originSystem\":\"home\",\"hopCount\":1,"
                            "\"allowFurtherFederation\":false}");
    narrowed_is(c, "");
    ai_token_free(c);
    c = fed_child(kr, root, "{\"maxHops\":2}");
    narrowed_is(c, "");
    ai_token_free(c);
    c = fed_child(kr, root, NULL); /* copied: nothing was asked */
    narrowed_is(c, "");
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_reports_narrowed_capabilities)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL, NULL,
                               "{\"canSpawn\":false,\"canMessage\":true,"
                               "\"canObserve\":false,"
                               "\"visibility\":\"parent-only\","
                               "\"custom\":{\"x\":false,\"y\":true}}");
    ai_token *bare = t_root(kr, T_LIST("a:b"), NULL);
    ai_token *c;

    c = caps_child(kr, root, "{\"canSpawn\":true,\"canMessage\":true,"
                             "\"canObserve\":true,\"visibility\":\"scope\","
                             "\"custom\":{\"y\":true,\"x\":true}}");
    narrowed_is(c, "agentCapabilities.canSpawn,agentCapabilities.canObserve,"
                   "agentCapabilities.visibility,"
                   "agentCapabilities.custom.x");
    ai_token_free(c);
    c = caps_child(kr, root, "{\"canSpawn\":false,\"visibility\":\"system\","
                             "\"custom\":{\"x\":false,\"z\":false}}");
    narrowed_is(c, "");
    ai_token_free(c);
    c = caps_child(kr, bare, "{\"canSpawn\":false,\"visibility\":\"scope\"}");
    narrowed_is(c, "");
    ai_token_free(c);
    ai_token_free(bare);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_narrowed_lists_federation_then_capabilities)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("a:b"), NULL, NULL,
                               "{\"crossSystemAllowed\":false}",
                               "{\"canSpawn\":false}");
    ai_delegation d = req(T_LIST("a:b"));
    ai_token *c, *grand;

    d.federation_json = "{\"crossSystemAllowed\":true}";
    d.capabilities_json = "{\"canSpawn\":true}";
    c = delegate_ok(kr, root, &d);
    narrowed_is(c, "federation.crossSystemAllowed,agentCapabilities.canSpawn");
    /* only what a delegation narrowed: a root has none, nor a grandchild
     * that asked for nothing */
    narrowed_is(root, "");
    ck_assert_uint_eq(ai_token_narrowed_count(NULL), 0);
    ck_assert_ptr_null(ai_token_narrowed(NULL, 0));
    d.federation_json = NULL;
    d.capabilities_json = NULL;
    grand = delegate_ok(kr, c, &d);
    narrowed_is(grand, "");
    ai_token_free(grand);
    ai_token_free(c);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

/* ---- DelegationRequest JSON ------------------------------------------ */

START_TEST(test_delegate_from_json_full_request)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = root_with(kr, T_LIST("github:repo:*"), NULL,
                               "{\"principalId\":\"p\"}", PARENT_FED,
                               "{\"canSpawn\":true}");
    const char *json =
        "{\"agentId\":\"code-reviewer\",\"requestedScopes\":[\"github:repo:read\"],"
        "\"requestedConstraints\":{\"github:repo:read\":{\"resources\":"
        "[\"myorg/frontend\"],\"maxUses\":3}},\"delegatable\":false,"
        "\"ttlMinutes\":15,\"inheritIdentity\":false,"
        "\"federation\":{\"maxHops\":1},"
        "\"agentCapabilities\":{\"canSpawn\":false}}";
    ai_delegation d;
    ai_delegation_storage *st = NULL;
    ai_token *c;
    ai_err err = {0};

    ck_assert_int_eq(ai_delegation_from_json(json, strlen(json), &d, &st, &err),
                     AI_OK);
    ck_assert_str_eq(d.agent_id, "code-reviewer");
    ck_assert_uint_eq(d.nscopes, 1);
    ck_assert_str_eq(d.scopes[0], "github:repo:read");
    ck_assert(!d.delegatable);
    ck_assert(!d.inherit_identity);
    ck_assert_int_eq(d.ttl_minutes, 15);
    c = delegate_ok(kr, root, &d);
    ck_assert_str_eq(ai_token_agent_id(c), "code-reviewer");
    ck_assert(!ai_token_delegatable(c));
    ck_assert_int_eq(ai_token_expires_at(c), T_NOW + 15 * T_MIN);
    ck_assert_ptr_null(ai_token_identity_json(c));
    ck_assert(t_has(ai_token_federation_json(c), "\"maxHops\":1"));
    ck_assert_str_eq(ai_token_capabilities_json(c), "{\"canSpawn\":false}");
    ck_assert_int_eq(check(c, "github:repo:read", "myorg/frontend"), AI_OK);
    ck_assert_int_eq(check(c, "github:repo:read", "myorg/backend"), AI_EDENIED);
    ai_token_free(c);
    ai_delegation_storage_free(st);
    ai_delegation_storage_free(NULL);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

START_TEST(test_delegate_from_json_defaults)
{
    const char *json = "{\"requestedScopes\":[\"a:b\"]}";
    ai_delegation d;
    ai_delegation_storage *st = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_delegation_from_json(json, strlen(json), &d, &st, &err),
                     AI_OK);
    ck_assert_ptr_null(d.agent_id);
    ck_assert(d.delegatable);
    ck_assert(d.inherit_identity);
    ck_assert_int_eq(d.ttl_minutes, AI_DEFAULT_DELEGATE_TTL_MIN);
    ck_assert_ptr_null(d.constraints_json);
    ck_assert_ptr_null(d.federation_json);
    ck_assert_ptr_null(d.capabilities_json);
    ai_delegation_storage_free(st);
}
END_TEST

START_TEST(test_delegate_from_json_refuses_bad_requests)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"requestedScopes\":[]}",
        "{\"requestedScopes\":\"a:b\"}",
        "{\"requestedScopes\":[1]}",
        "{\"requestedScopes\":[\"a:b\"],\"scopes\":[\"a:b\"]}",
        "{\"requestedScopes\":[\"a:b\"],\"requestedScopes\":[\"a:c\"]}",
        "{\"requestedScopes\":[\"a:b\"],\"ttlMinutes\":1.5}",
        "{\"requestedScopes\":[\"a:b\"],\"ttlMinutes\":0}",
        "{\"requestedScopes\":[\"a:b\"],\"ttlMinutes\":\"60\"}",
        "{\"requestedScopes\":[\"a:b\"],\"delegatable\":\"no\"}",
        "{\"requestedScopes\":[\"a:b\"],\"inheritIdentity\":1}",
        "{\"requestedScopes\":[\"a:b\"],\"agentId\":7}",
        "{\"requestedScopes\":[\"a:b\"],\"requestedConstraints\":[]}",
        "{\"requestedScopes\":[\"a:b\"],\"federation\":true}",
        "{\"requestedScopes\":[\"a\\u0000b\"]}",
        "{\"requestedScopes\":[\"a:b\"]} trailing",
    };

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ai_delegation d;
        ai_delegation_storage *st = (ai_delegation_storage *)1;
        ai_err err = {0};
        ck_assert_msg(ai_delegation_from_json(bad[i], strlen(bad[i]), &d, &st,
                                              &err) == AI_EINVAL,
                      "accepted %s", bad[i]);
        ck_assert_ptr_null(st);
        ck_assert_ptr_null(d.scopes);
    }
}
END_TEST

START_TEST(test_delegate_from_json_constraints_still_narrow_only)
{
    ai_keyring *kr = t_keyring();
    ai_token *root = quick_root(kr);
    const char *json =
        "{\"requestedScopes\":[\"github:repo:read\"],\"requestedConstraints\":"
        "{\"github:repo:read\":{\"resources\":[\"*\"]}}}";
    ai_delegation d;
    ai_delegation_storage *st = NULL;
    ai_err err = {0};

    ck_assert_int_eq(ai_delegation_from_json(json, strlen(json), &d, &st, &err),
                     AI_OK);
    expect_denied(kr, root, &d, "Resource pattern \"*\"");
    ai_delegation_storage_free(st);
    ai_token_free(root);
    ai_keyring_free(kr);
}
END_TEST

Suite *suite_core_delegate(void)
{
    Suite *s = suite_create("core_delegate");
    TCase *rd = tcase_create("readme");
    TCase *sc = tcase_create("scopes");
    TCase *ch = tcase_create("chain");
    TCase *cn = tcase_create("constraints");
    TCase *bu = tcase_create("budgets");
    TCase *mp = tcase_create("map");
    TCase *js = tcase_create("json");

    tcase_add_test(rd, test_delegate_readme_quick_start);
    tcase_add_test(rd, test_delegate_readme_constraints_example);
    suite_add_tcase(s, rd);

    tcase_add_test(sc, test_delegate_refuses_scope_outside_parent);
    tcase_add_test(sc, test_delegate_refuses_wildcard_under_narrower_parent);
    tcase_add_test(sc, test_delegate_allows_narrower_wildcards);
    tcase_add_test(sc, test_delegate_refuses_bad_scope_lists);
    suite_add_tcase(s, sc);

    tcase_add_test(ch, test_delegate_refuses_when_depth_exceeded);
    tcase_add_test(ch, test_delegate_chain_to_max_depth_16);
    tcase_add_test(ch, test_delegate_refuses_non_delegatable_parent);
    tcase_add_test(ch, test_delegate_child_expiry_clamped_to_parent);
    tcase_add_test(ch, test_delegate_grandchild_expiry_clamped_to_child);
    tcase_add_test(ch, test_delegate_refuses_bad_ttl);
    tcase_add_test(ch, test_delegate_refuses_expired_parent);
    tcase_add_test(ch, test_delegate_generates_agent_id_when_absent);
    tcase_add_test(ch, test_delegate_ancestors_root_first);
    tcase_add_test(ch, test_delegate_fills_ancestor_agents_root_first);
    tcase_add_test(ch, test_delegate_ancestor_agents_name_ancestors_without_token_id);
    tcase_add_test(ch, test_delegate_refuses_unverified_parent);
    tcase_add_test(ch, test_delegate_drops_parent_unknown_fields);
    suite_add_tcase(s, ch);

    tcase_add_test(cn, test_delegate_refuses_wider_resources);
    tcase_add_test(cn, test_delegate_allows_contained_resources);
    tcase_add_test(cn, test_delegate_refuses_resources_too_complex_to_check);
    tcase_add_test(cn, test_delegate_literal_resources_share_the_work_bound);
    tcase_add_test(cn, test_delegate_refuses_more_constraints_than_a_token_holds);
    tcase_add_test(cn, test_delegate_refuses_constraint_outside_child_scopes);
    tcase_add_test(cn, test_delegate_carries_constraint_on_narrower_key);
    tcase_add_test(cn, test_delegate_drops_constraints_of_other_scopes);
    tcase_add_test(cn, test_delegate_several_constraints_all_apply);
    tcase_add_test(cn, test_delegate_requested_resources_checked_against_every_parent_constraint);
    tcase_add_test(cn, test_delegate_time_window_only_narrows);
    tcase_add_test(cn, test_delegate_refuses_window_that_never_opens);
    tcase_add_test(cn, test_delegate_refuses_bad_requested_constraints);
    suite_add_tcase(s, cn);

    tcase_add_test(bu, test_delegate_child_copies_budgets_and_adds_its_own_capped);
    tcase_add_test(bu, test_delegate_budget_on_same_key_joins_carried_constraint);
    tcase_add_test(bu, test_delegate_budgets_union_over_constraints);
    tcase_add_test(bu, test_delegate_budget_without_parent_limit_keeps_value);
    suite_add_tcase(s, bu);

    tcase_add_test(mp, test_delegate_identity_inherited_or_dropped);
    tcase_add_test(mp, test_delegate_caps_copied_when_not_requested);
    tcase_add_test(mp, test_delegate_caps_parent_booleans_anded);
    tcase_add_test(mp, test_delegate_caps_unset_by_parent_may_only_be_false);
    tcase_add_test(mp, test_delegate_caps_more_restrictive_visibility_wins);
    tcase_add_test(mp, test_delegate_caps_unset_visibility_is_public);
    tcase_add_test(mp, test_delegate_caps_custom_flags_narrow);
    tcase_add_test(mp, test_delegate_caps_refuses_unknown_capability);
    tcase_add_test(mp, test_delegate_federation_absent_parent_only_cross_false);
    tcase_add_test(mp, test_delegate_federation_copied_when_not_requested);
    tcase_add_test(mp, test_delegate_federation_flags_anded_and_min_hops);
    tcase_add_test(mp, test_delegate_federation_parent_false_stays_false);
    tcase_add_test(mp, test_delegate_federation_allowed_systems_subset);
    tcase_add_test(mp, test_delegate_federation_keeps_origin_and_hop_count);
    tcase_add_test(mp, test_delegate_reports_narrowed_federation_fields);
    tcase_add_test(mp, test_delegate_reports_narrowed_capabilities);
    tcase_add_test(mp, test_delegate_narrowed_lists_federation_then_capabilities);
    suite_add_tcase(s, mp);

    tcase_add_test(js, test_delegate_from_json_full_request);
    tcase_add_test(js, test_delegate_from_json_defaults);
    tcase_add_test(js, test_delegate_from_json_refuses_bad_requests);
    tcase_add_test(js, test_delegate_from_json_constraints_still_narrow_only);
    suite_add_tcase(s, js);
    return s;
}
