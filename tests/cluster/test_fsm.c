/* test_fsm.c - a voter applying committed entries: refusals are results,
 * a replayed index or a retried request changes nothing and answers as the
 * first time, two voters with one master.key end with the same changelog,
 * and an entry it cannot read stops it without moving its index. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tests.h"
#include "../store/home_fixture.h"
#include "cluster/fsm.h"
#include "core/core.h"

typedef struct voter {
    char *home;
    ai_broker *b;
    cluster_fsm f;
} voter;

/* A voter on a new home; with key, that master.key (as an operator copies
 * it into a new voter's home). */
static void voter_up(voter *v, const unsigned char *key)
{
    char p[4096];
    ai_err err;

    v->home = fx_home_new();
    if (key != NULL) {
        ck_assert_int_eq(mkdir(v->home, 0700), 0);
        fx_write(fx_path(p, sizeof p, v->home, STORE_KEY_FILE), key,
                 AI_KEY_BYTES, 0600);
    }
    ck_assert_int_eq(ai_broker_open(v->home, &v->b, &err), AI_OK);
    ck_assert_int_eq(cluster_fsm_open(&v->f, v->b, &err), AI_OK);
}

static void voter_down(voter *v)
{
    ai_broker_close(v->b);
    fx_home_free(v->home);
}

static unsigned char *master_of(voter *v)
{
    char p[4096];
    size_t n = 0;
    unsigned char *k = fx_read(fx_path(p, sizeof p, v->home, STORE_KEY_FILE),
                               &n);

    ck_assert_uint_eq(n, AI_KEY_BYTES);
    return k;
}

/* The entry of c under request id `id` (one byte repeated), sealed with
 * v's master key (ai_free it). */
static unsigned char *entry(voter *v, unsigned char id, const broker_cmd *c,
                            size_t *n)
{
    unsigned char req[CLUSTER_REQ_ID_BYTES], *out = NULL;
    ai_err err;

    memset(req, id, sizeof req);
    ck_assert_int_eq(cluster_encode(broker_store(v->b), req, c, &out, n,
                                    &err),
                     AI_OK);
    return out;
}

static void apply(voter *v, uint64_t index, const unsigned char *e, size_t n)
{
    ai_err err;

    ck_assert_msg(cluster_fsm_apply(&v->f, index, e, n, &err) == AI_OK,
                  "apply %llu: %s", (unsigned long long)index, err.msg);
}

START_TEST(test_fsm_refusals_are_results_and_retries_apply_once)
{
    voter v;
    const ai_budget_ref budget[] = {{"tok-1:x", 2}};
    broker_cmd rev = {.op = BROKER_REVOKE, .at_ms = T_NOW, .actor = "admin",
                      .target = REVOKE_AGENT, .id = "rogue"};
    broker_cmd unrev = {.op = BROKER_UNREVOKE, .at_ms = T_NOW,
                        .actor = "admin", .target = REVOKE_AGENT,
                        .id = "nobody"};
    broker_cmd use = {.op = BROKER_USES_CONSUME, .at_ms = T_NOW,
                      .budgets = budget, .nbudgets = 1};
    unsigned char *e1, *e2, *e3, *e4;
    size_t n1, n2, n3, n4;
    int64_t head = 0;
    uint64_t applied = 0;
    ai_err err;

    voter_up(&v, NULL);
    e1 = entry(&v, 1, &rev, &n1);
    e2 = entry(&v, 2, &unrev, &n2);
    e3 = entry(&v, 3, &use, &n3);
    e4 = entry(&v, 4, &use, &n4);
    apply(&v, 1, e1, n1);
    ck_assert_int_eq(v.f.last.code, AI_OK);
    ck_assert(!v.f.last.repeated);
    /* a refusal is the entry's result, and the index moves on */
    apply(&v, 2, e2, n2);
    ck_assert_int_eq(v.f.last.code, AI_ENOTFOUND);
    ck_assert_msg(v.f.last.msg[0] != '\0', "a refusal says why");
    ck_assert_uint_eq(v.f.applied, 2);
    apply(&v, 3, e3, n3);
    ck_assert(v.f.last.r.granted);
    ck_assert_uint_eq(v.f.last.r.remaining, 1);
    /* the same request again (a client's retry, logged twice): counted
     * once, answered as the first time */
    apply(&v, 4, e3, n3);
    ck_assert(v.f.last.repeated);
    ck_assert(v.f.last.r.granted);
    ck_assert_uint_eq(v.f.last.r.remaining, 1);
    apply(&v, 5, e4, n4);
    ck_assert(!v.f.last.repeated);
    ck_assert_uint_eq(v.f.last.r.remaining, 0);
    /* a replayed index (a restart) does nothing */
    ck_assert_int_eq(store_changelog_head(broker_store(v.b), &head, &err),
                     AI_OK);
    apply(&v, 1, e1, n1);
    ck_assert(v.f.last.repeated);
    ck_assert_int_eq(store_sync(broker_store(v.b), &err), AI_OK);
    ck_assert(store_revoked(broker_store(v.b), AI_REVOKED_AGENT, "rogue"));
    {
        int64_t again = 0;
        ck_assert_int_eq(store_changelog_head(broker_store(v.b), &again,
                                              &err),
                         AI_OK);
        ck_assert_int_eq(again, head);
    }
    ck_assert_int_eq(store_entry_applied(broker_store(v.b), &applied, &err),
                     AI_OK);
    ck_assert_uint_eq(applied, 5);
    /* a restart reads where it was */
    ai_broker_close(v.b);
    ck_assert_int_eq(ai_broker_open(v.home, &v.b, &err), AI_OK);
    ck_assert_int_eq(cluster_fsm_open(&v.f, v.b, &err), AI_OK);
    ck_assert_uint_eq(v.f.applied, 5);
    ai_free(e1);
    ai_free(e2);
    ai_free(e3);
    ai_free(e4);
    voter_down(&v);
}
END_TEST

START_TEST(test_fsm_two_voters_end_with_one_changelog)
{
    voter a, b;
    unsigned char *key, *es[4];
    size_t ns[4];
    broker_cmd cmds[4] = {
        {.op = BROKER_KEY_FIRST, .at_ms = T_NOW, .actor = "admin"},
        {.op = BROKER_REVOKE, .at_ms = T_NOW + 1, .actor = "admin",
         .target = REVOKE_TOKEN, .id = "AAAAAAAAAAAAAAAAAAAAAA"},
        {.op = BROKER_ROTATE_KEY, .at_ms = T_NOW + 2, .actor = "admin",
         .grace_ms = -1},
        {.op = BROKER_APIKEY_ADD, .at_ms = T_NOW + 3, .actor = "admin",
         .name = "oa", .provider = "openai", .secret = "sk-test-0123456789"},
    };
    char ha[STORE_HASH_HEX + 1], hb[STORE_HASH_HEX + 1];
    int64_t heada = 0, headb = 0;
    bool fa = false, fb = false;
    ai_err err;

    voter_up(&a, NULL);
    key = master_of(&a);
    voter_up(&b, key);
    free(key);
    memcpy(cmds[0].key, t_key1, AI_KEY_BYTES);
    memcpy(cmds[2].key, t_key2, AI_KEY_BYTES);
    for (int i = 0; i < 4; i++) {
        es[i] = entry(&a, (unsigned char)(10 + i), &cmds[i], &ns[i]);
        apply(&a, (uint64_t)i + 1, es[i], ns[i]);
        ck_assert_int_eq(a.f.last.code, AI_OK);
        apply(&b, (uint64_t)i + 1, es[i], ns[i]);
        ck_assert_int_eq(b.f.last.code, AI_OK);
    }
    ck_assert_uint_eq(a.f.last.r.version, b.f.last.r.version);
    ck_assert_int_eq(store_changelog_head(broker_store(a.b), &heada, &err),
                     AI_OK);
    ck_assert_int_eq(store_changelog_head(broker_store(b.b), &headb, &err),
                     AI_OK);
    ck_assert_int_eq(heada, headb);
    ck_assert_int_ge(heada, 4);
    ck_assert_int_eq(store_change_hash_at(broker_store(a.b), heada, ha, &fa,
                                          &err),
                     AI_OK);
    ck_assert_int_eq(store_change_hash_at(broker_store(b.b), headb, hb, &fb,
                                          &err),
                     AI_OK);
    ck_assert(fa && fb);
    ck_assert_str_eq(ha, hb);
    for (int i = 0; i < 4; i++)
        ai_free(es[i]);
    voter_down(&a);
    voter_down(&b);
}
END_TEST

START_TEST(test_fsm_an_entry_of_another_group_stops_the_voter)
{
    voter a, other;
    broker_cmd rev = {.op = BROKER_REVOKE, .at_ms = T_NOW, .actor = "admin",
                      .target = REVOKE_AGENT, .id = "rogue"};
    unsigned char *e;
    size_t n;
    int64_t head = -1;
    ai_err err;

    voter_up(&a, NULL);
    voter_up(&other, NULL); /* its own master.key */
    e = entry(&a, 1, &rev, &n);
    ck_assert_int_eq(cluster_fsm_apply(&other.f, 1, e, n, &err), AI_ESTORE);
    ck_assert_uint_eq(other.f.applied, 0);
    ck_assert_int_eq(store_changelog_head(broker_store(other.b), &head, &err),
                     AI_OK);
    ck_assert_int_eq(head, 0);
    ai_free(e);
    voter_down(&a);
    voter_down(&other);
}
END_TEST

START_TEST(test_fsm_result_text_round_trips)
{
    cluster_result r = {AI_EDENIED, "refused \"here\"", {7, true, 3}, false, 0};
    cluster_result back;
    char *s = cluster_result_json(&r);

    ck_assert_ptr_nonnull(s);
    ck_assert(cluster_result_parse(s, &back));
    ck_assert_int_eq(back.code, AI_EDENIED);
    ck_assert_str_eq(back.msg, r.msg);
    ck_assert_uint_eq(back.r.version, 7);
    ck_assert(back.r.granted);
    ck_assert_uint_eq(back.r.remaining, 3);
    free(s);
    r.code = AI_OK;
    s = cluster_result_json(&r);
    ck_assert(cluster_result_parse(s, &back));
    ck_assert_int_eq(back.code, AI_OK);
    free(s);
    ck_assert(!cluster_result_parse("{\"code\":\"nope\"}", &back));
    ck_assert(!cluster_result_parse("[]", &back));
    ck_assert(!cluster_result_parse("{\"code\":\"ok\",\"message\":\"\","
                                    "\"version\":-1,\"granted\":false,"
                                    "\"remaining\":0}",
                                    &back));
}
END_TEST

Suite *suite_cluster_fsm(void)
{
    Suite *s = suite_create("cluster_fsm");
    TCase *tc = tcase_create("fsm");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fsm_refusals_are_results_and_retries_apply_once);
    tcase_add_test(tc, test_fsm_two_voters_end_with_one_changelog);
    tcase_add_test(tc, test_fsm_an_entry_of_another_group_stops_the_voter);
    tcase_add_test(tc, test_fsm_result_text_round_trips);
    suite_add_tcase(s, tc);
    return s;
}
