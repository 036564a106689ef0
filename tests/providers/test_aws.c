/* test_aws.c - Suite "providers_aws": the AWS STS backend
 * (src/providers/aws.c) against tests/providers/stub_sts.py on 127.0.0.1
 * with TLS.
 *
 * The stub is started once per suite (an unchecked fixture, so forked
 * tests share it), makes the test PKI in a fresh mkdtemp directory,
 * recomputes each request's Signature Version 4 with the known secret as
 * STS does, and writes the form it accepted to DIR/last.json, which the
 * tests read to see the session policy and RoleSessionName sent. */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"
#include "broker/broker.h"
#include "providers/providers.h"
#include "../tests.h"
#include "stub.h"

#define AKID "AKIATESTSTUB00000001"
#define SECRET "stubSecret/Key+0123456789abcdefEXAMPLE"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLE/session+token=="
#define ROLE "arn:aws:iam::123456789012:role/agents"

static char dir[64];
static pid_t stub_pid = -1;
static int stub_port;
static char ca_file[128];
static unsigned flaky_n;

static void stub_start(const char *const *argv)
{
    stub_pid = t_stub_start(argv, &stub_port);
}

static void setup(void)
{
    const char *const argv[] = {"python3", "-B",
                                "tests/providers/stub_sts.py",
                                dir, AKID, SECRET, TOKEN, NULL};

    snprintf(dir, sizeof dir, "/tmp/ai-sts-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    stub_start(argv);
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
}

static void teardown(void)
{
    char cmd[128];

    t_stub_stop(&stub_pid);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Config JSON: stsUrl = the stub + mode + "/"; secret NULL leaves the
 * keys out (the environment then). extra: more members or "". */
static char *config(const char *secret, const char *mode, const char *extra)
{
    char buf[1024];

    if (secret != NULL)
        snprintf(buf, sizeof buf,
                 "{\"region\":\"us-east-1\",\"roleArn\":\"" ROLE "\","
                 "\"accessKeyId\":\"" AKID "\",\"secretAccessKey\":\"%s\","
                 "\"stsUrl\":\"https://127.0.0.1:%d%s/\"%s}",
                 secret, stub_port, mode, extra);
    else
        snprintf(buf, sizeof buf,
                 "{\"region\":\"us-east-1\",\"roleArn\":\"" ROLE "\","
                 "\"stsUrl\":\"https://127.0.0.1:%d%s/\"%s}",
                 stub_port, mode, extra);
    return strdup(buf);
}

static ai_code fetch_cfg(const char *cfg, const char *scope,
                         const char *resource, const char *agent,
                         cred_result *out, ai_err *err)
{
    prov_request req = {scope, resource, agent, cfg, ca_file, T_NOW};
    ai_code rc;
    char path[128];

    snprintf(path, sizeof path, "%s/last.json", dir);
    unlink(path);
    ai_err_clear(err);
    memset(out, 0, sizeof *out);
    rc = prov_aws.fetch(&req, out, err);
    if (rc != AI_OK)
        ck_assert_ptr_null(out->credential);
    return rc;
}

static ai_code fetch(const char *secret, const char *mode, const char *scope,
                     const char *resource, const char *agent,
                     cred_result *out, ai_err *err)
{
    char *cfg = config(secret, mode, "");
    ai_code rc = fetch_cfg(cfg, scope, resource, agent, out, err);

    free(cfg);
    return rc;
}

/* The form the stub accepted last (a new reference), or NULL. */
static json_t *last_form(void)
{
    char path[128];
    json_error_t jerr;

    snprintf(path, sizeof path, "%s/last.json", dir);
    return json_load_file(path, 0, &jerr);
}

static const char *field(const json_t *f, const char *k)
{
    return json_string_value(json_object_get(f, k));
}

static void no_secret(const char *msg)
{
    ck_assert_msg(!t_has(msg, "stubSecret") && !t_has(msg, "wrongSecret") &&
                      !t_has(msg, "tmp/Secret") && !t_has(msg, "FwoG") &&
                      !t_has(msg, "IQoJ"),
                  "secret in \"%s\"", msg);
}

START_TEST(test_aws_assume_role_gives_aws_credentials)
{
    cred_result r;
    ai_err err;
    json_t *f;

    ck_assert_msg(fetch(SECRET, "", "aws:s3:read", "my-bucket/prefix/*",
                        "agent-1", &r, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert_str_eq(r.type, "aws_credentials");
    ck_assert_str_eq(r.credential,
                     "{\"accessKeyId\":\"ASIATESTKEY0000001\","
                     "\"secretAccessKey\":\"tmp/Secret+Key&1\","
                     "\"sessionToken\":\"FwoGZXIvYXdzEXAMPLE//token=\","
                     "\"expiration\":\"2026-11-30T13:00:00Z\"}");
    ck_assert_int_eq(r.expires_at, T_NOW + T_HOUR);
    cred_result_clear(&r);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(field(f, "Action"), "AssumeRole");
    ck_assert_str_eq(field(f, "Version"), "2011-06-15");
    ck_assert_str_eq(field(f, "RoleArn"), ROLE);
    ck_assert_str_eq(field(f, "RoleSessionName"), "agent-1");
    ck_assert_str_eq(field(f, "DurationSeconds"), "3600");
    ck_assert_ptr_null(json_object_get(f, "ExternalId"));
    json_decref(f);
}
END_TEST

START_TEST(test_aws_wrong_secret_is_403_without_secret_in_message)
{
    cred_result r;
    ai_err err;

    ck_assert_int_eq(fetch("wrongSecret/Key+0123456789abcdefEXAMPLE", "",
                           "aws:s3:read", "my-bucket/x", "agent-1", &r, &err),
                     AI_EPROVIDER);
    ck_assert_str_eq(err.msg, "aws: HTTP 403 SignatureDoesNotMatch");
    no_secret(err.msg);
}
END_TEST

START_TEST(test_aws_s3_read_sends_narrowing_session_policy)
{
    cred_result r;
    ai_err err;
    json_t *f;

    ck_assert_msg(fetch(SECRET, "", "aws:s3:read", "bucket/prefix/*",
                        "agent-1", &r, &err) == AI_OK,
                  "%s", err.msg);
    cred_result_clear(&r);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(
        field(f, "Policy"),
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
        "\"Action\":[\"s3:GetObject\"],\"Resource\":["
        "\"arn:aws:s3:::bucket/prefix/*\"]},{\"Effect\":\"Allow\","
        "\"Action\":[\"s3:ListBucket\"],\"Resource\":[\"arn:aws:s3:::bucket\"],"
        "\"Condition\":{\"StringLike\":{\"s3:prefix\":[\"prefix/*\"]}}}]}");
    json_decref(f);
}
END_TEST

START_TEST(test_aws_s3_write_policy_covers_objects_only)
{
    cred_result r;
    ai_err err;
    json_t *f;

    ck_assert_msg(fetch(SECRET, "", "aws:s3:write", "bucket", "agent-1", &r,
                        &err) == AI_OK,
                  "%s", err.msg);
    cred_result_clear(&r);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(
        field(f, "Policy"),
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
        "\"Action\":[\"s3:PutObject\",\"s3:DeleteObject\"],\"Resource\":["
        "\"arn:aws:s3:::bucket/*\"]}]}");
    json_decref(f);
}
END_TEST

START_TEST(test_aws_unmapped_scope_is_refused)
{
    cred_result r;
    ai_err err;

    /* without a session policy the role's whole permissions would go */
    ck_assert_int_eq(fetch(SECRET, "", "aws:dynamodb:read", "table",
                           "agent-1", &r, &err),
                     AI_EINVAL);
    ck_assert_ptr_null(last_form());
    ck_assert_int_eq(fetch(SECRET, "", "aws:s3:read", "bucket/${aws:username}",
                           "agent-1", &r, &err),
                     AI_EINVAL);
    ck_assert_ptr_null(last_form());
}
END_TEST

START_TEST(test_aws_bad_s3_resource_is_refused_before_sending)
{
    cred_result r;
    ai_err err;

    ck_assert_int_eq(fetch(SECRET, "", "aws:s3:read", "Bad Bucket\"/x",
                           "agent-1", &r, &err),
                     AI_EINVAL);
    ck_assert_ptr_null(last_form());
}
END_TEST

START_TEST(test_aws_role_session_name_is_sanitized)
{
    cred_result r;
    ai_err err;
    json_t *f;
    char longname[101];

    ck_assert_msg(fetch(SECRET, "", "aws:s3:read", "bucket", "team/agent 1:\xc3\xa9!",
                        &r, &err) == AI_OK,
                  "%s", err.msg);
    cred_result_clear(&r);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(field(f, "RoleSessionName"), "team-agent-1----");
    json_decref(f);

    memset(longname, 'a', 100);
    longname[100] = '\0';
    ck_assert_msg(fetch(SECRET, "", "aws:s3:read", "bucket", longname, &r, &err) ==
                      AI_OK,
                  "%s", err.msg);
    cred_result_clear(&r);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(strlen(field(f, "RoleSessionName")), 64);
    json_decref(f);

    ck_assert_msg(fetch(SECRET, "", "aws:s3:read", "bucket", "", &r, &err) == AI_OK,
                  "%s", err.msg);
    cred_result_clear(&r);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(field(f, "RoleSessionName"), "agent-x");
    json_decref(f);
}
END_TEST

START_TEST(test_aws_external_id_and_duration_come_from_config)
{
    cred_result r;
    ai_err err;
    json_t *f;
    char *cfg = config(SECRET, "",
                       ",\"externalId\":\"ext id+&=1\",\"sessionDuration\":900");

    ck_assert_msg(fetch_cfg(cfg, "aws:s3:read", "", "agent-1", &r, &err) ==
                      AI_OK,
                  "%s", err.msg);
    free(cfg);
    ck_assert_int_eq(r.expires_at, T_NOW + 900 * T_SEC);
    cred_result_clear(&r);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(field(f, "ExternalId"), "ext id+&=1");
    ck_assert_str_eq(field(f, "DurationSeconds"), "900");
    json_decref(f);
}
END_TEST

START_TEST(test_aws_bad_duration_is_refused)
{
    cred_result r;
    ai_err err;
    char *cfg = config(SECRET, "", ",\"sessionDuration\":60");

    ck_assert_int_eq(fetch_cfg(cfg, "aws:s3:read", "", "a1", &r, &err),
                     AI_EINVAL);
    free(cfg);
    ck_assert(t_has(err.msg, "sessionDuration"));
}
END_TEST

START_TEST(test_aws_env_credentials_sign_the_session_token)
{
    cred_result r;
    ai_err err;
    ai_code rc;

    setenv("AWS_ACCESS_KEY_ID", AKID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_SESSION_TOKEN", TOKEN, 1);
    rc = fetch(NULL, "", "aws:s3:read", "", "agent-1", &r, &err);
    ck_assert_msg(rc == AI_OK, "%s", err.msg);
    cred_result_clear(&r);

    /* a session token STS does not know is refused, not leaked */
    setenv("AWS_SESSION_TOKEN", "IQoJwrong", 1);
    rc = fetch(NULL, "", "aws:s3:read", "", "agent-1", &r, &err);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    ck_assert_int_eq(rc, AI_EPROVIDER);
    ck_assert_str_eq(err.msg, "aws: HTTP 403 InvalidClientTokenId");
    no_secret(err.msg);
}
END_TEST

START_TEST(test_aws_no_credentials_is_clear_error)
{
    cred_result r;
    ai_err err;

    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    ck_assert_int_eq(fetch(NULL, "", "aws:s3:read", "", "a1", &r, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "AWS_ACCESS_KEY_ID"));
}
END_TEST

START_TEST(test_aws_malformed_xml_is_clear_error)
{
    cred_result r;
    ai_err err;

    ck_assert_int_eq(fetch(SECRET, "/malformed", "aws:s3:read", "", "a1", &r,
                           &err),
                     AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "aws: malformed STS response"), "%s",
                  err.msg);
    no_secret(err.msg);
}
END_TEST

START_TEST(test_aws_500_then_success_is_retried)
{
    cred_result r;
    ai_err err;
    char mode[48];

    snprintf(mode, sizeof mode, "/flaky-%ld%u", (long)getpid(), flaky_n++);
    ck_assert_msg(fetch(SECRET, mode, "aws:s3:read", "", "a1", &r, &err) ==
                      AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential, "ASIATESTKEY0000001"));
    cred_result_clear(&r);
}
END_TEST

START_TEST(test_aws_plain_http_sts_url_is_refused)
{
    cred_result r;
    ai_err err;
    const char *cfg = "{\"region\":\"us-east-1\",\"roleArn\":\"" ROLE "\","
                      "\"accessKeyId\":\"" AKID "\",\"secretAccessKey\":\"" SECRET
                      "\",\"stsUrl\":\"http://127.0.0.1:1/\"}";

    ck_assert_int_eq(fetch_cfg(cfg, "aws:s3:read", "", "a1", &r, &err),
                     AI_EINVAL);
    no_secret(err.msg);
}
END_TEST

/* The providers_aws suite (see the file comment). */
/* The broker's credential cache is per agent and per config: bob never
 * receives alice's STS session, and a changed config is not served from
 * the cache (each shows as a new request at the stub). */
START_TEST(test_aws_broker_cache_is_per_agent_and_config)
{
    char home[] = "/tmp/agent-iam-awscache.XXXXXX", *cfg, *out = NULL;
    ai_broker *b = NULL;
    ai_root_params p;
    ai_token *alice = NULL, *bob = NULL;
    store *st = NULL;
    json_t *f;
    ai_err err;
    char cmd[128];

    ck_assert_ptr_nonnull(mkdtemp(home));
    ck_assert_int_eq(store_open(home, true, &st, &err), AI_OK);
    cfg = config(SECRET, "", "");
    ck_assert_int_eq(store_provider_set(st, "aws", cfg, T_NOW, NULL, &err),
                     AI_OK);
    free(cfg);
    store_close(st);
    setenv("AGENT_IAM_PROVIDER_CA_FILE", ca_file, 1);
    ck_assert_int_eq(ai_broker_open(home, &b, &err), AI_OK);
    ai_root_params_init(&p);
    p.scopes = T_ARR("aws:s3:read");
    p.nscopes = 1;
    p.agent_id = "alice";
    ck_assert_int_eq(ai_broker_create_root_token(b, &p, &alice, &err), AI_OK);
    p.agent_id = "bob";
    ck_assert_int_eq(ai_broker_create_root_token(b, &p, &bob, &err), AI_OK);

#define GET(tok)                                                             \
    ai_broker_get_credential(b, ai_token_serialize(tok),                     \
                             ai_token_serialized_len(tok), "aws:s3:read",     \
                             "bucket/reports/*", &out, &err)
    snprintf(cmd, sizeof cmd, "%s/last.json", dir);
    unlink(cmd);
    ck_assert_msg(GET(alice) == AI_OK, "%s", err.msg);
    ai_free_string(out);
    f = last_form();
    ck_assert_str_eq(field(f, "RoleSessionName"), "alice");
    json_decref(f);
    unlink(cmd);
    ck_assert_msg(GET(bob) == AI_OK, "%s", err.msg);
    ai_free_string(out);
    f = last_form();
    ck_assert_ptr_nonnull(f); /* a new request, not alice's session */
    ck_assert_str_eq(field(f, "RoleSessionName"), "bob");
    json_decref(f);
    /* alice again: served from the cache, no request */
    unlink(cmd);
    ck_assert_msg(GET(alice) == AI_OK, "%s", err.msg);
    ai_free_string(out);
    ck_assert_ptr_null(last_form());
    /* a changed config is a new request */
    cfg = config(SECRET, "", ",\"sessionDuration\":1800");
    ck_assert_int_eq(store_provider_set(broker_store(b), "aws", cfg, T_NOW,
                                        NULL, &err),
                     AI_OK);
    free(cfg);
    ck_assert_msg(GET(alice) == AI_OK, "%s", err.msg);
    ai_free_string(out);
    f = last_form();
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(field(f, "DurationSeconds"), "1800");
    json_decref(f);
#undef GET
    unsetenv("AGENT_IAM_PROVIDER_CA_FILE");
    ai_token_free(alice);
    ai_token_free(bob);
    ai_broker_close(b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", home);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The answer's bytes, read without a network (aws_answer_parse). */
static ai_code answer(const char *xml, cred_result *out, ai_err *err)
{
    prov_resp resp = {200, (char *)(uintptr_t)xml, strlen(xml)};

    memset(out, 0, sizeof *out);
    ai_err_clear(err);
    return aws_answer_parse(&resp, out, err);
}

#define STS_ANSWER(token)                                                    \
    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">" \
    "<AssumeRoleResult><Credentials>"                                        \
    "<AccessKeyId>ASIATESTKEY0000001</AccessKeyId>"                          \
    "<SecretAccessKey>tmp/Secret+Key&amp;1</SecretAccessKey>"                \
    "<SessionToken>" token "</SessionToken>"                                 \
    "<Expiration>2026-12-04T05:00:00Z</Expiration>"                          \
    "</Credentials></AssumeRoleResult></AssumeRoleResponse>"

START_TEST(test_aws_answer_gives_a_json_credential)
{
    cred_result r;
    ai_err err;
    json_t *c;

    ck_assert_int_eq(answer(STS_ANSWER("FwoGZXIvYXdz&#xe9;//token="), &r,
                            &err),
                     AI_OK);
    c = json_loads(r.credential, 0, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(json_string_value(json_object_get(c, "secretAccessKey")),
                     "tmp/Secret+Key&1");
    ck_assert_str_eq(json_string_value(json_object_get(c, "sessionToken")),
                     "FwoGZXIvYXdz\xc3\xa9//token=");
    json_decref(c);
    cred_result_clear(&r);
}
END_TEST

/* Found by fuzz_sts: a byte that is not UTF-8 in a credential's text went
 * into the credential's JSON as is, so the credential did not parse (the
 * agent API answered 500 "out of memory"). */
START_TEST(test_aws_answer_not_utf8_is_refused)
{
    cred_result r;
    ai_err err;

    ck_assert_int_eq(answer(STS_ANSWER("FwoGZXI\xf6YXdzEXAMPLE//token="), &r,
                            &err),
                     AI_EPROVIDER);
    ck_assert_ptr_null(r.credential);
    ck_assert_str_eq(err.msg,
                     "aws: STS response has no usable Credentials/"
                     "SessionToken");
    ck_assert_int_eq(answer(STS_ANSWER("\xed\xa0\x80"), &r, &err),
                     AI_EPROVIDER); /* a UTF-16 surrogate */
    ck_assert_int_eq(answer(STS_ANSWER("\xc0\xaf"), &r, &err),
                     AI_EPROVIDER); /* an overlong '/' */
    ck_assert_ptr_null(r.credential);
}
END_TEST

Suite *suite_providers_aws(void)
{
    Suite *s = suite_create("providers_aws");
    TCase *tc = tcase_create("aws");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_aws_assume_role_gives_aws_credentials);
    tcase_add_test(tc, test_aws_wrong_secret_is_403_without_secret_in_message);
    tcase_add_test(tc, test_aws_s3_read_sends_narrowing_session_policy);
    tcase_add_test(tc, test_aws_s3_write_policy_covers_objects_only);
    tcase_add_test(tc, test_aws_unmapped_scope_is_refused);
    tcase_add_test(tc, test_aws_broker_cache_is_per_agent_and_config);
    tcase_add_test(tc, test_aws_bad_s3_resource_is_refused_before_sending);
    tcase_add_test(tc, test_aws_role_session_name_is_sanitized);
    tcase_add_test(tc, test_aws_external_id_and_duration_come_from_config);
    tcase_add_test(tc, test_aws_bad_duration_is_refused);
    tcase_add_test(tc, test_aws_env_credentials_sign_the_session_token);
    tcase_add_test(tc, test_aws_no_credentials_is_clear_error);
    tcase_add_test(tc, test_aws_malformed_xml_is_clear_error);
    tcase_add_test(tc, test_aws_500_then_success_is_retried);
    tcase_add_test(tc, test_aws_plain_http_sts_url_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("answers");
    tcase_add_test(tc, test_aws_answer_gives_a_json_credential);
    tcase_add_test(tc, test_aws_answer_not_utf8_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
