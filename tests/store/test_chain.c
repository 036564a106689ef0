/* test_chain.c - the changelog's hash chain: each row carries the running
 * SHA-256 of the log up to it, a home from before the chain gets one at
 * open, the snapshot names the hash it reflects, and a follower refuses a
 * batch that does not continue the history it applied (fl_feed_chain). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../tests.h"
#include "core/core.h"
#include "follower/internal.h"
#include "home_fixture.h"

/* The rows after since, with their hashes, as JSON changes. */
static bool add(void *ud, const store_change *ch)
{
    json_t *c = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "seq",
                          (json_int_t)ch->seq, "at", (json_int_t)ch->at,
                          "kind", ch->kind, "key", ch->key, "op", ch->op,
                          "hash", ch->hash);

    ck_assert_ptr_nonnull(c);
    json_array_append_new(ud, c);
    return true;
}

static json_t *rows(store *st, int64_t since)
{
    json_t *arr = json_array();
    ai_err err = {0};

    ck_assert_int_eq(store_changes(st, since, 1000, add, arr, &err), AI_OK);
    return arr;
}

static void write_some(store *st)
{
    ai_err err = {0};

    (void)fx_keyring(st, T_NOW);
    ck_assert_int_eq(store_revoke(st, REVOKE_TOKEN, "AAAAAAAAAAAAAAAAAAAAAA",
                                  "test", 0, T_NOW + 1, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "rogue", NULL, 0,
                                  T_NOW + 2, NULL, &err),
                     AI_OK);
    ck_assert_int_eq(store_unrevoke(st, REVOKE_AGENT, "rogue", T_NOW + 3, NULL,
                                    &err),
                     AI_OK);
}

static const char *hash_of(const json_t *c)
{
    return json_string_value(json_object_get(c, "hash"));
}

/* Known answers, computed apart from this code (Python's hashlib):
 * SHA-256(32 zero bytes | be64 1 | be64 1000 | "revocation" NUL "0:abc")
 * and the next step with seq 2, at 1001, "key" NUL "2". */
START_TEST(test_chain_step_known_answer)
{
    unsigned char zero[STORE_HASH_BYTES] = {0}, h[STORE_HASH_BYTES],
                  back[STORE_HASH_BYTES];
    store_change a = {1, 1000, "revocation", "0:abc", "set", ""};
    store_change b = {2, 1001, "key", "2", "delete", ""};
    char hex[STORE_HASH_HEX + 1];

    store_change_hash(zero, &a, h);
    store_hash_hex(h, hex);
    ck_assert_str_eq(
        hex, "aa622da8de3b16995b42e0f6d660066b6ff2c8c2f9d04c740a7c5d7b37f7a1ab");
    store_change_hash(h, &b, h);
    store_hash_hex(h, hex);
    ck_assert_str_eq(
        hex, "7c0a08f50edd7e3c8c5bdd2d36a1e05d44fe2b20e72bbb3894aac731bd9b6102");
    ck_assert(store_hash_parse(hex, back));
    ck_assert_mem_eq(back, h, sizeof h);
    ck_assert(!store_hash_parse("7C0A", back));
    hex[5] = 'G';
    ck_assert(!store_hash_parse(hex, back));
    ck_assert(!store_hash_parse(NULL, back));
}
END_TEST

START_TEST(test_every_row_chains_to_the_one_before)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    unsigned char prev[STORE_HASH_BYTES] = {0}, h[STORE_HASH_BYTES];
    char hex[STORE_HASH_HEX + 1], at[STORE_HASH_HEX + 1];
    json_t *arr, *c;
    bool found = false;
    size_t i;
    ai_err err = {0};

    write_some(st);
    arr = rows(st, 0);
    ck_assert_uint_ge(json_array_size(arr), 4);
    json_array_foreach(arr, i, c) {
        store_change ch = {
            json_integer_value(json_object_get(c, "seq")),
            json_integer_value(json_object_get(c, "at")),
            json_string_value(json_object_get(c, "kind")),
            json_string_value(json_object_get(c, "key")), "set", ""};
        store_change_hash(prev, &ch, h);
        store_hash_hex(h, hex);
        ck_assert_str_eq(hash_of(c), hex);
        ck_assert_int_eq(store_change_hash_at(st, ch.seq, at, &found, &err),
                         AI_OK);
        ck_assert(found);
        ck_assert_str_eq(at, hex);
        memcpy(prev, h, sizeof h);
    }
    ck_assert_int_eq(store_change_hash_at(st, 999, at, &found, &err), AI_OK);
    ck_assert(!found);
    ck_assert_str_eq(at, "");
    json_decref(arr);
    store_close(st);
    fx_home_free(home);
}
END_TEST

/* A home from before the chain (its rows have no hash) is chained at
 * open, and the chain is the one its rows would have had. */
START_TEST(test_rows_without_hash_are_chained_at_open)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    json_t *before, *after;
    sqlite3 *db;

    write_some(st);
    before = rows(st, 0);
    store_close(st);
    db = fx_sqlite(home);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE changelog SET hash = NULL",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    st = fx_open(home);
    after = rows(st, 0);
    ck_assert(json_equal(before, after));
    db = fx_sqlite(home);
    ck_assert_int_eq(
        fx_int(db, "SELECT count(*) FROM changelog WHERE hash IS NULL"), 0);
    /* rows without a hash from seq 2 and the newest, one between them
     * wrong: the chain is made again from the first row without one */
    ck_assert_int_eq(sqlite3_exec(db,
                                  "UPDATE changelog SET hash = zeroblob(32) "
                                  "WHERE seq > 2; UPDATE changelog SET hash "
                                  "= NULL WHERE seq = 2 OR seq = (SELECT "
                                  "max(seq) FROM changelog)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    store_close(st);
    json_decref(after);
    st = fx_open(home);
    after = rows(st, 0);
    ck_assert(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_snapshot_header_names_its_hash)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    snap_cursor *cur = NULL;
    char *line = NULL, at[STORE_HASH_HEX + 1];
    int64_t seq = 0;
    bool done = false, found = false;
    json_t *o;
    ai_err err = {0};

    write_some(st);
    ck_assert_int_eq(store_snapshot_open(home, &cur, &seq, &err), AI_OK);
    ck_assert_int_eq(store_snapshot_line(cur, &line, &done, &err), AI_OK);
    o = json_loads(line, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(store_change_hash_at(st, seq, at, &found, &err), AI_OK);
    ck_assert(found);
    ck_assert_str_eq(hash_of(o), at);
    json_decref(o);
    ai_free(line);
    store_snapshot_close(cur);
    store_close(st);
    fx_home_free(home);
}
END_TEST

/* ---- the follower's side ---------------------------------------------- */

static bool chain_ok(json_t *changes, int64_t since, const char *have,
                     char *last, ai_err *err)
{
    fl_feed f;
    bool ok;

    memset(&f, 0, sizeof f);
    f.changes = changes;
    ok = fl_feed_chain(&f, since, have, err);
    if (last != NULL)
        strcpy(last, f.last_hash);
    return ok;
}

START_TEST(test_follower_checks_the_chain)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    json_t *all, *tail, *bad;
    char have[STORE_HASH_HEX + 1], last[STORE_HASH_HEX + 1];
    int64_t s0;
    ai_err err = {0};

    write_some(st);
    all = rows(st, 0);
    s0 = json_integer_value(json_object_get(json_array_get(all, 0), "seq"));
    snprintf(have, sizeof have, "%s", hash_of(json_array_get(all, 0)));
    tail = rows(st, s0);

    /* continues what was applied: accepted, the last hash is the batch's */
    ck_assert(chain_ok(tail, s0, have, last, &err));
    ck_assert_str_eq(last, hash_of(json_array_get(all,
                                                  json_array_size(all) - 1)));
    /* nothing known yet: the first stated hash is taken, the rest checked */
    ck_assert(chain_ok(tail, s0, "", last, &err));
    /* another history at since */
    have[0] = have[0] == 'a' ? 'b' : 'a';
    ck_assert(!chain_ok(tail, s0, have, NULL, &err));
    ck_assert(strstr(err.msg, "hash chain") != NULL);
    have[0] = hash_of(json_array_get(all, 0))[0];
    /* a change edited on the way (its key): the chain breaks there */
    bad = json_deep_copy(tail);
    json_object_set_new(json_array_get(bad, 1), "key",
                        json_string("0:BBBBBBBBBBBBBBBBBBBBBB"));
    ck_assert(!chain_ok(bad, s0, have, NULL, &err));
    ck_assert(!chain_ok(bad, s0, "", NULL, &err));
    json_decref(bad);
    /* a change missing in the middle */
    bad = json_deep_copy(tail);
    json_array_remove(bad, 1);
    ck_assert(!chain_ok(bad, s0, have, NULL, &err));
    json_decref(bad);
    /* seqs not after since, or not increasing */
    ck_assert(!chain_ok(tail, s0 + 1, have, NULL, &err));
    ck_assert_msg(strstr(err.msg, "after") != NULL, "%s", err.msg);
    /* a malformed hash */
    bad = json_deep_copy(tail);
    json_object_set_new(json_array_get(bad, 0), "hash", json_string("zz"));
    ck_assert(!chain_ok(bad, s0, have, NULL, &err));
    ck_assert(strstr(err.msg, "malformed") != NULL);
    json_decref(bad);
    /* a leader without the chain: accepted, nothing known after it */
    bad = json_deep_copy(tail);
    {
        size_t i;
        json_t *c;
        json_array_foreach(bad, i, c) json_object_del(c, "hash");
    }
    ck_assert(chain_ok(bad, s0, have, last, &err));
    ck_assert_str_eq(last, "");
    json_decref(bad);
    json_decref(tail);
    json_decref(all);
    store_close(st);
    fx_home_free(home);
}
END_TEST

/* Each kind's key, parsed and written back the same. */
START_TEST(test_change_key_round_trips)
{
    static const char *const good[][2] = {
        {"key", "1"},           {"key", "2147483648"},
        {"revocation", "0:tok-1"}, {"revocation", "1:agent:with:colons"},
        {"revocation", "1:\xc3\xa9t\xc3\xa9"}, {"provider", "github"},
        {"apikey", "openai.v2_x-y"}, {"reset", ""},
    };
    char key[STORE_CHANGE_KEY_CAP];
    store_ref r;

    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        ck_assert_msg(store_change_parse(good[i][0], good[i][1], &r),
                      "%s %s", good[i][0], good[i][1]);
        ck_assert_str_eq(store_kind_name(r.kind), good[i][0]);
        ck_assert(store_change_key(&r, key));
        ck_assert_str_eq(key, good[i][1]);
    }
    ck_assert(store_change_parse("revocation", "1:a-b", &r));
    ck_assert_int_eq(r.target, REVOKE_AGENT);
    ck_assert_str_eq(r.name, "a-b");
    ck_assert(store_change_parse("key", "42", &r));
    ck_assert_uint_eq(r.version, 42);
}
END_TEST

/* The parser takes exactly what the formatter writes: an empty id, an
 * unknown kind or target, junk around a number, a name that is not one
 * are refused, and the formatter refuses to write them. */
START_TEST(test_change_key_parser_is_strict)
{
    static const char *const bad[][2] = {
        {"revocation", "0:"},  {"revocation", "1"},    {"revocation", ""},
        {"revocation", "2:x"}, {"revocation", "0x"},   {"revocation", ":x"},
        {"revocation", "0:a\nb"}, {"revocation", "0:\xff\xfe"},
        {"key", ""},           {"key", "0"},           {"key", "01"},
        {"key", "+1"},         {"key", "-1"},          {"key", " 1"},
        {"key", "1 "},         {"key", "1x"},          {"key", "2147483649"},
        {"key", "99999999999999999999"}, {"provider", "gitlab"},
        {"provider", ""},      {"apikey", ""},         {"apikey", "a b"},
        {"apikey", "a/b"},     {"reset", "x"},         {"keys", "1"},
        {"", ""},              {"REVOCATION", "0:x"},  {"token", "0:x"},
    };
    char key[STORE_CHANGE_KEY_CAP], id[AI_ID_MAX + 2];
    store_ref r;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!store_change_parse(bad[i][0], bad[i][1], &r),
                      "took %s \"%s\"", bad[i][0], bad[i][1]);
    ck_assert(!store_change_parse(NULL, "1", &r));
    ck_assert(!store_change_parse("key", NULL, &r));
    /* an id of AI_ID_MAX bytes, and one more */
    memset(id, 'x', sizeof id);
    id[AI_ID_MAX] = '\0';
    r = (store_ref){.kind = STORE_KIND_REVOCATION, .target = REVOKE_TOKEN,
                    .name = id};
    ck_assert(store_change_key(&r, key));
    ck_assert(store_change_parse("revocation", key, &r));
    id[AI_ID_MAX] = 'x';
    id[AI_ID_MAX + 1] = '\0';
    r.name = id;
    ck_assert(!store_change_key(&r, key));
    ck_assert_str_eq(key, "");
    r = (store_ref){.kind = STORE_KIND_REVOCATION, .name = ""};
    ck_assert(!store_change_key(&r, key));
    r = (store_ref){.kind = STORE_KIND_REVOCATION, .target = 2, .name = "x"};
    ck_assert(!store_change_key(&r, key));
    r = (store_ref){.kind = STORE_KIND_KEY, .version = 0};
    ck_assert(!store_change_key(&r, key));
    r = (store_ref){.kind = STORE_KIND_PROVIDER, .name = NULL};
    ck_assert(!store_change_key(&r, key));
    r = (store_ref){.kind = (store_kind)99, .name = "x"};
    ck_assert(!store_change_key(&r, key));
    ck_assert_ptr_null(store_kind_name((store_kind)99));
}
END_TEST

/* A changelog row is written through the formatter: a change naming no
 * valid entity is refused and nothing is written. */
START_TEST(test_changelog_refuses_a_bad_key)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    int64_t before = 0, after = 0;
    ai_err err = {0};

    ck_assert_int_eq(store_changelog_head(st, &before, &err), AI_OK);
    ck_assert_int_eq(store_revoke(st, REVOKE_TOKEN, "", NULL, 0, T_NOW, NULL,
                                  &err),
                     AI_EINVAL);
    ck_assert_int_eq(store_changelog_head(st, &after, &err), AI_OK);
    ck_assert_int_eq(before, after);
    store_close(st);
    fx_home_free(home);
}
END_TEST

Suite *suite_store_chain(void)
{
    Suite *s = suite_create("store_chain");
    TCase *tc = tcase_create("chain");

    tcase_add_test(tc, test_chain_step_known_answer);
    tcase_add_test(tc, test_every_row_chains_to_the_one_before);
    tcase_add_test(tc, test_rows_without_hash_are_chained_at_open);
    tcase_add_test(tc, test_snapshot_header_names_its_hash);
    tcase_add_test(tc, test_follower_checks_the_chain);
    tcase_add_test(tc, test_change_key_round_trips);
    tcase_add_test(tc, test_change_key_parser_is_strict);
    tcase_add_test(tc, test_changelog_refuses_a_bad_key);
    suite_add_tcase(s, tc);
    return s;
}
