/* test_followers.c - Suite "store_followers": followers registered on a
 * leader (src/store/followers.c; the broker's operation on them is tested
 * in tests/broker/test_admin.c) and the sealing of secrets in transit
 * (src/store/seal.c): a credential is found by itself and by nothing else,
 * its transport key is the one the follower derives, a removed or replaced
 * credential is no longer found, grants are parsed strictly, and sealed
 * text opens only under its key and its entity. */
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "store/store.h"
#include "../tests.h"

#define open_home t_home_open

/* Register id with a new credential (*secret: NULL on error). */
static ai_code add(store *st, const char *id, const char *providers,
                   char **secret, ai_err *err)
{
    unsigned char digest[STORE_FOLLOWER_DIGEST_BYTES], tkey[AI_KEY_BYTES];
    ai_code rc = store_follower_credential(secret, digest, tkey, err);

    if (rc == AI_OK &&
        (rc = store_follower_add(st, id, providers, digest, tkey, T_NOW,
                                 NULL, err)) != AI_OK) {
        ai_free(*secret);
        *secret = NULL;
    }
    OPENSSL_cleanse(tkey, sizeof tkey);
    return rc;
}

START_TEST(test_follower_credential_finds_it_with_its_transport_key)
{
    t_home h;
    store *st;
    char *secret = NULL;
    follower_info fi;
    unsigned char key[AI_KEY_BYTES], want[AI_KEY_BYTES];
    ai_err err = {0};

    t_home_make(&h, "followers");
    st = open_home(&h);
    ck_assert_int_eq(add(st, "region-b", "openai,github", &secret, &err),
                     AI_OK);
    ck_assert_ptr_nonnull(secret);
    ck_assert_int_ge((int)strlen(secret), 40);
    ck_assert_int_eq(store_follower_find(st, secret, strlen(secret), &fi,
                                         key, &err),
                     AI_OK);
    ck_assert_str_eq(fi.id, "region-b");
    ck_assert_str_eq(fi.providers, "openai,github");
    store_transport_key(secret, strlen(secret), want);
    ck_assert_int_eq(CRYPTO_memcmp(key, want, sizeof key), 0);
    /* one byte off: not found */
    secret[strlen(secret) - 1] ^= 1;
    ck_assert_int_eq(store_follower_find(st, secret, strlen(secret), &fi,
                                         key, &err),
                     AI_ENOTFOUND);
    OPENSSL_cleanse(secret, strlen(secret));
    ai_free(secret);
    store_close(st);
    t_home_remove(&h);
}
END_TEST

START_TEST(test_follower_removed_or_replaced_credential_is_not_found)
{
    t_home h;
    store *st;
    char *one = NULL, *two = NULL;
    follower_info fi;
    unsigned char key[AI_KEY_BYTES];
    ai_err err = {0};

    t_home_make(&h, "followers");
    st = open_home(&h);
    ck_assert_int_eq(add(st, "f", "", &one, &err), AI_OK);
    ck_assert_int_eq(add(st, "f", "*", &two, &err), AI_OK);
    ck_assert_str_ne(one, two);
    ck_assert_int_eq(store_follower_find(st, one, strlen(one), &fi, key,
                                         &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_follower_find(st, two, strlen(two), &fi, key,
                                         &err),
                     AI_OK);
    ck_assert_str_eq(fi.providers, "*");
    ck_assert_int_eq(store_follower_remove(st, "f", NULL, &err), AI_OK);
    ck_assert_int_eq(store_follower_find(st, two, strlen(two), &fi, key,
                                         &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_follower_remove(st, "f", NULL, &err),
                     AI_ENOTFOUND);
    ai_free(one);
    ai_free(two);
    store_close(st);
    t_home_remove(&h);
}
END_TEST

START_TEST(test_follower_bad_ids_and_grants_are_refused)
{
    static const char *const bad_grants[] = {
        ",", "a,", ",a", "a,,b", "a b", "a;b", "**", "a,*x", "a\nb"};
    t_home h;
    store *st;
    char *secret = NULL;
    ai_err err = {0};

    t_home_make(&h, "followers");
    st = open_home(&h);
    ck_assert_int_eq(add(st, "", "", &secret, &err), AI_EINVAL);
    ck_assert_int_eq(add(st, "a/b", "", &secret, &err), AI_EINVAL);
    for (size_t i = 0; i < sizeof bad_grants / sizeof *bad_grants; i++)
        ck_assert_msg(add(st, "f", bad_grants[i], &secret, &err) ==
                          AI_EINVAL,
                      "grant list \"%s\" accepted", bad_grants[i]);
    ck_assert_ptr_null(secret);
    store_close(st);
    t_home_remove(&h);
}
END_TEST

START_TEST(test_follower_grants_match_whole_names)
{
    ck_assert(store_follower_grants("*", "openai"));
    ck_assert(!store_follower_grants("*", ""));
    ck_assert(!store_follower_grants("", "openai"));
    ck_assert(store_follower_grants("github,openai", "openai"));
    ck_assert(store_follower_grants("openai", "openai"));
    ck_assert(!store_follower_grants("openai", "open"));
    ck_assert(!store_follower_grants("open", "openai"));
    ck_assert(!store_follower_grants("openai2,xopenai", "openai"));
}
END_TEST

START_TEST(test_sealed_text_opens_only_with_its_key_and_entity)
{
    unsigned char k1[AI_KEY_BYTES], k2[AI_KEY_BYTES], *plain = NULL;
    const char msg[] = "sk-secret-value";
    char *text = NULL;
    size_t n = 0;
    ai_err err = {0};

    store_transport_key("credential-1", 12, k1);
    store_transport_key("credential-2", 12, k2);
    ck_assert_int_eq(store_seal_text(k1, "apikey:openai", msg,
                                     sizeof msg - 1, &text, &err),
                     AI_OK);
    ck_assert(!t_has(text, msg));
    ck_assert_int_eq(store_unseal_text(k1, "apikey:openai", text, &plain,
                                       &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, sizeof msg - 1);
    ck_assert_mem_eq(plain, msg, n);
    OPENSSL_cleanse(plain, n);
    ai_free(plain);
    ck_assert_int_eq(store_unseal_text(k2, "apikey:openai", text, &plain,
                                       &n, &err),
                     AI_ESTORE);
    ck_assert_ptr_null(plain);
    ck_assert_int_eq(store_unseal_text(k1, "apikey:github", text, &plain,
                                       &n, &err),
                     AI_ESTORE);
    text[5] = text[5] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(store_unseal_text(k1, "apikey:openai", text, &plain,
                                       &n, &err),
                     AI_ESTORE);
    ck_assert_int_eq(store_unseal_text(k1, "apikey:openai", "!!", &plain,
                                       &n, &err),
                     AI_ESTORE);
    ai_free(text);
}
END_TEST

Suite *suite_store_followers(void)
{
    Suite *s = suite_create("store_followers");
    TCase *tc = tcase_create("followers");

    tcase_add_test(tc, test_follower_credential_finds_it_with_its_transport_key);
    tcase_add_test(tc, test_follower_removed_or_replaced_credential_is_not_found);
    tcase_add_test(tc, test_follower_bad_ids_and_grants_are_refused);
    tcase_add_test(tc, test_follower_grants_match_whole_names);
    tcase_add_test(tc, test_sealed_text_opens_only_with_its_key_and_entity);
    suite_add_tcase(s, tc);
    return s;
}
