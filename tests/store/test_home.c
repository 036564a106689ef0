/* test_home.c - Suite "store_home": the broker home (src/store/home.c) and
 * opening its database (src/store/db.c): modes on creation, refusal of
 * readable files, of a wrong or missing master key, of a file that is not
 * an agent-iam database (left byte for byte as it was), and the schema
 * version. Each test makes its own home under a fresh mkdtemp directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "home_fixture.h"
#include "../tests.h"

/* store_open must fail with AI_ESTORE (or code), leave *out NULL, and say
 * every one of the words. */
static void open_refused(const char *home, ai_code code, const char *w1,
                         const char *w2, const char *w3)
{
    store *st = (store *)&st;
    ai_err err = {0};

    ck_assert_int_eq(store_open(home, true, &st, &err), code);
    ck_assert_ptr_null(st);
    ck_assert_int_eq(err.code, code);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    ck_assert_msg(t_has(err.msg, w1), "\"%s\" lacks \"%s\"", err.msg, w1);
    if (w2 != NULL)
        ck_assert_msg(t_has(err.msg, w2), "\"%s\" lacks \"%s\"", err.msg, w2);
    if (w3 != NULL)
        ck_assert_msg(t_has(err.msg, w3), "\"%s\" lacks \"%s\"", err.msg, w3);
}

/* A home made and closed, with its signing key (sealed) made too. */
static char *made_home(void)
{
    char *home = fx_home_new();
    store *st = fx_open(home);

    (void)fx_keyring(st, T_NOW);
    store_close(st);
    return home;
}

static void remove_wal(const char *home)
{
    char p[4096];

    unlink(fx_path(p, sizeof p, home, STORE_DB_FILE "-wal"));
    unlink(fx_path(p, sizeof p, home, STORE_DB_FILE "-shm"));
}

/* Replace the database with these bytes, open, and check the refusal
 * names the file and left it exactly as it was. */
static void refused_untouched(const char *home, const void *bytes, size_t n,
                              const char *words)
{
    char p[4096];
    unsigned char *after;
    size_t m = 0;

    fx_path(p, sizeof p, home, STORE_DB_FILE);
    remove_wal(home);
    fx_write(p, bytes, n, 0600);
    open_refused(home, AI_ESTORE, p, words, NULL);
    after = fx_read(p, &m);
    ck_assert_ptr_nonnull(after);
    ck_assert_uint_eq(m, n);
    ck_assert_int_eq(memcmp(after, bytes, n), 0);
    free(after);
    ck_assert_int_ne(access(fx_path(p, sizeof p, home, STORE_DB_FILE "-wal"),
                            F_OK),
                     0);
}

START_TEST(test_home_created_private)
{
    char *home = fx_home_new(), p[4096];
    struct stat sb;
    store *st = fx_open(home);

    ck_assert_int_eq(stat(home, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_uint_eq(sb.st_mode & 0777, 0700);
    ck_assert_int_eq(lstat(fx_path(p, sizeof p, home, STORE_KEY_FILE), &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(sb.st_size, AI_KEY_BYTES);
    ck_assert_int_eq(lstat(fx_path(p, sizeof p, home, STORE_DB_FILE), &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_uint_eq(sb.st_mode & 077, 0);
    ck_assert_str_eq(store_home(st), home);
    /* after a write the WAL files exist, and are private too */
    (void)fx_keyring(st, T_NOW);
    ck_assert_int_eq(
        lstat(fx_path(p, sizeof p, home, STORE_DB_FILE "-wal"), &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 077, 0);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_master_key_is_random)
{
    char *h1 = made_home(), *h2 = made_home(), p[4096];
    unsigned char *k1, *k2;
    size_t n1 = 0, n2 = 0;

    k1 = fx_read(fx_path(p, sizeof p, h1, STORE_KEY_FILE), &n1);
    k2 = fx_read(fx_path(p, sizeof p, h2, STORE_KEY_FILE), &n2);
    ck_assert_ptr_nonnull(k1);
    ck_assert_ptr_nonnull(k2);
    ck_assert_uint_eq(n1, AI_KEY_BYTES);
    ck_assert_uint_eq(n2, AI_KEY_BYTES);
    ck_assert_int_ne(memcmp(k1, k2, AI_KEY_BYTES), 0);
    free(k1);
    free(k2);
    fx_home_free(h1);
    fx_home_free(h2);
}
END_TEST

START_TEST(test_home_reopen_keeps_the_key)
{
    char *home = made_home();
    const ai_keyring *kr;
    ai_token *root, *out = NULL;
    ai_err err = {0};
    store *st = fx_open(home);

    kr = fx_keyring(st, T_NOW);
    root = t_root(kr, T_LIST("github:repo:read"), NULL);
    store_close(st);
    st = fx_open(home);
    kr = fx_keyring(st, T_NOW);
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(root), &out, &err),
                     AI_OK);
    ai_token_free(out);
    ai_token_free(root);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_group_readable_home)
{
    char *home = made_home(), fix[4200];

    snprintf(fix, sizeof fix, "chmod 700 %s", home);
    ck_assert_int_eq(chmod(home, 0750), 0);
    open_refused(home, AI_ESTORE, home, fix, "group or others");
    ck_assert_int_eq(chmod(home, 0705), 0);
    open_refused(home, AI_ESTORE, fix, NULL, NULL);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_readable_master_key)
{
    char *home = made_home(), p[4096], fix[4200];

    fx_path(p, sizeof p, home, STORE_KEY_FILE);
    snprintf(fix, sizeof fix, "chmod 600 %s", p);
    ck_assert_int_eq(chmod(p, 0640), 0);
    open_refused(home, AI_ESTORE, p, fix, NULL);
    ck_assert_int_eq(chmod(p, 0604), 0);
    open_refused(home, AI_ESTORE, fix, NULL, NULL);
    /* the key file is never rewritten to "fix" it */
    ck_assert_int_eq(chmod(p, 0600), 0);
    store_close(fx_open(home));
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_readable_database)
{
    char *home = made_home(), p[4096], fix[4200];

    fx_path(p, sizeof p, home, STORE_DB_FILE);
    snprintf(fix, sizeof fix, "chmod 600 %s", p);
    ck_assert_int_eq(chmod(p, 0644), 0);
    open_refused(home, AI_ESTORE, p, fix, NULL);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_wrong_master_key)
{
    char *home = made_home(), kp[4096], dp[4096];
    unsigned char other[AI_KEY_BYTES], *good, *before, *after;
    size_t n = 0, nb = 0, na = 0;
    const ai_keyring *kr;
    ai_token *root, *out = NULL;
    ai_err err = {0};
    store *st = fx_open(home);

    /* a token signed with the sealed key, to check it after */
    kr = fx_keyring(st, T_NOW);
    root = t_root(kr, T_LIST("github:repo:read"), NULL);
    store_close(st);
    fx_path(kp, sizeof kp, home, STORE_KEY_FILE);
    fx_path(dp, sizeof dp, home, STORE_DB_FILE);
    good = fx_read(kp, &n);
    ck_assert_ptr_nonnull(good);
    ck_assert_int_eq(RAND_bytes(other, sizeof other), 1);
    fx_write(kp, other, sizeof other, 0600);
    before = fx_read(dp, &nb);
    ck_assert_ptr_nonnull(before);

    open_refused(home, AI_ESTORE, "wrong master key", kp, dp);

    /* nothing was written with the wrong key */
    after = fx_read(dp, &na);
    ck_assert_ptr_nonnull(after);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(memcmp(before, after, nb), 0);
    /* and the right key still opens it, with the same signing key */
    fx_write(kp, good, n, 0600);
    st = fx_open(home);
    kr = fx_keyring(st, T_NOW);
    ck_assert_int_eq(t_verify(kr, ai_token_serialize(root), &out, &err),
                     AI_OK);
    ai_token_free(out);
    ai_token_free(root);
    store_close(st);
    free(good);
    free(before);
    free(after);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_short_master_key)
{
    char *home = made_home(), p[4096];

    fx_path(p, sizeof p, home, STORE_KEY_FILE);
    fx_write(p, "0123456789", 10, 0600);
    open_refused(home, AI_ESTORE, p, "32 bytes", NULL);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_missing_master_key)
{
    char *home = made_home(), p[4096];

    fx_path(p, sizeof p, home, STORE_KEY_FILE);
    ck_assert_int_eq(unlink(p), 0);
    open_refused(home, AI_ESTORE, p, "missing", NULL);
    /* a new key would make the sealed secrets unreadable: none is made */
    ck_assert_int_ne(access(p, F_OK), 0);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_random_bytes)
{
    char *home = made_home();
    unsigned char junk[8192];

    ck_assert_int_eq(RAND_bytes(junk, sizeof junk), 1);
    refused_untouched(home, junk, sizeof junk, "not an agent-iam database");
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_text_file)
{
    static const char text[] = "agent-iam.db is a text file now\n"
                               "# with a second line\n";
    char *home = made_home();

    refused_untouched(home, text, sizeof text - 1,
                      "not an agent-iam database");
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_damaged_database)
{
    char *home = made_home(), p[4096];
    unsigned char *db;
    size_t n = 0;

    /* our database with its schema page (after the 100-byte header) and
     * the rest overwritten: SQLite's header still says SQLite */
    fx_path(p, sizeof p, home, STORE_DB_FILE);
    db = fx_read(p, &n);
    ck_assert_ptr_nonnull(db);
    ck_assert_uint_gt(n, 4096);
    ck_assert_int_eq(RAND_bytes(db + 100, (int)(n - 100)), 1);
    refused_untouched(home, db, n, "agent-iam");
    free(db);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_foreign_sqlite_database)
{
    char *home = made_home(), p[4096];
    unsigned char *bytes;
    sqlite3 *db = NULL;
    size_t n = 0;

    fx_path(p, sizeof p, home, STORE_DB_FILE);
    remove_wal(home);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(sqlite3_open(p, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "CREATE TABLE songs (title TEXT);"
                                  "INSERT INTO songs VALUES ('la');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(chmod(p, 0600), 0);
    bytes = fx_read(p, &n);
    ck_assert_ptr_nonnull(bytes);
    refused_untouched(home, bytes, n, "not agent-iam's");
    free(bytes);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_schema_version_recorded)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    sqlite3 *db = fx_sqlite(home);
    int v = store_schema_version(st);

    ck_assert_int_ge(v, 1);
    ck_assert_int_eq(fx_int(db, "SELECT max(version) FROM schema_version"), v);
    /* one row per migration, each applied once */
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM schema_version"), v);
    store_close(st);
    st = fx_open(home);
    ck_assert_int_eq(store_schema_version(st), v);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM schema_version"), v);
    ck_assert_int_eq(
        fx_int(db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    sqlite3_close(db);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_refuses_newer_schema)
{
    char *home = made_home();
    sqlite3 *db = fx_sqlite(home);

    ck_assert_int_eq(sqlite3_exec(db,
                                  "INSERT INTO schema_version VALUES (9999)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    open_refused(home, AI_ESTORE, "9999", "upgrade agent-iam", NULL);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_open_without_create_makes_nothing)
{
    char *home = fx_home_new();
    store *st = (store *)&st;
    ai_err err = {0};

    ck_assert_int_ne(store_open(home, false, &st, &err), AI_OK);
    ck_assert_ptr_null(st);
    ck_assert(t_has(err.msg, home));
    ck_assert_int_ne(access(home, F_OK), 0);
    fx_home_free(home);
}
END_TEST

START_TEST(test_home_path_flag_then_env_then_home)
{
    char *saved_env = getenv("AGENT_IAM_HOME"), *saved_home = getenv("HOME");
    char out[256], *env_copy = saved_env ? strdup(saved_env) : NULL,
                   *home_copy = saved_home ? strdup(saved_home) : NULL;
    ai_err err = {0};

    ck_assert_int_eq(setenv("AGENT_IAM_HOME", "/env/home", 1), 0);
    ck_assert_int_eq(setenv("HOME", "/users/me", 1), 0);
    ck_assert_int_eq(store_home_path("/flag/home/", out, sizeof out, &err),
                     AI_OK);
    ck_assert_str_eq(out, "/flag/home");
    ck_assert_int_eq(store_home_path(NULL, out, sizeof out, &err), AI_OK);
    ck_assert_str_eq(out, "/env/home");
    ck_assert_int_eq(unsetenv("AGENT_IAM_HOME"), 0);
    ck_assert_int_eq(store_home_path(NULL, out, sizeof out, &err), AI_OK);
    ck_assert_str_eq(out, "/users/me/.agent-iam");
    ck_assert_int_eq(store_home_path(NULL, out, 8, &err), AI_EINVAL);
    if (env_copy)
        setenv("AGENT_IAM_HOME", env_copy, 1);
    if (home_copy)
        setenv("HOME", home_copy, 1);
    else
        unsetenv("HOME");
    free(env_copy);
    free(home_copy);
}
END_TEST

Suite *suite_store_home(void)
{
    Suite *s = suite_create("store_home");
    TCase *tc = tcase_create("home");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_home_created_private);
    tcase_add_test(tc, test_home_master_key_is_random);
    tcase_add_test(tc, test_home_reopen_keeps_the_key);
    tcase_add_test(tc, test_home_open_refuses_group_readable_home);
    tcase_add_test(tc, test_home_open_refuses_readable_master_key);
    tcase_add_test(tc, test_home_open_refuses_readable_database);
    tcase_add_test(tc, test_home_open_refuses_wrong_master_key);
    tcase_add_test(tc, test_home_open_refuses_short_master_key);
    tcase_add_test(tc, test_home_open_refuses_missing_master_key);
    tcase_add_test(tc, test_home_open_refuses_random_bytes);
    tcase_add_test(tc, test_home_open_refuses_text_file);
    tcase_add_test(tc, test_home_open_refuses_damaged_database);
    tcase_add_test(tc, test_home_open_refuses_foreign_sqlite_database);
    tcase_add_test(tc, test_home_schema_version_recorded);
    tcase_add_test(tc, test_home_open_refuses_newer_schema);
    tcase_add_test(tc, test_home_open_without_create_makes_nothing);
    tcase_add_test(tc, test_home_path_flag_then_env_then_home);
    suite_add_tcase(s, tc);
    return s;
}
