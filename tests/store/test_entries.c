/* test_entries.c - a voter applying Raft entries: an entry's writes, its
 * index and its request id commit together or not at all; a failed write
 * inside undoes only itself; a retry finds its first result; the index
 * survives a restart. */
#include <stdlib.h>
#include <string.h>

#include "../tests.h"
#include "core/core.h"
#include "home_fixture.h"

static const unsigned char r1[STORE_REQ_ID_BYTES] = {1};
static const unsigned char r2[STORE_REQ_ID_BYTES] = {2};

static int64_t head(store *st)
{
    int64_t h = -1;
    ai_err err;

    ck_assert_int_eq(store_changelog_head(st, &h, &err), AI_OK);
    return h;
}

static uint64_t applied(store *st)
{
    uint64_t i = 99;
    ai_err err;

    ck_assert_int_eq(store_entry_applied(st, &i, &err), AI_OK);
    return i;
}

START_TEST(test_entries_commit_together)
{
    char *home = fx_home_new(), *res = NULL;
    store *st = fx_open(home), *other = fx_open(home);
    uint64_t idx = 0;
    ai_err err;

    ck_assert_int_eq(store_sync(st, &err), AI_OK);
    ck_assert_uint_eq(applied(st), 0);
    ck_assert_int_eq(store_entry_begin(st, &err), AI_OK);
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "rogue", NULL, 0, T_NOW,
                                  NULL, &err),
                     AI_OK);
    /* a failed write inside undoes only itself */
    ck_assert_int_eq(store_unrevoke(st, REVOKE_AGENT, "nobody", T_NOW, NULL,
                                    &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "second", NULL, 0,
                                  T_NOW + 1, NULL, &err),
                     AI_OK);
    /* nothing is seen by another handle before the entry commits */
    ck_assert_int_eq(store_sync(other, &err), AI_OK);
    ck_assert(!store_revoked(other, AI_REVOKED_AGENT, "rogue"));
    ck_assert_int_eq(store_entry_commit(st, 7, r1, "{\"ok\":true}", &err),
                     AI_OK);
    ck_assert_int_eq(store_sync(other, &err), AI_OK);
    ck_assert(store_revoked(other, AI_REVOKED_AGENT, "rogue"));
    ck_assert(store_revoked(other, AI_REVOKED_AGENT, "second"));
    ck_assert_int_eq(head(other), 2);
    ck_assert_uint_eq(applied(other), 7);
    ck_assert_int_eq(store_entry_find(other, r1, &idx, &res, &err), AI_OK);
    ck_assert_uint_eq(idx, 7);
    ck_assert_str_eq(res, "{\"ok\":true}");
    ai_free(res);
    ck_assert_int_eq(store_entry_find(other, r2, &idx, &res, &err),
                     AI_ENOTFOUND);
    ck_assert_ptr_null(res);
    /* outside an entry, writes commit on their own as before */
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "third", NULL, 0,
                                  T_NOW + 2, NULL, &err),
                     AI_OK);
    store_close(other);
    store_close(st);
    /* the index survives a restart */
    st = fx_open(home);
    ck_assert_uint_eq(applied(st), 7);
    ck_assert_int_eq(head(st), 3);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_entries_abort_leaves_nothing)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    ai_err err;

    ck_assert_int_eq(store_sync(st, &err), AI_OK);
    ck_assert_int_eq(store_entry_begin(st, &err), AI_OK);
    ck_assert_int_eq(store_entry_begin(st, &err), AI_EINTERNAL);
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "rogue", NULL, 0, T_NOW,
                                  NULL, &err),
                     AI_OK);
    store_entry_abort(st);
    ck_assert_int_eq(store_sync(st, &err), AI_OK);
    ck_assert(!store_revoked(st, AI_REVOKED_AGENT, "rogue"));
    ck_assert_int_eq(head(st), 0);
    ck_assert_uint_eq(applied(st), 0);
    ck_assert_int_eq(store_entry_commit(st, 1, r1, "{}", &err), AI_EINTERNAL);
    /* and the handle writes as before */
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "later", NULL, 0, T_NOW,
                                  NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_sync(st, &err), AI_OK);
    ck_assert(store_revoked(st, AI_REVOKED_AGENT, "later"));
    ck_assert_int_eq(head(st), 1);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_entries_a_refused_entry_still_counts)
{
    /* an entry whose command is refused (the reason is its result)
     * moves the applied index and records the request, nothing else */
    char *home = fx_home_new(), *res = NULL;
    store *st = fx_open(home);
    uint64_t idx = 0;
    ai_err err;

    ck_assert_int_eq(store_entry_begin(st, &err), AI_OK);
    ck_assert_int_eq(store_unrevoke(st, REVOKE_AGENT, "nobody", T_NOW, NULL,
                                    &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(store_entry_commit(st, 3, r2, "{\"code\":\"not_found\"}",
                                        &err),
                     AI_OK);
    ck_assert_uint_eq(applied(st), 3);
    ck_assert_int_eq(head(st), 0);
    ck_assert_int_eq(store_entry_find(st, r2, &idx, &res, &err), AI_OK);
    ck_assert_str_eq(res, "{\"code\":\"not_found\"}");
    ai_free(res);
    store_close(st);
    fx_home_free(home);
}
END_TEST

Suite *suite_store_entries(void)
{
    Suite *s = suite_create("store_entries");
    TCase *tc = tcase_create("entries");

    tcase_add_test(tc, test_entries_commit_together);
    tcase_add_test(tc, test_entries_abort_leaves_nothing);
    tcase_add_test(tc, test_entries_a_refused_entry_still_counts);
    suite_add_tcase(s, tc);
    return s;
}
