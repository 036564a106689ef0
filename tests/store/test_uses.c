/* test_uses.c - Suite "store_uses": use counters for maxUses budgets
 * (src/store/uses.c). The last use is granted once; every budget of a
 * call is counted, or none when one is full; eight processes racing on
 * one budget get exactly its uses between them. Each test makes its own
 * home under a fresh mkdtemp directory and removes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "../tests.h"

/* ---- a temporary home ------------------------------------------------- */

typedef t_home home;

static void home_make(home *h)
{
    t_home_make(h, "uses");
}

#define home_remove t_home_remove
#define open_home t_home_open

/* The stored count of a budget, read with a plain SQLite connection; -1
 * when it has no row. */
static long long used_of(const home *h, const char *id)
{
    char p[160];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long long v = -1;

    snprintf(p, sizeof p, "%s/%s", h->path, STORE_DB_FILE);
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT used FROM uses "
                                        "WHERE budget_id = ?",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* Consume and assert the call itself succeeded. */
static bool consume(store *st, const ai_budget_ref *b, size_t n,
                    uint32_t *remaining)
{
    bool granted = false;
    ai_err err = {0};

    ck_assert_msg(store_consume(st, b, n, T_NOW, &granted, remaining,
                                &err) == AI_OK,
                  "consume: %s", err.msg);
    return granted;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(test_uses_last_use_granted_once)
{
    const ai_budget_ref b[] = {{"tok:read", 3}};
    uint32_t rem = 99;
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h);
    ck_assert(consume(st, b, 1, &rem));
    ck_assert_uint_eq(rem, 2);
    ck_assert(consume(st, b, 1, &rem));
    ck_assert_uint_eq(rem, 1);
    ck_assert(consume(st, b, 1, &rem));
    ck_assert_uint_eq(rem, 0);
    for (int i = 0; i < 3; i++) {
        rem = 99;
        ck_assert(!consume(st, b, 1, &rem));
        ck_assert_uint_eq(rem, 0);
    }
    store_close(st);
    ck_assert_int_eq(used_of(&h, "tok:read"), 3);
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_every_budget_counted)
{
    const ai_budget_ref b[] = {{"a", 5}, {"b", 3}, {"c", 10}};
    uint32_t rem = 0;
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h);
    ck_assert(consume(st, b, 3, &rem));
    ck_assert_uint_eq(rem, 2); /* b: 3 - 1 */
    ck_assert(consume(st, b, 2, &rem)); /* a and b only */
    ck_assert_uint_eq(rem, 1);
    store_close(st);
    ck_assert_int_eq(used_of(&h, "a"), 2);
    ck_assert_int_eq(used_of(&h, "b"), 2);
    ck_assert_int_eq(used_of(&h, "c"), 1);
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_one_full_budget_refuses_all_counts_none)
{
    const ai_budget_ref one[] = {{"small", 1}};
    const ai_budget_ref both[] = {{"big", 5}, {"small", 1}};
    uint32_t rem = 0;
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h);
    ck_assert(consume(st, one, 1, &rem));
    ck_assert_uint_eq(rem, 0);
    for (int i = 0; i < 3; i++) {
        rem = 99;
        ck_assert(!consume(st, both, 2, &rem));
        ck_assert_uint_eq(rem, 0);
    }
    store_close(st);
    ck_assert_int_eq(used_of(&h, "small"), 1);
    ck_assert_int_eq(used_of(&h, "big"), -1); /* never counted */
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_same_budget_twice_counts_once)
{
    const ai_budget_ref b[] = {{"x", 4}, {"y", 9}, {"x", 4}};
    uint32_t rem = 0;
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h);
    ck_assert(consume(st, b, 3, &rem));
    ck_assert_uint_eq(rem, 3);
    store_close(st);
    ck_assert_int_eq(used_of(&h, "x"), 1);
    ck_assert_int_eq(used_of(&h, "y"), 1);
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_zero_max_never_granted)
{
    const ai_budget_ref b[] = {{"none", 0}};
    uint32_t rem = 99;
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h);
    ck_assert(!consume(st, b, 1, &rem));
    ck_assert_uint_eq(rem, 0);
    store_close(st);
    ck_assert_int_eq(used_of(&h, "none"), -1);
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_no_budget_is_granted)
{
    uint32_t rem = 0;
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h);
    ck_assert(consume(st, NULL, 0, &rem));
    ck_assert_uint_eq(rem, UINT32_MAX);
    store_close(st);
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_bad_budget_ids_refused)
{
    char big[258];
    ai_budget_ref b[] = {{"ok", 3}, {NULL, 3}};
    bool granted = true;
    uint32_t rem = 7;
    ai_err err = {0};
    home h;
    store *st;

    memset(big, 'b', 257), big[257] = '\0';
    home_make(&h);
    st = open_home(&h);
    ck_assert_int_eq(store_consume(st, b, 2, T_NOW, &granted, &rem, &err),
                     AI_EINVAL);
    ck_assert(!granted);
    ck_assert_uint_eq(rem, 0);
    b[1].id = "";
    ck_assert_int_eq(store_consume(st, b, 2, T_NOW, &granted, &rem, &err),
                     AI_EINVAL);
    b[1].id = big;
    ck_assert_int_eq(store_consume(st, b, 2, T_NOW, &granted, &rem, &err),
                     AI_EINVAL);
    ck_assert(t_has(err.msg, "budget id"));
    store_close(st);
    ck_assert_int_eq(used_of(&h, "ok"), -1); /* nothing counted */
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_counts_shared_between_handles)
{
    const ai_budget_ref b[] = {{"shared", 4}};
    uint32_t rem = 0;
    int grants = 0;
    home h;
    store *a, *c;

    home_make(&h);
    a = open_home(&h);
    c = open_home(&h);
    for (int i = 0; i < 10; i++)
        grants += consume(i % 2 ? a : c, b, 1, &rem);
    ck_assert_int_eq(grants, 4);
    store_close(a);
    store_close(c);
    home_remove(&h);
}
END_TEST

START_TEST(test_uses_race_between_processes_grants_exactly_max)
{
    enum { KIDS = 8, TRIES = 50, MAX = 100 };
    pid_t pids[KIDS];
    int total = 0;
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h); /* made before the children race to open it */
    store_close(st);
    for (int k = 0; k < KIDS; k++) {
        pids[k] = fork();
        ck_assert_int_ge(pids[k], 0);
        if (pids[k] == 0) {
            /* The child reports its grants through its exit status
             * (0..50), 255 on any error: no Check calls here. */
            const ai_budget_ref b[] = {{"race", MAX}};
            store *cs = NULL;
            ai_err err;
            int grants = 0;
            if (store_open(h.path, true, &cs, &err) != AI_OK)
                _exit(255);
            for (int i = 0; i < TRIES; i++) {
                bool granted = false;
                uint32_t rem;
                if (store_consume(cs, b, 1, T_NOW, &granted, &rem, &err) !=
                    AI_OK) {
                    store_close(cs);
                    _exit(255);
                }
                grants += granted;
            }
            store_close(cs);
            _exit(grants);
        }
    }
    for (int k = 0; k < KIDS; k++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[k], &status, 0), pids[k]);
        ck_assert(WIFEXITED(status));
        ck_assert_int_ne(WEXITSTATUS(status), 255);
        total += WEXITSTATUS(status);
    }
    ck_assert_int_eq(total, MAX);
    ck_assert_int_eq(used_of(&h, "race"), MAX);
    home_remove(&h);
}
END_TEST

Suite *suite_store_uses(void)
{
    Suite *s = suite_create("store_uses");
    TCase *tc = tcase_create("uses");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_uses_last_use_granted_once);
    tcase_add_test(tc, test_uses_every_budget_counted);
    tcase_add_test(tc, test_uses_one_full_budget_refuses_all_counts_none);
    tcase_add_test(tc, test_uses_same_budget_twice_counts_once);
    tcase_add_test(tc, test_uses_zero_max_never_granted);
    tcase_add_test(tc, test_uses_no_budget_is_granted);
    tcase_add_test(tc, test_uses_bad_budget_ids_refused);
    tcase_add_test(tc, test_uses_counts_shared_between_handles);
    tcase_add_test(tc, test_uses_race_between_processes_grants_exactly_max);
    suite_add_tcase(s, tc);
    return s;
}
