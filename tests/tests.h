/*
 * tests.h - the Check suites of the unit-test binary, and the fixtures
 * they share (tests/testutil.c): a fixed clock, fixed keys, and helpers
 * that mint, delegate and hand-sign tokens.
 */
#ifndef AI_TESTS_H
#define AI_TESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "agent_iam.h"

/* A TCP port of 127.0.0.1 free now, below the kernel's ephemeral range
 * (so no outgoing connection takes it before its server binds it), never
 * the same twice in a run. */
int t_free_port(void);

/* One Suite per file under tests/, named after the file it tests. */
Suite *suite_core_scope(void);
Suite *suite_core_glob(void);
Suite *suite_core_time(void);
Suite *suite_core_b64(void);
Suite *suite_core_json(void);
Suite *suite_core_token(void);
Suite *suite_core_delegate(void);
Suite *suite_core_oom(void);
Suite *suite_core_threads(void);
Suite *suite_http(void);
Suite *suite_store_home(void);
Suite *suite_store_revocations(void);
Suite *suite_store_keys(void);
Suite *suite_store_snapshot(void);
Suite *suite_broker_audit(void);
Suite *suite_broker_admin(void);
Suite *suite_store_providers(void);
Suite *suite_store_audit(void);
Suite *suite_store_uses(void);
Suite *suite_store_replica(void);
Suite *suite_store_followers(void);
Suite *suite_store_chain(void);
Suite *suite_leader_feed(void);
Suite *suite_follower_sync(void);
Suite *suite_providers_sigv4(void), *suite_providers_aws(void);
Suite *suite_providers_cache(void);
Suite *suite_providers_http(void);
Suite *suite_providers_github(void), *suite_providers_google(void);
Suite *suite_providers_config(void);
Suite *tls_suite(void);
Suite *suite_cluster_transport(void);
Suite *suite_runtime(void);
Suite *suite_cluster_codec(void);
Suite *suite_cluster_fsm(void);
Suite *suite_cluster_config(void);
Suite *suite_cluster_node(void);
Suite *suite_store_entries(void);
Suite *suite_store_groupsnap(void);

/* ---- fixtures --------------------------------------------------------- */

/* The fixed "now" of every test: 2026-11-30T12:00:00.000Z. */
#define T_NOW INT64_C(1796040000000)
#define T_SEC INT64_C(1000)
#define T_MIN INT64_C(60000)
#define T_HOUR INT64_C(3600000)
#define T_DAY INT64_C(86400000)

/* A string array literal; T_LIST adds its length, for the (scopes,
 * nscopes) argument pairs. */
#define T_ARR(...) ((const char *const[]){__VA_ARGS__})
#define T_LIST(...)                                                        \
    T_ARR(__VA_ARGS__), sizeof(T_ARR(__VA_ARGS__)) / sizeof(const char *)

/* Key version 1 is the bytes 0..31, version 2 the bytes 0xa0..0xbf. */
extern const unsigned char t_key1[AI_KEY_BYTES];
extern const unsigned char t_key2[AI_KEY_BYTES];

/* A keyring holding version 1 (signing). Free with ai_keyring_free. */
ai_keyring *t_keyring(void);

/* Root token with the default parameters, these scopes and constraints
 * (JSON or NULL). Fails the test if minting fails. */
ai_token *t_root(const ai_keyring *kr, const char *const *scopes, size_t n,
                 const char *constraints_json);

/* Child of parent with these scopes and requested constraints. Fails the
 * test if delegation fails. */
ai_token *t_child(const ai_keyring *kr, const ai_token *parent,
                  const char *agent_id, const char *const *scopes, size_t n,
                  const char *constraints_json);

/* Delegate and return the code; *out is freed and cleared on success so
 * only the error matters. err is cleared first. */
ai_code t_delegate_err(const ai_keyring *kr, const ai_token *parent,
                       const ai_delegation *d, ai_err *err);

/* Hand-signed wire form: J' = J with ,"signature":"<HMAC-SHA256(key, J)>"
 * appended as its last member, base64url. J must be an object text.
 * Computed with OpenSSL's HMAC(), independently of src/core. malloc'd. */
char *t_sign(const unsigned char key[AI_KEY_BYTES], const char *json);

/* A Node.js child token, hand-signed with t_key1: agent "node-child",
 * parentId "node-root", depth 1, no tokenId, no ancestors (the Node
 * package names the parent's agent only in parentId). malloc'd. */
char *t_node_child(void);

/* Unpadded base64url of n bytes, independent of src/core. malloc'd. */
char *t_b64url(const void *p, size_t n);

/* Verify with kr and no revocation; err is cleared first. */
ai_code t_verify(const ai_keyring *kr, const char *wire, ai_token **out,
                 ai_err *err);

/* Does hay contain needle? */
bool t_has(const char *hay, const char *needle);

/* A revocation list for ai_verifier: one id per kind may be set. */
typedef struct t_revoked {
    const char *token, *ancestor, *agent;
    int calls;
} t_revoked;
bool t_revoked_fn(void *ud, ai_revoke_kind kind, const char *id);

/* A temporary home: dir is a fresh mkdtemp directory, path = dir/home
 * (made by store_open); t_home_remove deletes the home's files and both
 * directories, and fails the test if anything else was left there. */
typedef struct t_home {
    char dir[64];
    char path[96];
} t_home;
void t_home_make(t_home *h, const char *tag);
void t_home_remove(const t_home *h);
/* store_open(h->path, create) or fail the test. */
struct store *t_home_open(const t_home *h);

#endif /* AI_TESTS_H */
