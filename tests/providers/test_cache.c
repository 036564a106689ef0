/* test_cache.c - Suite "providers_cache": the provider credential cache
 * (src/providers/cache.c). Entries are served until 5 minutes before they
 * expire and dropped after; get and put copy (the caller's result is its
 * own); the table stays bounded; several threads putting and getting at
 * once see only whole entries. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "providers/providers.h"
#include "../tests.h"

static void make_cred(cred_result *r, const char *text, int64_t expires_at)
{
    size_t n = strlen(text);

    memset(r, 0, sizeof *r);
    memcpy(r->type, "bearer_token", sizeof "bearer_token");
    r->credential = ai_malloc(n + 1);
    ck_assert_ptr_nonnull(r->credential);
    memcpy(r->credential, text, n + 1);
    r->expires_at = expires_at;
}

START_TEST(test_cache_served_until_five_minutes_before_expiry)
{
    cred_cache *c = cred_cache_new();
    cred_result in, out;

    ck_assert_ptr_nonnull(c);
    make_cred(&in, "{\"token\":\"ghs_a\"}", T_NOW + T_HOUR);
    cred_cache_put(c, "github", "github:repo:read", "o/r", &in);
    ck_assert(cred_cache_get(c, "github", "github:repo:read", "o/r", T_NOW,
                             &out));
    ck_assert_str_eq(out.credential, "{\"token\":\"ghs_a\"}");
    ck_assert_str_eq(out.type, "bearer_token");
    ck_assert(out.expires_at == T_NOW + T_HOUR);
    cred_result_clear(&out);
    /* One millisecond before the margin: still served. */
    ck_assert(cred_cache_get(c, "github", "github:repo:read", "o/r",
                             T_NOW + T_HOUR - 5 * T_MIN - 1, &out));
    cred_result_clear(&out);
    /* At the margin: dropped, and gone for earlier clocks too. */
    ck_assert(!cred_cache_get(c, "github", "github:repo:read", "o/r",
                              T_NOW + T_HOUR - 5 * T_MIN, &out));
    ck_assert_ptr_null(out.credential);
    ck_assert(!cred_cache_get(c, "github", "github:repo:read", "o/r", T_NOW,
                              &out));
    cred_result_clear(&in);
    cred_cache_free(c);
}
END_TEST

START_TEST(test_cache_keys_on_provider_scope_and_resource)
{
    cred_cache *c = cred_cache_new();
    cred_result in, out;

    make_cred(&in, "{\"token\":\"x\"}", T_NOW + T_HOUR);
    cred_cache_put(c, "github", "github:repo:read", "o/r", &in);
    ck_assert(!cred_cache_get(c, "github", "github:repo:read", "o/other",
                              T_NOW, &out));
    ck_assert(!cred_cache_get(c, "github", "github:repo:write", "o/r", T_NOW,
                              &out));
    ck_assert(!cred_cache_get(c, "google", "github:repo:read", "o/r", T_NOW,
                              &out));
    ck_assert(cred_cache_get(c, "github", "github:repo:read", "o/r", T_NOW,
                             &out));
    cred_result_clear(&out);
    cred_result_clear(&in);
    cred_cache_free(c);
}
END_TEST

START_TEST(test_cache_copies_in_and_out)
{
    cred_cache *c = cred_cache_new();
    cred_result in, a, b;

    make_cred(&in, "{\"token\":\"orig\"}", T_NOW + T_HOUR);
    cred_cache_put(c, "google", "google:drive:read", "", &in);
    /* The caller's copy may change or go: the cache kept its own. */
    memcpy(in.credential, "{\"token\":\"XXXX\"}", 16);
    cred_result_clear(&in);
    ck_assert(cred_cache_get(c, "google", "google:drive:read", "", T_NOW, &a));
    ck_assert(cred_cache_get(c, "google", "google:drive:read", NULL, T_NOW,
                             &b));
    ck_assert_ptr_ne(a.credential, b.credential);
    ck_assert_str_eq(a.credential, "{\"token\":\"orig\"}");
    a.credential[2] = 'Z';
    cred_result_clear(&a);
    cred_result_clear(&b);
    ck_assert(cred_cache_get(c, "google", "google:drive:read", "", T_NOW, &b));
    ck_assert_str_eq(b.credential, "{\"token\":\"orig\"}");
    cred_result_clear(&b);
    cred_cache_free(c);
}
END_TEST

START_TEST(test_cache_replaces_and_skips_unexpiring)
{
    cred_cache *c = cred_cache_new();
    cred_result in, out;

    make_cred(&in, "{\"token\":\"one\"}", T_NOW + T_HOUR);
    cred_cache_put(c, "aws", "aws:s3:read", "b", &in);
    cred_result_clear(&in);
    make_cred(&in, "{\"token\":\"two\"}", T_NOW + 2 * T_HOUR);
    cred_cache_put(c, "aws", "aws:s3:read", "b", &in);
    cred_result_clear(&in);
    ck_assert(cred_cache_get(c, "aws", "aws:s3:read", "b", T_NOW, &out));
    ck_assert_str_eq(out.credential, "{\"token\":\"two\"}");
    cred_result_clear(&out);
    /* No expiry: never cached (its freshness is unknown). */
    make_cred(&in, "{\"token\":\"forever\"}", 0);
    cred_cache_put(c, "aws", "aws:s3:write", "b", &in);
    cred_result_clear(&in);
    ck_assert(!cred_cache_get(c, "aws", "aws:s3:write", "b", T_NOW, &out));
    cred_cache_free(c);
}
END_TEST

START_TEST(test_cache_stays_bounded)
{
    cred_cache *c = cred_cache_new();
    cred_result in, out;
    char res[32];
    int found = 0;

    for (int i = 0; i < 3000; i++) {
        snprintf(res, sizeof res, "r%d", i);
        make_cred(&in, "{\"token\":\"t\"}", T_NOW + T_HOUR + i);
        cred_cache_put(c, "github", "github:repo:read", res, &in);
        cred_result_clear(&in);
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(res, sizeof res, "r%d", i);
        if (cred_cache_get(c, "github", "github:repo:read", res, T_NOW,
                           &out)) {
            found++;
            cred_result_clear(&out);
        }
    }
    ck_assert_int_eq(found, 1024);
    /* The soonest-expiring went first: the newest are there. */
    ck_assert(cred_cache_get(c, "github", "github:repo:read", "r2999", T_NOW,
                             &out));
    cred_result_clear(&out);
    cred_cache_free(c);
}
END_TEST

typedef struct worker {
    cred_cache *c;
    int id;
    int bad;
} worker;

static void *hammer(void *ud)
{
    worker *w = ud;
    char res[16], want[64];
    cred_result in, out;

    for (int i = 0; i < 2000; i++) {
        int k = (i * 7 + w->id) % 50;
        snprintf(res, sizeof res, "r%d", k);
        snprintf(want, sizeof want, "{\"token\":\"%d\"}", k);
        if (i % 3 == 0) {
            make_cred(&in, want, T_NOW + T_HOUR);
            cred_cache_put(w->c, "github", "github:repo:read", res, &in);
            cred_result_clear(&in);
        } else if (cred_cache_get(w->c, "github", "github:repo:read", res,
                                  T_NOW, &out)) {
            if (strcmp(out.credential, want) != 0)
                w->bad++;
            cred_result_clear(&out);
        }
    }
    return NULL;
}

START_TEST(test_cache_threads_see_whole_entries)
{
    cred_cache *c = cred_cache_new();
    pthread_t th[6];
    worker w[6];

    for (int i = 0; i < 6; i++) {
        w[i] = (worker){c, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].bad, 0);
    }
    cred_cache_free(c);
}
END_TEST

START_TEST(test_cache_apikey_credential_shape)
{
    cred_result r;
    ai_err err;

    ck_assert_int_eq(prov_apikey_build("openai", "sk-\"q", NULL, 0, T_NOW,
                                       &r, &err),
                     AI_OK);
    ck_assert_str_eq(r.type, "api_key");
    ck_assert_str_eq(r.credential,
                     "{\"apiKey\":\"sk-\\\"q\",\"providerName\":\"openai\","
                     "\"headers\":{\"Authorization\":\"Bearer sk-\\\"q\"}}");
    ck_assert(r.expires_at == T_NOW + 60 * T_MIN);
    cred_result_clear(&r);
    ck_assert_int_eq(prov_apikey_build("openai", "k", "https://x/v1", 5,
                                       T_NOW, &r, &err),
                     AI_OK);
    ck_assert(t_has(r.credential, "\"baseUrl\":\"https://x/v1\""));
    ck_assert(r.expires_at == T_NOW + 5 * T_MIN);
    cred_result_clear(&r);
}
END_TEST

/* The cache's suite. */
Suite *suite_providers_cache(void)
{
    Suite *s = suite_create("providers_cache");
    TCase *tc = tcase_create("cache");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cache_served_until_five_minutes_before_expiry);
    tcase_add_test(tc, test_cache_keys_on_provider_scope_and_resource);
    tcase_add_test(tc, test_cache_copies_in_and_out);
    tcase_add_test(tc, test_cache_replaces_and_skips_unexpiring);
    tcase_add_test(tc, test_cache_stays_bounded);
    tcase_add_test(tc, test_cache_threads_see_whole_entries);
    tcase_add_test(tc, test_cache_apikey_credential_shape);
    suite_add_tcase(s, tc);
    return s;
}
