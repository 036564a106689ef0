/* test_audit.c - Suite "store_audit": the audit log (src/store/audit.c).
 * Rows chain by HMAC; a row edited, inserted or deleted behind the
 * store's back (through a second SQLite connection) is found by
 * store_audit_verify, which names the first bad row; oversize fields are
 * refused; processes appending at once keep one chain. Retention
 * (store_audit_retain) deletes the oldest rows in batches and the chain
 * still verifies, while rows deleted or edited by hand around it, and an
 * edited record of where the log starts, are still found. Each test makes
 * its own home under a fresh mkdtemp directory and removes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include "store/store.h"
#include "../tests.h"

/* ---- a temporary home ------------------------------------------------- */

typedef t_home home;

static void home_make(home *h)
{
    t_home_make(h, "audit");
}

#define home_remove t_home_remove
#define open_home t_home_open

/* A second, plain SQLite connection: the tamperer. */
static sqlite3 *raw_db(const home *h)
{
    char p[160];
    sqlite3 *db = NULL;

    snprintf(p, sizeof p, "%s/%s", h->path, STORE_DB_FILE);
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static void raw_exec(const home *h, const char *sql)
{
    sqlite3 *db = raw_db(h);
    char *msg = NULL;

    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
                  "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static long long raw_int(const home *h, const char *sql)
{
    sqlite3 *db = raw_db(h);
    sqlite3_stmt *q = NULL;
    long long v;

    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* ---- rows -------------------------------------------------------------- */

/* Append row number i (1-based) with fields that vary with i. */
static void append_one(store *st, int i)
{
    char tok[32], agent[32], why[64];
    ai_err err = {0};
    audit_entry e = {0, T_NOW + i, "admin", "revoke", NULL, NULL, "ok", NULL};

    snprintf(tok, sizeof tok, "tok-%d", i);
    snprintf(agent, sizeof agent, "agent-%d", i);
    snprintf(why, sizeof why, "reason %d", i);
    if (i % 2 == 0)
        e.token_id = tok;
    if (i % 3 == 0)
        e.agent_id = agent;
    if (i % 4 != 0)
        e.reason = why;
    if (i % 5 == 0)
        e.decision = "deny";
    ck_assert_msg(store_audit(st, &e, &err) == AI_OK, "append %d: %s", i,
                  err.msg);
}

/* A home with n rows, closed. */
static void home_with_rows(home *h, int n)
{
    store *st;

    home_make(h);
    st = open_home(h);
    for (int i = 1; i <= n; i++)
        append_one(st, i);
    store_close(st);
}

/* verify on a fresh handle: the code, *bad, and the message must name
 * "row <bad>". */
static ai_code verify(const home *h, int64_t *bad, ai_err *err)
{
    store *st = open_home(h);
    ai_code rc;

    *bad = -1;
    memset(err, 0, sizeof *err);
    rc = store_audit_verify(st, bad, err);
    store_close(st);
    return rc;
}

static void expect_bad(const home *h, int64_t want, const char *words)
{
    char row[48];
    int64_t bad;
    ai_err err;

    ck_assert_int_eq(verify(h, &bad, &err), AI_EDENIED);
    ck_assert_int_eq(bad, want);
    ck_assert_int_eq(err.code, AI_EDENIED);
    snprintf(row, sizeof row, "row %lld", (long long)want);
    ck_assert_msg(t_has(err.msg, row), "\"%s\" lacks \"%s\"", err.msg, row);
    if (words != NULL)
        ck_assert_msg(t_has(err.msg, words), "\"%s\" lacks \"%s\"", err.msg,
                      words);
}

static void expect_intact(const home *h)
{
    int64_t bad;
    ai_err err;

    ck_assert_msg(verify(h, &bad, &err) == AI_OK, "verify: %s", err.msg);
    ck_assert_int_eq(bad, 0);
}

typedef struct collected {
    int n;
    int64_t ids[64];
    char tok[64][32];
    bool tok_null[64], reason_null[64];
    char decision[64][16];
} collected;

static void collect(void *ud, const audit_entry *e)
{
    collected *c = ud;

    ck_assert_int_lt(c->n, 64);
    c->ids[c->n] = e->id;
    c->tok_null[c->n] = e->token_id == NULL;
    snprintf(c->tok[c->n], sizeof c->tok[0], "%s",
             e->token_id ? e->token_id : "");
    c->reason_null[c->n] = e->reason == NULL;
    snprintf(c->decision[c->n], sizeof c->decision[0], "%s", e->decision);
    c->n++;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(test_audit_chain_intact_after_many_appends)
{
    home h;

    home_with_rows(&h, 300);
    expect_intact(&h);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), 300);
    ck_assert_int_eq(raw_int(&h, "SELECT min(id) FROM audit"), 1);
    ck_assert_int_eq(raw_int(&h, "SELECT max(id) FROM audit"), 300);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_rows_of_changes_chain_with_the_others)
{
    home h;
    store *st;
    audit_entry e = {0, T_NOW, "cli", "revoke", NULL, "rogue", "ok", NULL};
    audit_entry bad = {0, T_NOW, "cli\n", "revoke", NULL, "x", "ok", NULL};
    ai_err err = {0};

    home_make(&h);
    st = open_home(&h);
    append_one(st, 1);
    /* the row is written in the change's own transaction */
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "rogue", NULL, 0, T_NOW,
                                  &e, &err),
                     AI_OK);
    append_one(st, 3);
    e.action = "unrevoke";
    ck_assert_int_eq(store_unrevoke(st, REVOKE_AGENT, "rogue", T_NOW, &e,
                                    &err),
                     AI_OK);
    /* a row refused takes its change with it */
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "x", NULL, 0, T_NOW,
                                  &bad, &err),
                     AI_EINVAL);
    ck_assert_int_eq(store_sync(st, &err), AI_OK);
    ck_assert(!store_revoked(st, AI_REVOKED_AGENT, "x"));
    store_close(st);
    expect_intact(&h);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), 4);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit WHERE id = 2 "
                                 "AND agent_id = 'rogue'"),
                     1);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM revocations"), 0);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_empty_log_is_intact)
{
    home h;

    home_with_rows(&h, 0);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_chain_continues_across_handles)
{
    home h;
    store *a, *b;

    home_make(&h);
    a = open_home(&h);
    b = open_home(&h);
    for (int i = 1; i <= 20; i++)
        append_one(i % 2 ? a : b, i);
    store_close(a);
    store_close(b);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_tail_returns_last_rows_oldest_first)
{
    collected c;
    ai_err err = {0};
    home h;
    store *st;

    home_with_rows(&h, 10);
    st = open_home(&h);
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_audit_tail(st, 3, collect, &c, &err), AI_OK);
    ck_assert_int_eq(c.n, 3);
    ck_assert_int_eq(c.ids[0], 8);
    ck_assert_int_eq(c.ids[2], 10);
    ck_assert(!c.tok_null[0]);
    ck_assert_str_eq(c.tok[0], "tok-8");
    ck_assert(c.tok_null[1]); /* row 9: odd, no token id */
    ck_assert(c.reason_null[0]); /* row 8: no reason */
    ck_assert(!c.reason_null[1]);
    ck_assert_str_eq(c.decision[2], "deny");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_audit_tail(st, 1000, collect, &c, &err), AI_OK);
    ck_assert_int_eq(c.n, 10);
    ck_assert_int_eq(c.ids[0], 1);
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(store_audit_tail(st, 0, collect, &c, &err), AI_OK);
    ck_assert_int_eq(c.n, 0);
    store_close(st);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_edited_reason)
{
    home h;

    home_with_rows(&h, 6);
    raw_exec(&h, "UPDATE audit SET reason = 'x' WHERE id = 3");
    expect_bad(&h, 3, "altered");
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_edited_time)
{
    home h;

    home_with_rows(&h, 6);
    raw_exec(&h, "UPDATE audit SET at = at + 1 WHERE id = 5");
    expect_bad(&h, 5, NULL);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_null_made_empty)
{
    home h;

    /* Row 1 has no token id: '' is a different row. */
    home_with_rows(&h, 3);
    raw_exec(&h, "UPDATE audit SET token_id = '' WHERE id = 1");
    expect_bad(&h, 1, NULL);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_shifted_field_boundary)
{
    home h;

    /* "admin","revoke" -> "admi","nrevoke": the same bytes in a row. */
    home_with_rows(&h, 3);
    raw_exec(&h, "UPDATE audit SET actor = 'admi', action = 'nrevoke' "
                 "WHERE id = 2");
    expect_bad(&h, 2, NULL);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_edited_mac)
{
    home h;

    home_with_rows(&h, 4);
    raw_exec(&h, "UPDATE audit SET mac = randomblob(32) WHERE id = 2");
    expect_bad(&h, 2, NULL);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_deleted_row)
{
    home h;

    home_with_rows(&h, 6);
    raw_exec(&h, "DELETE FROM audit WHERE id = 3");
    expect_bad(&h, 4, "row 3 is missing");
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_deleted_first_row)
{
    home h;

    home_with_rows(&h, 4);
    raw_exec(&h, "DELETE FROM audit WHERE id = 1");
    expect_bad(&h, 2, "row 1 is missing");
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_deleted_last_rows)
{
    home h;
    store *st;

    home_with_rows(&h, 6);
    raw_exec(&h, "DELETE FROM audit WHERE id >= 5");
    expect_bad(&h, 5, "deleted");
    /* A row appended afterwards does not take a deleted row's place. */
    st = open_home(&h);
    append_one(st, 7);
    store_close(st);
    expect_bad(&h, 7, "row 5 is missing");
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_renumbered_rows)
{
    home h;

    home_with_rows(&h, 6);
    raw_exec(&h, "DELETE FROM audit WHERE id = 3;"
                 "UPDATE audit SET id = id - 1 WHERE id > 3;"
                 "UPDATE meta SET value = '5' WHERE key = 'audit_head'");
    expect_bad(&h, 3, NULL);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_inserted_row_at_end)
{
    home h;

    home_with_rows(&h, 5);
    raw_exec(&h, "INSERT INTO audit (id, at, actor, action, decision, "
                 "reason, prev, mac) VALUES (6, 1, 'cli', 'rotate-key', "
                 "'ok', 'inserted', (SELECT mac FROM audit WHERE id = 5), "
                 "randomblob(32));"
                 "UPDATE meta SET value = '6' WHERE key = 'audit_head'");
    expect_bad(&h, 6, "inserted");
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_inserted_row_in_gap)
{
    home h;

    /* Make room by moving the last row up, then fill the hole. */
    home_with_rows(&h, 5);
    raw_exec(&h, "UPDATE audit SET id = 9 WHERE id = 5;"
                 "INSERT INTO audit (id, at, actor, action, decision, "
                 "reason, prev, mac) VALUES (5, 1, 'cli', 'rotate-key', "
                 "'ok', '', zeroblob(32), zeroblob(32))");
    expect_bad(&h, 5, NULL);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_inserted_row_before_first)
{
    home h;

    home_with_rows(&h, 3);
    raw_exec(&h, "INSERT INTO audit (id, at, actor, action, decision, "
                 "reason, prev, mac) VALUES (0, 1, 'cli', 'x', 'ok', '', "
                 "zeroblob(32), randomblob(32))");
    expect_bad(&h, 0, NULL);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_verify_detects_removed_head)
{
    home h;

    home_with_rows(&h, 3);
    raw_exec(&h, "DELETE FROM meta WHERE key = 'audit_head'");
    expect_bad(&h, 4, NULL);
    home_remove(&h);
}
END_TEST

/* store_audit must refuse e with AI_EINVAL and write nothing. */
static void refused(store *st, const home *h, const audit_entry *e,
                    const char *word)
{
    long long before = raw_int(h, "SELECT count(*) FROM audit");
    ai_err err = {0};

    ck_assert_int_eq(store_audit(st, e, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, word), "\"%s\" lacks \"%s\"", err.msg, word);
    ck_assert_int_eq(raw_int(h, "SELECT count(*) FROM audit"), before);
}

START_TEST(test_audit_refuses_oversize_fields)
{
    char n64[65], n65[66], i256[257], i257[258], r512[513], r513[514];
    audit_entry ok = {0, T_NOW, "cli", "revoke", "t", "a", "ok", "r"};
    audit_entry e;
    ai_err err = {0};
    home h;
    store *st;

    memset(n64, 'a', 64), n64[64] = '\0';
    memset(n65, 'a', 65), n65[65] = '\0';
    memset(i256, 'i', 256), i256[256] = '\0';
    memset(i257, 'i', 257), i257[257] = '\0';
    memset(r512, 'r', 512), r512[512] = '\0';
    memset(r513, 'r', 513), r513[513] = '\0';
    home_make(&h);
    st = open_home(&h);

    e = ok, e.actor = n65;
    refused(st, &h, &e, "actor");
    e = ok, e.action = n65;
    refused(st, &h, &e, "action");
    e = ok, e.decision = n65;
    refused(st, &h, &e, "decision");
    e = ok, e.token_id = i257;
    refused(st, &h, &e, "token id");
    e = ok, e.agent_id = i257;
    refused(st, &h, &e, "agent id");
    e = ok, e.reason = r513;
    refused(st, &h, &e, "reason");
    e = ok, e.actor = NULL;
    refused(st, &h, &e, "actor");
    e = ok, e.decision = "";
    refused(st, &h, &e, "decision");
    e = ok, e.action = "re\nvoke";
    refused(st, &h, &e, "control");
    e = ok, e.reason = "bad \xff utf-8";
    refused(st, &h, &e, "UTF-8");

    /* Exactly at the limits is fine. */
    e = (audit_entry){0, T_NOW, n64, n64, i256, i256, n64, r512};
    ck_assert_msg(store_audit(st, &e, &err) == AI_OK, "%s", err.msg);
    store_close(st);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

/* The MAC of row 1 computed here from the documented encoding, with
 * OpenSSL directly: pins the format so that a change to it is seen. */
static void put_u64be(unsigned char *b, size_t *n, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        b[(*n)++] = (unsigned char)(v >> (8 * i));
}

static void put_text(unsigned char *b, size_t *n, const char *s)
{
    size_t len = s ? strlen(s) : 0;

    b[(*n)++] = s != NULL;
    for (int i = 3; i >= 0; i--)
        b[(*n)++] = (unsigned char)(len >> (8 * i));
    memcpy(b + *n, s ? s : "", len);
    *n += len;
}

START_TEST(test_audit_mac_matches_documented_encoding)
{
    unsigned char master[AI_KEY_BYTES], key[32], want[32], msg[512];
    unsigned int len = 0;
    size_t n = 0;
    char p[160];
    FILE *f;
    home h;
    store *st;
    ai_err err = {0};
    audit_entry e = {0, T_NOW, "cli", "revoke", "tok-1", NULL, "ok", NULL};

    home_make(&h);
    st = open_home(&h);
    ck_assert_int_eq(store_audit(st, &e, &err), AI_OK);
    store_close(st);

    snprintf(p, sizeof p, "%s/%s", h.path, STORE_KEY_FILE);
    ck_assert_ptr_nonnull(f = fopen(p, "rb"));
    ck_assert_int_eq(fread(master, 1, sizeof master, f), sizeof master);
    fclose(f);
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), master, sizeof master,
                               (const unsigned char *)"agent-iam audit chain v1",
                               24, key, &len));
    memset(msg, 0, 32); /* prev of row 1 */
    n = 32;
    put_u64be(msg, &n, 1);
    put_u64be(msg, &n, (uint64_t)T_NOW);
    put_text(msg, &n, "cli");
    put_text(msg, &n, "revoke");
    put_text(msg, &n, "tok-1");
    put_text(msg, &n, NULL);
    put_text(msg, &n, "ok");
    put_text(msg, &n, ""); /* no reason is stored as "" */
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, sizeof key, msg, n, want,
                               &len));

    sqlite3 *db = raw_db(&h);
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT prev, mac FROM audit "
                                        "WHERE id = 1",
                                        -1, &q, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_bytes(q, 0), 32);
    ck_assert_int_eq(sqlite3_column_bytes(q, 1), 32);
    ck_assert(memcmp(sqlite3_column_blob(q, 0), msg, 32) == 0);
    ck_assert(memcmp(sqlite3_column_blob(q, 1), want, 32) == 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_concurrent_processes_keep_one_chain)
{
    enum { KIDS = 6, EACH = 30 };
    pid_t pids[KIDS];
    home h;
    store *st;

    home_make(&h);
    st = open_home(&h);
    store_close(st);
    for (int k = 0; k < KIDS; k++) {
        pids[k] = fork();
        ck_assert_int_ge(pids[k], 0);
        if (pids[k] == 0) {
            /* The child only reports through its status: no Check calls. */
            store *cs = NULL;
            ai_err err;
            int fails = 0;
            if (store_open(h.path, true, &cs, &err) != AI_OK)
                _exit(100);
            for (int i = 0; i < EACH; i++) {
                audit_entry e = {0, T_NOW + i, "admin", "revoke", NULL,
                                 NULL, "ok", NULL};
                if (store_audit(cs, &e, &err) != AI_OK)
                    fails++;
            }
            store_close(cs);
            _exit(fails > 99 ? 99 : fails);
        }
    }
    for (int k = 0; k < KIDS; k++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[k], &status, 0), pids[k]);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), KIDS * EACH);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

/* ---- retention --------------------------------------------------------- */

/* store_audit_retain on a fresh handle: the rows removed, *more. */
static size_t retain(const home *h, int64_t cutoff, size_t max_rows,
                     bool *more)
{
    store *st = open_home(h);
    ai_err err = {0};
    size_t removed = 99;
    bool m = true;

    ck_assert_msg(store_audit_retain(st, cutoff, max_rows, &removed, &m,
                                     &err) == AI_OK,
                  "retain: %s", err.msg);
    store_close(st);
    if (more != NULL)
        *more = m;
    return removed;
}

static void append_rows(const home *h, int from, int to)
{
    store *st = open_home(h);

    for (int i = from; i <= to; i++)
        append_one(st, i);
    store_close(st);
}

/* A home of 20 rows whose first 10 retention deleted (row i is at
 * T_NOW + i). */
static void home_retained(home *h)
{
    home_with_rows(h, 20);
    ck_assert_uint_eq(retain(h, T_NOW + 11, STORE_AUDIT_RETAIN_BATCH, NULL),
                      10);
}

/* Tamper (sql) with a home retention has run on: verify names row bad,
 * with words in its message. */
static void tamper_after_retain(const char *sql, int64_t bad,
                                const char *words)
{
    home h;

    home_retained(&h);
    raw_exec(&h, sql);
    expect_bad(&h, bad, words);
    home_remove(&h);
}

START_TEST(test_audit_retain_keeps_verify_ok)
{
    bool more;
    home h;

    /* Row i is at T_NOW + i: a cutoff of T_NOW + 11 takes rows 1-10. */
    home_with_rows(&h, 20);
    ck_assert_uint_eq(retain(&h, T_NOW + 11, STORE_AUDIT_RETAIN_BATCH, &more),
                      10);
    ck_assert(!more);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), 10);
    ck_assert_int_eq(raw_int(&h, "SELECT min(id) FROM audit"), 11);
    expect_intact(&h);
    /* Nothing more is old: a second run deletes nothing. */
    ck_assert_uint_eq(retain(&h, T_NOW + 11, STORE_AUDIT_RETAIN_BATCH, &more),
                      0);
    append_rows(&h, 21, 25);
    expect_intact(&h);
    ck_assert_int_eq(raw_int(&h, "SELECT max(id) FROM audit"), 25);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_retain_works_in_bounded_batches)
{
    size_t total = 0, n;
    bool more = true;
    int calls = 0;
    home h;

    home_with_rows(&h, 30);
    while (more) {
        n = retain(&h, T_NOW + 1000, 7, &more);
        ck_assert_uint_le(n, 7);
        total += n;
        calls++;
        ck_assert_int_lt(calls, 10);
        expect_intact(&h); /* between batches too */
    }
    ck_assert_uint_eq(total, 30);
    ck_assert_int_eq(calls, 5); /* 7, 7, 7, 7, 2 */
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), 0);
    expect_intact(&h);
    /* Every row went: the next one chains to the last deleted. */
    append_rows(&h, 31, 33);
    ck_assert_int_eq(raw_int(&h, "SELECT min(id) FROM audit"), 31);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_retain_on_empty_log)
{
    bool more = true;
    home h;

    home_with_rows(&h, 0);
    ck_assert_uint_eq(retain(&h, T_NOW + 1000, STORE_AUDIT_RETAIN_BATCH,
                             &more),
                      0);
    ck_assert(!more);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM meta WHERE key = "
                                 "'audit_base'"),
                     0);
    expect_intact(&h);
    append_rows(&h, 1, 2);
    ck_assert_int_eq(raw_int(&h, "SELECT min(id) FROM audit"), 1);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_retain_on_small_log)
{
    bool more = true;
    home h;

    /* Nothing old yet: nothing goes. */
    home_with_rows(&h, 3);
    ck_assert_uint_eq(retain(&h, T_NOW, STORE_AUDIT_RETAIN_BATCH, &more), 0);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), 3);
    /* One old row. */
    ck_assert_uint_eq(retain(&h, T_NOW + 2, STORE_AUDIT_RETAIN_BATCH, &more),
                      1);
    ck_assert(!more);
    ck_assert_int_eq(raw_int(&h, "SELECT min(id) FROM audit"), 2);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_retain_stops_at_out_of_order_time)
{
    ai_err err = {0};
    home h;
    store *st;

    /* Row 3 is young amid old rows (times are taken before the write
     * lock): rows 1-2 go, 3 and after stay, leaving no hole. */
    home_make(&h);
    st = open_home(&h);
    for (int i = 1; i <= 6; i++) {
        audit_entry e = {0, T_NOW + (i == 3 ? 1000 : i), "cli", "x", NULL,
                         NULL, "ok", NULL};
        ck_assert_int_eq(store_audit(st, &e, &err), AI_OK);
    }
    store_close(st);
    ck_assert_uint_eq(retain(&h, T_NOW + 100, STORE_AUDIT_RETAIN_BATCH, NULL),
                      2);
    ck_assert_int_eq(raw_int(&h, "SELECT min(id) FROM audit"), 3);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), 4);
    expect_intact(&h);
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_after_retain_detects_deleted_middle_row)
{
    tamper_after_retain("DELETE FROM audit WHERE id = 15",
                        16, "row 15 is missing");
}
END_TEST

START_TEST(test_audit_after_retain_detects_deleted_oldest_rows)
{
    /* Deleting more of the start than retention did, out of turn. */
    tamper_after_retain("DELETE FROM audit WHERE id <= 12",
                        13, "row 11 is missing");
}
END_TEST

START_TEST(test_audit_after_retain_detects_edited_kept_row)
{
    tamper_after_retain("UPDATE audit SET reason = 'x' WHERE id = 11",
                        11, "altered");
}
END_TEST

START_TEST(test_audit_after_retain_detects_edited_start_record)
{
    /* Moving the recorded start to hide row 11's deletion: its MAC no
     * longer matches. */
    tamper_after_retain("DELETE FROM audit WHERE id = 11;"
                        "UPDATE meta SET value = '12' || substr(value, 3) "
                        "WHERE key = 'audit_base'",
                        12, "retention");
}
END_TEST

START_TEST(test_audit_after_retain_detects_removed_start_record)
{
    tamper_after_retain("DELETE FROM meta WHERE key = 'audit_base'",
                        11, "row 1 is missing");
}
END_TEST

START_TEST(test_audit_after_retain_detects_replayed_start_record)
{
    home h;

    /* The start record of an earlier run put back after a later one (to
     * pass off more deleted rows as retention's) reports the gap. */
    home_with_rows(&h, 20);
    ck_assert_uint_eq(retain(&h, T_NOW + 6, STORE_AUDIT_RETAIN_BATCH, NULL),
                      5);
    raw_exec(&h, "CREATE TABLE saved AS SELECT value FROM meta "
                 "WHERE key = 'audit_base'");
    ck_assert_uint_eq(retain(&h, T_NOW + 11, STORE_AUDIT_RETAIN_BATCH, NULL),
                      5);
    expect_intact(&h);
    raw_exec(&h, "UPDATE meta SET value = (SELECT value FROM saved) "
                 "WHERE key = 'audit_base'; DROP TABLE saved");
    expect_bad(&h, 11, "row 6 is missing");
    home_remove(&h);
}
END_TEST

START_TEST(test_audit_retain_keeps_rows_that_do_not_verify)
{
    store *st;
    ai_err err = {0};
    size_t removed = 99;
    bool more = true;
    home h;

    /* Retention never erases the evidence of an edit. */
    home_with_rows(&h, 10);
    raw_exec(&h, "UPDATE audit SET reason = 'x' WHERE id = 4");
    st = open_home(&h);
    ck_assert_int_eq(store_audit_retain(st, T_NOW + 100,
                                        STORE_AUDIT_RETAIN_BATCH, &removed,
                                        &more, &err),
                     AI_EDENIED);
    ck_assert_msg(t_has(err.msg, "row 4"), "%s", err.msg);
    ck_assert_uint_eq(removed, 0);
    ck_assert(!more);
    store_close(st);
    ck_assert_int_eq(raw_int(&h, "SELECT count(*) FROM audit"), 10);
    expect_bad(&h, 4, "altered");
    home_remove(&h);
}
END_TEST

Suite *suite_store_audit(void)
{
    Suite *s = suite_create("store_audit");
    TCase *tc = tcase_create("audit");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_audit_chain_intact_after_many_appends);
    tcase_add_test(tc, test_audit_verify_empty_log_is_intact);
    tcase_add_test(tc, test_audit_chain_continues_across_handles);
    tcase_add_test(tc, test_audit_tail_returns_last_rows_oldest_first);
    tcase_add_test(tc, test_audit_verify_detects_edited_reason);
    tcase_add_test(tc, test_audit_verify_detects_edited_time);
    tcase_add_test(tc, test_audit_verify_detects_null_made_empty);
    tcase_add_test(tc, test_audit_verify_detects_shifted_field_boundary);
    tcase_add_test(tc, test_audit_verify_detects_edited_mac);
    tcase_add_test(tc, test_audit_verify_detects_deleted_row);
    tcase_add_test(tc, test_audit_verify_detects_deleted_first_row);
    tcase_add_test(tc, test_audit_verify_detects_deleted_last_rows);
    tcase_add_test(tc, test_audit_verify_detects_renumbered_rows);
    tcase_add_test(tc, test_audit_verify_detects_inserted_row_at_end);
    tcase_add_test(tc, test_audit_verify_detects_inserted_row_in_gap);
    tcase_add_test(tc, test_audit_verify_detects_inserted_row_before_first);
    tcase_add_test(tc, test_audit_verify_detects_removed_head);
    tcase_add_test(tc, test_audit_refuses_oversize_fields);
    tcase_add_test(tc, test_audit_mac_matches_documented_encoding);
    tcase_add_test(tc, test_audit_concurrent_processes_keep_one_chain);
    tcase_add_test(tc, test_audit_retain_keeps_verify_ok);
    tcase_add_test(tc, test_audit_retain_works_in_bounded_batches);
    tcase_add_test(tc, test_audit_retain_on_empty_log);
    tcase_add_test(tc, test_audit_retain_on_small_log);
    tcase_add_test(tc, test_audit_retain_stops_at_out_of_order_time);
    tcase_add_test(tc, test_audit_after_retain_detects_deleted_middle_row);
    tcase_add_test(tc, test_audit_after_retain_detects_deleted_oldest_rows);
    tcase_add_test(tc, test_audit_after_retain_detects_edited_kept_row);
    tcase_add_test(tc, test_audit_after_retain_detects_edited_start_record);
    tcase_add_test(tc, test_audit_after_retain_detects_removed_start_record);
    tcase_add_test(tc, test_audit_after_retain_detects_replayed_start_record);
    tcase_add_test(tc, test_audit_retain_keeps_rows_that_do_not_verify);
    tcase_add_test(tc, test_audit_rows_of_changes_chain_with_the_others);
    suite_add_tcase(s, tc);
    return s;
}
