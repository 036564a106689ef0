/* test_config.c - Suite "providers_config": prov_config_check
 * (src/providers/config.c), the check of a provider config object that
 * `config init` applies before storing or sending one and the leader
 * applies to PUT /v1/admin/providers/{name}. Configs as the CLI builds
 * them pass; each kind of bad member is refused with a message naming the
 * member and never the value. The GitHub keys (RSA, EC, an encrypted RSA
 * key) are made in memory once for the suite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "providers/providers.h"
#include "../tests.h"

static char *rsa_pem, *ec_pem, *enc_pem;

/* PEM text of key (encrypted under "pw" when enc), malloc'd. */
static char *pem_of(EVP_PKEY *key, bool enc)
{
    static unsigned char pw[] = "pw";
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    ck_assert(b != NULL && key != NULL);
    ck_assert_int_eq(PEM_write_bio_PrivateKey(
                         b, key, enc ? EVP_aes_128_cbc() : NULL,
                         enc ? pw : NULL, enc ? 2 : 0, NULL, NULL),
                     1);
    n = BIO_get_mem_data(b, &data);
    ck_assert((out = malloc((size_t)n + 1)) != NULL);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static void setup(void)
{
    EVP_PKEY *rsa = EVP_RSA_gen(1024); /* small: only parsed, never used */
    EVP_PKEY *ec = EVP_EC_gen("P-256");

    rsa_pem = pem_of(rsa, false);
    enc_pem = pem_of(rsa, true);
    ec_pem = pem_of(ec, false);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

static void teardown(void)
{
    free(rsa_pem);
    free(ec_pem);
    free(enc_pem);
    rsa_pem = ec_pem = enc_pem = NULL;
}

/* Check the object o (stolen) as provider name; err is filled. */
static ai_code check(const char *name, json_t *o, ai_err *err)
{
    char *text;
    ai_code rc;

    ck_assert(o != NULL);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ck_assert(text != NULL);
    rc = prov_config_check(name, text, err);
    free(text);
    return rc;
}

/* A GitHub config as `config init github` stores it, plus one member
 * replaced or added (value stolen; NULL value: the member removed). */
static json_t *github(const char *key, json_t *value)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "appId", "123",
                          "installationId", "456", "privateKey", rsa_pem);

    ck_assert(o != NULL);
    if (key != NULL && value != NULL)
        json_object_set_new(o, key, value);
    else if (key != NULL)
        json_object_del(o, key);
    return o;
}

static json_t *google(const char *key, json_t *value)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "clientId", "123.apps",
                          "clientSecret", "GOCSPX-secret-1",
                          "refreshToken", "1//refresh-1");

    ck_assert(o != NULL);
    if (key != NULL && value != NULL)
        json_object_set_new(o, key, value);
    else if (key != NULL)
        json_object_del(o, key);
    return o;
}

static json_t *aws(const char *key, json_t *value)
{
    json_t *o = json_pack("{s:s, s:s}", "region", "us-east-1", "roleArn",
                          "arn:aws:iam::123456789012:role/agent");

    ck_assert(o != NULL);
    if (key != NULL && value != NULL)
        json_object_set_new(o, key, value);
    else if (key != NULL)
        json_object_del(o, key);
    return o;
}

START_TEST(test_config_github_as_the_cli_stores_it_is_accepted)
{
    ai_err err;
    json_t *o = github("owner", json_string("my-org"));

    json_object_set_new(o, "apiUrl",
                        json_string("https://github.example.com/api/v3"));
    ck_assert_int_eq(check("github", o, &err), AI_OK);
}
END_TEST

START_TEST(test_config_github_numeric_ids_are_accepted)
{
    ai_err err;
    json_t *o = github("appId", json_integer(123));

    json_object_set_new(o, "installationId", json_integer(456));
    ck_assert_int_eq(check("github", o, &err), AI_OK);
}
END_TEST

START_TEST(test_config_github_refuses_missing_private_key)
{
    ai_err err;

    ck_assert_int_eq(check("github", github("privateKey", NULL), &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "github: the config needs privateKey"),
                  "%s", err.msg);
}
END_TEST

START_TEST(test_config_github_refuses_bad_ids)
{
    const char *bad[] = {"0", "12a", "", "-1", "007", "9223372036854775808",
                         "12345678901234567890"};
    ai_err err;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(check("github", github("appId", json_string(bad[i])),
                               &err),
                         AI_EINVAL);
        ck_assert_msg(t_has(err.msg, "appId must be a positive whole number"),
                      "%s: %s", bad[i], err.msg);
    }
    ck_assert_int_eq(check("github", github("installationId",
                                             json_integer(0)),
                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(check("github", github("installationId",
                                             json_string(
                                                 "9223372036854775807")),
                           &err),
                     AI_OK);
}
END_TEST

START_TEST(test_config_github_refuses_a_key_that_is_not_rsa)
{
    ai_err err;

    ck_assert_int_eq(check("github", github("privateKey",
                                            json_string(ec_pem)),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "privateKey must be an unencrypted RSA"),
                  "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(prov_rsa_pem_why(ec_pem, strlen(ec_pem)),
                                 "not an RSA private key"));
}
END_TEST

START_TEST(test_config_github_refuses_an_encrypted_key_without_prompting)
{
    ai_err err;

    ck_assert_int_eq(check("github", github("privateKey",
                                            json_string(enc_pem)),
                           &err),
                     AI_EINVAL);
    ck_assert_ptr_nonnull(strstr(prov_rsa_pem_why(enc_pem, strlen(enc_pem)),
                                 "encrypted"));
    ck_assert_ptr_null(prov_rsa_pem_why(rsa_pem, strlen(rsa_pem)));
}
END_TEST

START_TEST(test_config_github_refuses_a_bad_owner)
{
    ai_err err;

    ck_assert_int_eq(check("github", github("owner", json_string("a/b")),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "github: owner must be"), "%s", err.msg);
}
END_TEST

START_TEST(test_config_urls_follow_the_providers_url_check)
{
    ai_err err;

    ck_assert_int_eq(check("github", github("apiUrl",
                                            json_string(
                                                "http://api.example.com")),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "apiUrl must be an https:// URL"), "%s",
                  err.msg);
    ck_assert_int_eq(check("github", github("apiUrl",
                                            json_string(
                                                "http://127.0.0.1:8080")),
                           &err),
                     AI_OK);
    ck_assert_int_eq(check("google",
                           google("tokenUrl",
                                  json_string("https://localhost:1@evil."
                                              "example/token")),
                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(check("aws", aws("stsUrl", json_string("ftp://sts")),
                           &err),
                     AI_EINVAL);
}
END_TEST

START_TEST(test_config_google_as_the_cli_stores_it_is_accepted)
{
    ai_err err;

    ck_assert_int_eq(check("google",
                           google("tokenUrl",
                                  json_string("https://oauth2.example/t")),
                           &err),
                     AI_OK);
}
END_TEST

START_TEST(test_config_google_refuses_bad_secrets)
{
    char big[PROV_SECRET_MAX + 2];
    ai_err err;

    ck_assert_int_eq(check("google", google("clientSecret",
                                            json_string("a\nb")),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "clientSecret must be 1 to 4096 bytes"),
                  "%s", err.msg);
    ck_assert_int_eq(check("google", google("refreshToken", json_string("")),
                           &err),
                     AI_EINVAL);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(check("google", google("refreshToken", json_string(big)),
                           &err),
                     AI_EINVAL);
    big[PROV_SECRET_MAX] = '\0'; /* exactly the maximum */
    ck_assert_int_eq(check("google", google("refreshToken", json_string(big)),
                           &err),
                     AI_OK);
}
END_TEST

START_TEST(test_config_refuses_a_nul_inside_a_string)
{
    ai_err err;

    ck_assert_int_eq(check("google", google("clientSecret",
                                            json_stringn("a\0b", 3)),
                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(prov_config_check("google",
                                       "{\"clientId\":\"x\",\"clientSecret\":"
                                       "\"a\\u0000b\",\"refreshToken\":\"r\"}",
                                       &err),
                     AI_EINVAL);
}
END_TEST

START_TEST(test_config_refuses_wrong_types)
{
    ai_err err;

    ck_assert_int_eq(check("google", google("clientId", json_integer(5)),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "google: clientId must be"), "%s", err.msg);
    ck_assert_int_eq(check("aws", aws("sessionDuration", json_string("900")),
                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(check("github", github("privateKey", json_null()), &err),
                     AI_EINVAL);
}
END_TEST

START_TEST(test_config_aws_as_the_cli_stores_it_is_accepted)
{
    ai_err err;
    json_t *o = aws("accessKeyId", json_string("AKIAIOSFODNN7EXAMPLE"));

    ck_assert_int_eq(check("aws", aws(NULL, NULL), &err), AI_OK);
    json_object_set_new(o, "secretAccessKey",
                        json_string("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
    json_object_set_new(o, "externalId", json_string("ext-42"));
    json_object_set_new(o, "sessionDuration", json_integer(3600));
    json_object_set_new(o, "stsUrl", json_string("https://sts.example/"));
    ck_assert_int_eq(check("aws", o, &err), AI_OK);
}
END_TEST

START_TEST(test_config_aws_key_id_and_secret_go_together)
{
    ai_err err;

    ck_assert_int_eq(check("aws", aws("accessKeyId",
                                      json_string("AKIAIOSFODNN7EXAMPLE")),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "go together"), "%s", err.msg);
    ck_assert_int_eq(check("aws", aws("secretAccessKey", json_string("s")),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "go together"), "%s", err.msg);
}
END_TEST

START_TEST(test_config_aws_refuses_bad_members)
{
    ai_err err;

    ck_assert_int_eq(check("aws", aws("sessionDuration", json_integer(899)),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "900 to 43200"), "%s", err.msg);
    ck_assert_int_eq(check("aws", aws("sessionDuration", json_integer(43201)),
                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(check("aws", aws("region", json_string("US-EAST-1")),
                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(check("aws", aws("roleArn", json_string("role/agent")),
                           &err),
                     AI_EINVAL);
    ck_assert_int_eq(check("aws", aws("externalId", json_string("x")), &err),
                     AI_EINVAL);
    ck_assert_int_eq(check("aws", aws("roleArn", NULL), &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "aws: the config needs roleArn"), "%s",
                  err.msg);
}
END_TEST

START_TEST(test_config_refuses_unknown_members)
{
    ai_err err;

    ck_assert_int_eq(check("github", github("apiURL",
                                            json_string("https://x.example")),
                           &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "unknown member \"apiURL\""), "%s", err.msg);
}
END_TEST

START_TEST(test_config_refuses_what_is_not_one_object)
{
    ai_err err;

    ck_assert_int_eq(prov_config_check("aws", "[]", &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "not a JSON object"), "%s", err.msg);
    ck_assert_int_eq(prov_config_check("aws", "{\"region\":", &err),
                     AI_EINVAL);
    ck_assert_int_eq(prov_config_check("aws", NULL, &err), AI_EINVAL);
    /* a second "roleArn" could hide the one that was checked */
    ck_assert_int_eq(prov_config_check("aws",
                                       "{\"region\":\"us-east-1\",\"roleArn\":"
                                       "\"arn:a\",\"roleArn\":\"arn:b\"}",
                                       &err),
                     AI_EINVAL);
}
END_TEST

START_TEST(test_config_refuses_an_oversized_config)
{
    size_t n = PROV_CONFIG_MAX + 100;
    char *big = malloc(n + 1);
    ai_err err;

    ck_assert(big != NULL);
    memset(big, ' ', n);
    memcpy(big, "{}", 2);
    big[n] = '\0';
    ck_assert_int_eq(prov_config_check("aws", big, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "larger than"), "%s", err.msg);
    free(big);
}
END_TEST

START_TEST(test_config_unknown_provider_is_not_found)
{
    ai_err err;

    ck_assert_int_eq(prov_config_check("slack", "{}", &err), AI_ENOTFOUND);
    ck_assert_int_eq(prov_config_check(NULL, "{}", &err), AI_ENOTFOUND);
}
END_TEST

START_TEST(test_config_messages_never_quote_a_value)
{
    static const char marker[] = "SECRET-MARKER-\x01-7f3a";
    ai_err err;

    ck_assert_int_eq(check("google", google("clientSecret",
                                            json_string(marker)),
                           &err),
                     AI_EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "SECRET-MARKER"));
    ck_assert_int_eq(check("aws", aws("region", json_string("SECRET-MARKER")),
                           &err),
                     AI_EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "SECRET-MARKER"));
}
END_TEST

Suite *suite_providers_config(void)
{
    Suite *s = suite_create("providers_config");
    TCase *tc = tcase_create("config");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_github_as_the_cli_stores_it_is_accepted);
    tcase_add_test(tc, test_config_github_numeric_ids_are_accepted);
    tcase_add_test(tc, test_config_github_refuses_missing_private_key);
    tcase_add_test(tc, test_config_github_refuses_bad_ids);
    tcase_add_test(tc, test_config_github_refuses_a_key_that_is_not_rsa);
    tcase_add_test(tc,
                   test_config_github_refuses_an_encrypted_key_without_prompting);
    tcase_add_test(tc, test_config_github_refuses_a_bad_owner);
    tcase_add_test(tc, test_config_urls_follow_the_providers_url_check);
    tcase_add_test(tc, test_config_google_as_the_cli_stores_it_is_accepted);
    tcase_add_test(tc, test_config_google_refuses_bad_secrets);
    tcase_add_test(tc, test_config_refuses_a_nul_inside_a_string);
    tcase_add_test(tc, test_config_refuses_wrong_types);
    tcase_add_test(tc, test_config_aws_as_the_cli_stores_it_is_accepted);
    tcase_add_test(tc, test_config_aws_key_id_and_secret_go_together);
    tcase_add_test(tc, test_config_aws_refuses_bad_members);
    tcase_add_test(tc, test_config_refuses_unknown_members);
    tcase_add_test(tc, test_config_refuses_what_is_not_one_object);
    tcase_add_test(tc, test_config_refuses_an_oversized_config);
    tcase_add_test(tc, test_config_unknown_provider_is_not_found);
    tcase_add_test(tc, test_config_messages_never_quote_a_value);
    suite_add_tcase(s, tc);
    return s;
}
