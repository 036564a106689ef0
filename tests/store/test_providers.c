/* test_providers.c - Suite "store_providers": provider configs
 * (src/store/providers.c) and API keys (src/store/apikeys.c): set, get,
 * replace and delete; secrets sealed at rest (never in the database
 * files' bytes, bound to their row); changelog rows in the same
 * transaction; bad names, bad configs and oversize input refused without
 * quoting a secret. Each test makes its own home under a fresh mkdtemp
 * directory and removes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "home_fixture.h"
#include "../tests.h"

#define GH_SECRET "PEM-SECRET-9c1f2d7e"
#define GH_JSON                                                           \
    "{\"appId\":\"123\",\"installationId\":\"456\",\"privateKey\":\"" \
    GH_SECRET "\"}"
#define API_SECRET "sk-test-5b8e0a4411d7"

typedef struct fx {
    char *home;
    store *st;
} fx;

static fx setup(void)
{
    fx f;

    f.home = fx_home_new();
    f.st = fx_open(f.home);
    return f;
}

static void teardown(fx *f)
{
    store_close(f->st);
    fx_home_free(f->home);
}

static void set_ok(store *st, const char *name, const char *json)
{
    ai_err err = {0};

    ck_assert_msg(store_provider_set(st, name, json, T_NOW, NULL,
                                     &err) == AI_OK,
                  "set %s: %s", name, err.msg);
}

/* The config of name; fails the test unless it is there. Wipe and free. */
static char *get_ok(store *st, const char *name)
{
    ai_err err = {0};
    char *json = NULL;

    ck_assert_msg(store_provider_get(st, name, &json, &err) == AI_OK,
                  "get %s: %s", name, err.msg);
    ck_assert_ptr_nonnull(json);
    return json;
}

static void secret_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        store_free(s);
    }
}

static void add_key(store *st, const char *name, const char *provider,
                    const char *base_url, int ttl, const char *secret)
{
    apikey_info info = {name, provider, base_url, ttl, 0};
    ai_err err = {0};

    ck_assert_msg(store_apikey_add(st, &info, secret, T_NOW, NULL,
                                   &err) == AI_OK,
                  "add %s: %s", name, err.msg);
}

/* Does the file hold these bytes anywhere? (false when it is absent) */
static bool file_has(const char *home, const char *file, const char *needle)
{
    char path[4096];
    size_t n = 0, m = strlen(needle);
    unsigned char *p = fx_read(fx_path(path, sizeof path, home, file), &n);
    bool found = false;

    for (size_t i = 0; p != NULL && !found && i + m <= n; i++)
        found = memcmp(p + i, needle, m) == 0;
    free(p);
    return found;
}

/* ---- the changelog, as store_changes reports it ------------------------ */

typedef struct change {
    char kind[16], key[80], op[8];
} change;

typedef struct changes {
    change c[16];
    size_t n;
} changes;

static bool on_change(void *ud, const store_change *ch)
{
    changes *cs = ud;

    ck_assert_uint_lt(cs->n, 16);
    snprintf(cs->c[cs->n].kind, sizeof cs->c[0].kind, "%s", ch->kind);
    snprintf(cs->c[cs->n].key, sizeof cs->c[0].key, "%s", ch->key);
    snprintf(cs->c[cs->n].op, sizeof cs->c[0].op, "%s", ch->op);
    cs->n++;
    return true;
}

/* The changes after seq `since`. */
static changes changes_since(store *st, int64_t since)
{
    changes cs;
    ai_err err = {0};

    memset(&cs, 0, sizeof cs);
    ck_assert_int_eq(store_changes(st, since, 16, on_change, &cs, &err),
                     AI_OK);
    return cs;
}

static int64_t head(store *st)
{
    int64_t seq = -1;
    ai_err err = {0};

    ck_assert_int_eq(store_changelog_head(st, &seq, &err), AI_OK);
    return seq;
}

static void assert_change(const change *c, const char *kind, const char *key,
                          const char *op)
{
    ck_assert_str_eq(c->kind, kind);
    ck_assert_str_eq(c->key, key);
    ck_assert_str_eq(c->op, op);
}

/* ---- provider configs ------------------------------------------------- */

START_TEST(test_provider_set_then_get_returns_the_json)
{
    fx f = setup();
    char *json;

    set_ok(f.st, "github", GH_JSON);
    json = get_ok(f.st, "github");
    ck_assert_str_eq(json, GH_JSON);
    secret_free(json);
    teardown(&f);
}
END_TEST

START_TEST(test_provider_set_replaces_the_whole_config)
{
    fx f = setup();
    char *json;

    set_ok(f.st, "aws", "{\"region\":\"us-east-1\",\"roleArn\":\"arn:a\","
                        "\"secretAccessKey\":\"old\"}");
    set_ok(f.st, "aws", "{\"region\":\"eu-west-1\",\"roleArn\":\"arn:b\","
                        "\"sessionDuration\":900,\"x\":true}");
    json = get_ok(f.st, "aws");
    ck_assert_str_eq(json, "{\"region\":\"eu-west-1\",\"roleArn\":\"arn:b\","
                           "\"sessionDuration\":900,\"x\":true}");
    ck_assert(!t_has(json, "secretAccessKey"));
    secret_free(json);
    teardown(&f);
}
END_TEST

START_TEST(test_provider_configs_are_kept_apart)
{
    fx f = setup();
    char *a, *b;

    set_ok(f.st, "github", GH_JSON);
    set_ok(f.st, "google", "{\"clientId\":\"c\",\"clientSecret\":\"s\","
                           "\"refreshToken\":\"r\"}");
    a = get_ok(f.st, "github");
    b = get_ok(f.st, "google");
    ck_assert_str_eq(a, GH_JSON);
    ck_assert(t_has(b, "\"clientId\":\"c\""));
    secret_free(a);
    secret_free(b);
    teardown(&f);
}
END_TEST

START_TEST(test_provider_get_absent_is_notfound)
{
    fx f = setup();
    ai_err err = {0};
    char *json = (char *)1;

    ck_assert_int_eq(store_provider_get(f.st, "google", &json, &err),
                     AI_ENOTFOUND);
    ck_assert_ptr_null(json);
    ck_assert(t_has(err.msg, "google"));
    teardown(&f);
}
END_TEST

START_TEST(test_provider_delete_removes_it)
{
    fx f = setup();
    ai_err err = {0};
    char *json = NULL;

    set_ok(f.st, "github", GH_JSON);
    ck_assert_int_eq(store_provider_delete(f.st, "github", T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_provider_get(f.st, "github", &json, &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_provider_delete(f.st, "github", T_NOW, NULL, &err),
                     AI_ENOTFOUND);
    teardown(&f);
}
END_TEST

START_TEST(test_provider_changes_are_logged)
{
    fx f = setup();
    ai_err err = {0};
    int64_t start = head(f.st);
    changes cs;

    set_ok(f.st, "github", GH_JSON);
    set_ok(f.st, "github", GH_JSON);
    ck_assert_int_eq(store_provider_delete(f.st, "github", T_NOW, NULL, &err),
                     AI_OK);
    /* refused changes log nothing */
    ck_assert_int_eq(store_provider_delete(f.st, "github", T_NOW, NULL, &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_provider_set(f.st, "slack", GH_JSON, T_NOW, NULL,
                                        &err),
                     AI_EINVAL);
    cs = changes_since(f.st, start);
    ck_assert_uint_eq(cs.n, 3);
    assert_change(&cs.c[0], "provider", "github", "set");
    assert_change(&cs.c[1], "provider", "github", "set");
    assert_change(&cs.c[2], "provider", "github", "delete");
    ck_assert_int_eq(head(f.st), start + 3);
    teardown(&f);
}
END_TEST

START_TEST(test_provider_unknown_names_are_refused)
{
    static const char *const bad[] = {"slack", "GitHub", "", "github ",
                                      "apikeys", "aws\n"};
    fx f = setup();
    ai_err err = {0};
    char *json = (char *)1;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(store_provider_set(f.st, bad[i], GH_JSON, T_NOW, NULL,
                                            &err),
                         AI_EINVAL);
        ck_assert(t_has(err.msg, "github, google or aws"));
        ck_assert_int_eq(store_provider_get(f.st, bad[i], &json, &err),
                         AI_EINVAL);
        ck_assert_ptr_null(json);
        ck_assert_int_eq(store_provider_delete(f.st, bad[i], T_NOW, NULL, &err),
                         AI_EINVAL);
    }
    ck_assert_int_eq(store_provider_set(f.st, NULL, GH_JSON, T_NOW, NULL, &err),
                     AI_EINVAL);
    teardown(&f);
}
END_TEST

START_TEST(test_provider_bad_configs_are_refused)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "\"a string\"",
        "{}",
        "{\"a\":{\"nested\":1}}",
        "{\"a\":[1]}",
        "{\"a\":null}",
        "{\"a\":\"x\",\"a\":\"y\"}", /* duplicate member */
        "{\"privateKey\":\"" GH_SECRET "\"",
        "{\"a\":\"\\u0000\"}",
    };
    fx f = setup();
    ai_err err = {0};
    char *json = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(store_provider_set(f.st, "github", bad[i], T_NOW, NULL,
                                         &err) == AI_EINVAL,
                      "accepted %s", bad[i]);
        ck_assert(!t_has(err.msg, GH_SECRET));
    }
    ck_assert_int_eq(store_provider_set(f.st, "github", NULL, T_NOW, NULL,
                                        &err),
                     AI_EINVAL);
    ck_assert_int_eq(store_provider_get(f.st, "github", &json, &err),
                     AI_ENOTFOUND);
    teardown(&f);
}
END_TEST

/* {"k":"xxx...x"} of exactly n bytes. */
static char *config_of(size_t n)
{
    char *s = malloc(n + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, 'x', n);
    memcpy(s, "{\"k\":\"", 6);
    memcpy(s + n - 2, "\"}", 2);
    s[n] = '\0';
    return s;
}

START_TEST(test_provider_config_of_8192_bytes_is_the_limit)
{
    fx f = setup();
    ai_err err = {0};
    char *ok = config_of(8192), *big = config_of(8193), *json;

    set_ok(f.st, "google", ok);
    json = get_ok(f.st, "google");
    ck_assert_str_eq(json, ok);
    ck_assert_int_eq(store_provider_set(f.st, "google", big, T_NOW, NULL, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "8192"));
    secret_free(json);
    free(ok);
    free(big);
    teardown(&f);
}
END_TEST

START_TEST(test_provider_secret_is_sealed_at_rest)
{
    fx f = setup();

    set_ok(f.st, "github", GH_JSON);
    add_key(f.st, "openai", "openai", NULL, 0, API_SECRET);
    /* While open, the commit may still be in the WAL only. */
    ck_assert(!file_has(f.home, STORE_DB_FILE, GH_SECRET));
    ck_assert(!file_has(f.home, STORE_DB_FILE "-wal", GH_SECRET));
    ck_assert(!file_has(f.home, STORE_DB_FILE, API_SECRET));
    ck_assert(!file_has(f.home, STORE_DB_FILE "-wal", API_SECRET));
    /* The clear parts are stored, so the search itself works. */
    ck_assert(file_has(f.home, STORE_DB_FILE, "openai") ||
              file_has(f.home, STORE_DB_FILE "-wal", "openai"));
    store_close(f.st);
    f.st = NULL;
    /* Closed: checkpointed into the database file. */
    ck_assert(!file_has(f.home, STORE_DB_FILE, GH_SECRET));
    ck_assert(!file_has(f.home, STORE_DB_FILE, API_SECRET));
    ck_assert(file_has(f.home, STORE_DB_FILE, "openai"));
    teardown(&f);
}
END_TEST

START_TEST(test_provider_survives_reopen)
{
    fx f = setup();
    char *json;

    set_ok(f.st, "github", GH_JSON);
    store_close(f.st);
    f.st = fx_open(f.home);
    json = get_ok(f.st, "github");
    ck_assert_str_eq(json, GH_JSON);
    secret_free(json);
    teardown(&f);
}
END_TEST

/* A sealed blob is bound to its row: copied to another provider's row, it
 * does not open there. */
START_TEST(test_provider_blob_moved_to_another_row_fails)
{
    fx f = setup();
    ai_err err = {0};
    char *json = (char *)1;
    sqlite3 *db;

    set_ok(f.st, "github", GH_JSON);
    db = fx_sqlite(f.home);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "INSERT INTO providers (name, config, "
                                  "updated_at) SELECT 'google', config, 0 "
                                  "FROM providers WHERE name = 'github'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(store_provider_get(f.st, "google", &json, &err),
                     AI_ESTORE);
    ck_assert_ptr_null(json);
    ck_assert(t_has(err.msg, "cannot decrypt"));
    ck_assert(!t_has(err.msg, GH_SECRET));
    teardown(&f);
}
END_TEST

START_TEST(test_provider_seen_by_another_handle)
{
    fx f = setup();
    store *other = fx_open(f.home);
    char *json;

    set_ok(f.st, "aws", "{\"region\":\"us-east-1\"}");
    json = get_ok(other, "aws");
    ck_assert_str_eq(json, "{\"region\":\"us-east-1\"}");
    secret_free(json);
    store_close(other);
    teardown(&f);
}
END_TEST

/* ---- API keys --------------------------------------------------------- */

typedef struct listed {
    char name[80], provider[80], base_url[256];
    int ttl;
    int64_t created_at;
} listed;

typedef struct listing {
    listed k[8];
    size_t n;
} listing;

static void on_key(void *ud, const apikey_info *info)
{
    listing *l = ud;
    listed *k;

    ck_assert_uint_lt(l->n, 8);
    k = &l->k[l->n++];
    snprintf(k->name, sizeof k->name, "%s", info->name);
    snprintf(k->provider, sizeof k->provider, "%s", info->provider);
    snprintf(k->base_url, sizeof k->base_url, "%s",
             info->base_url ? info->base_url : "(null)");
    k->ttl = info->ttl_minutes;
    k->created_at = info->created_at;
}

static listing list_keys(store *st)
{
    listing l;
    ai_err err = {0};

    memset(&l, 0, sizeof l);
    ck_assert_int_eq(store_apikey_list(st, on_key, &l, &err), AI_OK);
    return l;
}

static char *key_secret(store *st, const char *name)
{
    ai_err err = {0};
    char *s = NULL;

    ck_assert_msg(store_apikey_secret(st, name, &s, &err) == AI_OK,
                  "secret %s: %s", name, err.msg);
    return s;
}

START_TEST(test_apikey_add_list_secret_remove)
{
    fx f = setup();
    ai_err err = {0};
    listing l;
    char *s;

    add_key(f.st, "openai", "openai", "https://api.openai.com/v1", 60,
            API_SECRET);
    add_key(f.st, "anthropic", "anthropic", NULL, 0, "sk-ant-2");
    l = list_keys(f.st);
    ck_assert_uint_eq(l.n, 2);
    /* by name */
    ck_assert_str_eq(l.k[0].name, "anthropic");
    ck_assert_str_eq(l.k[0].base_url, "(null)");
    ck_assert_int_eq(l.k[0].ttl, 0);
    ck_assert_str_eq(l.k[1].name, "openai");
    ck_assert_str_eq(l.k[1].provider, "openai");
    ck_assert_str_eq(l.k[1].base_url, "https://api.openai.com/v1");
    ck_assert_int_eq(l.k[1].ttl, 60);
    ck_assert_int_eq(l.k[1].created_at, T_NOW);
    s = key_secret(f.st, "openai");
    ck_assert_str_eq(s, API_SECRET);
    secret_free(s);
    ck_assert_int_eq(store_apikey_remove(f.st, "openai", T_NOW, NULL, &err),
                     AI_OK);
    l = list_keys(f.st);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.k[0].name, "anthropic");
    teardown(&f);
}
END_TEST

START_TEST(test_apikey_add_replaces_an_existing_name)
{
    fx f = setup();
    listing l;
    char *s;

    add_key(f.st, "openai", "openai", "https://a.example", 60, "first");
    add_key(f.st, "openai", "azure", NULL, 5, "second");
    l = list_keys(f.st);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.k[0].provider, "azure");
    ck_assert_str_eq(l.k[0].base_url, "(null)");
    ck_assert_int_eq(l.k[0].ttl, 5);
    s = key_secret(f.st, "openai");
    ck_assert_str_eq(s, "second");
    secret_free(s);
    teardown(&f);
}
END_TEST

START_TEST(test_apikey_absent_is_notfound)
{
    fx f = setup();
    ai_err err = {0};
    char *s = (char *)1;

    ck_assert_int_eq(store_apikey_secret(f.st, "nope", &s, &err),
                     AI_ENOTFOUND);
    ck_assert_ptr_null(s);
    ck_assert(t_has(err.msg, "\"nope\" not found"));
    ck_assert_int_eq(store_apikey_remove(f.st, "nope", T_NOW, NULL, &err),
                     AI_ENOTFOUND);
    ck_assert_uint_eq(list_keys(f.st).n, 0);
    teardown(&f);
}
END_TEST

START_TEST(test_apikey_changes_are_logged)
{
    fx f = setup();
    ai_err err = {0};
    int64_t start = head(f.st);
    changes cs;

    add_key(f.st, "openai", "openai", NULL, 0, API_SECRET);
    ck_assert_int_eq(store_apikey_remove(f.st, "openai", T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_apikey_remove(f.st, "openai", T_NOW, NULL, &err),
                     AI_ENOTFOUND);
    cs = changes_since(f.st, start);
    ck_assert_uint_eq(cs.n, 2);
    assert_change(&cs.c[0], "apikey", "openai", "set");
    assert_change(&cs.c[1], "apikey", "openai", "delete");
    teardown(&f);
}
END_TEST

START_TEST(test_apikey_bad_names_and_providers_are_refused)
{
    static const char *const bad[] = {"", "a b", "a/b", "é", "a\nb",
                                      "x:y", "name;drop"};
    char long_name[66];
    fx f = setup();
    ai_err err = {0};
    apikey_info info = {"ok", "ok", NULL, 0, 0};
    char *s = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        info.name = bad[i];
        info.provider = "openai";
        ck_assert_int_eq(store_apikey_add(f.st, &info, API_SECRET, T_NOW, NULL,
                                          &err),
                         AI_EINVAL);
        ck_assert(t_has(err.msg, "name"));
        info.name = "openai";
        info.provider = bad[i];
        ck_assert_int_eq(store_apikey_add(f.st, &info, API_SECRET, T_NOW, NULL,
                                          &err),
                         AI_EINVAL);
        ck_assert(t_has(err.msg, "provider"));
        ck_assert_int_eq(store_apikey_secret(f.st, bad[i], &s, &err),
                         AI_EINVAL);
        ck_assert_int_eq(store_apikey_remove(f.st, bad[i], T_NOW, NULL, &err),
                         AI_EINVAL);
    }
    memset(long_name, 'n', 65);
    long_name[65] = '\0';
    info.name = long_name;
    info.provider = "p";
    ck_assert_int_eq(store_apikey_add(f.st, &info, API_SECRET, T_NOW, NULL,
                                      &err),
                     AI_EINVAL);
    long_name[64] = '\0'; /* 64 is the limit */
    add_key(f.st, long_name, "p.v_1-X", NULL, 0, API_SECRET);
    ck_assert_int_eq(store_apikey_add(f.st, NULL, API_SECRET, T_NOW, NULL,
                                      &err),
                     AI_EINVAL);
    ck_assert_uint_eq(list_keys(f.st).n, 1);
    teardown(&f);
}
END_TEST

START_TEST(test_apikey_bad_secrets_are_refused_without_quoting_them)
{
    char big[4098];
    fx f = setup();
    ai_err err = {0};
    apikey_info info = {"openai", "openai", NULL, 0, 0};
    char *s;

    ck_assert_int_eq(store_apikey_add(f.st, &info, "", T_NOW, NULL, &err),
                     AI_EINVAL);
    ck_assert_int_eq(store_apikey_add(f.st, &info, NULL, T_NOW, NULL, &err),
                     AI_EINVAL);
    ck_assert_int_eq(store_apikey_add(f.st, &info, API_SECRET "\n", T_NOW, NULL,
                                      &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "control"));
    ck_assert(!t_has(err.msg, API_SECRET));
    ck_assert_int_eq(store_apikey_add(f.st, &info, "sk-\xff\xfe", T_NOW, NULL,
                                      &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "UTF-8"));
    memset(big, 'k', 4097);
    big[4097] = '\0';
    ck_assert_int_eq(store_apikey_add(f.st, &info, big, T_NOW, NULL, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "4096"));
    ck_assert(!t_has(err.msg, "kkkk"));
    big[4096] = '\0'; /* 4096 bytes is the limit */
    add_key(f.st, "openai", "openai", NULL, 0, big);
    s = key_secret(f.st, "openai");
    ck_assert_uint_eq(strlen(s), 4096);
    secret_free(s);
    teardown(&f);
}
END_TEST

START_TEST(test_apikey_bad_urls_and_ttls_are_refused)
{
    static const char *const bad_urls[] = {"", "ftp://x", "https://",
                                           "https://a b", "api.example.com",
                                           "https://x\n"};
    fx f = setup();
    ai_err err = {0};
    apikey_info info = {"openai", "openai", NULL, 0, 0};

    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
        info.base_url = bad_urls[i];
        ck_assert_msg(store_apikey_add(f.st, &info, API_SECRET, T_NOW, NULL,
                                       &err) == AI_EINVAL,
                      "accepted %s", bad_urls[i]);
    }
    info.base_url = NULL;
    info.ttl_minutes = -1;
    ck_assert_int_eq(store_apikey_add(f.st, &info, API_SECRET, T_NOW, NULL,
                                      &err),
                     AI_EINVAL);
    info.ttl_minutes = 90 * 24 * 60 + 1;
    ck_assert_int_eq(store_apikey_add(f.st, &info, API_SECRET, T_NOW, NULL,
                                      &err),
                     AI_EINVAL);
    add_key(f.st, "openai", "openai", "http://127.0.0.1:8080/v1",
            90 * 24 * 60, API_SECRET);
    ck_assert_uint_eq(list_keys(f.st).n, 1);
    teardown(&f);
}
END_TEST

Suite *suite_store_providers(void)
{
    Suite *s = suite_create("store_providers");
    TCase *tc = tcase_create("providers");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_provider_set_then_get_returns_the_json);
    tcase_add_test(tc, test_provider_set_replaces_the_whole_config);
    tcase_add_test(tc, test_provider_configs_are_kept_apart);
    tcase_add_test(tc, test_provider_get_absent_is_notfound);
    tcase_add_test(tc, test_provider_delete_removes_it);
    tcase_add_test(tc, test_provider_changes_are_logged);
    tcase_add_test(tc, test_provider_unknown_names_are_refused);
    tcase_add_test(tc, test_provider_bad_configs_are_refused);
    tcase_add_test(tc, test_provider_config_of_8192_bytes_is_the_limit);
    tcase_add_test(tc, test_provider_secret_is_sealed_at_rest);
    tcase_add_test(tc, test_provider_survives_reopen);
    tcase_add_test(tc, test_provider_blob_moved_to_another_row_fails);
    tcase_add_test(tc, test_provider_seen_by_another_handle);
    tcase_add_test(tc, test_apikey_add_list_secret_remove);
    tcase_add_test(tc, test_apikey_add_replaces_an_existing_name);
    tcase_add_test(tc, test_apikey_absent_is_notfound);
    tcase_add_test(tc, test_apikey_changes_are_logged);
    tcase_add_test(tc, test_apikey_bad_names_and_providers_are_refused);
    tcase_add_test(tc, test_apikey_bad_secrets_are_refused_without_quoting_them);
    tcase_add_test(tc, test_apikey_bad_urls_and_ttls_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
