/* test_github.c - Suite "providers_github": the GitHub App JWT
 * (src/providers/jwt.c) and backend (src/providers/github.c) against
 * tests/providers/stub_github.py on 127.0.0.1 with TLS.
 *
 * The stub is started once per suite (an unchecked fixture, so forked
 * tests share it) and verifies what GitHub verifies: the JWT's RS256
 * signature with the App's public key and its claims, the installation in
 * the path and the narrowed body. It makes the test PKI (CA, server
 * certificate, App key, a second key) in a fresh mkdtemp directory.
 * Requests use the real clock: the stub checks iat and exp against it. */
#include <errno.h>
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
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/core.h"
#include "providers/providers.h"
#include "../tests.h"
#include "stub.h"

#define APP_ID "12345"
#define INST_ID "4242"

static char dir[64];
static pid_t stub_pid = -1;
static int stub_port;
static char ca_file[128];
static char *app_pem, *other_pem;
static unsigned flaky_n;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    ck_assert((p = malloc((size_t)n + 1)) != NULL);
    ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    return p;
}

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
    char path[128];
    const char *const argv[] = {"python3", "-B",
                                "tests/providers/stub_github.py",
                                dir, APP_ID, INST_ID, NULL};

    snprintf(dir, sizeof dir, "/tmp/ai-gh-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    stub_start(argv);
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
    snprintf(path, sizeof path, "%s/app.pem", dir);
    app_pem = slurp(path);
    snprintf(path, sizeof path, "%s/other.pem", dir);
    other_pem = slurp(path);
}

static void teardown(void)
{
    char cmd[128];

    stub_stop();
    free(app_pem);
    free(other_pem);
    app_pem = other_pem = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A config JSON with apiUrl = the stub + mode ("" or "/slow"...) and,
 * when not NULL, owner (else github.c asks the stub: "myorg"). */
static char *config_owner(const char *pem, const char *mode,
                          const char *owner)
{
    char url[160];
    json_t *o;
    char *s;

    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", stub_port, mode);
    o = json_pack("{s:s,s:s,s:s,s:s}", "appId", APP_ID, "installationId",
                  INST_ID, "privateKey", pem, "apiUrl", url);
    ck_assert_ptr_nonnull(o);
    if (owner != NULL)
        ck_assert_int_eq(json_object_set_new(o, "owner", json_string(owner)),
                         0);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static char *config(const char *pem, const char *mode)
{
    return config_owner(pem, mode, NULL);
}

/* Fetch scope/resource through the stub with the config's owner (NULL:
 * none); *err and *out filled. */
static ai_code fetch_owner(const char *pem, const char *owner,
                           const char *scope, const char *resource,
                           cred_result *out, ai_err *err)
{
    char *cfg = config_owner(pem, "", owner);
    prov_request req = {scope, resource, "agent-1", cfg, ca_file,
                        time_now_ms()};
    ai_code rc;

    ai_err_clear(err);
    rc = prov_github.fetch(&req, out, err);
    free(cfg);
    if (rc != AI_OK)
        ck_assert_ptr_null(out->credential);
    return rc;
}

/* How many tokens the stub has minted for repo. */
static long minted(const char *repo)
{
    char url[160];
    prov_resp r = {0, NULL, 0};
    ai_err err = {0};
    json_t *o;
    long n;

    snprintf(url, sizeof url, "https://127.0.0.1:%d/_minted/%s", stub_port,
             repo);
    ck_assert_msg(prov_get("stub", url, NULL, ca_file, &r, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(o = json_loads(r.body, 0, NULL));
    n = (long)json_integer_value(json_object_get(o, "count"));
    json_decref(o);
    prov_resp_clear(&r);
    return n;
}

/* Fetch scope/resource through the stub; *err and *out filled. */
static ai_code fetch(const char *pem, const char *mode, const char *scope,
                     const char *resource, cred_result *out, ai_err *err)
{
    char *cfg = config(pem, mode);
    prov_request req = {scope, resource, "agent-1", cfg, ca_file,
                        time_now_ms()};
    ai_code rc;

    ai_err_clear(err);
    rc = prov_github.fetch(&req, out, err);
    free(cfg);
    if (rc != AI_OK)
        ck_assert_ptr_null(out->credential);
    return rc;
}

/* No secret in an error message: key text, JWT, token. */
static void no_secret(const char *msg)
{
    char chunk[41];
    const char *b = strstr(app_pem, "-----\n");

    ck_assert(b != NULL);
    snprintf(chunk, sizeof chunk, "%s", b + 6);
    ck_assert_msg(!t_has(msg, chunk) && !t_has(msg, "PRIVATE") &&
                      !t_has(msg, "eyJ") && !t_has(msg, "ghs_"),
                  "secret in \"%s\"", msg);
}

static void cred_free(cred_result *r)
{
    cred_result_clear(r);
}

START_TEST(test_github_jwt_is_rs256_with_app_claims)
{
    ai_err err = {0};
    char *jwt = NULL, *dot1, *dot2, pubpath[128];
    unsigned char hdr[128], cl[128], sig[512];
    size_t hn, cn, sn;
    int64_t now = 1796040000;
    BIO *bio;
    EVP_PKEY *pub;
    EVP_MD_CTX *md;

    ck_assert_int_eq(jwt_github_app(app_pem, strlen(app_pem), APP_ID, now,
                                    &jwt, &err),
                     AI_OK);
    ck_assert((dot1 = strchr(jwt, '.')) != NULL);
    ck_assert((dot2 = strchr(dot1 + 1, '.')) != NULL);
    ck_assert(b64url_decode(jwt, (size_t)(dot1 - jwt), hdr, &hn));
    hdr[hn] = '\0';
    ck_assert_str_eq((char *)hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    ck_assert(b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), cl, &cn));
    cl[cn] = '\0';
    ck_assert_str_eq((char *)cl,
                     "{\"iat\":1796039940,\"exp\":1796040540,\"iss\":12345}");
    ck_assert(b64url_decode(dot2 + 1, strlen(dot2 + 1), sig, &sn));
    ck_assert_uint_eq(sn, 256);

    snprintf(pubpath, sizeof pubpath, "%s/app_pub.pem", dir);
    ck_assert((bio = BIO_new_file(pubpath, "r")) != NULL);
    ck_assert((pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) != NULL);
    ck_assert((md = EVP_MD_CTX_new()) != NULL);
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub),
                     1);
    ck_assert_int_eq(EVP_DigestVerify(md, sig, sn, (unsigned char *)jwt,
                                      (size_t)(dot2 - jwt)),
                     1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pub);
    BIO_free(bio);
    OPENSSL_cleanse(jwt, strlen(jwt));
    ai_free(jwt);
}
END_TEST

START_TEST(test_github_jwt_refuses_bad_key_without_quoting_it)
{
    static const char bad[] = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN"
                              "c2VjcmV0LWtleS1ieXRlcw==\n"
                              "-----END PRIVATE KEY-----\n";
    ai_err err = {0};
    char *jwt = (char *)1;

    ck_assert_int_eq(jwt_github_app(bad, sizeof bad - 1, APP_ID, 0, &jwt,
                                    &err),
                     AI_EPROVIDER);
    ck_assert_ptr_null(jwt);
    ck_assert(t_has(err.msg, "github: privateKey"));
    ck_assert(!t_has(err.msg, "MIIE") && !t_has(err.msg, "c2Vj"));
    ai_err_clear(&err);
    ck_assert_int_eq(jwt_github_app(app_pem, strlen(app_pem), "1\"2", 0,
                                    &jwt, &err),
                     AI_EPROVIDER);
    ck_assert(t_has(err.msg, "appId"));
}
END_TEST

START_TEST(test_github_read_gets_contents_read_token)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};
    int64_t now = time_now_ms();

    ck_assert_msg(fetch(app_pem, "", "github:repo:read", "myorg/myrepo", &r,
                        &err) == AI_OK,
                  "%s", err.msg);
    ck_assert_str_eq(r.type, "bearer_token");
    ck_assert_str_eq(r.credential,
                     "{\"token\":\"ghs_test.myrepo.contents=read\","
                     "\"tokenType\":\"bearer\"}");
    /* The stub's expires_at is an hour ahead, whole seconds. */
    ck_assert_int_ge(r.expires_at, now + T_HOUR - 2 * T_SEC);
    ck_assert_int_le(r.expires_at, now + T_HOUR + 60 * T_SEC);
    ck_assert_int_eq(r.expires_at % 1000, 0);
    cred_free(&r);
}
END_TEST

START_TEST(test_github_write_gets_contents_write_token)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_msg(fetch(app_pem, "", "github:repo:write", "myorg/r.2_x", &r,
                        &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential, "\"ghs_test.r.2_x.contents=write\""));
    cred_free(&r);
    ck_assert_msg(fetch(app_pem, "", "github:issues:read", "myorg/r", &r,
                        &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential, "\"ghs_test.r.issues=read\""));
    cred_free(&r);
}
END_TEST

START_TEST(test_github_jwt_from_other_key_is_401)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_int_eq(fetch(other_pem, "", "github:repo:read", "myorg/myrepo",
                           &r, &err),
                     AI_EPROVIDER);
    /* The installation's account is asked first, with the same JWT. */
    ck_assert_msg(strncmp(err.msg, "github: HTTP 401", 16) == 0, "%s",
                  err.msg);
    no_secret(err.msg);
}
END_TEST

START_TEST(test_github_500_then_success_is_retried)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};
    char mode[48];

    snprintf(mode, sizeof mode, "/flaky-%ld%u", (long)getpid(), flaky_n++);
    ck_assert_msg(fetch(app_pem, mode, "github:repo:read", "myorg/myrepo",
                        &r, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential, "ghs_test.myrepo.contents=read"));
    cred_free(&r);
}
END_TEST

START_TEST(test_github_malformed_json_is_clear_error)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_int_eq(fetch(app_pem, "/malformed", "github:repo:read",
                           "myorg/myrepo", &r, &err),
                     AI_EPROVIDER);
    ck_assert_str_eq(err.msg,
                     "github: HTTP 201 with a body that is not a JSON object");
    no_secret(err.msg);
}
END_TEST

START_TEST(test_github_slow_server_times_out)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ai_code rc;

    /* fetch.c's test-only override of the 15 s total timeout. */
    setenv("AGENT_IAM_HTTP_TIMEOUT_MS", "1000", 1);
    rc = fetch(app_pem, "/slow", "github:repo:read", "myorg/myrepo", &r,
               &err);
    unsetenv("AGENT_IAM_HTTP_TIMEOUT_MS");
    ck_assert_int_eq(rc, AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "github: ") && t_has(err.msg, "timed out"),
                  "%s", err.msg);
    no_secret(err.msg);
}
END_TEST

START_TEST(test_github_refuses_resource_not_owner_repo)
{
    static const char *const bad[] = {"myorg/*", "myorg", "", "a/b/c",
                                      "*/*", "o/r?", "/r", "o/", "o/.."};
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(fetch(app_pem, "", "github:repo:read", bad[i], &r,
                               &err),
                         AI_EINVAL);
        ck_assert_msg(t_has(err.msg, "github: resource") &&
                          t_has(err.msg, "owner/repo"),
                      "%s", err.msg);
    }
}
END_TEST

/* Only the repository name goes to GitHub, so an owner other than the
 * installation's account would get a token for the installation's
 * repository of that name: refused, and nothing is minted. */
START_TEST(test_github_refuses_other_owner_and_mints_nothing)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    /* The owner asked of GitHub (the stub's installation is "myorg"). */
    ck_assert_int_eq(fetch(app_pem, "", "github:repo:read",
                           "sandbox/prod-secrets", &r, &err),
                     AI_EDENIED);
    ck_assert_msg(t_has(err.msg, "github: resource owner \"sandbox\"") &&
                      t_has(err.msg, "\"myorg\""),
                  "%s", err.msg);
    no_secret(err.msg);
    /* The config's owner: it wins over the installation's account. */
    ck_assert_int_eq(fetch_owner(app_pem, "sandbox", "github:repo:write",
                                 "myorg/prod-secrets", &r, &err),
                     AI_EDENIED);
    ck_assert_msg(t_has(err.msg, "github: resource owner \"myorg\"") &&
                      t_has(err.msg, "\"sandbox\""),
                  "%s", err.msg);
    no_secret(err.msg);
    ck_assert_int_eq(fetch_owner(app_pem, "myorg", "github:repo:read",
                                 "myorg-evil/prod-secrets", &r, &err),
                     AI_EDENIED);
    ck_assert_int_eq(minted("prod-secrets"), 0);
}
END_TEST

START_TEST(test_github_config_owner_and_fetched_owner_both_work)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    /* The config's owner, compared without case; the installation
     * (myorg) is not asked, or "sandbox" would be refused. */
    ck_assert_msg(fetch_owner(app_pem, "SandBox", "github:repo:read",
                              "sandbox/owned-cfg", &r, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential, "\"ghs_test.owned-cfg.contents=read\""));
    cred_free(&r);
    /* No owner in the config: the installation's account.login. */
    ck_assert_msg(fetch_owner(app_pem, NULL, "github:repo:write",
                              "MyOrg/owned-get", &r, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(r.credential,
                    "\"ghs_test.owned-get.contents=write\""));
    cred_free(&r);
    ck_assert_int_eq(minted("owned-cfg"), 1);
    ck_assert_int_eq(minted("owned-get"), 1);
}
END_TEST

START_TEST(test_github_refuses_unmapped_scope)
{
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_int_eq(fetch(app_pem, "", "github:repo:admin", "o/r", &r, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "github: scope \"github:repo:admin\""));
    ck_assert_int_eq(fetch(app_pem, "", "github:repo:*", "o/r", &r, &err),
                     AI_EINVAL);
}
END_TEST

START_TEST(test_github_refuses_incomplete_config)
{
    prov_request req = {"github:repo:read", "o/r", "a",
                        "{\"appId\":\"1\",\"privateKey\":\"x\"}", ca_file,
                        time_now_ms()};
    cred_result r = {{0}, NULL, 0};
    ai_err err = {0};

    ck_assert_int_eq(prov_github.fetch(&req, &r, &err), AI_EPROVIDER);
    ck_assert(t_has(err.msg, "installationId"));
    ai_err_clear(&err);
    req.config_json = "[1]";
    ck_assert_int_eq(prov_github.fetch(&req, &r, &err), AI_EPROVIDER);
    ck_assert_str_eq(err.msg,
                     "github: the provider config is not a JSON object");
    ai_err_clear(&err);
    req.config_json = "{\"appId\":1,\"installationId\":2,"
                      "\"privateKey\":\"not a pem SECRETSECRET\"}";
    ck_assert_int_eq(prov_github.fetch(&req, &r, &err), AI_EPROVIDER);
    ck_assert(!t_has(err.msg, "SECRETSECRET"));
    ck_assert_ptr_null(r.credential);
    ai_err_clear(&err);
    req.config_json = "{\"appId\":1,\"installationId\":2,"
                      "\"privateKey\":\"x\",\"owner\":7}";
    ck_assert_int_eq(prov_github.fetch(&req, &r, &err), AI_EPROVIDER);
    ck_assert_str_eq(err.msg, "github: the provider config's owner is not "
                              "a GitHub login");
}
END_TEST

/* The suite (see the file comment). */
Suite *suite_providers_github(void)
{
    Suite *s = suite_create("providers_github");
    TCase *tc = tcase_create("github");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_github_jwt_is_rs256_with_app_claims);
    tcase_add_test(tc, test_github_jwt_refuses_bad_key_without_quoting_it);
    tcase_add_test(tc, test_github_read_gets_contents_read_token);
    tcase_add_test(tc, test_github_write_gets_contents_write_token);
    tcase_add_test(tc, test_github_jwt_from_other_key_is_401);
    tcase_add_test(tc, test_github_500_then_success_is_retried);
    tcase_add_test(tc, test_github_malformed_json_is_clear_error);
    tcase_add_test(tc, test_github_slow_server_times_out);
    tcase_add_test(tc, test_github_refuses_resource_not_owner_repo);
    tcase_add_test(tc, test_github_refuses_other_owner_and_mints_nothing);
    tcase_add_test(tc, test_github_config_owner_and_fetched_owner_both_work);
    tcase_add_test(tc, test_github_refuses_unmapped_scope);
    tcase_add_test(tc, test_github_refuses_incomplete_config);
    suite_add_tcase(s, tc);
    return s;
}
