/* test_groupsnap.c - a leader group's snapshot: restored on another
 * voter's home (same master.key) it gives the same keys, revocations,
 * changelog and applied index, with an audit row; an older or equal one
 * changes nothing; one of another group, or bytes that are not a home,
 * are refused and change nothing. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tests.h"
#include "core/core.h"
#include "home_fixture.h"

static const unsigned char req[STORE_REQ_ID_BYTES] = {7};

/* A home with master.key key (NULL: its own) and the group's id. */
static store *voter_home(char **home, const unsigned char *key)
{
    char p[4096], id[STORE_LEADER_ID_LEN + 1];
    store *st;
    ai_err err;

    *home = fx_home_new();
    if (key != NULL) {
        ck_assert_int_eq(mkdir(*home, 0700), 0);
        fx_write(fx_path(p, sizeof p, *home, STORE_KEY_FILE), key,
                 AI_KEY_BYTES, 0600);
    }
    st = fx_open(*home);
    ck_assert_int_eq(store_group_id(st, id, &err), AI_OK);
    return st;
}

static int64_t head_of(store *st)
{
    int64_t h = -1;
    ai_err err;

    ck_assert_int_eq(store_changelog_head(st, &h, &err), AI_OK);
    return h;
}

START_TEST(test_groupsnap_restores_the_group_state)
{
    char *ha, *hb, *hc, p[4096], hash_a[STORE_HASH_HEX + 1],
        hash_b[STORE_HASH_HEX + 1];
    unsigned char *key, *snap = NULL;
    size_t klen = 0, n = 0;
    store *a, *b, *c;
    uint64_t applied = 0;
    bool found = false;
    int64_t bad = 0;
    ai_err err;

    a = voter_home(&ha, NULL);
    key = fx_read(fx_path(p, sizeof p, ha, STORE_KEY_FILE), &klen);
    b = voter_home(&hb, key);
    /* entries 1..5 applied on a: a key, two revocations */
    ck_assert_int_eq(store_entry_begin(a, &err), AI_OK);
    ck_assert_int_eq(store_first_key(a, t_key1, T_NOW, NULL, &found, &err),
                     AI_OK);
    ck_assert_int_eq(store_revoke(a, REVOKE_AGENT, "rogue", "r", 0, T_NOW,
                                  NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_revoke(a, REVOKE_TOKEN, "AAAAAAAAAAAAAAAAAAAAAA",
                                  NULL, 0, T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_entry_commit(a, 5, req, "{}", &err), AI_OK);
    ck_assert_int_eq(store_group_snapshot(a, &snap, &n, &err), AI_OK);
    ck_assert_uint_gt(n, 0);
    /* b (empty) takes it whole */
    ck_assert_int_eq(store_group_restore(b, snap, n, T_NOW, &applied, &err),
                     AI_OK);
    ck_assert_uint_eq(applied, 5);
    ck_assert_int_eq(store_sync(b, &err), AI_OK);
    ck_assert(store_revoked(b, AI_REVOKED_AGENT, "rogue"));
    ck_assert(store_revoked(b, AI_REVOKED_TOKEN, "AAAAAAAAAAAAAAAAAAAAAA"));
    ck_assert_int_eq(head_of(b), head_of(a));
    ck_assert_int_eq(store_change_hash_at(a, head_of(a), hash_a, &found,
                                          &err),
                     AI_OK);
    ck_assert_int_eq(store_change_hash_at(b, head_of(b), hash_b, &found,
                                          &err),
                     AI_OK);
    ck_assert_str_eq(hash_a, hash_b);
    {
        unsigned char k[AI_KEY_BYTES];
        ck_assert_int_eq(store_export_key(b, 1, k, &err), AI_OK);
        ck_assert_mem_eq(k, t_key1, AI_KEY_BYTES);
    }
    ck_assert_int_eq(store_entry_applied(b, &applied, &err), AI_OK);
    ck_assert_uint_eq(applied, 5);
    ck_assert_int_eq(store_audit_verify(b, &bad, &err), AI_OK);
    /* again: not later than what b holds, nothing changes */
    ck_assert_int_eq(store_group_restore(b, snap, n, T_NOW, &applied, &err),
                     AI_OK);
    ck_assert_uint_eq(applied, 5);

    /* a home of another master.key: refused, unchanged */
    c = voter_home(&hc, NULL);
    ck_assert_int_eq(store_group_restore(c, snap, n, T_NOW, &applied, &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "group"), "%s", err.msg);
    ck_assert_int_eq(head_of(c), 0);
    /* bytes that are not a home: refused, unchanged */
    memset(snap, 'x', n < 4096 ? n : 4096);
    ck_assert_int_ne(store_group_restore(c, snap, n, T_NOW, &applied, &err),
                     AI_OK);
    ck_assert_int_eq(head_of(c), 0);
    ai_free(snap);
    free(key);
    store_close(a);
    store_close(b);
    store_close(c);
    fx_home_free(ha);
    fx_home_free(hb);
    fx_home_free(hc);
}
END_TEST

Suite *suite_store_groupsnap(void)
{
    Suite *s = suite_create("store_groupsnap");
    TCase *tc = tcase_create("groupsnap");

    tcase_add_test(tc, test_groupsnap_restores_the_group_state);
    suite_add_tcase(s, tc);
    return s;
}
