/* test_feed.c - Suite "leader_feed": the change feed followers page
 * through (src/leader/feed.c), read from a real home whose changes are
 * written through src/broker. Pages chain without a gap or a repeat, a
 * limit and a byte cap cut them and set "more", a follower at the head
 * gets nothing, one ahead of it, behind the retained log or on another
 * history is sent to the snapshot, and what a follower may not see is
 * sealed or sent as a delete. Each test makes its own home and removes
 * it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "broker/broker.h"
#include "core/core.h"
#include "leader/feed.h"
#include "store/store.h"
#include "../tests.h"

typedef struct fx {
    t_home h;
    store *st;
    ai_broker *b;
    srv_follower fol;
} fx;

static void fx_up(fx *f)
{
    ai_err err;

    memset(f, 0, sizeof *f);
    t_home_make(&f->h, "feed");
    f->st = t_home_open(&f->h);
    ck_assert_int_eq(broker_wrap(f->st, &f->b, &err), AI_OK);
    snprintf(f->fol.providers, sizeof f->fol.providers, "*");
    memcpy(f->fol.key, t_key2, sizeof f->fol.key);
}

static void fx_down(fx *f)
{
    ai_broker_close(f->b);
    store_close(f->st);
    t_home_remove(&f->h);
}

/* n revocations of agents tag-0, tag-1...: one change each. */
static void revoke_n(fx *f, const char *tag, int n, const char *reason)
{
    char id[64];
    ai_err err;

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s-%d", tag, i);
        ck_assert_msg(ai_broker_revoke(f->b, NULL, id, reason, &err) ==
                          AI_OK,
                      "revoke %s: %s", id, err.msg);
    }
}

static int64_t head_of(fx *f)
{
    int64_t head = -1;
    ai_err err;

    ck_assert_int_eq(leader_feed_check(f->st, 0, NULL, &head, &err), AI_OK);
    return head;
}

/* A page that must be served; the caller json_decrefs it. */
static json_t *page(fx *f, int64_t since, size_t limit, size_t max_bytes)
{
    int64_t head = 0;
    json_t *p = NULL;
    ai_err err;

    ck_assert_msg(leader_feed_check(f->st, since, NULL, &head, &err) ==
                      AI_OK,
                  "check %lld: %s", (long long)since, err.msg);
    ck_assert_msg(leader_feed_page(f->st, &f->fol, "L1", since, head, limit,
                                   max_bytes, &p, &err) == AI_OK,
                  "page %lld: %s", (long long)since, err.msg);
    ck_assert_ptr_nonnull(p);
    return p;
}

static const json_t *changes_of(const json_t *p)
{
    const json_t *c = json_object_get(p, "changes");

    ck_assert(json_is_array(c));
    return c;
}

static int64_t seq_at(const json_t *p, size_t i)
{
    return json_integer_value(
        json_object_get(json_array_get(changes_of(p), i), "seq"));
}

static bool more_of(const json_t *p)
{
    const json_t *m = json_object_get(p, "more");

    ck_assert(json_is_boolean(m));
    return json_is_true(m);
}

START_TEST(test_feed_pages_chain_without_gaps_or_repeats)
{
    fx f;
    int64_t since = 0, head, pages = 0;
    char hash[STORE_HASH_HEX + 1] = "";

    fx_up(&f);
    revoke_n(&f, "agent", 300, NULL);
    head = head_of(&f);
    ck_assert_int_ge(head, 300);
    for (;;) {
        int64_t h = 0;
        json_t *p = NULL;
        size_t n;
        ai_err err;
        /* each page asked as a follower does: from the last seq it
         * applied, with the chain hash it holds there */
        ck_assert_msg(leader_feed_check(f.st, since, since ? hash : NULL, &h,
                                        &err) == AI_OK,
                      "check %lld: %s", (long long)since, err.msg);
        ck_assert_int_eq(h, head);
        ck_assert_int_eq(leader_feed_page(f.st, &f.fol, "L1", since, h, 7,
                                          LEADER_FEED_BYTES_DEFAULT, &p, &err),
                         AI_OK);
        n = json_array_size(changes_of(p));
        ck_assert_uint_le(n, 7);
        ck_assert_int_eq(json_integer_value(json_object_get(p, "leaderSeq")),
                         head);
        ck_assert_str_eq(json_string_value(json_object_get(p, "leaderId")),
                         "L1");
        for (size_t i = 0; i < n; i++) /* the next seq, every time */
            ck_assert_int_eq(seq_at(p, i), since + 1 + (int64_t)i);
        if (n > 0) {
            const char *last = json_string_value(json_object_get(
                json_array_get(changes_of(p), n - 1), "hash"));
            ck_assert_ptr_nonnull(last);
            snprintf(hash, sizeof hash, "%s", last);
            since += (int64_t)n;
        }
        ck_assert(more_of(p) == (since < head));
        pages++;
        json_decref(p);
        if (since == head)
            break;
        ck_assert_uint_eq(n, 7); /* only the last page is short */
    }
    ck_assert_int_eq(pages, (head + 6) / 7);
    fx_down(&f);
}
END_TEST

START_TEST(test_feed_limit_is_honoured)
{
    fx f;
    json_t *p;
    int64_t head;

    fx_up(&f);
    revoke_n(&f, "agent", 20, NULL);
    head = head_of(&f);
    p = page(&f, 0, 5, LEADER_FEED_BYTES_DEFAULT);
    ck_assert_uint_eq(json_array_size(changes_of(p)), 5);
    ck_assert_int_eq(seq_at(p, 4), 5);
    ck_assert(more_of(p));
    json_decref(p);
    p = page(&f, 3, 1, LEADER_FEED_BYTES_DEFAULT);
    ck_assert_uint_eq(json_array_size(changes_of(p)), 1);
    ck_assert_int_eq(seq_at(p, 0), 4);
    json_decref(p);
    p = page(&f, 0, LEADER_FEED_LIMIT_MAX, LEADER_FEED_BYTES_DEFAULT);
    ck_assert_int_eq((int64_t)json_array_size(changes_of(p)), head);
    ck_assert(!more_of(p));
    json_decref(p);
    fx_down(&f);
}
END_TEST

START_TEST(test_feed_byte_cap_cuts_the_page_and_sets_more)
{
    fx f;
    char reason[301], key[4001];
    json_t *p;
    size_t n, bytes = 0;
    int64_t head;
    ai_err err;

    fx_up(&f);
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    revoke_n(&f, "agent", 40, reason);
    head = head_of(&f);
    p = page(&f, 0, 100, LEADER_FEED_BYTES_MIN);
    n = json_array_size(changes_of(p));
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_lt(n, 40); /* the bytes cut it, not the limit */
    for (size_t i = 0; i < n; i++)
        bytes += json_dumpb(json_array_get(changes_of(p), i), NULL, 0,
                            JSON_COMPACT) + 1;
    ck_assert_uint_le(bytes, LEADER_FEED_BYTES_MIN);
    ck_assert(more_of(p));
    ck_assert_int_eq(json_integer_value(json_object_get(p, "leaderSeq")),
                     head);
    json_decref(p);
    /* a change larger than the cap still comes, alone */
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    ck_assert_msg(ai_broker_add_api_key(f.b, "big", "openai", key, NULL, 0,
                                        &err) == AI_OK,
                  "%s", err.msg);
    revoke_n(&f, "after", 1, NULL);
    p = page(&f, head, 100, LEADER_FEED_BYTES_MIN);
    ck_assert_uint_eq(json_array_size(changes_of(p)), 1);
    ck_assert_int_eq(seq_at(p, 0), head + 1);
    ck_assert_uint_gt(json_dumpb(json_array_get(changes_of(p), 0), NULL, 0,
                                 JSON_COMPACT),
                      LEADER_FEED_BYTES_MIN);
    ck_assert(more_of(p));
    json_decref(p);
    fx_down(&f);
}
END_TEST

START_TEST(test_feed_at_head_gives_nothing_and_past_it_is_gone)
{
    fx f;
    json_t *p;
    int64_t head, h = 0;
    ai_err err;

    fx_up(&f);
    revoke_n(&f, "agent", 3, NULL);
    head = head_of(&f);
    p = page(&f, head, 10, LEADER_FEED_BYTES_DEFAULT);
    ck_assert_uint_eq(json_array_size(changes_of(p)), 0);
    ck_assert(!more_of(p));
    ck_assert_int_eq(json_integer_value(json_object_get(p, "leaderSeq")),
                     head);
    json_decref(p);
    ck_assert_int_eq(leader_feed_check(f.st, head + 1, NULL, &h, &err),
                     AI_ENOTFOUND);
    ck_assert(t_has(err.msg, "ahead of the leader"));
    fx_down(&f);
}
END_TEST

START_TEST(test_feed_refuses_since_before_the_retained_log)
{
    fx f;
    json_t *p;
    int64_t head, oldest = 0, removed = 0, h = 0;
    ai_err err;

    fx_up(&f);
    revoke_n(&f, "agent", 50, NULL);
    head = head_of(&f);
    ck_assert_int_eq(store_changelog_trim(f.st, 10, 0, T_NOW + 365 * T_DAY,
                                          &removed, &err),
                     AI_OK);
    ck_assert_int_eq(removed, head - 10);
    ck_assert_int_eq(store_changelog_oldest(f.st, &oldest, &err), AI_OK);
    ck_assert_int_eq(oldest, head - 9);
    ck_assert_int_eq(leader_feed_check(f.st, oldest - 2, NULL, &h, &err),
                     AI_ENOTFOUND);
    ck_assert(t_has(err.msg, "no longer kept"));
    ck_assert_int_eq(leader_feed_check(f.st, 0, NULL, &h, &err),
                     AI_ENOTFOUND);
    /* the change just before the oldest kept one is still a place to
     * resume from: the next page begins at the oldest */
    p = page(&f, oldest - 1, 100, LEADER_FEED_BYTES_DEFAULT);
    ck_assert_uint_eq(json_array_size(changes_of(p)), 10);
    ck_assert_int_eq(seq_at(p, 0), oldest);
    json_decref(p);
    fx_down(&f);
}
END_TEST

START_TEST(test_feed_hash_must_be_this_history)
{
    fx f;
    char have[STORE_HASH_HEX + 1], other[STORE_HASH_HEX + 1];
    int64_t h = 0;
    bool found = false;
    ai_err err;

    fx_up(&f);
    revoke_n(&f, "agent", 5, NULL);
    ck_assert_int_eq(store_change_hash_at(f.st, 3, have, &found, &err),
                     AI_OK);
    ck_assert(found);
    ck_assert_int_eq(leader_feed_check(f.st, 3, have, &h, &err), AI_OK);
    memcpy(other, have, sizeof other);
    other[0] = other[0] == '0' ? '1' : '0';
    ck_assert_int_eq(leader_feed_check(f.st, 3, other, &h, &err),
                     AI_ENOTFOUND);
    ck_assert(t_has(err.msg, "history differs"));
    ck_assert_int_eq(leader_feed_check(f.st, 3, "xyz", &h, &err), AI_EINVAL);
    /* at 0 there is no change to compare with */
    ck_assert_int_eq(leader_feed_check(f.st, 0, other, &h, &err), AI_OK);
    fx_down(&f);
}
END_TEST

START_TEST(test_feed_seals_secrets_and_withholds_ungranted)
{
    fx f;
    json_t *p;
    const json_t *c, *v;
    char *text, aad[32];
    unsigned char *plain = NULL;
    size_t n = 0, i;
    uint32_t version = 0;
    int64_t head;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(ai_broker_rotate_key(f.b, 0, &version, &err), AI_OK);
    ck_assert_int_eq(ai_broker_add_api_key(f.b, "k1", "openai",
                                           "sk-feed-secret", NULL, 0, &err),
                     AI_OK);
    head = head_of(&f);
    snprintf(f.fol.providers, sizeof f.fol.providers, "github");
    p = page(&f, 0, 100, LEADER_FEED_BYTES_DEFAULT);
    text = json_dumps(p, JSON_COMPACT);
    ck_assert(!t_has(text, "sk-feed-secret"));
    ck_assert(!t_has(text, "\"secret\""));
    free(text);
    ck_assert_int_eq((int64_t)json_array_size(changes_of(p)), head);
    json_array_foreach(changes_of(p), i, c) {
        const char *kind = json_string_value(json_object_get(c, "kind"));
        const char *op = json_string_value(json_object_get(c, "op"));
        v = json_object_get(c, "value");
        if (strcmp(kind, "apikey") == 0) { /* openai is not granted */
            ck_assert_str_eq(op, "delete");
            ck_assert_ptr_null(v);
        } else if (strcmp(kind, "key") == 0 && strcmp(op, "set") == 0) {
            /* opens under the follower's key, bound to the entity */
            snprintf(aad, sizeof aad, "key:%s",
                     json_string_value(json_object_get(c, "key")));
            ck_assert_int_eq(
                store_unseal_text(f.fol.key, aad,
                                  json_string_value(
                                      json_object_get(v, "sealed")),
                                  &plain, &n, &err),
                AI_OK);
            ck_assert_uint_gt(n, 0);
            OPENSSL_cleanse(plain, n);
            ai_free(plain);
            plain = NULL;
        }
    }
    json_decref(p);
    /* granted: the API key comes as a set, sealed */
    snprintf(f.fol.providers, sizeof f.fol.providers, "openai");
    p = page(&f, head - 1, 1, LEADER_FEED_BYTES_DEFAULT);
    c = json_array_get(changes_of(p), 0);
    ck_assert_str_eq(json_string_value(json_object_get(c, "op")), "set");
    v = json_object_get(c, "value");
    ck_assert_ptr_nonnull(json_object_get(v, "sealed"));
    ck_assert_ptr_null(json_object_get(v, "secret"));
    ck_assert_int_eq(store_unseal_text(f.fol.key, "apikey:k1",
                                       json_string_value(
                                           json_object_get(v, "sealed")),
                                       &plain, &n, &err),
                     AI_OK);
    ck_assert_uint_eq(n, strlen("sk-feed-secret"));
    ck_assert_int_eq(memcmp(plain, "sk-feed-secret", n), 0);
    OPENSSL_cleanse(plain, n);
    ai_free(plain);
    json_decref(p);
    fx_down(&f);
}
END_TEST

START_TEST(test_feed_page_bounds_are_checked)
{
    fx f;
    json_t *p = NULL;
    ai_err err;

    fx_up(&f);
    ck_assert_int_eq(leader_feed_page(f.st, &f.fol, "L1", 0, 0, 0,
                                      LEADER_FEED_BYTES_DEFAULT, &p, &err),
                     AI_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(leader_feed_page(f.st, &f.fol, "L1", 0, 0,
                                      LEADER_FEED_LIMIT_MAX + 1,
                                      LEADER_FEED_BYTES_DEFAULT, &p, &err),
                     AI_EINVAL);
    ck_assert_int_eq(leader_feed_page(f.st, &f.fol, "L1", 0, 0, 10,
                                      LEADER_FEED_BYTES_MIN - 1, &p, &err),
                     AI_EINVAL);
    ck_assert_int_eq(leader_feed_page(f.st, &f.fol, "L1", 0, 0, 10,
                                      LEADER_FEED_BYTES_MAX + 1, &p, &err),
                     AI_EINVAL);
    ck_assert_ptr_null(p);
    fx_down(&f);
}
END_TEST

Suite *suite_leader_feed(void)
{
    Suite *s = suite_create("leader_feed");
    TCase *tc = tcase_create("feed");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_feed_pages_chain_without_gaps_or_repeats);
    tcase_add_test(tc, test_feed_limit_is_honoured);
    tcase_add_test(tc, test_feed_byte_cap_cuts_the_page_and_sets_more);
    tcase_add_test(tc, test_feed_at_head_gives_nothing_and_past_it_is_gone);
    tcase_add_test(tc, test_feed_refuses_since_before_the_retained_log);
    tcase_add_test(tc, test_feed_hash_must_be_this_history);
    tcase_add_test(tc, test_feed_seals_secrets_and_withholds_ungranted);
    tcase_add_test(tc, test_feed_page_bounds_are_checked);
    suite_add_tcase(s, tc);
    return s;
}
