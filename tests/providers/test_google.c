/* test_google.c - Suite "providers_google": the Google OAuth backend
 * (src/providers/google.c) against tests/providers/stub_google.py on
 * 127.0.0.1 with TLS.
 *
 * The stub is started once per suite (an unchecked fixture, so forked
 * tests share it), makes the test PKI in a fresh mkdtemp directory and
 * checks the refresh-token grant's form fields as Google does. The client
 * secret and refresh token hold characters that must be percent-encoded. */
#include <poll.h>
#include <signal.h>
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
#include "providers/providers.h"
#include "../tests.h"
#include "stub.h"

#define CLIENT_ID "cid-1.apps.googleusercontent.com"
#define CLIENT_SECRET "GOCSPX-s3cr&t=+ %x"
#define REFRESH_TOKEN "1//0refresh/tok+en"

static char dir[64];
static pid_t stub_pid = -1;
static int stub_port;
static char ca_file[128];
static unsigned flaky_n;

static void stub_start(const char *const *argv)
{
    stub_pid = t_stub_start(argv, &stub_port);
}

static void stub_stop(void)
{
    t_stub_stop(&stub_pid);
}

static void setup(void)
{
    const char *const argv[] = {"python3",     "-B",
                                "tests/providers/stub_google.py",
                                dir,           CLIENT_ID,
                                CLIENT_SECRET, REFRESH_TOKEN,
                                NULL};

    snprintf(dir, sizeof dir, "/tmp/ai-gg-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    stub_start(argv);
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
}

static void teardown(void)
{
    char cmd[128];

    stub_stop();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A config JSON with tokenUrl = the stub + mode + "/token". */
static char *config(const char *secret, const char *mode)
{
    char url[160];
    json_t *o;
    char *s;

    snprintf(url, sizeof url, "https://127.0.0.1:%d%s/token", stub_port,
             mode);
    o = json_pack("{s:s,s:s,s:s,s:s}", "clientId", CLIENT_ID, "clientSecret",
                  secret, "refreshToken", REFRESH_TOKEN, "tokenUrl", url);
    ck_assert_ptr_nonnull(o);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static ai_code fetch(const char *secret, const char *mode, const char *scope,
                     int64_t now, cred_result *out, ai_err *err)
{
    char *cfg = config(secret, mode);
    prov_request req = {scope, "", "agent-1", cfg, ca_file, now};
    ai_code rc;

    ai_err_clear(err);
    rc = prov_google.fetch(&req, out, err);
    free(cfg);
    if (rc != AI_OK)
        ck_assert_ptr_null(out->credential);
    return rc;
}

static void no_secret(const char *msg)
{
    ck_assert_msg(!t_has(msg, "s3cr") && !t_has(msg, "refresh/") &&
                      !t_has(msg, "refresh%2F") && !t_has(msg, "ya29") &&
                      !t_has(msg, "GOCSPX"),
                  "secret in \"%s\"", msg);
}

START_TEST(test_google_refresh_grant_gives_bearer_token)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_msg(fetch(CLIENT_SECRET, "", "google:calendar:read", T_NOW, &r,
                        &err) == AI_OK,
                  "%s", err.msg);
    ck_assert_str_eq(r.type, "bearer_token");
    ck_assert_str_eq(r.credential, "{\"token\":\"ya29.test.calendar."
                                   "readonly\",\"tokenType\":\"Bearer\"}");
    ck_assert_int_eq(r.expires_at, T_NOW + 3599 * T_SEC);
    cred_result_clear(&r);
}
END_TEST

START_TEST(test_google_mapped_scope_is_sent)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_msg(fetch(CLIENT_SECRET, "", "google:gmail:read", T_NOW, &r,
                        &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential, "\"ya29.test.gmail.readonly\""));
    cred_result_clear(&r);
}
END_TEST

/* A scope outside the table would send no `scope`, and Google would give
 * every scope the refresh token was granted: refused before any request
 * (the wrong client secret shows none is made: it would be a 401). */
START_TEST(test_google_unmapped_scope_is_refused)
{
    static const char *const scopes[] = {"google:calendar:x", "google:*:*",
                                         "google:drive:admin", "google",
                                         ""};
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    for (size_t i = 0; i < sizeof scopes / sizeof *scopes; i++) {
        ck_assert_int_eq(fetch("GOCSPX-s3cr-wrong", "", scopes[i], T_NOW, &r,
                               &err),
                         AI_EINVAL);
        ck_assert_msg(t_has(err.msg, "google: scope") &&
                          t_has(err.msg, "maps to no Google OAuth scope"),
                      "%s", err.msg);
        no_secret(err.msg);
    }
    for (size_t i = 0; i < 3; i++) {
        static const char *const mapped[] = {"google:drive:read",
                                             "google:sheets:write",
                                             "google:drive:full"};
        static const char *const want[] = {"ya29.test.drive.readonly",
                                           "ya29.test.spreadsheets\"",
                                           "ya29.test.drive\""};
        ck_assert_msg(fetch(CLIENT_SECRET, "", mapped[i], T_NOW, &r, &err) ==
                          AI_OK,
                      "%s", err.msg);
        ck_assert_msg(t_has(r.credential, want[i]), "%s", r.credential);
        cred_result_clear(&r);
    }
}
END_TEST

START_TEST(test_google_wrong_client_secret_is_401)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_int_eq(fetch("GOCSPX-s3cr-wrong", "", "google:drive:read",
                           T_NOW, &r, &err),
                     AI_EPROVIDER);
    ck_assert_str_eq(err.msg, "google: HTTP 401");
    no_secret(err.msg);
}
END_TEST

START_TEST(test_google_500_then_success_is_retried)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};
    char mode[48];

    snprintf(mode, sizeof mode, "/flaky-%ld%u", (long)getpid(), flaky_n++);
    ck_assert_msg(fetch(CLIENT_SECRET, mode, "google:drive:read", T_NOW, &r,
                        &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential, "ya29.test"));
    cred_result_clear(&r);
}
END_TEST

START_TEST(test_google_malformed_json_is_clear_error)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_int_eq(fetch(CLIENT_SECRET, "/malformed", "google:drive:read",
                           T_NOW, &r, &err),
                     AI_EPROVIDER);
    ck_assert_str_eq(err.msg,
                     "google: HTTP 200 with a body that is not a JSON object");
    no_secret(err.msg);
}
END_TEST

START_TEST(test_google_slow_server_times_out)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};
    ai_code rc;

    /* fetch.c's test-only override of the 15 s total timeout. */
    setenv("AGENT_IAM_HTTP_TIMEOUT_MS", "1000", 1);
    rc = fetch(CLIENT_SECRET, "/slow", "google:drive:read", T_NOW, &r, &err);
    unsetenv("AGENT_IAM_HTTP_TIMEOUT_MS");
    ck_assert_int_eq(rc, AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "google: ") && t_has(err.msg, "timed out"),
                  "%s", err.msg);
    no_secret(err.msg);
}
END_TEST

START_TEST(test_google_refuses_incomplete_config)
{
    prov_request req = {"google:drive:read", "", "a",
                        "{\"clientId\":\"x\",\"clientSecret\":\"GOCSPX-s3cr\"}",
                        ca_file, T_NOW};
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_int_eq(prov_google.fetch(&req, &r, &err), AI_EPROVIDER);
    ck_assert(t_has(err.msg, "google: ") && t_has(err.msg, "refreshToken"));
    no_secret(err.msg);
    ai_err_clear(&err);
    req.config_json = "not json";
    ck_assert_int_eq(prov_google.fetch(&req, &r, &err), AI_EPROVIDER);
    ck_assert_str_eq(err.msg,
                     "google: the provider config is not a JSON object");
    ck_assert_ptr_null(r.credential);
}
END_TEST

/* The suite (see the file comment). */
Suite *suite_providers_google(void)
{
    Suite *s = suite_create("providers_google");
    TCase *tc = tcase_create("google");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_google_refresh_grant_gives_bearer_token);
    tcase_add_test(tc, test_google_mapped_scope_is_sent);
    tcase_add_test(tc, test_google_unmapped_scope_is_refused);
    tcase_add_test(tc, test_google_wrong_client_secret_is_401);
    tcase_add_test(tc, test_google_500_then_success_is_retried);
    tcase_add_test(tc, test_google_malformed_json_is_clear_error);
    tcase_add_test(tc, test_google_slow_server_times_out);
    tcase_add_test(tc, test_google_refuses_incomplete_config);
    suite_add_tcase(s, tc);
    return s;
}
