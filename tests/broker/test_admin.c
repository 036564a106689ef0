/* test_admin.c - Suite "broker_admin": the administration half of the
 * Broker API (src/broker): revoke and unrevoke, key rotation, provider
 * configs, API keys, status and the redacted config, each checked through
 * the other broker calls or the store, with the audit rows they leave (and
 * no secret in them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../tests.h"
#include "broker/broker.h"
#include "../store/home_fixture.h"
#include "providers/providers.h"

#define AWS_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define AWS_CONFIG                                                         \
    "{\"region\":\"us-east-1\","                                           \
    "\"roleArn\":\"arn:aws:iam::123456789012:role/agent\","                \
    "\"accessKeyId\":\"AKIAIOSFODNN7EXAMPLE\","                            \
    "\"secretAccessKey\":\"" AWS_SECRET "\"}"
#define API_SECRET "sk-test-0123456789abcdef"

/* A broker on a fresh home, and a root token of agent "a" for scopes. */
typedef struct fx {
    char *home;
    ai_broker *b;
} fx;

static void fx_up(fx *f)
{
    ai_err err;

    f->home = fx_home_new();
    ck_assert_int_eq(ai_broker_open(f->home, &f->b, &err), AI_OK);
}

static void fx_down(fx *f)
{
    ai_broker_close(f->b);
    fx_home_free(f->home);
}

static ai_token *root(ai_broker *b, const char *agent, const char *scope)
{
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err;

    ai_root_params_init(&p);
    p.agent_id = agent;
    p.scopes = T_ARR(scope);
    p.nscopes = 1;
    p.delegatable = true;
    ck_assert_int_eq(ai_broker_create_root_token(b, &p, &t, &err), AI_OK);
    return t;
}

static ai_code verify(ai_broker *b, const ai_token *t)
{
    ai_token *out = NULL;
    ai_err err;
    ai_code rc = ai_broker_verify(b, ai_token_serialize(t),
                                  ai_token_serialized_len(t), &out, &err);

    ai_token_free(out);
    return rc;
}

/* The audit rows of a home, as one text to search, "action|decision|
 * token|agent|reason|actor" per row. */
typedef struct rows {
    char text[8192];
    size_t len;
    int n;
} rows;

static void collect(void *ud, const audit_entry *e)
{
    rows *r = ud;
    int w = snprintf(r->text + r->len, sizeof r->text - r->len,
                     "%s|%s|%s|%s|%s|%s\n", e->action, e->decision,
                     e->token_id ? e->token_id : "-",
                     e->agent_id ? e->agent_id : "-",
                     e->reason ? e->reason : "-", e->actor);

    if (w > 0 && (size_t)w < sizeof r->text - r->len)
        r->len += (size_t)w;
    r->n++;
}

/* Every audit row of the home (through a second handle, as another
 * process would read them); the chain must be intact. */
static void audit_rows(const char *home, rows *r)
{
    store *st = fx_open(home);
    int64_t bad = 0;
    ai_err err;

    memset(r, 0, sizeof *r);
    ck_assert_int_eq(store_audit_tail(st, 100, collect, r, &err), AI_OK);
    ck_assert_int_eq(store_audit_verify(st, &bad, &err), AI_OK);
    store_close(st);
}

/* ---- revoke ----------------------------------------------------------- */

START_TEST(test_broker_admin_revoke_token_then_unrevoke)
{
    fx f;
    ai_token *t, *other;
    rows r;
    char line[512];
    ai_err err;

    fx_up(&f);
    t = root(f.b, "a", "x:y:z");
    other = root(f.b, "a", "x:y:z");
    ck_assert_int_eq(ai_broker_revoke(f.b, ai_token_id(t), NULL, "leaked",
                                      &err),
                     AI_OK);
    ck_assert_int_eq(verify(f.b, t), AI_EREVOKED);
    ck_assert_int_eq(verify(f.b, other), AI_OK);
    /* idempotent */
    ck_assert_int_eq(ai_broker_revoke(f.b, ai_token_id(t), NULL, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(ai_broker_unrevoke(f.b, ai_token_id(t), NULL, &err),
                     AI_OK);
    ck_assert_int_eq(verify(f.b, t), AI_OK);
    ck_assert_int_eq(ai_broker_unrevoke(f.b, ai_token_id(t), NULL, &err),
                     AI_ENOTFOUND);
    ck_assert(t_has(err.msg, "not revoked"));

    audit_rows(f.home, &r);
    snprintf(line, sizeof line, "revoke|ok|%s|-|leaked|cli\n",
             ai_token_id(t));
    ck_assert_msg(t_has(r.text, line), "%s", r.text);
    snprintf(line, sizeof line, "unrevoke|ok|%s|-|-|cli\n", ai_token_id(t));
    ck_assert_msg(t_has(r.text, line), "%s", r.text);
    ai_token_free(t);
    ai_token_free(other);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_admin_revoke_agent_covers_its_tokens)
{
    fx f;
    ai_token *t1, *t2, *b1;
    rows r;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(ai_broker_set_actor(f.b, "ops", &err), AI_OK);
    t1 = root(f.b, "agent-a", "x:y:z");
    t2 = root(f.b, "agent-a", "x:y:w");
    b1 = root(f.b, "agent-b", "x:y:z");
    ck_assert_int_eq(ai_broker_revoke(f.b, NULL, "agent-a", NULL, &err),
                     AI_OK);
    ck_assert_int_eq(verify(f.b, t1), AI_EREVOKED);
    ck_assert_int_eq(verify(f.b, t2), AI_EREVOKED);
    ck_assert_int_eq(verify(f.b, b1), AI_OK);
    ck_assert_int_eq(ai_broker_unrevoke(f.b, NULL, "agent-a", &err), AI_OK);
    ck_assert_int_eq(verify(f.b, t1), AI_OK);

    audit_rows(f.home, &r);
    ck_assert_msg(t_has(r.text, "revoke|ok|-|agent-a|-|ops\n"), "%s",
                  r.text);
    ck_assert_msg(t_has(r.text, "unrevoke|ok|-|agent-a|-|ops\n"), "%s",
                  r.text);
    ai_token_free(t1);
    ai_token_free(t2);
    ai_token_free(b1);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_admin_revoke_rejects_bad_targets)
{
    fx f;
    rows r;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(ai_broker_revoke(f.b, "t", "a", NULL, &err), AI_EINVAL);
    ck_assert(t_has(err.msg, "both"));
    ck_assert_int_eq(ai_broker_revoke(f.b, NULL, NULL, NULL, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "neither"));
    ck_assert_int_eq(ai_broker_revoke(f.b, "", NULL, NULL, &err), AI_EINVAL);
    ck_assert_int_eq(ai_broker_revoke(f.b, NULL, "", NULL, &err), AI_EINVAL);
    ck_assert_int_eq(ai_broker_revoke(f.b, "t\n1", NULL, NULL, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_unrevoke(f.b, "t", "a", &err), AI_EINVAL);
    ck_assert_int_eq(ai_broker_unrevoke(f.b, NULL, NULL, &err), AI_EINVAL);
    ck_assert_int_eq(ai_broker_revoke(NULL, "t", NULL, NULL, &err),
                     AI_EINVAL);
    /* a NULL err is allowed */
    ck_assert_int_eq(ai_broker_revoke(f.b, NULL, NULL, NULL, NULL),
                     AI_EINVAL);
    ck_assert_uint_eq(store_revocation_count(broker_store(f.b)), 0);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 0);
    fx_down(&f);
}
END_TEST

/* ---- rotate-key ------------------------------------------------------- */

START_TEST(test_broker_admin_rotate_key_signs_with_the_new_version)
{
    fx f;
    ai_token *old, *fresh;
    uint32_t v = 0;
    rows r;
    ai_err err;

    fx_up(&f);
    old = root(f.b, "a", "x:y:z");
    ck_assert_uint_eq(ai_token_key_version(old), 1);
    ck_assert_int_eq(ai_broker_rotate_key(f.b, -1, &v, &err), AI_OK);
    ck_assert_uint_eq(v, 2);
    fresh = root(f.b, "a", "x:y:z");
    ck_assert_uint_eq(ai_token_key_version(fresh), 2);
    ck_assert_int_eq(verify(f.b, old), AI_OK);
    ck_assert_int_eq(verify(f.b, fresh), AI_OK);
    ck_assert_int_eq(ai_broker_rotate_key(f.b, T_DAY, NULL, &err), AI_OK);
    ck_assert_int_eq(ai_broker_rotate_key(f.b, INT64_MAX, &v, &err),
                     AI_EINVAL);
    ck_assert_uint_eq(v, 0);

    audit_rows(f.home, &r);
    ck_assert_msg(t_has(r.text, "rotate-key|ok|-|-|new signing key version "
                                "2|cli\n"),
                  "%s", r.text);
    ck_assert_msg(t_has(r.text, "new signing key version 3"), "%s", r.text);
    ai_token_free(old);
    ai_token_free(fresh);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_admin_rotate_key_refused_on_a_replica)
{
    fx f;
    uint32_t v = 7;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(store_mark_replica(broker_store(f.b), &err), AI_OK);
    ck_assert_int_eq(ai_broker_rotate_key(f.b, -1, &v, &err), AI_EDENIED);
    ck_assert_uint_eq(v, 0);
    fx_down(&f);
}
END_TEST

/* ---- providers -------------------------------------------------------- */

START_TEST(test_broker_admin_init_provider_then_show_redacted)
{
    fx f;
    char *json = NULL, *text = NULL;
    json_t *o, *aws;
    rows r;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(ai_broker_init_provider(f.b, "aws", AWS_CONFIG, &err),
                     AI_OK);
    /* stored with its secret */
    ck_assert_int_eq(store_provider_get(broker_store(f.b), "aws", &text,
                                        &err),
                     AI_OK);
    ck_assert(t_has(text, AWS_SECRET));
    explicit_bzero(text, strlen(text));
    store_free(text);

    ck_assert_int_eq(ai_broker_show_config(f.b, &json, &err), AI_OK);
    ck_assert_ptr_nonnull(json);
    ck_assert_msg(!t_has(json, AWS_SECRET), "%s", json);
    o = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(o);
    aws = json_object_get(json_object_get(o, "providers"), "aws");
    ck_assert_str_eq(json_string_value(json_object_get(aws, "region")),
                     "us-east-1");
    ck_assert_str_eq(json_string_value(json_object_get(aws, "accessKeyId")),
                     "AKIAIOSFODNN7EXAMPLE");
    ck_assert_str_eq(
        json_string_value(json_object_get(aws, "secretAccessKey")),
        "***REDACTED***");
    ck_assert_ptr_null(json_object_get(json_object_get(o, "providers"),
                                       "github"));
    ck_assert_int_eq(json_object_size(json_object_get(
                         json_object_get(o, "providers"), "apikeys")),
                     0);
    json_decref(o);
    ai_free_string(json);

    audit_rows(f.home, &r);
    ck_assert_msg(t_has(r.text, "config-init|ok|-|-|aws|cli\n"), "%s",
                  r.text);
    ck_assert(!t_has(r.text, AWS_SECRET));
    ck_assert(!t_has(r.text, "AKIA"));
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_admin_init_provider_refuses_bad_configs)
{
    fx f;
    char *text = NULL;
    rows r;
    ai_err err;

    fx_up(&f);
    /* no roleArn */
    ck_assert_int_eq(
        ai_broker_init_provider(
            f.b, "aws",
            "{\"region\":\"us-east-1\",\"secretAccessKey\":\"" AWS_SECRET
            "\",\"accessKeyId\":\"AKIAIOSFODNN7EXAMPLE\"}",
            &err),
        AI_EINVAL);
    ck_assert(!t_has(err.msg, AWS_SECRET));
    ck_assert_int_eq(ai_broker_init_provider(f.b, "aws", "not json", &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_init_provider(f.b, "openai", AWS_CONFIG,
                                             &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_init_provider(f.b, NULL, AWS_CONFIG, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_init_provider(f.b, "aws", NULL, &err),
                     AI_EINVAL);
    /* an aws config is not a github one */
    ck_assert_int_eq(ai_broker_init_provider(f.b, "github", AWS_CONFIG,
                                             &err),
                     AI_EINVAL);
    ck_assert_int_eq(store_provider_get(broker_store(f.b), "aws", &text,
                                        &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_provider_get(broker_store(f.b), "github", &text,
                                        &err),
                     AI_ENOTFOUND);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 0);
    fx_down(&f);
}
END_TEST

/* ---- API keys --------------------------------------------------------- */

START_TEST(test_broker_admin_api_key_serves_until_removed)
{
    fx f;
    ai_token *t;
    char *cred = NULL, *json = NULL;
    json_t *o, *k;
    rows r;
    ai_err err;

    fx_up(&f);
    t = root(f.b, "a", "openai:chat:completions");
    ck_assert_int_eq(ai_broker_get_credential(
                         f.b, ai_token_serialize(t),
                         ai_token_serialized_len(t),
                         "openai:chat:completions", "", &cred, &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", API_SECRET,
                                           "https://api.example.com/v1", 30,
                                           &err),
                     AI_OK);
    ck_assert_int_eq(ai_broker_get_credential(
                         f.b, ai_token_serialize(t),
                         ai_token_serialized_len(t),
                         "openai:chat:completions", "", &cred, &err),
                     AI_OK);
    ck_assert(t_has(cred, API_SECRET));
    ck_assert(t_has(cred, "\"api_key\""));
    ai_free_string(cred);
    cred = NULL;

    ck_assert_int_eq(ai_broker_show_config(f.b, &json, &err), AI_OK);
    ck_assert_msg(!t_has(json, API_SECRET), "%s", json);
    o = json_loads(json, 0, NULL);
    k = json_object_get(
        json_object_get(json_object_get(o, "providers"), "apikeys"), "oa");
    ck_assert_str_eq(json_string_value(json_object_get(k, "providerName")),
                     "openai");
    ck_assert_str_eq(json_string_value(json_object_get(k, "apiKey")),
                     "***REDACTED***");
    ck_assert_str_eq(json_string_value(json_object_get(k, "baseUrl")),
                     "https://api.example.com/v1");
    ck_assert_int_eq(json_integer_value(json_object_get(k, "ttlMinutes")),
                     30);
    ck_assert(json_is_string(json_object_get(k, "createdAt")));
    json_decref(o);
    ai_free_string(json);

    ck_assert_int_eq(ai_broker_remove_api_key(f.b, "oa", &err), AI_OK);
    ck_assert_int_eq(ai_broker_get_credential(
                         f.b, ai_token_serialize(t),
                         ai_token_serialized_len(t),
                         "openai:chat:completions", "", &cred, &err),
                     AI_ENOTFOUND);
    ck_assert_ptr_null(cred);
    ck_assert_int_eq(ai_broker_remove_api_key(f.b, "oa", &err),
                     AI_ENOTFOUND);

    audit_rows(f.home, &r);
    ck_assert_msg(t_has(r.text, "apikey-add|ok|-|-|oa (provider openai)|cli"),
                  "%s", r.text);
    ck_assert_msg(t_has(r.text, "apikey-remove|ok|-|-|oa|cli\n"), "%s",
                  r.text);
    ck_assert_msg(!t_has(r.text, API_SECRET), "%s", r.text);
    ai_token_free(t);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_admin_api_key_rejects_bad_arguments)
{
    fx f;
    char *secret = NULL;
    char big[PROV_SECRET_MAX + 2];
    rows r;
    ai_err err;

    fx_up(&f);
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "", "openai", API_SECRET,
                                           NULL, 0, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, NULL, "openai", API_SECRET,
                                           NULL, 0, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "a b", "openai", API_SECRET,
                                           NULL, 0, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "", API_SECRET, NULL,
                                           0, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "provider"));
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", "", NULL, 0,
                                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", NULL, NULL,
                                           0, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai",
                                           "sk-\nsecret", NULL, 0, &err),
                     AI_EINVAL);
    ck_assert(!t_has(err.msg, "secret"));
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", big, NULL, 0,
                                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", API_SECRET,
                                           "http://example.com", 0, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", API_SECRET,
                                           "https://u:p@example.com", 0,
                                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", API_SECRET,
                                           NULL, -1, &err),
                     AI_EINVAL);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", API_SECRET,
                                           NULL, 90 * 24 * 60 + 1, &err),
                     AI_EINVAL);
    ck_assert(!t_has(err.msg, API_SECRET));
    ck_assert_int_eq(ai_broker_remove_api_key(f.b, "", &err), AI_EINVAL);
    ck_assert_int_eq(ai_broker_remove_api_key(f.b, "../x", &err), AI_EINVAL);
    ck_assert_int_eq(store_apikey_secret(broker_store(f.b), "oa", &secret,
                                         &err),
                     AI_ENOTFOUND);
    /* the limits themselves are fine */
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "oa", "openai", API_SECRET,
                                           "http://127.0.0.1:9/v1",
                                           90 * 24 * 60, &err),
                     AI_OK);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 1);
    fx_down(&f);
}
END_TEST

/* ---- status ----------------------------------------------------------- */

START_TEST(test_broker_admin_status_reports_the_home)
{
    fx f;
    char *json = NULL;
    json_t *o;
    int64_t head = 0;
    ai_token *t;
    ai_err err;

    fx_up(&f);
    t = root(f.b, "a", "x:y:z");
    ck_assert_int_eq(ai_broker_revoke(f.b, ai_token_id(t), NULL, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(ai_broker_rotate_key(f.b, -1, NULL, &err), AI_OK);
    ck_assert_int_eq(ai_broker_status(f.b, &json, &err), AI_OK);
    o = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "version")),
                     ai_version());
    ck_assert_str_eq(json_string_value(json_object_get(o, "mode")),
                     "standalone");
    ck_assert_str_eq(json_string_value(json_object_get(o, "home")),
                     store_home(broker_store(f.b)));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "schema")),
                     store_schema_version(broker_store(f.b)));
    ck_assert_int_eq(
        json_integer_value(json_object_get(o, "signingKeyVersion")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "verifyingKeys")),
                     2);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "revocations")),
                     1);
    ck_assert_int_eq(store_changelog_head(broker_store(f.b), &head, &err),
                     AI_OK);
    ck_assert_int_gt(head, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "changelogSeq")),
                     head);
    ck_assert_ptr_null(json_object_get(o, "appliedSeq"));
    json_decref(o);
    ai_free_string(json);
    ck_assert_int_eq(ai_broker_status(f.b, NULL, &err), AI_EINVAL);
    ai_token_free(t);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_admin_status_of_an_unsynced_replica)
{
    fx f;
    char *json = NULL;
    json_t *o;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(store_mark_replica(broker_store(f.b), &err), AI_OK);
    ck_assert_int_eq(ai_broker_status(f.b, &json, &err), AI_OK);
    o = json_loads(json, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "mode")),
                     "follower");
    ck_assert_int_eq(
        json_integer_value(json_object_get(o, "signingKeyVersion")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "appliedSeq")),
                     0);
    json_decref(o);
    ai_free_string(json);
    fx_down(&f);
}
END_TEST

/* ---- commands (broker_exec) ------------------------------------------ */

START_TEST(test_broker_exec_same_command_gives_same_state_on_two_homes)
{
    fx a, b;
    broker_cmd rot = {.op = BROKER_ROTATE_KEY, .at_ms = T_NOW,
                      .actor = "admin", .grace_ms = -1};
    broker_cmd rev = {.op = BROKER_REVOKE, .at_ms = T_NOW + 1,
                      .actor = "admin", .target = REVOKE_AGENT,
                      .id = "rogue", .reason = "test"};
    broker_result ra, rb;
    unsigned char ka[AI_KEY_BYTES], kb[AI_KEY_BYTES];
    int64_t ha = 0, hb = 0;
    ai_err err;

    fx_up(&a);
    fx_up(&b);
    memcpy(rot.key, t_key2, AI_KEY_BYTES);
    ck_assert_int_eq(broker_exec(a.b, &rot, &ra, &err), AI_OK);
    ck_assert_int_eq(broker_exec(b.b, &rot, &rb, &err), AI_OK);
    ck_assert_int_eq(broker_exec(a.b, &rev, NULL, &err), AI_OK);
    ck_assert_int_eq(broker_exec(b.b, &rev, NULL, &err), AI_OK);
    broker_cmd_wipe(&rot);
    ck_assert_uint_eq(ra.version, rb.version);
    /* the key is the command's, not drawn by the store */
    ck_assert_int_eq(store_export_key(broker_store(a.b), ra.version, ka,
                                      &err),
                     AI_OK);
    ck_assert_int_eq(store_export_key(broker_store(b.b), rb.version, kb,
                                      &err),
                     AI_OK);
    ck_assert_mem_eq(ka, t_key2, AI_KEY_BYTES);
    ck_assert_mem_eq(kb, t_key2, AI_KEY_BYTES);
    ck_assert(store_revoked(broker_store(a.b), AI_REVOKED_AGENT, "rogue"));
    ck_assert(store_revoked(broker_store(b.b), AI_REVOKED_AGENT, "rogue"));
    ck_assert_int_eq(store_changelog_head(broker_store(a.b), &ha, &err),
                     AI_OK);
    ck_assert_int_eq(store_changelog_head(broker_store(b.b), &hb, &err),
                     AI_OK);
    ck_assert_int_eq(ha, hb);
    fx_down(&a);
    fx_down(&b);
}
END_TEST

START_TEST(test_broker_exec_first_key_once_with_its_audit_row)
{
    fx f;
    ai_broker *other = NULL;
    broker_cmd first = {.op = BROKER_KEY_FIRST, .at_ms = T_NOW,
                        .actor = "admin"};
    broker_result res;
    unsigned char k[AI_KEY_BYTES];
    const ai_keyring *kr = NULL;
    rows r;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(ai_broker_open(f.home, &other, &err), AI_OK);
    memcpy(first.key, t_key1, AI_KEY_BYTES);
    ck_assert_int_eq(broker_exec(f.b, &first, &res, &err), AI_OK);
    ck_assert_uint_eq(res.version, 1);
    /* a second first key, through another handle: nothing made */
    memcpy(first.key, t_key2, AI_KEY_BYTES);
    first.at_ms = T_NOW + 1;
    ck_assert_int_eq(broker_exec(other, &first, &res, &err), AI_OK);
    ck_assert_uint_eq(res.version, 0);
    broker_cmd_wipe(&first);
    ck_assert_int_eq(store_export_key(broker_store(other), 1, k, &err), AI_OK);
    ck_assert_mem_eq(k, t_key1, AI_KEY_BYTES);
    ck_assert_int_eq(broker_signing_keyring(other, T_NOW + 2, &kr, &err),
                     AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 1);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 1);
    ck_assert_msg(t_has(r.text, "key-create|ok|-|-|signing key version 1|"
                                "admin\n"),
                  "%s", r.text);
    ai_broker_close(other);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_signing_keyring_makes_the_first_key_on_record)
{
    fx f;
    const ai_keyring *kr = NULL;
    key_info *keys = NULL;
    size_t n = 0;
    rows r;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(ai_broker_set_actor(f.b, "svc", &err), AI_OK);
    ck_assert_int_eq(broker_signing_keyring(f.b, T_NOW, &kr, &err), AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 1);
    ck_assert_int_eq(broker_signing_keyring(f.b, T_NOW, &kr, &err), AI_OK);
    ck_assert_int_eq(store_list_keys(broker_store(f.b), T_NOW, &keys, &n,
                                     &err),
                     AI_OK);
    ck_assert_uint_eq(n, 1);
    store_free(keys);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 1);
    ck_assert_msg(t_has(r.text, "key-create|ok|"), "%s", r.text);
    ck_assert_msg(t_has(r.text, "|svc\n"), "%s", r.text);
    fx_down(&f);

    /* a replica before its first sync makes none */
    fx_up(&f);
    ck_assert_int_eq(store_mark_replica(broker_store(f.b), &err), AI_OK);
    ck_assert_int_eq(broker_signing_keyring(f.b, T_NOW, &kr, &err),
                     AI_ENOTFOUND);
    ck_assert_msg(t_has(err.msg, "replica not synced"), "%s", err.msg);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 0);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_exec_audit_failure_changes_nothing)
{
    fx f;
    /* an actor the audit log refuses (a control character) */
    broker_cmd rev = {.op = BROKER_REVOKE, .at_ms = T_NOW,
                      .actor = "ad\nmin", .target = REVOKE_AGENT,
                      .id = "rogue"};
    broker_cmd key = {.op = BROKER_APIKEY_ADD, .at_ms = T_NOW,
                      .actor = "ad\nmin", .name = "oa", .provider = "openai",
                      .secret = API_SECRET};
    int64_t before = 0, after = 0;
    char *secret = NULL;
    rows r;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(store_changelog_head(broker_store(f.b), &before, &err),
                     AI_OK);
    ck_assert_int_eq(broker_exec(f.b, &rev, NULL, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "audit"), "%s", err.msg);
    ck_assert_int_eq(broker_exec(f.b, &key, NULL, &err), AI_EINVAL);
    ck_assert_int_eq(store_sync(broker_store(f.b), &err), AI_OK);
    ck_assert(!store_revoked(broker_store(f.b), AI_REVOKED_AGENT, "rogue"));
    ck_assert_int_eq(store_apikey_secret(broker_store(f.b), "oa", &secret,
                                         &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_changelog_head(broker_store(f.b), &after, &err),
                     AI_OK);
    ck_assert_int_eq(before, after);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 0);
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_exec_refuses_a_command_without_its_time)
{
    fx f;
    broker_cmd rev = {.op = BROKER_REVOKE, .target = REVOKE_AGENT,
                      .id = "rogue"};
    broker_cmd bad = {.op = (broker_op)99, .at_ms = T_NOW};
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(broker_exec(f.b, &rev, NULL, &err), AI_EINVAL);
    ck_assert_int_eq(broker_exec(f.b, &bad, NULL, &err), AI_EINVAL);
    ck_assert_int_eq(store_sync(broker_store(f.b), &err), AI_OK);
    ck_assert(!store_revoked(broker_store(f.b), AI_REVOKED_AGENT, "rogue"));
    fx_down(&f);
}
END_TEST

START_TEST(test_broker_exec_counts_uses_against_every_budget)
{
    fx f;
    const ai_budget_ref budgets[] = {{"tok-1:x", 2}, {"tok-0:x", 5}};
    broker_cmd use = {.op = BROKER_USES_CONSUME, .at_ms = T_NOW,
                      .budgets = budgets, .nbudgets = 2};
    broker_result res;
    rows r;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(broker_exec(f.b, &use, &res, &err), AI_OK);
    ck_assert(res.granted);
    ck_assert_uint_eq(res.remaining, 1);
    ck_assert_int_eq(broker_exec(f.b, &use, &res, &err), AI_OK);
    ck_assert(res.granted);
    ck_assert_uint_eq(res.remaining, 0);
    /* the smaller budget is spent: refused, and nothing counted */
    ck_assert_int_eq(broker_exec(f.b, &use, &res, &err), AI_OK);
    ck_assert(!res.granted);
    use.budgets = budgets + 1;
    use.nbudgets = 1;
    ck_assert_int_eq(broker_exec(f.b, &use, &res, &err), AI_OK);
    ck_assert(res.granted);
    ck_assert_uint_eq(res.remaining, 2);
    audit_rows(f.home, &r);
    ck_assert_int_eq(r.n, 0);
    fx_down(&f);
}
END_TEST

/* ---- followers -------------------------------------------------------- */

START_TEST(test_broker_admin_followers_listed_without_secret_and_audited)
{
    fx f;
    char *secret = NULL, *json = NULL;
    rows r;
    ai_err err = {0};

    fx_up(&f);
    ck_assert_int_eq(ai_broker_add_follower(f.b, "eu-1", "openai", &secret,
                                            &err),
                     AI_OK);
    ck_assert_int_eq(ai_broker_list_followers(f.b, &json, &err), AI_OK);
    ck_assert(t_has(json, "\"id\":\"eu-1\""));
    ck_assert(t_has(json, "\"providers\":\"openai\""));
    ck_assert(!t_has(json, secret));
    ai_free_string(json);
    ck_assert_int_eq(ai_broker_remove_follower(f.b, "eu-1", &err), AI_OK);
    ck_assert_int_eq(ai_broker_remove_follower(f.b, "eu-1", &err),
                     AI_ENOTFOUND);
    audit_rows(f.home, &r); /* the chain verifies */
    ck_assert_int_ge(r.n, 2);
    ck_assert(t_has(r.text, "eu-1"));
    ck_assert(!t_has(r.text, secret));
    ai_free_string(secret);
    fx_down(&f);
}
END_TEST

Suite *suite_broker_admin(void)
{
    Suite *s = suite_create("broker_admin");
    TCase *tc = tcase_create("admin");

    tcase_add_test(tc, test_broker_admin_revoke_token_then_unrevoke);
    tcase_add_test(tc, test_broker_admin_revoke_agent_covers_its_tokens);
    tcase_add_test(tc, test_broker_admin_revoke_rejects_bad_targets);
    tcase_add_test(tc, test_broker_admin_rotate_key_signs_with_the_new_version);
    tcase_add_test(tc, test_broker_admin_rotate_key_refused_on_a_replica);
    tcase_add_test(tc, test_broker_admin_init_provider_then_show_redacted);
    tcase_add_test(tc, test_broker_admin_init_provider_refuses_bad_configs);
    tcase_add_test(tc, test_broker_admin_api_key_serves_until_removed);
    tcase_add_test(tc, test_broker_admin_api_key_rejects_bad_arguments);
    tcase_add_test(tc, test_broker_admin_status_reports_the_home);
    tcase_add_test(tc, test_broker_admin_followers_listed_without_secret_and_audited);
    tcase_add_test(tc, test_broker_admin_status_of_an_unsynced_replica);
    tcase_add_test(tc, test_broker_exec_first_key_once_with_its_audit_row);
    tcase_add_test(tc, test_broker_signing_keyring_makes_the_first_key_on_record);
    tcase_add_test(tc,
                   test_broker_exec_same_command_gives_same_state_on_two_homes);
    tcase_add_test(tc, test_broker_exec_audit_failure_changes_nothing);
    tcase_add_test(tc, test_broker_exec_refuses_a_command_without_its_time);
    tcase_add_test(tc, test_broker_exec_counts_uses_against_every_budget);
    suite_add_tcase(s, tc);
    return s;
}
