/* test_snapshot.c - the replicated state as one document: every key (with
 * its secret), revocation, provider config and API key, and the changelog
 * seq it reflects. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../tests.h"
#include "home_fixture.h"

START_TEST(test_snapshot_holds_the_replicated_state)
{
    char *home = fx_home_new(), *text = NULL;
    store *st = fx_open(home);
    apikey_info k = {"openai", "openai", "https://api.openai.com", 30, 0};
    json_t *doc, *keys, *revs, *provs, *apis;
    int64_t head = 0;
    ai_err err;

    (void)fx_keyring(st, T_NOW);
    ck_assert_int_eq(store_rotate_key(st, T_HOUR, t_key2, T_NOW, NULL, NULL,
                                      &err), AI_OK);
    ck_assert_int_eq(store_revoke(st, REVOKE_TOKEN, "AAAAAAAAAAAAAAAAAAAAAA",
                                  "test", 0, T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "rogue", NULL, 0, T_NOW,
                                  NULL,
                                  &err),
                     AI_OK);
    ck_assert_int_eq(store_provider_set(st, "google",
                                        "{\"clientId\":\"c\","
                                        "\"clientSecret\":\"s3cr3t\","
                                        "\"refreshToken\":\"r\"}",
                                        T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_apikey_add(st, &k, "sk-abc", T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_changelog_head(st, &head, &err), AI_OK);

    ck_assert_int_eq(store_snapshot(st, &text, &err), AI_OK);
    doc = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(json_integer_value(json_object_get(doc, "seq")), head);
    keys = json_object_get(doc, "keys");
    ck_assert_uint_eq(json_array_size(keys), 2);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(keys, 0), "secret")) ? "present" : "",
                     "present");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(keys, 0), "verifyUntil")),
                     T_NOW + T_HOUR);
    revs = json_object_get(doc, "revocations");
    ck_assert_uint_eq(json_array_size(revs), 2);
    provs = json_object_get(doc, "providers");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(provs, "google"), "clientSecret")),
                     "s3cr3t");
    apis = json_object_get(doc, "apiKeys");
    ck_assert_uint_eq(json_array_size(apis), 1);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(apis, 0), "secret")),
                     "sk-abc");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(apis, 0), "baseUrl")),
                     "https://api.openai.com");
    json_decref(doc);
    explicit_bzero(text, strlen(text));
    store_free(text);
    store_close(st);
    fx_home_free(home);
}
END_TEST

/* The key in the snapshot is the one that signs: a token minted here
 * verifies with a keyring built from the snapshot alone. */
START_TEST(test_snapshot_keys_verify_tokens)
{
    char *home = fx_home_new(), *text = NULL;
    store *st = fx_open(home);
    const ai_keyring *kr;
    ai_keyring *copy = ai_keyring_new();
    ai_token *t = NULL, *seen = NULL;
    json_t *doc, *k;
    unsigned char secret[64];
    size_t n = 0;
    ai_err err;

    kr = fx_keyring(st, T_NOW);
    t = t_root(kr, T_LIST("a:b:c"), NULL);
    ck_assert_int_eq(store_snapshot(st, &text, &err), AI_OK);
    doc = json_loads(text, 0, NULL);
    k = json_array_get(json_object_get(doc, "keys"), 0);
    {
        /* base64url of 32 bytes: 43 characters */
        const char *b = json_string_value(json_object_get(k, "secret"));
        static const char al[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        unsigned acc = 0;
        int bits = 0;
        for (const char *p = b; *p; p++) {
            acc = acc << 6 | (unsigned)(strchr(al, *p) - al);
            bits += 6;
            if (bits >= 8) {
                secret[n++] = (unsigned char)(acc >> (bits - 8));
                bits -= 8;
            }
        }
    }
    ck_assert_uint_eq(n, AI_KEY_BYTES);
    ck_assert_int_eq(ai_keyring_add(copy, 1, secret, 0, &err), AI_OK);
    {
        ai_verifier v = {copy, NULL, NULL};
        ck_assert_int_eq(ai_token_verify(&v, ai_token_serialize(t),
                                         ai_token_serialized_len(t), T_NOW,
                                         &seen, &err),
                         AI_OK);
    }
    json_decref(doc);
    explicit_bzero(text, strlen(text));
    store_free(text);
    ai_token_free(seen);
    ai_token_free(t);
    ai_keyring_free(copy);
    store_close(st);
    fx_home_free(home);
}
END_TEST

Suite *suite_store_snapshot(void)
{
    Suite *s = suite_create("store_snapshot");
    TCase *tc = tcase_create("snapshot");

    tcase_add_test(tc, test_snapshot_holds_the_replicated_state);
    tcase_add_test(tc, test_snapshot_keys_verify_tokens);
    suite_add_tcase(s, tc);
    return s;
}
