/* test_replica.c - Suite "store_replica": a follower's home as a replica
 * of a leader's (src/store/replica.c): the leader's snapshot and change
 * feed (built here as src/leader/replication.c builds them) applied to a
 * second home with its own master key; keys, revocations, providers and
 * API keys then read the same there; batches are atomic, idempotent and
 * ordered; a snapshot's "reset" reloads other handles; a replica never
 * makes a key of its own. Each test makes its own homes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "home_fixture.h"
#include "../tests.h"

static const apikey_info openai = {"openai", "openai",
                                   "https://api.openai.com", 30, 0};
static const apikey_info anthropic = {"anthropic", "anthropic", NULL, 0, 0};

#define GOOGLE_CFG                                                           \
    "{\"clientId\":\"c\",\"clientSecret\":\"s3cr3t\",\"refreshToken\":\"r\"}"
#define GITHUB_CFG "{\"appId\":12,\"privateKey\":\"pk\",\"enabled\":true}"

static void ok(ai_code rc, const ai_err *err, const char *what)
{
    ck_assert_msg(rc == AI_OK, "%s: %s", what, err->msg);
}

/* A leader with two keys, revocations (one taken back), two providers
 * (one deleted) and API keys (one removed). */
static void leader_build(store *l)
{
    ai_err err = {0};

    (void)fx_keyring(l, T_NOW);
    ok(store_rotate_key(l, T_DAY, t_key2, T_NOW, NULL, NULL, &err), &err,
       "rotate");
    ok(store_revoke(l, REVOKE_TOKEN, "tok-a", "leaked", 0, T_NOW, NULL, &err),
       &err,
       "revoke");
    ok(store_revoke(l, REVOKE_TOKEN, "tok-b", NULL, 0, T_NOW, NULL, &err), &err,
       "revoke");
    ok(store_revoke(l, REVOKE_AGENT, "rogue", "bad", 0, T_NOW, NULL, &err),
       &err,
       "revoke");
    ok(store_unrevoke(l, REVOKE_TOKEN, "tok-b", T_NOW, NULL, &err), &err,
       "unrevoke");
    ok(store_provider_set(l, "google", GOOGLE_CFG, T_NOW, NULL, &err), &err,
       "provider");
    ok(store_provider_set(l, "github", GITHUB_CFG, T_NOW, NULL, &err), &err,
       "provider");
    ok(store_provider_delete(l, "github", T_NOW, NULL, &err), &err, "delete");
    ok(store_apikey_add(l, &openai, "sk-openai", T_NOW, NULL, &err), &err,
       "apikey");
    ok(store_apikey_add(l, &anthropic, "sk-ant", T_NOW, NULL, &err), &err,
       "apikey");
    ok(store_apikey_remove(l, "anthropic", T_NOW, NULL, &err), &err, "remove");
}

/* store_snapshot, parsed. */
static json_t *snap_of(store *st)
{
    char *text = NULL;
    json_t *doc;
    ai_err err = {0};

    ok(store_snapshot(st, &text, &err), &err, "snapshot");
    doc = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    explicit_bzero(text, strlen(text));
    store_free(text);
    return doc;
}

/* The change feed after `since`, as the leader serves it. */
typedef struct feed {
    store *st;
    json_t *arr;
    int64_t last;
    ai_code rc;
    ai_err *err;
} feed;

static bool add_change(void *ud, const store_change *ch)
{
    feed *f = ud;
    json_t *value = NULL, *c;

    if (f->rc != AI_OK)
        return false;
    if (strcmp(ch->op, "set") == 0 &&
        (f->rc = store_change_value(f->st, ch->kind, ch->key, &value,
                                    f->err)) != AI_OK)
        return false;
    c = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "seq",
                  (json_int_t)ch->seq, "at", (json_int_t)ch->at, "kind",
                  ch->kind, "key", ch->key, "op", ch->op, "hash", ch->hash);
    ck_assert_ptr_nonnull(c);
    if (value != NULL)
        json_object_set_new(c, "value", value);
    json_array_append_new(f->arr, c);
    f->last = ch->seq;
    return true;
}

static json_t *feed_of(store *st, int64_t since, int64_t *last)
{
    ai_err err = {0};
    feed f = {st, json_array(), since, AI_OK, &err};

    ok(store_changes(st, since, 10000, add_change, &f, &err), &err, "changes");
    ok(f.rc, &err, "change value");
    *last = f.last;
    return f.arr;
}

static int64_t applied(store *st)
{
    int64_t seq = -1;
    ai_err err = {0};

    ok(store_applied_seq(st, &seq, &err), &err, "applied seq");
    return seq;
}

static void sync_ok(store *st)
{
    ai_err err = {0};

    ok(store_sync(st, &err), &err, "sync");
}

/* Both homes hold the same replicated state (the snapshots but the seq). */
static void same_state(store *a, store *b)
{
    json_t *x = snap_of(a), *y = snap_of(b);

    json_object_del(x, "seq");
    json_object_del(y, "seq");
    ck_assert_msg(json_equal(x, y), "replica differs from the leader");
    json_decref(x);
    json_decref(y);
}

static long long count(const char *home, const char *sql)
{
    sqlite3 *db = fx_sqlite(home);
    long long n = fx_int(db, sql);

    sqlite3_close(db);
    return n;
}

/* The sealed blob of signing key 1, as bytes on disk. */
static size_t key_blob(const char *home, unsigned char *out, size_t cap)
{
    sqlite3 *db = fx_sqlite(home);
    sqlite3_stmt *q = NULL;
    size_t n;

    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT secret FROM signing_keys "
                                        "WHERE version = 1",
                                        -1, &q, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    n = (size_t)sqlite3_column_bytes(q, 0);
    ck_assert_uint_le(n, cap);
    memcpy(out, sqlite3_column_blob(q, 0), n);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static ai_code verify_on(store *st, const ai_token *t)
{
    const ai_keyring *kr;
    ai_token *seen = NULL;
    ai_err err = {0};
    ai_code rc;

    kr = fx_keyring(st, T_NOW);
    {
        ai_verifier v = {kr, store_revoked, st};
        rc = ai_token_verify(&v, ai_token_serialize(t),
                             ai_token_serialized_len(t), T_NOW, &seen, &err);
    }
    ai_token_free(seen);
    return rc;
}

/* A leader and a replica that applied its snapshot. */
typedef struct pair {
    char *lhome, *rhome;
    store *l, *r;
    int64_t seq; /* the snapshot's */
} pair;

static pair pair_new(void)
{
    pair p;
    json_t *snap;
    ai_err err = {0};

    p.lhome = fx_home_new();
    p.rhome = fx_home_new();
    p.l = fx_open(p.lhome);
    p.r = fx_open(p.rhome);
    sync_ok(p.r);
    leader_build(p.l);
    snap = snap_of(p.l);
    p.seq = json_integer_value(json_object_get(snap, "seq"));
    ok(store_apply_snapshot(p.r, snap, T_NOW, &err), &err, "apply snapshot");
    json_decref(snap);
    return p;
}

static void pair_free(pair *p)
{
    store_close(p->l);
    store_close(p->r);
    fx_home_free(p->lhome);
    fx_home_free(p->rhome);
}

START_TEST(test_snapshot_makes_a_replica)
{
    pair p = pair_new();
    const ai_keyring *lkr;
    ai_token *t;
    char *cfg = NULL, *secret = NULL, path[4200];
    unsigned char lb[256], rb[256], *lm, *rm;
    size_t ln, rn;
    store *r2;
    ai_err err = {0};

    ck_assert_int_gt(p.seq, 0);
    ck_assert_int_eq(applied(p.r), p.seq);
    same_state(p.l, p.r);

    /* a token the leader signs verifies on the replica */
    lkr = fx_keyring(p.l, T_NOW);
    ck_assert_uint_eq(ai_keyring_signing_version(lkr), 2);
    t = t_root(lkr, T_LIST("github:repo:read"), NULL);
    ck_assert_int_eq(verify_on(p.r, t), AI_OK);
    ai_token_free(t);

    /* revocations: this handle at once, another after its sync */
    ck_assert(store_revoked(p.r, AI_REVOKED_TOKEN, "tok-a"));
    ck_assert(!store_revoked(p.r, AI_REVOKED_TOKEN, "tok-b"));
    ck_assert(store_revoked(p.r, AI_REVOKED_AGENT, "rogue"));
    r2 = fx_open(p.rhome);
    sync_ok(r2);
    ck_assert(store_revoked(r2, AI_REVOKED_TOKEN, "tok-a"));
    ck_assert(store_revoked(r2, AI_REVOKED_AGENT, "rogue"));
    ck_assert(!store_revoked(r2, AI_REVOKED_TOKEN, "tok-b"));
    ck_assert_uint_eq(store_revocation_count(r2), 2);
    store_close(r2);

    /* providers and API keys, secrets in clear */
    ok(store_provider_get(p.r, "google", &cfg, &err), &err, "provider get");
    ck_assert(t_has(cfg, "\"clientSecret\":\"s3cr3t\""));
    explicit_bzero(cfg, strlen(cfg));
    store_free(cfg);
    ck_assert_int_eq(store_provider_get(p.r, "github", &cfg, &err),
                     AI_ENOTFOUND);
    ok(store_apikey_secret(p.r, "openai", &secret, &err), &err, "apikey");
    ck_assert_str_eq(secret, "sk-openai");
    explicit_bzero(secret, strlen(secret));
    store_free(secret);
    ck_assert_int_eq(store_apikey_secret(p.r, "anthropic", &secret, &err),
                     AI_ENOTFOUND);

    /* its own master key, so its own sealed bytes */
    lm = fx_read(fx_path(path, sizeof path, p.lhome, STORE_KEY_FILE), &ln);
    rm = fx_read(fx_path(path, sizeof path, p.rhome, STORE_KEY_FILE), &rn);
    ck_assert(ln == rn && memcmp(lm, rm, ln) != 0);
    free(lm);
    free(rm);
    ln = key_blob(p.lhome, lb, sizeof lb);
    rn = key_blob(p.rhome, rb, sizeof rb);
    ck_assert(ln == rn && memcmp(lb, rb, ln) != 0);
    /* one "reset" row instead of one per entity */
    ck_assert_int_eq(count(p.rhome, "SELECT count(*) FROM changelog"), 1);
    ck_assert_int_eq(count(p.rhome, "SELECT count(*) FROM changelog "
                                    "WHERE kind = 'reset'"),
                     1);
    pair_free(&p);
}
END_TEST

/* More changes on the leader reach the replica through the feed. */
START_TEST(test_feed_follows_the_leader)
{
    pair p = pair_new();
    const ai_keyring *lkr;
    ai_token *t;
    json_t *batch;
    int64_t last = 0;
    store *r2 = fx_open(p.rhome);
    ai_err err = {0};

    sync_ok(r2);
    lkr = fx_keyring(p.l, T_NOW);
    t = t_root(lkr, T_LIST("github:repo:read"), NULL);
    ok(store_rotate_key(p.l, T_DAY, t_key2, T_NOW + T_MIN, NULL, NULL, &err),
       &err,
       "rotate");
    ok(store_revoke(p.l, REVOKE_TOKEN, ai_token_id(t), "stolen", 0, T_NOW, NULL,
                    &err),
       &err, "revoke");
    ok(store_unrevoke(p.l, REVOKE_TOKEN, "tok-a", T_NOW, NULL, &err), &err,
       "unrevoke");
    ok(store_provider_set(p.l, "github", GITHUB_CFG, T_NOW, NULL, &err), &err,
       "provider");
    ok(store_provider_delete(p.l, "google", T_NOW, NULL, &err), &err, "delete");
    ok(store_apikey_add(p.l, &anthropic, "sk-ant-2", T_NOW, NULL, &err), &err,
       "apikey");
    ok(store_apikey_remove(p.l, "openai", T_NOW, NULL, &err), &err, "remove");

    batch = feed_of(p.l, p.seq, &last);
    ck_assert_uint_ge(json_array_size(batch), 8);
    ok(store_apply_changes(p.r, batch, last, NULL, T_NOW, &err),
       &err, "apply");
    json_decref(batch);
    ck_assert_int_eq(applied(p.r), last);
    same_state(p.l, p.r);

    /* this handle at once; another after its sync */
    ck_assert_int_eq(verify_on(p.r, t), AI_EREVOKED);
    ck_assert(!store_revoked(p.r, AI_REVOKED_TOKEN, "tok-a"));
    ck_assert(!store_revoked(r2, AI_REVOKED_TOKEN, ai_token_id(t)));
    sync_ok(r2);
    ck_assert_int_eq(verify_on(r2, t), AI_EREVOKED);
    ck_assert(!store_revoked(r2, AI_REVOKED_TOKEN, "tok-a"));
    {
        const ai_keyring *rkr;
        rkr = fx_keyring(r2, T_NOW);
        ck_assert_uint_eq(ai_keyring_signing_version(rkr), 3);
    }
    ai_token_free(t);
    store_close(r2);
    pair_free(&p);
}
END_TEST

START_TEST(test_same_batch_twice_changes_nothing)
{
    pair p = pair_new();
    json_t *batch;
    int64_t last = 0;
    long long rows;
    ai_err err = {0};

    ok(store_revoke(p.l, REVOKE_TOKEN, "tok-c", NULL, 0, T_NOW, NULL, &err),
       &err,
       "revoke");
    ok(store_rotate_key(p.l, -1, t_key2, T_NOW, NULL, NULL, &err), &err,
       "rotate");
    batch = feed_of(p.l, p.seq, &last);
    ok(store_apply_changes(p.r, batch, last, NULL, T_NOW, &err),
       &err, "apply");
    rows = count(p.rhome, "SELECT count(*) FROM changelog");
    ok(store_apply_changes(p.r, batch, last, NULL, T_NOW, &err),
       &err, "again");
    ck_assert_int_eq(applied(p.r), last);
    ck_assert_int_eq(count(p.rhome, "SELECT count(*) FROM changelog"), rows);
    same_state(p.l, p.r);
    /* the same entities again under a later seq: the same state */
    ok(store_apply_changes(p.r, batch, last + 1, NULL, T_NOW, &err), &err,
       "replayed");
    ck_assert_int_eq(applied(p.r), last + 1);
    same_state(p.l, p.r);
    json_decref(batch);
    pair_free(&p);
}
END_TEST

START_TEST(test_older_batch_is_ignored)
{
    pair p = pair_new();
    json_t *batch;
    int64_t last = 0, before;
    ai_err err = {0};

    before = applied(p.r);
    ok(store_revoke(p.l, REVOKE_TOKEN, "tok-late", NULL, 0, T_NOW, NULL, &err),
       &err, "revoke");
    batch = feed_of(p.l, p.seq, &last);
    ok(store_apply_changes(p.r, batch, before, NULL, T_NOW, &err),
       &err, "equal");
    ok(store_apply_changes(p.r, batch, before - 1, NULL, T_NOW, &err), &err,
       "older");
    ck_assert_int_eq(applied(p.r), before);
    ck_assert(!store_revoked(p.r, AI_REVOKED_TOKEN, "tok-late"));
    ck_assert_int_eq(count(p.rhome, "SELECT count(*) FROM revocations "
                                    "WHERE id = 'tok-late'"),
                     0);
    json_decref(batch);
    pair_free(&p);
}
END_TEST

/* A follower prunes by the leader's times (store_prune on its own timer):
 * the two agree before, at and after the prune time. */
START_TEST(test_replica_prunes_at_the_leaders_times)
{
    pair p = pair_new();
    json_t *batch;
    int64_t last = 0, at = T_NOW + STORE_DEFAULT_PRUNE_MS;
    size_t pl = 9, pr = 9;
    ai_err err = {0};

    sync_ok(p.l); /* its view, for store_revoked */
    ok(store_revoke(p.l, REVOKE_TOKEN, "tok-p", NULL, 0, T_NOW, NULL, &err),
       &err,
       "revoke");
    batch = feed_of(p.l, p.seq, &last);
    ok(store_apply_changes(p.r, batch, last, NULL, T_NOW, &err),
       &err, "apply");
    json_decref(batch);
    ck_assert_int_eq(count(p.rhome, "SELECT prune_after FROM revocations "
                                    "WHERE id = 'tok-p'"),
                     at);
    ok(store_prune(p.l, at, &pl, &err), &err, "leader prune");
    ok(store_prune(p.r, at, &pr, &err), &err, "replica prune");
    ck_assert_uint_eq(pl, 0);
    ck_assert_uint_eq(pr, 0);
    ck_assert(store_revoked(p.l, AI_REVOKED_TOKEN, "tok-p"));
    ck_assert(store_revoked(p.r, AI_REVOKED_TOKEN, "tok-p"));
    ok(store_prune(p.l, at + 1, &pl, &err), &err, "leader prune");
    ok(store_prune(p.r, at + 1, &pr, &err), &err, "replica prune");
    ck_assert_uint_ge(pl, 1);
    ck_assert_uint_eq(pr, pl);
    ck_assert(!store_revoked(p.l, AI_REVOKED_TOKEN, "tok-p"));
    ck_assert(!store_revoked(p.r, AI_REVOKED_TOKEN, "tok-p"));
    /* agents stay on both */
    ck_assert(store_revoked(p.l, AI_REVOKED_AGENT, "rogue"));
    ck_assert(store_revoked(p.r, AI_REVOKED_AGENT, "rogue"));
    same_state(p.l, p.r);
    pair_free(&p);
}
END_TEST

/* One bad change refuses the batch: nothing of it is written. */
static void refused(pair *p, const char *bad_change, const char *says)
{
    json_error_t jerr;
    json_t *batch = json_loads(bad_change, 0, &jerr);
    int64_t before = applied(p->r);
    long long revs = count(p->rhome, "SELECT count(*) FROM revocations");
    long long log = count(p->rhome, "SELECT count(*) FROM changelog");
    long long keys = count(p->rhome, "SELECT count(*) FROM signing_keys");
    ai_err err = {0};

    ck_assert_msg(batch != NULL, "test JSON: %s", jerr.text);
    ck_assert_int_eq(store_apply_changes(p->r, batch, before + 100, NULL,
                                         T_NOW, &err),
                     AI_EINVAL);
    ck_assert_msg(t_has(err.msg, says), "message: %s", err.msg);
    ck_assert_int_eq(applied(p->r), before);
    ck_assert_int_eq(count(p->rhome, "SELECT count(*) FROM revocations"),
                     revs);
    ck_assert_int_eq(count(p->rhome, "SELECT count(*) FROM changelog"), log);
    ck_assert_int_eq(count(p->rhome, "SELECT count(*) FROM signing_keys"),
                     keys);
    ck_assert(!store_revoked(p->r, AI_REVOKED_TOKEN, "tok-new"));
    json_decref(batch);
}

#define GOOD_REV                                                             \
    "{\"seq\":900,\"kind\":\"revocation\",\"key\":\"0:tok-new\","            \
    "\"op\":\"set\",\"value\":{\"target\":\"token\",\"id\":\"tok-new\","     \
    "\"reason\":\"\",\"revokedAt\":1,\"pruneAfter\":2}}"
#define GOOD_REV_ARRAY "[" GOOD_REV "]"

START_TEST(test_malformed_batch_writes_nothing)
{
    pair p = pair_new();

    refused(&p, "[" GOOD_REV ",{\"seq\":901,\"kind\":\"widget\",\"key\":"
                "\"x\",\"op\":\"set\",\"value\":{}}]",
            "change 901");
    refused(&p, "[" GOOD_REV ",{\"seq\":902,\"kind\":\"key\",\"key\":\"9\","
                "\"op\":\"set\",\"value\":{\"version\":9,\"secret\":\"c2hvcnQ\","
                "\"createdAt\":1,\"verifyUntil\":0}}]",
            "change 902: a key secret");
    refused(&p, "[" GOOD_REV ",{\"seq\":903,\"kind\":\"revocation\",\"key\":"
                "\"1:x\",\"op\":\"set\",\"value\":{\"target\":\"agent\","
                "\"reason\":\"\",\"revokedAt\":1,\"pruneAfter\":2}}]",
            "change 903");
    refused(&p, "[" GOOD_REV ",{\"seq\":904,\"kind\":\"revocation\",\"key\":"
                "\"0:other\",\"op\":\"set\",\"value\":{\"target\":\"token\","
                "\"id\":\"tok-x\",\"revokedAt\":1,\"pruneAfter\":2}}]",
            "change 904");
    refused(&p, "[" GOOD_REV ",{\"kind\":\"key\",\"key\":\"1\",\"op\":"
                "\"delete\"}]",
            "no seq");
    refused(&p, "[" GOOD_REV ",{\"seq\":906,\"kind\":\"provider\",\"key\":"
                "\"google\",\"op\":\"set\",\"value\":{\"a\":[1]}}]",
            "change 906");
    refused(&p, "[" GOOD_REV ",{\"seq\":907,\"kind\":\"apikey\",\"key\":"
                "\"k\",\"op\":\"set\",\"value\":{\"name\":\"k\",\"provider\":"
                "\"p\",\"ttlMinutes\":0,\"createdAt\":1}}]",
            "change 907");
    refused(&p, "[" GOOD_REV ",{\"seq\":908,\"kind\":\"key\",\"key\":\"1\","
                "\"op\":\"remove\"}]",
            "change 908");
    pair_free(&p);
}
END_TEST

START_TEST(test_delete_of_absent_entity_is_fine)
{
    pair p = pair_new();
    json_t *batch = json_loads(
        "[{\"seq\":1000,\"kind\":\"revocation\",\"key\":\"0:never\","
        "\"op\":\"delete\"},"
        "{\"seq\":1001,\"kind\":\"apikey\",\"key\":\"ghost\",\"op\":\"set\"},"
        "{\"seq\":1002,\"kind\":\"provider\",\"key\":\"aws\",\"op\":"
        "\"delete\"},"
        "{\"seq\":1003,\"kind\":\"revocation\",\"key\":\"0:tok-a\",\"op\":"
        "\"set\",\"value\":null}]",
        0, NULL);
    ai_err err = {0};

    ck_assert_ptr_nonnull(batch);
    ok(store_apply_changes(p.r, batch, 1003, NULL, T_NOW, &err),
       &err, "apply");
    ck_assert_int_eq(applied(p.r), 1003);
    /* set without a value: gone on the leader, so gone here */
    ck_assert(!store_revoked(p.r, AI_REVOKED_TOKEN, "tok-a"));
    ck_assert_int_eq(count(p.rhome, "SELECT count(*) FROM revocations"), 1);
    json_decref(batch);
    pair_free(&p);
}
END_TEST

/* A snapshot without a revocation takes it away on every handle. */
START_TEST(test_reset_reloads_other_handles)
{
    pair p = pair_new();
    store *r2 = fx_open(p.rhome);
    json_t *snap;
    ai_err err = {0};

    sync_ok(r2);
    ck_assert(store_revoked(r2, AI_REVOKED_TOKEN, "tok-a"));
    ok(store_unrevoke(p.l, REVOKE_TOKEN, "tok-a", T_NOW, NULL, &err), &err,
       "unrevoke");
    ok(store_revoke(p.l, REVOKE_AGENT, "newcomer", NULL, 0, T_NOW, NULL, &err),
       &err, "revoke");
    snap = snap_of(p.l);
    ok(store_apply_snapshot(p.r, snap, T_NOW, &err), &err, "snapshot");
    ck_assert(!store_revoked(p.r, AI_REVOKED_TOKEN, "tok-a"));
    ck_assert(store_revoked(p.r, AI_REVOKED_AGENT, "newcomer"));
    ck_assert(store_revoked(r2, AI_REVOKED_TOKEN, "tok-a")); /* not synced */
    sync_ok(r2);
    ck_assert(!store_revoked(r2, AI_REVOKED_TOKEN, "tok-a"));
    ck_assert(store_revoked(r2, AI_REVOKED_AGENT, "newcomer"));
    ck_assert(store_revoked(r2, AI_REVOKED_AGENT, "rogue"));
    ck_assert_int_eq(applied(p.r),
                     json_integer_value(json_object_get(snap, "seq")));
    /* and a later batch after the reset is followed too */
    {
        json_t *b = json_loads(GOOD_REV_ARRAY, 0, NULL);
        ok(store_apply_changes(p.r, b, applied(p.r) + 1, NULL, T_NOW, &err),
           &err,
           "batch");
        sync_ok(r2);
        ck_assert(store_revoked(r2, AI_REVOKED_TOKEN, "tok-new"));
        json_decref(b);
    }
    json_decref(snap);
    store_close(r2);
    pair_free(&p);
}
END_TEST

/* A malformed snapshot writes nothing either. */
START_TEST(test_malformed_snapshot_writes_nothing)
{
    pair p = pair_new();
    json_t *snap = snap_of(p.l);
    int64_t before = applied(p.r);
    ai_err err = {0};

    json_array_append_new(json_object_get(snap, "revocations"),
                          json_pack("{s:s, s:s}", "target", "token", "id",
                                    ""));
    json_object_set_new(snap, "seq", json_integer(before + 5));
    ck_assert_int_eq(store_apply_snapshot(p.r, snap, T_NOW, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "snapshot revocation 2"), "%s", err.msg);
    ck_assert_int_eq(applied(p.r), before);
    same_state(p.l, p.r);
    ck_assert(store_revoked(p.r, AI_REVOKED_TOKEN, "tok-a"));
    ck_assert_int_eq(store_apply_snapshot(p.r, json_object_get(snap, "keys"),
                                          T_NOW, &err),
                     AI_EINVAL);
    json_decref(snap);
    pair_free(&p);
}
END_TEST

START_TEST(test_replica_never_makes_its_own_key)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    bool made = true;
    json_t *empty = json_loads("{\"seq\":3,\"keys\":[],\"revocations\":[],"
                               "\"providers\":{},\"apiKeys\":[]}",
                               0, NULL);
    bool replica = true;
    ai_err err = {0};

    ok(store_is_replica(st, &replica, &err), &err, "is replica");
    ck_assert(!replica);
    ok(store_apply_snapshot(st, empty, T_NOW, &err), &err, "empty snapshot");
    ok(store_is_replica(st, &replica, &err), &err, "is replica");
    ck_assert(replica);
    ck_assert_int_eq(store_first_key(st, t_key1, T_NOW, NULL, &made, &err),
                     AI_ENOTFOUND);
    ck_assert_msg(t_has(err.msg, "replica not synced"), "%s", err.msg);
    ck_assert_int_eq(store_rotate_key(st, -1, t_key2, T_NOW, NULL, NULL, &err),
                     AI_EDENIED);
    ck_assert_int_eq(store_import_key(st, t_key1, true, T_NOW, NULL, &err),
                     AI_EDENIED);
    store_close(st);
    /* the mark survives a restart */
    st = fx_open(home);
    ck_assert_int_eq(store_first_key(st, t_key1, T_NOW, NULL, &made, &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(count(home, "SELECT count(*) FROM signing_keys"), 0);
    store_close(st);
    fx_home_free(home);
    json_decref(empty);

    /* marked before its first sync */
    home = fx_home_new();
    st = fx_open(home);
    ok(store_mark_replica(st, &err), &err, "mark");
    ck_assert_int_eq(store_first_key(st, t_key1, T_NOW, NULL, &made, &err),
                     AI_ENOTFOUND);
    ck_assert_int_eq(applied(st), 0);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_follower_meta)
{
    char *home = fx_home_new(), *url = NULL;
    store *st = fx_open(home);
    int64_t at = -1;
    ai_err err = {0};

    ok(store_follower_meta_get(st, &url, &at, &err), &err, "get");
    ck_assert_ptr_null(url);
    ck_assert_int_eq(at, 0);
    ok(store_follower_meta_set(st, "https://leader:8443", T_NOW, &err), &err,
       "set");
    ok(store_follower_meta_set(st, NULL, T_NOW + T_SEC, &err), &err,
       "set time");
    ok(store_follower_meta_get(st, &url, &at, &err), &err, "get");
    ck_assert_str_eq(url, "https://leader:8443");
    ck_assert_int_eq(at, T_NOW + T_SEC);
    store_free(url);
    ck_assert_int_eq(store_follower_meta_set(st, "http://a\nb", 0, &err),
                     AI_EINVAL);
    store_close(st);
    fx_home_free(home);
}
END_TEST

#define BIG 100000

START_TEST(test_big_snapshot_applies)
{
    char *home = fx_home_new();
    store *st = fx_open(home), *r2;
    json_t *snap = json_pack("{s:I, s:[], s:[], s:{}, s:[]}", "seq",
                             (json_int_t)777, "keys", "revocations",
                             "providers", "apiKeys");
    json_t *revs = json_object_get(snap, "revocations");
    struct timespec a, b;
    char id[32];
    ai_err err = {0};

    for (int i = 0; i < BIG; i++) {
        snprintf(id, sizeof id, "tok-%06d-AAAAAAAAAAAA", i);
        json_array_append_new(revs,
                              json_pack("{s:s, s:s, s:s, s:I, s:I}", "target",
                                        i % 10 ? "token" : "agent", "id", id,
                                        "reason", "bulk", "revokedAt",
                                        (json_int_t)T_NOW, "pruneAfter",
                                        (json_int_t)(T_NOW + T_DAY)));
    }
    sync_ok(st);
    clock_gettime(CLOCK_MONOTONIC, &a);
    ok(store_apply_snapshot(st, snap, T_NOW, &err), &err, "big snapshot");
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("store_replica: snapshot of %d revocations applied in %.3f s\n",
           BIG, (double)(b.tv_sec - a.tv_sec) +
                    (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    ck_assert_uint_eq(store_revocation_count(st), BIG);
    ck_assert(store_revoked(st, AI_REVOKED_AGENT, "tok-000010-AAAAAAAAAAAA"));
    ck_assert(store_revoked(st, AI_REVOKED_TOKEN, "tok-099999-AAAAAAAAAAAA"));
    ck_assert(!store_revoked(st, AI_REVOKED_TOKEN, "tok-100000-AAAAAAAAAAAA"));
    r2 = fx_open(home);
    sync_ok(r2);
    ck_assert_uint_eq(store_revocation_count(r2), BIG);
    ck_assert_int_eq(applied(r2), 777);
    store_close(r2);
    store_close(st);
    json_decref(snap);
    fx_home_free(home);
}
END_TEST

Suite *suite_store_replica(void)
{
    Suite *s = suite_create("store_replica");
    TCase *tc = tcase_create("replica");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_snapshot_makes_a_replica);
    tcase_add_test(tc, test_feed_follows_the_leader);
    tcase_add_test(tc, test_same_batch_twice_changes_nothing);
    tcase_add_test(tc, test_older_batch_is_ignored);
    tcase_add_test(tc, test_replica_prunes_at_the_leaders_times);
    tcase_add_test(tc, test_malformed_batch_writes_nothing);
    tcase_add_test(tc, test_delete_of_absent_entity_is_fine);
    tcase_add_test(tc, test_reset_reloads_other_handles);
    tcase_add_test(tc, test_malformed_snapshot_writes_nothing);
    tcase_add_test(tc, test_replica_never_makes_its_own_key);
    tcase_add_test(tc, test_follower_meta);
    tcase_add_test(tc, test_big_snapshot_applies);
    suite_add_tcase(s, tc);
    return s;
}
