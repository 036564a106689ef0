/* test_keys.c - signing keys in a home: the first key (and a read that
 * makes none), rotation with a grace period and retirement, import of a
 * raw 32-byte secret (the Node package's token_secret) and its guard,
 * export, listing, sealing at rest, and a second handle following a
 * rotation. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests.h"
#include "home_fixture.h"
#include "store/store.h"

static char *temp_home(void)
{
    char *dir = strdup("/tmp/agent-iam-keys.XXXXXX");

    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static void remove_home(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    free(dir);
}

static store *open_home(const char *dir)
{
    store *st = NULL;
    ai_err err;

    ck_assert_msg(store_open(dir, true, &st, &err) == AI_OK, "%s", err.msg);
    return st;
}

static ai_token *mint(const ai_keyring *kr, int64_t now)
{
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err;

    ai_root_params_init(&p);
    p.agent_id = "orchestrator";
    p.scopes = T_ARR("github:repo:read");
    p.nscopes = 1;
    p.ttl_days = 30;
    ck_assert_msg(ai_token_create_root(kr, &p, now, &t, &err) == AI_OK, "%s",
                  err.msg);
    return t;
}

static ai_code verify_at(const ai_keyring *kr, const ai_token *t, int64_t now,
                         ai_err *err)
{
    ai_verifier v = {kr, NULL, NULL};
    ai_token *seen = NULL;
    ai_code rc = ai_token_verify(&v, ai_token_serialize(t),
                                 ai_token_serialized_len(t), now, &seen, err);
    ai_token_free(seen);
    return rc;
}

START_TEST(test_keys_new_home_gets_version_1)
{
    char *home = temp_home();
    store *st = open_home(home), *other = open_home(home);
    const ai_keyring *kr;
    unsigned char out[AI_KEY_BYTES];
    key_info *list = NULL;
    size_t n = 0;
    bool made = false;
    ai_err err;

    ck_assert_int_eq(store_first_key(st, t_key1, T_NOW, NULL, &made, &err),
                     AI_OK);
    ck_assert(made);
    ck_assert_int_eq(store_keyring(st, &kr, &err), AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 1);
    ck_assert_int_eq(store_list_keys(st, T_NOW, &list, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(list[0].state, KEY_SIGNING);
    store_free(list);
    /* a second first use (another handle, another key) makes nothing */
    ck_assert_int_eq(store_first_key(other, t_key2, T_NOW + 1, NULL, &made,
                                     &err),
                     AI_OK);
    ck_assert(!made);
    ck_assert_int_eq(store_export_key(other, 1, out, &err), AI_OK);
    ck_assert_mem_eq(out, t_key1, AI_KEY_BYTES);
    ck_assert_int_eq(store_list_keys(other, T_NOW, &list, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 1);
    store_free(list);
    store_close(other);
    store_close(st);
    remove_home(home);
}
END_TEST

START_TEST(test_keys_keyring_of_new_home_reads_without_creating)
{
    char *home = temp_home();
    store *st = open_home(home), *other = open_home(home);
    const ai_keyring *kr;
    key_info *list = NULL;
    size_t n = 1;
    ai_err err;

    ck_assert_int_eq(store_keyring(st, &kr, &err), AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 0);
    ck_assert_int_eq(store_list_keys(st, T_NOW, &list, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 0);
    store_free(list);
    /* a first key made since, by another handle, is seen by the next read */
    kr = fx_keyring(other, T_NOW);
    ck_assert_int_eq(store_keyring(st, &kr, &err), AI_OK);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 1);
    store_close(other);
    store_close(st);
    remove_home(home);
}
END_TEST

START_TEST(test_keys_rotation_keeps_old_tokens_until_grace_ends)
{
    char *home = temp_home();
    store *st = open_home(home);
    const ai_keyring *kr;
    ai_token *old, *fresh;
    key_info *list = NULL;
    size_t n = 0;
    uint32_t v = 0;
    ai_err err;

    kr = fx_keyring(st, T_NOW);
    old = mint(kr, T_NOW);
    ck_assert_int_eq(store_rotate_key(st, T_HOUR, t_key2, T_NOW, NULL, &v,
                                      &err), AI_OK);
    ck_assert_uint_eq(v, 2);
    kr = fx_keyring(st, T_NOW);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 2);
    fresh = mint(kr, T_NOW);
    ck_assert_uint_eq(ai_token_key_version(fresh), 2);
    /* within the grace period both verify */
    ck_assert_int_eq(verify_at(kr, old, T_NOW + 30 * T_MIN, &err), AI_OK);
    ck_assert_int_eq(verify_at(kr, fresh, T_NOW + 30 * T_MIN, &err), AI_OK);
    /* after it, version 1 is retired */
    ck_assert_int_eq(verify_at(kr, old, T_NOW + 2 * T_HOUR, &err), AI_ETOKEN);
    ck_assert(t_has(err.msg, "unknown or retired signing key"));
    ck_assert_int_eq(verify_at(kr, fresh, T_NOW + 2 * T_HOUR, &err), AI_OK);
    ck_assert_int_eq(store_list_keys(st, T_NOW + 2 * T_HOUR, &list, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(list[0].state, KEY_RETIRED);
    ck_assert_int_eq(list[1].state, KEY_SIGNING);
    store_free(list);
    ai_token_free(old);
    ai_token_free(fresh);
    store_close(st);
    remove_home(home);
}
END_TEST

START_TEST(test_keys_second_rotation_keeps_shorter_grace)
{
    char *home = temp_home();
    store *st = open_home(home);
    key_info *list = NULL;
    size_t n = 0;
    ai_err err;

    (void)fx_keyring(st, T_NOW);
    ck_assert_int_eq(store_rotate_key(st, T_HOUR, t_key2, T_NOW, NULL, NULL,
                                      &err), AI_OK);
    ck_assert_int_eq(store_rotate_key(st, T_DAY, t_key2, T_NOW, NULL, NULL,
                                      &err), AI_OK);
    ck_assert_int_eq(store_list_keys(st, T_NOW, &list, &n, &err), AI_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(list[0].verify_until, T_NOW + T_HOUR); /* kept */
    ck_assert_int_eq(list[1].verify_until, T_NOW + T_DAY);
    ck_assert_int_eq(list[2].state, KEY_SIGNING);
    store_free(list);
    store_close(st);
    remove_home(home);
}
END_TEST

START_TEST(test_keys_import_node_secret_and_export)
{
    char *home = temp_home();
    store *st = open_home(home);
    const ai_keyring *kr;
    unsigned char out[AI_KEY_BYTES];
    ai_token *t = NULL;
    ai_err err;
    /* a token signed the Node package's way with that secret */
    char *w = t_sign(t_key1, "{\"agentId\":\"n\",\"scopes\":[\"a:b:c\"],"
                             "\"constraints\":{},\"delegatable\":true,"
                             "\"maxDelegationDepth\":3,\"currentDepth\":0,"
                             "\"expiresAt\":\"2026-12-01T12:00:00.000Z\"}");
    ai_verifier v;

    ck_assert_int_eq(store_import_key(st, t_key1, false, T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_export_key(st, 1, out, &err), AI_OK);
    ck_assert_mem_eq(out, t_key1, AI_KEY_BYTES);
    kr = fx_keyring(st, T_NOW);
    v.keys = kr;
    v.revoked = NULL;
    v.revoked_ud = NULL;
    ck_assert_int_eq(ai_token_verify(&v, w, strlen(w), T_NOW, &t, &err),
                     AI_OK);
    ck_assert_int_eq(store_export_key(st, 7, out, &err), AI_ENOTFOUND);
    ai_token_free(t);
    free(w);
    store_close(st);
    remove_home(home);
}
END_TEST

START_TEST(test_keys_import_refused_once_tokens_were_signed)
{
    char *home = temp_home();
    store *st = open_home(home);
    ai_err err;

    (void)fx_keyring(st, T_NOW);
    ck_assert_int_eq(store_note_signed(st, &err), AI_OK);
    ck_assert_int_eq(store_import_key(st, t_key1, false, T_NOW, NULL, &err),
                     AI_EDENIED);
    ck_assert(t_has(err.msg, "--force"));
    ck_assert_int_eq(store_import_key(st, t_key1, true, T_NOW, NULL, &err),
                     AI_OK);
    /* after a rotation too */
    ck_assert_int_eq(store_rotate_key(st, -1, t_key2, T_NOW, NULL, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_import_key(st, t_key2, false, T_NOW, NULL, &err),
                     AI_EDENIED);
    store_close(st);
    remove_home(home);
}
END_TEST

START_TEST(test_keys_sealed_at_rest)
{
    char *home = temp_home(), path[4096];
    store *st = open_home(home);
    unsigned char *raw;
    FILE *f;
    long size;
    ai_err err;

    ck_assert_int_eq(store_import_key(st, t_key2, false, T_NOW, NULL, &err),
                     AI_OK);
    store_close(st);
    snprintf(path, sizeof path, "%s/agent-iam.db", home);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    raw = malloc((size_t)size);
    ck_assert_uint_eq(fread(raw, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    for (long i = 0; i + AI_KEY_BYTES <= size; i++)
        ck_assert_msg(memcmp(raw + i, t_key2, AI_KEY_BYTES) != 0,
                      "key bytes found in the database file");
    free(raw);
    remove_home(home);
}
END_TEST

START_TEST(test_keys_second_handle_follows_rotation)
{
    char *home = temp_home();
    store *a = open_home(home), *b = open_home(home);
    const ai_keyring *kr;
    ai_err err;

    ck_assert_int_eq(store_sync(b, &err), AI_OK);
    kr = fx_keyring(b, T_NOW);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 1);
    ck_assert_int_eq(store_rotate_key(a, -1, t_key2, T_NOW, NULL, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_sync(b, &err), AI_OK);
    kr = fx_keyring(b, T_NOW);
    ck_assert_uint_eq(ai_keyring_signing_version(kr), 2);
    store_close(a);
    store_close(b);
    remove_home(home);
}
END_TEST

Suite *suite_store_keys(void)
{
    Suite *s = suite_create("store_keys");
    TCase *tc = tcase_create("keys");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_keys_new_home_gets_version_1);
    tcase_add_test(tc, test_keys_keyring_of_new_home_reads_without_creating);
    tcase_add_test(tc, test_keys_rotation_keeps_old_tokens_until_grace_ends);
    tcase_add_test(tc, test_keys_second_rotation_keeps_shorter_grace);
    tcase_add_test(tc, test_keys_import_node_secret_and_export);
    tcase_add_test(tc, test_keys_import_refused_once_tokens_were_signed);
    tcase_add_test(tc, test_keys_sealed_at_rest);
    tcase_add_test(tc, test_keys_second_handle_follows_rotation);
    suite_add_tcase(s, tc);
    return s;
}
