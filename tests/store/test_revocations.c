/* test_revocations.c - Suite "store_revocations": revoking tokens and
 * agents (src/store/revocations.c), the in-memory view verification asks
 * (src/store/revview.c), keeping it current across handles with
 * store_sync (PRAGMA data_version and the changelog), pruning, and
 * ai_token_verify refusing tokens through store_revoked. Each test makes
 * its own home under a fresh mkdtemp directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "home_fixture.h"
#include "../tests.h"

/* A home with an open, synced handle. */
typedef struct fx {
    char *home;
    store *st;
} fx;

static fx setup(void)
{
    fx f;
    ai_err err = {0};

    f.home = fx_home_new();
    f.st = fx_open(f.home);
    ck_assert_int_eq(store_sync(f.st, &err), AI_OK);
    return f;
}

static void teardown(fx *f)
{
    store_close(f->st);
    fx_home_free(f->home);
}

/* A second handle on the same home, synced. */
static store *second(const fx *f)
{
    store *st = fx_open(f->home);
    ai_err err = {0};

    ck_assert_int_eq(store_sync(st, &err), AI_OK);
    return st;
}

/* valid_until: the latest time the token could be valid, 0 unknown. */
static void revoke_ok(store *st, revoke_target t, const char *id,
                      const char *reason, int64_t valid_until)
{
    ai_err err = {0};

    ck_assert_msg(store_revoke(st, t, id, reason, valid_until, T_NOW, NULL,
                               &err) ==
                      AI_OK,
                  "revoke %s: %s", id, err.msg);
}

static void sync_ok(store *st)
{
    ai_err err = {0};

    ck_assert_msg(store_sync(st, &err) == AI_OK, "sync: %s", err.msg);
}

static bool tok_revoked(store *st, const char *id)
{
    return store_revoked(st, AI_REVOKED_TOKEN, id);
}

static bool agent_revoked(store *st, const char *id)
{
    return store_revoked(st, AI_REVOKED_AGENT, id);
}

/* Rows of the revocations table for (target, id), read with SQLite. */
static long long rows(const char *home, revoke_target t, const char *id)
{
    sqlite3 *db = fx_sqlite(home);
    sqlite3_stmt *q = NULL;
    long long n;

    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM revocations "
                                        "WHERE target = ? AND id = ?",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_int(q, 1, (int)t);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

START_TEST(test_revoke_token_is_in_the_view)
{
    fx f = setup();

    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", "leaked", 0);
    ck_assert(tok_revoked(f.st, "tok-1"));
    /* an ancestor's id is a tokenId too: its descendants are refused */
    ck_assert(store_revoked(f.st, AI_REVOKED_ANCESTOR, "tok-1"));
    ck_assert(!agent_revoked(f.st, "tok-1"));
    ck_assert(!tok_revoked(f.st, "tok-2"));
    ck_assert(!tok_revoked(f.st, "tok-"));
    ck_assert(!tok_revoked(f.st, "tok-11"));
    ck_assert_uint_eq(store_revocation_count(f.st), 1);
    ck_assert_int_eq(rows(f.home, REVOKE_TOKEN, "tok-1"), 1);
    teardown(&f);
}
END_TEST

START_TEST(test_revoke_agent_is_in_the_view)
{
    fx f = setup();
    sqlite3 *db;

    revoke_ok(f.st, REVOKE_AGENT, "code-reviewer", NULL, 0);
    ck_assert(agent_revoked(f.st, "code-reviewer"));
    ck_assert(!tok_revoked(f.st, "code-reviewer"));
    ck_assert(!store_revoked(f.st, AI_REVOKED_ANCESTOR, "code-reviewer"));
    /* an ancestor's agent is looked up among the agents */
    ck_assert(store_revoked(f.st, AI_REVOKED_ANCESTOR_AGENT, "code-reviewer"));
    ck_assert(!store_revoked(f.st, AI_REVOKED_ANCESTOR_AGENT, "linter"));
    /* kept until unrevoked */
    db = fx_sqlite(f.home);
    ck_assert(fx_int(db, "SELECT prune_after FROM revocations WHERE "
                         "target = 1") == INT64_MAX);
    sqlite3_close(db);
    teardown(&f);
}
END_TEST

START_TEST(test_revoke_is_idempotent)
{
    fx f = setup();
    sqlite3 *db;
    sqlite3_stmt *q = NULL;

    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", "first", 0);
    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", "second", 0);
    ck_assert(tok_revoked(f.st, "tok-1"));
    ck_assert_uint_eq(store_revocation_count(f.st), 1);
    ck_assert_int_eq(rows(f.home, REVOKE_TOKEN, "tok-1"), 1);
    db = fx_sqlite(f.home);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT reason FROM revocations",
                                        -1, &q, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "second");
    sqlite3_finalize(q);
    sqlite3_close(db);
    teardown(&f);
}
END_TEST

START_TEST(test_unrevoke_takes_it_back)
{
    fx f = setup();
    ai_err err = {0};

    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", NULL, 0);
    revoke_ok(f.st, REVOKE_AGENT, "tok-1", NULL, 0);
    ck_assert_int_eq(store_unrevoke(f.st, REVOKE_TOKEN, "tok-1", T_NOW, NULL,
                                    &err),
                     AI_OK);
    ck_assert(!tok_revoked(f.st, "tok-1"));
    ck_assert(agent_revoked(f.st, "tok-1")); /* the other kind stays */
    ck_assert_uint_eq(store_revocation_count(f.st), 1);
    ck_assert_int_eq(rows(f.home, REVOKE_TOKEN, "tok-1"), 0);
    /* and it can be revoked again */
    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", NULL, 0);
    ck_assert(tok_revoked(f.st, "tok-1"));
    teardown(&f);
}
END_TEST

START_TEST(test_unrevoke_of_nothing_is_not_found)
{
    fx f = setup();
    ai_err err = {0};

    ck_assert_int_eq(store_unrevoke(f.st, REVOKE_TOKEN, "never", T_NOW, NULL,
                                    &err),
                     AI_ENOTFOUND);
    ck_assert_msg(t_has(err.msg, "never") && t_has(err.msg, "not revoked"),
                  "%s", err.msg);
    revoke_ok(f.st, REVOKE_AGENT, "a", NULL, 0);
    ck_assert_int_eq(store_unrevoke(f.st, REVOKE_AGENT, "a", T_NOW, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_unrevoke(f.st, REVOKE_AGENT, "a", T_NOW, NULL, &err),
                     AI_ENOTFOUND);
    /* nothing logged for a refusal */
    {
        sqlite3 *db = fx_sqlite(f.home);
        ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM changelog WHERE "
                                    "kind = 'revocation'"),
                         2);
        sqlite3_close(db);
    }
    teardown(&f);
}
END_TEST

START_TEST(test_revoke_takes_ids_as_given)
{
    static const char *const ids[] = {
        "-", "--", "--agent", "--reason=x", "-abcdefghijklmnopqrstu",
        "never-issued-by-this-home", "t\xc3\xb6k", "a b"};
    fx f = setup();

    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        revoke_ok(f.st, REVOKE_TOKEN, ids[i], NULL, 0);
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        ck_assert_msg(tok_revoked(f.st, ids[i]), "%s", ids[i]);
        ck_assert_int_eq(rows(f.home, REVOKE_TOKEN, ids[i]), 1);
    }
    ck_assert_uint_eq(store_revocation_count(f.st),
                      sizeof ids / sizeof *ids);
    teardown(&f);
}
END_TEST

START_TEST(test_revoke_refuses_bad_ids)
{
    char longid[AI_ID_MAX + 2], longreason[600];
    fx f = setup();
    ai_err err = {0};
    sqlite3 *db;

    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    memset(longreason, 'r', sizeof longreason - 1);
    longreason[sizeof longreason - 1] = '\0';
    ck_assert_int_eq(store_revoke(f.st, REVOKE_TOKEN, "", NULL, 0, T_NOW, NULL,
                                  &err),
                     AI_EINVAL);
    ck_assert_int_eq(
        store_revoke(f.st, REVOKE_TOKEN, NULL, NULL, 0, T_NOW, NULL, &err),
        AI_EINVAL);
    ck_assert_int_eq(
        store_revoke(f.st, REVOKE_TOKEN, "a\nb", NULL, 0, T_NOW, NULL, &err),
        AI_EINVAL);
    ck_assert_int_eq(
        store_revoke(f.st, REVOKE_TOKEN, "\xff\xfe", NULL, 0, T_NOW, NULL,
                     &err),
        AI_EINVAL);
    ck_assert_int_eq(
        store_revoke(f.st, REVOKE_AGENT, longid, NULL, 0, T_NOW, NULL, &err),
        AI_EINVAL);
    ck_assert_int_eq(
        store_revoke(f.st, REVOKE_TOKEN, "ok", longreason, 0, T_NOW, NULL,
                     &err),
        AI_EINVAL);
    ck_assert_int_eq(store_unrevoke(f.st, REVOKE_TOKEN, "", T_NOW, NULL, &err),
                     AI_EINVAL);
    /* the longest allowed id is fine */
    longid[AI_ID_MAX] = '\0';
    revoke_ok(f.st, REVOKE_AGENT, longid, NULL, 0);
    ck_assert_uint_eq(store_revocation_count(f.st), 1);
    db = fx_sqlite(f.home);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM revocations"), 1);
    sqlite3_close(db);
    teardown(&f);
}
END_TEST

/* Changes seen by store_changes, as "kind key op;" text. */
static bool collect(void *ud, const store_change *ch)
{
    char *buf = ud;
    size_t n = strlen(buf);

    snprintf(buf + n, 512 - n, "%s %s %s;", ch->kind, ch->key, ch->op);
    return true;
}

START_TEST(test_revoke_writes_the_changelog)
{
    fx f = setup();
    int64_t head0 = 0, head1 = 0;
    char seen[512] = "";
    ai_err err = {0};

    ck_assert_int_eq(store_changelog_head(f.st, &head0, &err), AI_OK);
    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", NULL, 0);
    revoke_ok(f.st, REVOKE_AGENT, "bob", NULL, 0);
    ck_assert_int_eq(store_unrevoke(f.st, REVOKE_TOKEN, "tok-1", T_NOW, NULL,
                                    &err),
                     AI_OK);
    ck_assert_int_eq(store_changelog_head(f.st, &head1, &err), AI_OK);
    ck_assert_int_eq(head1, head0 + 3);
    ck_assert_int_eq(store_changes(f.st, head0, 100, collect, seen, &err),
                     AI_OK);
    ck_assert_str_eq(seen, "revocation 0:tok-1 set;revocation 1:bob set;"
                           "revocation 0:tok-1 delete;");
    teardown(&f);
}
END_TEST

START_TEST(test_revoked_fails_closed_before_first_sync)
{
    char *home = fx_home_new();
    store *st = fx_open(home);

    /* no view yet: everything counts as revoked */
    ck_assert(store_revoked(st, AI_REVOKED_TOKEN, "anything"));
    ck_assert(store_revoked(st, AI_REVOKED_ANCESTOR, "anything"));
    ck_assert(store_revoked(st, AI_REVOKED_AGENT, "anyone"));
    ck_assert(store_revoked(NULL, AI_REVOKED_TOKEN, "anything"));
    sync_ok(st);
    ck_assert(!store_revoked(st, AI_REVOKED_TOKEN, "anything"));
    ck_assert(!store_revoked(st, AI_REVOKED_AGENT, "anyone"));
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_second_handle_sees_revoke_after_sync)
{
    fx f = setup();
    store *b = second(&f);
    ai_err err = {0};

    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", NULL, 0);
    revoke_ok(f.st, REVOKE_AGENT, "eve", NULL, 0);
    sync_ok(b);
    ck_assert(tok_revoked(b, "tok-1"));
    ck_assert(agent_revoked(b, "eve"));
    ck_assert_uint_eq(store_revocation_count(b), 2);
    /* a sync with nothing new keeps the view */
    sync_ok(b);
    ck_assert(tok_revoked(b, "tok-1"));
    /* unrevoke travels the same way, and back */
    ck_assert_int_eq(store_unrevoke(f.st, REVOKE_TOKEN, "tok-1", T_NOW, NULL,
                                    &err),
                     AI_OK);
    sync_ok(b);
    ck_assert(!tok_revoked(b, "tok-1"));
    ck_assert(agent_revoked(b, "eve"));
    revoke_ok(b, REVOKE_TOKEN, "tok-2", NULL, 0);
    sync_ok(f.st);
    ck_assert(tok_revoked(f.st, "tok-2"));
    ck_assert(!tok_revoked(f.st, "tok-1"));
    store_close(b);
    teardown(&f);
}
END_TEST

START_TEST(test_view_loads_what_was_committed_before_open)
{
    fx f = setup();
    store *b;

    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", NULL, 0);
    revoke_ok(f.st, REVOKE_AGENT, "eve", NULL, 0);
    store_close(f.st);
    f.st = fx_open(f.home);
    sync_ok(f.st);
    ck_assert(tok_revoked(f.st, "tok-1"));
    ck_assert(agent_revoked(f.st, "eve"));
    ck_assert_uint_eq(store_revocation_count(f.st), 2);
    b = second(&f);
    ck_assert_uint_eq(store_revocation_count(b), 2);
    store_close(b);
    teardown(&f);
}
END_TEST

/* Insert n rows as another process would (revocation and changelog in
 * one transaction), ids "<prefix><i>", bypassing the store. */
static void bulk(const char *home, const char *prefix, int n, int target,
                 bool log)
{
    sqlite3 *db = fx_sqlite(home);
    sqlite3_stmt *ins = NULL, *chg = NULL;
    char id[64], key[80];

    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_prepare_v2(db,
                           "INSERT INTO revocations (target, id, revoked_at, "
                           "prune_after) VALUES (?, ?, 1, 9e18)",
                           -1, &ins, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO changelog (at, kind, "
                                        "key, op) VALUES (1, 'revocation', ?, "
                                        "'set')",
                                        -1, &chg, NULL),
                     SQLITE_OK);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        snprintf(key, sizeof key, "%d:%s", target, id);
        sqlite3_bind_int(ins, 1, target);
        sqlite3_bind_text(ins, 2, id, -1, SQLITE_TRANSIENT);
        ck_assert_int_eq(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        if (log) {
            sqlite3_bind_text(chg, 1, key, -1, SQLITE_TRANSIENT);
            ck_assert_int_eq(sqlite3_step(chg), SQLITE_DONE);
            sqlite3_reset(chg);
        }
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(chg);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Delete the rows "<prefix><i>" for i in [from, to) as another process
 * would, logging each. */
static void bulk_delete(const char *home, const char *prefix, int from, int to)
{
    sqlite3 *db = fx_sqlite(home);
    sqlite3_stmt *del = NULL, *chg = NULL;
    char id[64], key[80];

    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "DELETE FROM revocations WHERE "
                                        "target = 0 AND id = ?",
                                        -1, &del, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO changelog (at, kind, "
                                        "key, op) VALUES (1, 'revocation', ?, "
                                        "'delete')",
                                        -1, &chg, NULL),
                     SQLITE_OK);
    for (int i = from; i < to; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        snprintf(key, sizeof key, "0:%s", id);
        sqlite3_bind_text(del, 1, id, -1, SQLITE_TRANSIENT);
        ck_assert_int_eq(sqlite3_step(del), SQLITE_DONE);
        ck_assert_int_eq(sqlite3_changes(db), 1);
        sqlite3_reset(del);
        sqlite3_bind_text(chg, 1, key, -1, SQLITE_TRANSIENT);
        ck_assert_int_eq(sqlite3_step(chg), SQLITE_DONE);
        sqlite3_reset(chg);
    }
    sqlite3_finalize(del);
    sqlite3_finalize(chg);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

START_TEST(test_view_rebuilds_after_many_removals)
{
    char id[64];
    fx f = setup();
    store *b = second(&f);

    /* removed entries pile up in b's view until it rebuilds its table */
    bulk(f.home, "a", 5000, 0, true);
    sync_ok(b);
    bulk_delete(f.home, "a", 0, 4000);
    sync_ok(b);
    ck_assert_uint_eq(store_revocation_count(b), 1000);
    bulk(f.home, "b", 6000, 0, true);
    bulk_delete(f.home, "b", 1000, 6000);
    bulk(f.home, "c", 3000, 0, true);
    sync_ok(b);
    ck_assert_uint_eq(store_revocation_count(b), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "a%d", i);
        ck_assert_msg(tok_revoked(b, id) == (i >= 4000), "%s", id);
    }
    for (int i = 0; i < 6000; i++) {
        snprintf(id, sizeof id, "b%d", i);
        ck_assert_msg(tok_revoked(b, id) == (i < 1000), "%s", id);
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "c%d", i);
        ck_assert_msg(tok_revoked(b, id), "%s", id);
    }
    /* a fresh load agrees */
    store_close(b);
    b = second(&f);
    ck_assert_uint_eq(store_revocation_count(b), 5000);
    ck_assert(tok_revoked(b, "a4000") && !tok_revoked(b, "a3999"));
    store_close(b);
    teardown(&f);
}
END_TEST

START_TEST(test_view_holds_many_rows)
{
    char id[64];
    fx f = setup();
    store *b;

    bulk(f.home, "tok-", 30000, 0, false);
    bulk(f.home, "agent-", 2000, 1, false);
    b = second(&f);
    ck_assert_uint_eq(store_revocation_count(b), 32000);
    for (int i = 0; i < 30000; i++) {
        snprintf(id, sizeof id, "tok-%d", i);
        ck_assert_msg(tok_revoked(b, id), "%s", id);
        ck_assert(!agent_revoked(b, id));
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof id, "agent-%d", i);
        ck_assert_msg(agent_revoked(b, id), "%s", id);
    }
    for (int i = 30000; i < 40000; i++) {
        snprintf(id, sizeof id, "tok-%d", i);
        ck_assert_msg(!tok_revoked(b, id), "%s", id);
    }
    store_close(b);
    teardown(&f);
}
END_TEST

START_TEST(test_sync_walks_a_long_changelog)
{
    char id[64];
    fx f = setup();
    store *b = second(&f);

    /* more changes than one batch of the sync loop */
    bulk(f.home, "t", 12345, 0, true);
    sync_ok(b);
    ck_assert_uint_eq(store_revocation_count(b), 12345);
    for (int i = 0; i < 12345; i += 7) {
        snprintf(id, sizeof id, "t%d", i);
        ck_assert_msg(tok_revoked(b, id), "%s", id);
    }
    ck_assert(!tok_revoked(b, "t12345"));
    store_close(b);
    teardown(&f);
}
END_TEST

START_TEST(test_view_survives_churn)
{
    char id[64];
    fx f = setup();
    store *b = second(&f);
    ai_err err = {0};

    /* revoke and unrevoke the same ids: removed entries must not hide
     * later ones, in this handle's view and in one that syncs */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 40; i++) {
            snprintf(id, sizeof id, "churn-%d", i);
            revoke_ok(f.st, REVOKE_TOKEN, id, NULL, 0);
        }
        for (int i = 0; i < 40; i += 2) {
            snprintf(id, sizeof id, "churn-%d", i);
            ck_assert_int_eq(
                store_unrevoke(f.st, REVOKE_TOKEN, id, T_NOW, NULL,
                               &err), AI_OK);
        }
    }
    sync_ok(b);
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "churn-%d", i);
        ck_assert_msg(tok_revoked(f.st, id) == (i % 2 == 1), "%s", id);
        ck_assert_msg(tok_revoked(b, id) == (i % 2 == 1), "%s", id);
    }
    ck_assert_uint_eq(store_revocation_count(f.st), 20);
    ck_assert_uint_eq(store_revocation_count(b), 20);
    store_close(b);
    teardown(&f);
}
END_TEST

/* An allocator that fails every allocation after `alloc_left` more. */
static long alloc_left = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_left == 0)
        return NULL;
    if (alloc_left > 0)
        alloc_left--;
    return malloc(n);
}

/* store_sync of c with every allocation after the first `left` failing. */
static ai_code sync_failing(store *c, long left)
{
    ai_err err = {0};
    ai_code rc;

    alloc_left = left;
    ai_set_alloc_funcs(failing_malloc, free);
    rc = store_sync(c, &err);
    ai_set_alloc_funcs(NULL, NULL);
    alloc_left = -1;
    ck_assert_msg(rc == AI_OK || rc == AI_ENOMEM, "sync: %s", err.msg);
    return rc;
}

START_TEST(test_view_fails_closed_when_out_of_memory)
{
    char prefix[32], id[48];
    fx f = setup();
    ai_code rc = AI_ENOMEM;
    long n;

    bulk(f.home, "t", 50, 0, true);
    /* the first load: the first allocation fails, then the second, ...
     * until one gets through; a handle without a view refuses all */
    for (n = 0; rc == AI_ENOMEM && n < 100; n++) {
        store *c = fx_open(f.home);
        rc = sync_failing(c, n);
        if (rc == AI_ENOMEM) {
            ck_assert(tok_revoked(c, "never-revoked"));
            ck_assert(agent_revoked(c, "anyone"));
        } else {
            ck_assert(tok_revoked(c, "t0") && tok_revoked(c, "t49"));
            ck_assert(!tok_revoked(c, "never-revoked"));
        }
        store_close(c);
    }
    ck_assert_int_eq(rc, AI_OK);
    ck_assert_int_gt(n, 1);
    /* changes from another handle that make the view grow: a view that
     * could not take one answers "revoked" to everything */
    rc = AI_ENOMEM;
    for (n = 0; rc == AI_ENOMEM && n < 100; n++) {
        store *c = second(&f);
        snprintf(prefix, sizeof prefix, "n%ld-", n);
        bulk(f.home, prefix, 60, 0, true);
        rc = sync_failing(c, n);
        snprintf(id, sizeof id, "%s59", prefix);
        ck_assert(tok_revoked(c, id));
        ck_assert(tok_revoked(c, "t0"));
        ck_assert(tok_revoked(c, "never-revoked") == (rc == AI_ENOMEM));
        store_close(c);
    }
    ck_assert_int_eq(rc, AI_OK);
    ck_assert_int_gt(n, 1);
    teardown(&f);
}
END_TEST

START_TEST(test_prune_removes_expired_entries)
{
    fx f = setup();
    size_t pruned = 99;
    ai_err err = {0};

    revoke_ok(f.st, REVOKE_TOKEN, "old", NULL, T_NOW + T_SEC);
    revoke_ok(f.st, REVOKE_TOKEN, "day", NULL, T_NOW + T_DAY);
    revoke_ok(f.st, REVOKE_TOKEN, "unknown-expiry", NULL, 0);
    revoke_ok(f.st, REVOKE_AGENT, "eve", NULL, 0);

    ck_assert_int_eq(store_prune(f.st, T_NOW, &pruned, &err), AI_OK);
    ck_assert_uint_eq(pruned, 0);
    ck_assert_int_eq(store_prune(f.st, T_NOW + 2 * T_SEC, &pruned, &err),
                     AI_OK);
    ck_assert_uint_eq(pruned, 1);
    ck_assert(!tok_revoked(f.st, "old"));
    ck_assert(tok_revoked(f.st, "day"));
    ck_assert_int_eq(rows(f.home, REVOKE_TOKEN, "old"), 0);
    /* an unknown expiry is kept for the longest root TTL */
    ck_assert_int_eq(store_prune(f.st, T_NOW + STORE_DEFAULT_PRUNE_MS - T_SEC,
                                 &pruned, &err),
                     AI_OK);
    ck_assert_uint_eq(pruned, 1);
    ck_assert(tok_revoked(f.st, "unknown-expiry"));
    ck_assert_int_eq(store_prune(f.st, T_NOW + STORE_DEFAULT_PRUNE_MS + T_SEC,
                                 &pruned, &err),
                     AI_OK);
    ck_assert_uint_eq(pruned, 1);
    ck_assert(!tok_revoked(f.st, "unknown-expiry"));
    /* an agent stays revoked until unrevoked */
    ck_assert(agent_revoked(f.st, "eve"));
    ck_assert_uint_eq(store_revocation_count(f.st), 1);
    teardown(&f);
}
END_TEST

START_TEST(test_prune_time_is_the_latest_validity)
{
    /* an agent: never pruned, whatever is said */
    ck_assert(store_prune_time(REVOKE_AGENT, 0, T_NOW) == INT64_MAX);
    ck_assert(store_prune_time(REVOKE_AGENT, T_NOW + T_SEC, T_NOW) ==
              INT64_MAX);
    /* a token of unknown expiry: the longest root TTL after revocation */
    ck_assert_int_eq(STORE_DEFAULT_PRUNE_MS,
                     (int64_t)AI_DEFAULT_ROOT_TTL_MAX_DAYS * T_DAY);
    ck_assert(store_prune_time(REVOKE_TOKEN, 0, T_NOW) ==
              T_NOW + STORE_DEFAULT_PRUNE_MS);
    /* known (a verified token's maxExpiresAt): that time */
    ck_assert(store_prune_time(REVOKE_TOKEN, T_NOW + T_DAY, T_NOW) ==
              T_NOW + T_DAY);
    ck_assert(store_prune_time(REVOKE_TOKEN, 0, INT64_MAX - T_SEC) ==
              INT64_MAX);
}
END_TEST

START_TEST(test_revoke_again_never_shortens_prune_time)
{
    fx f = setup();
    sqlite3 *db;

    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", NULL, 0);
    revoke_ok(f.st, REVOKE_TOKEN, "tok-1", NULL, T_NOW + T_SEC);
    revoke_ok(f.st, REVOKE_TOKEN, "tok-2", NULL, T_NOW + T_SEC);
    revoke_ok(f.st, REVOKE_TOKEN, "tok-2", NULL, T_NOW + T_DAY);
    db = fx_sqlite(f.home);
    ck_assert(fx_int(db, "SELECT prune_after FROM revocations WHERE "
                         "id = 'tok-1'") == T_NOW + STORE_DEFAULT_PRUNE_MS);
    ck_assert(fx_int(db, "SELECT prune_after FROM revocations WHERE "
                         "id = 'tok-2'") == T_NOW + T_DAY);
    sqlite3_close(db);
    teardown(&f);
}
END_TEST

/* A root, its child and grandchild signed with the store's keyring. */
typedef struct chain {
    ai_token *root, *child, *grandchild, *other_root;
} chain;

static chain mint_chain(store *st)
{
    const ai_keyring *kr;
    chain c;

    kr = fx_keyring(st, T_NOW);
    c.root = t_root(kr, T_LIST("github:repo:read", "github:repo:write"), NULL);
    c.other_root = t_root(kr, T_LIST("github:repo:read"), NULL);
    c.child = t_child(kr, c.root, "code-reviewer",
                      T_LIST("github:repo:read", "github:repo:write"), NULL);
    c.grandchild = t_child(kr, c.child, "linter", T_LIST("github:repo:read"),
                           NULL);
    return c;
}

static void chain_free(chain *c)
{
    ai_token_free(c->root);
    ai_token_free(c->other_root);
    ai_token_free(c->child);
    ai_token_free(c->grandchild);
}

/* ai_token_verify through the store's view, at T_NOW. */
static ai_code verify(store *st, const ai_token *tok)
{
    const ai_keyring *kr;
    ai_token *out = NULL;
    ai_err err = {0};
    ai_code rc;

    /* borrowed until the next sync: fetched again each time */
    kr = fx_keyring(st, T_NOW);
    ai_verifier v = {kr, store_revoked, st};
    rc = ai_token_verify(&v, ai_token_serialize(tok),
                         ai_token_serialized_len(tok), T_NOW, &out, &err);
    if (rc == AI_OK) {
        ck_assert_ptr_nonnull(out);
        ck_assert_int_eq(ai_token_check(out, "github:repo:read", NULL, T_NOW,
                                        &err),
                         AI_OK);
    } else {
        ck_assert_ptr_null(out);
    }
    ai_token_free(out);
    return rc;
}

START_TEST(test_verify_refuses_descendant_of_token_revoked_elsewhere)
{
    fx f = setup();
    chain c = mint_chain(f.st);
    store *admin = second(&f);

    ck_assert_int_eq(verify(f.st, c.grandchild), AI_OK);
    ck_assert_int_eq(ai_token_ancestor_count(c.grandchild), 2);
    /* another handle (the CLI, say) revokes the root */
    revoke_ok(admin, REVOKE_TOKEN, ai_token_id(c.root), "compromised", 0);
    sync_ok(f.st);
    ck_assert_int_eq(verify(f.st, c.root), AI_EREVOKED);
    ck_assert_int_eq(verify(f.st, c.child), AI_EREVOKED);
    ck_assert_int_eq(verify(f.st, c.grandchild), AI_EREVOKED);
    ck_assert_int_eq(verify(f.st, c.other_root), AI_OK);
    /* revoking the middle one only: the root verifies again */
    ck_assert_int_eq(store_unrevoke(admin, REVOKE_TOKEN, ai_token_id(c.root),
                                    T_NOW, NULL, &(ai_err){0}),
                     AI_OK);
    revoke_ok(admin, REVOKE_TOKEN, ai_token_id(c.child), NULL, 0);
    sync_ok(f.st);
    ck_assert_int_eq(verify(f.st, c.root), AI_OK);
    ck_assert_int_eq(verify(f.st, c.child), AI_EREVOKED);
    ck_assert_int_eq(verify(f.st, c.grandchild), AI_EREVOKED);
    chain_free(&c);
    store_close(admin);
    teardown(&f);
}
END_TEST

START_TEST(test_verify_refuses_agent_revoked_elsewhere)
{
    fx f = setup();
    chain c = mint_chain(f.st);
    store *admin = second(&f);

    revoke_ok(admin, REVOKE_AGENT, "code-reviewer", NULL, 0);
    sync_ok(f.st);
    ck_assert_int_eq(verify(f.st, c.child), AI_EREVOKED);
    ck_assert_int_eq(verify(f.st, c.root), AI_OK);
    /* agent "linter", delegated by code-reviewer: cut off with it */
    ck_assert_int_eq(verify(f.st, c.grandchild), AI_EREVOKED);
    ck_assert_int_eq(store_unrevoke(admin, REVOKE_AGENT, "code-reviewer",
                                    T_NOW, NULL, &(ai_err){0}),
                     AI_OK);
    sync_ok(f.st);
    ck_assert_int_eq(verify(f.st, c.child), AI_OK);
    ck_assert_int_eq(verify(f.st, c.grandchild), AI_OK);
    /* the root's agent cuts off the whole line */
    revoke_ok(admin, REVOKE_AGENT, ai_token_agent_id(c.root), NULL, 0);
    sync_ok(f.st);
    ck_assert_int_eq(verify(f.st, c.root), AI_EREVOKED);
    ck_assert_int_eq(verify(f.st, c.child), AI_EREVOKED);
    ck_assert_int_eq(verify(f.st, c.grandchild), AI_EREVOKED);
    chain_free(&c);
    store_close(admin);
    teardown(&f);
}
END_TEST

START_TEST(test_verify_fails_closed_before_first_sync)
{
    fx f = setup();
    chain c = mint_chain(f.st);
    store *fresh = fx_open(f.home);

    ck_assert_int_eq(verify(fresh, c.root), AI_EREVOKED);
    sync_ok(fresh);
    ck_assert_int_eq(verify(fresh, c.root), AI_OK);
    store_close(fresh);
    chain_free(&c);
    teardown(&f);
}
END_TEST

Suite *suite_store_revocations(void)
{
    Suite *s = suite_create("store_revocations");
    TCase *tc = tcase_create("revocations");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_revoke_token_is_in_the_view);
    tcase_add_test(tc, test_revoke_agent_is_in_the_view);
    tcase_add_test(tc, test_revoke_is_idempotent);
    tcase_add_test(tc, test_unrevoke_takes_it_back);
    tcase_add_test(tc, test_unrevoke_of_nothing_is_not_found);
    tcase_add_test(tc, test_revoke_takes_ids_as_given);
    tcase_add_test(tc, test_revoke_refuses_bad_ids);
    tcase_add_test(tc, test_revoke_writes_the_changelog);
    tcase_add_test(tc, test_revoked_fails_closed_before_first_sync);
    tcase_add_test(tc, test_second_handle_sees_revoke_after_sync);
    tcase_add_test(tc, test_view_loads_what_was_committed_before_open);
    tcase_add_test(tc, test_view_holds_many_rows);
    tcase_add_test(tc, test_sync_walks_a_long_changelog);
    tcase_add_test(tc, test_view_survives_churn);
    tcase_add_test(tc, test_view_rebuilds_after_many_removals);
    tcase_add_test(tc, test_view_fails_closed_when_out_of_memory);
    tcase_add_test(tc, test_prune_removes_expired_entries);
    tcase_add_test(tc, test_prune_time_is_the_latest_validity);
    tcase_add_test(tc, test_revoke_again_never_shortens_prune_time);
    tcase_add_test(tc, test_verify_refuses_descendant_of_token_revoked_elsewhere);
    tcase_add_test(tc, test_verify_refuses_agent_revoked_elsewhere);
    tcase_add_test(tc, test_verify_fails_closed_before_first_sync);
    suite_add_tcase(s, tc);
    return s;
}
