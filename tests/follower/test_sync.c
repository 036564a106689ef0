/* test_sync.c - Suite "follower_sync": one round of replication,
 * fl_sync_once (src/follower/sync.c), against a stub leader on 127.0.0.1
 * (tests/follower/stub_leader.py, plain HTTP to loopback). The stub serves
 * what the leader's own code makes of a real leader home (src/leader
 * feed.c: the snapshot's lines and the feed's pages, sealed under the
 * follower's transport key), written to files the stub reads at each
 * request. A first sync loads the snapshot and a page of changes then
 * applies; a page whose hash chain does not continue the replica is
 * refused and changes nothing; a 410 reloads the snapshot; a malformed
 * answer is an error that changes nothing; a leader that never answers
 * is given up after the fetch timeout. One stub serves the suite (started
 * and stopped by the parent process, so none outlives it); each test
 * makes its own homes and removes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "broker/broker.h"
#include "core/core.h"
#include "follower/internal.h"
#include "leader/feed.h"
#include "store/store.h"
#include "../providers/stub.h"
#include "../tests.h"

#define TOKEN "follower-test-token-0123456789abcdef"

static char dir[64];
static pid_t stub_pid = -1;
static int stub_port;

static void setup(void)
{
    const char *const argv[] = {"python3", "-B",
                                "tests/follower/stub_leader.py", dir, TOKEN,
                                NULL};

    snprintf(dir, sizeof dir, "/tmp/ai-stub-leader-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    stub_pid = t_stub_start(argv, &stub_port);
}

static void teardown(void)
{
    char cmd[128];

    t_stub_stop(&stub_pid);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- a leader home, a follower of it, the stub's files --------------- */

typedef struct fx {
    t_home lh, fh;       /* the leader's home, the follower's */
    store *lst;
    ai_broker *lb;
    srv_follower fol;    /* the follower as the leader sees it */
    char lid[STORE_LEADER_ID_LEN + 1];
    char url[64];
    ai_follower *f;
} fx;

static const char *stub_file(char *buf, size_t cap, const char *name)
{
    ck_assert_int_lt(snprintf(buf, cap, "%s/%s", dir, name), (int)cap);
    return buf;
}

/* What the stub answers at route `name`: status line, then body. */
static void publish(const char *name, const char *status, const char *body)
{
    char p[128];
    FILE *fp = fopen(stub_file(p, sizeof p, name), "w");

    ck_assert_ptr_nonnull(fp);
    fprintf(fp, "%s\n%s", status, body);
    ck_assert_int_eq(fclose(fp), 0);
}

static void fx_up(fx *x)
{
    ai_follower_config c;
    char p[128];
    uint32_t version = 0;
    ai_err err;

    memset(x, 0, sizeof *x);
    unlink(stub_file(p, sizeof p, "snapshot"));
    unlink(stub_file(p, sizeof p, "changes"));
    unlink(stub_file(p, sizeof p, "requests"));
    t_home_make(&x->lh, "lead");
    x->lst = t_home_open(&x->lh);
    ck_assert_int_eq(broker_wrap(x->lst, &x->lb, &err), AI_OK);
    ck_assert_int_eq(ai_broker_rotate_key(x->lb, 0, &version, &err), AI_OK);
    ck_assert_int_eq(store_leader_id(x->lst, x->lid, &err), AI_OK);
    snprintf(x->fol.providers, sizeof x->fol.providers, "*");
    store_transport_key(TOKEN, strlen(TOKEN), x->fol.key);
    t_home_make(&x->fh, "fol");
    snprintf(x->url, sizeof x->url, "http://127.0.0.1:%d", stub_port);
    ai_follower_config_init(&c);
    c.home = x->fh.path;
    c.leader_url = x->url;
    c.auth_token = TOKEN;
    c.follower_id = "eu-1";
    c.serve = false;
    ck_assert_msg(fl_new(&c, &x->f, &err) == AI_OK, "%s", err.msg);
}

static void fx_down(fx *x)
{
    fl_free(x->f);
    ai_broker_close(x->lb);
    store_close(x->lst);
    t_home_remove(&x->fh);
    t_home_remove(&x->lh);
}

static int64_t leader_head(fx *x)
{
    int64_t head = 0;
    ai_err err;

    ck_assert_int_eq(store_changelog_head(x->lst, &head, &err), AI_OK);
    return head;
}

static void revoke_agent(fx *x, const char *agent)
{
    ai_err err;

    ck_assert_int_eq(ai_broker_revoke(x->lb, NULL, agent, NULL, &err), AI_OK);
}

/* The leader's snapshot as this follower receives it, for the stub. */
static int64_t publish_snapshot(fx *x)
{
    snap_cursor *cur = NULL;
    int64_t seq = 0;
    ai_buf b;
    bool done = false;
    ai_err err;

    buf_init(&b);

    ck_assert_int_eq(store_snapshot_open(x->lh.path, &cur, &seq, &err),
                     AI_OK);
    store_snapshot_set_filter(cur, leader_snapshot_filter, &x->fol);
    for (;;) {
        char *line = NULL;
        ck_assert_int_eq(store_snapshot_line(cur, &line, &done, &err), AI_OK);
        if (done)
            break;
        buf_put(&b, line, strlen(line));
        buf_putc(&b, '\n');
        explicit_bzero(line, strlen(line));
        ai_free(line);
    }
    store_snapshot_close(cur);
    ck_assert(!b.oom && b.p != NULL);
    publish("snapshot", "200", b.p);
    buf_free(&b);
    return seq;
}

/* The leader's feed page after since (every change), as JSON. */
static json_t *feed_page(fx *x, int64_t since)
{
    int64_t head = 0;
    json_t *p = NULL;
    ai_err err;

    ck_assert_int_eq(leader_feed_check(x->lst, since, NULL, &head, &err),
                     AI_OK);
    ck_assert_int_eq(leader_feed_page(x->lst, &x->fol, x->lid, since, head,
                                      LEADER_FEED_LIMIT_DEFAULT,
                                      LEADER_FEED_BYTES_DEFAULT, &p, &err),
                     AI_OK);
    return p;
}

static void publish_json(const char *name, const json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);

    ck_assert_ptr_nonnull(text);
    publish(name, "200", text);
    free(text);
}

/* The replica as another process sees it: its applied seq and whether
 * agent is revoked there. */
static int64_t replica_seq(fx *x)
{
    store *st = t_home_open(&x->fh);
    int64_t seq = -1;
    ai_err err;

    ck_assert_int_eq(store_applied_seq(st, &seq, &err), AI_OK);
    store_close(st);
    return seq;
}

static bool replica_revoked(fx *x, const char *agent)
{
    store *st = t_home_open(&x->fh);
    ai_err err;
    bool r;

    ck_assert_int_eq(store_sync(st, &err), AI_OK); /* its views, loaded */
    r = store_revoked(st, AI_REVOKED_AGENT, agent);

    store_close(st);
    return r;
}

/* How many requests the stub saw whose path holds `part`. */
static int requests_with(const char *part)
{
    char p[128], line[1024];
    FILE *fp = fopen(stub_file(p, sizeof p, "requests"), "r");
    int n = 0;

    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof line, fp) != NULL)
        n += t_has(line, part);
    fclose(fp);
    return n;
}

/* The first sync: the snapshot, whatever the feed says. */
static void first_sync(fx *x, int64_t seq)
{
    bool more = true;
    ai_err err;

    ck_assert_msg(fl_sync_once(x->f, 0, &more, &err) == AI_OK, "%s",
                  err.msg);
    ck_assert_int_eq(atomic_load(&x->f->applied), seq);
    ck_assert_int_eq(replica_seq(x), seq);
    ck_assert_int_eq(requests_with("/v1/replication/snapshot"), 1);
    ck_assert_int_eq(requests_with("/v1/replication/changes"), 0);
}

/* A follower that loaded the leader's snapshot, agent-a revoked in it,
 * and the leader one change (agent-b revoked) further: the snapshot's
 * seq. */
static int64_t follow(fx *x)
{
    int64_t seq;

    fx_up(x);
    revoke_agent(x, "agent-a");
    seq = publish_snapshot(x);
    first_sync(x, seq);
    revoke_agent(x, "agent-b");
    return seq;
}

static int64_t ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the tests ------------------------------------------------------- */

START_TEST(test_sync_loads_the_snapshot_then_applies_a_page)
{
    fx x;
    ai_root_params rp;
    ai_token *t = NULL, *out = NULL;
    ai_broker *rb = NULL;
    json_t *page;
    char want[160], hash[STORE_HASH_HEX + 1];
    int64_t s1, s2;
    bool more = true, found = false;
    ai_err err;

    fx_up(&x);
    ai_root_params_init(&rp);
    rp.agent_id = "agent-b";
    rp.scopes = T_ARR("github:repo:read");
    rp.nscopes = 1;
    ck_assert_int_eq(ai_broker_create_root_token(x.lb, &rp, &t, &err), AI_OK);
    revoke_agent(&x, "agent-a");
    s1 = publish_snapshot(&x);
    ck_assert_int_eq(s1, leader_head(&x));
    ck_assert_int_eq(atomic_load(&x.f->applied), 0);
    first_sync(&x, s1);
    ck_assert(replica_revoked(&x, "agent-a"));
    ck_assert(!replica_revoked(&x, "agent-b"));
    /* the signing key came sealed and opened: the replica verifies the
     * leader's token */
    ck_assert_int_eq(ai_broker_open(x.fh.path, &rb, &err), AI_OK);
    ck_assert_int_eq(ai_broker_verify(rb, ai_token_serialize(t),
                                      ai_token_serialized_len(t), &out, &err),
                     AI_OK);
    ai_token_free(out);
    out = NULL;
    ai_broker_close(rb);
    /* then the feed: two changes, applied in one step */
    revoke_agent(&x, "agent-b");
    revoke_agent(&x, "agent-c");
    s2 = leader_head(&x);
    page = feed_page(&x, s1);
    ck_assert_uint_eq(json_array_size(json_object_get(page, "changes")),
                      (size_t)(s2 - s1));
    publish_json("changes", page);
    json_decref(page);
    ck_assert_msg(fl_sync_once(x.f, 0, &more, &err) == AI_OK, "%s",
                  err.msg);
    ck_assert(!more);
    ck_assert_int_eq(atomic_load(&x.f->applied), s2);
    ck_assert_int_eq(atomic_load(&x.f->leader_seq), s2);
    ck_assert_int_eq(replica_seq(&x), s2);
    ck_assert_int_eq(store_change_hash_at(x.lst, s2, hash, &found, &err),
                     AI_OK);
    ck_assert_str_eq(x.f->applied_hash, hash);
    ck_assert(replica_revoked(&x, "agent-b"));
    ck_assert(replica_revoked(&x, "agent-c"));
    /* it asked from where the snapshot left it, with the chain there */
    snprintf(want, sizeof want, "changes?since=%lld&", (long long)s1);
    ck_assert_int_eq(requests_with(want), 1);
    ck_assert_int_eq(requests_with("&hash="), 1);
    ck_assert_int_eq(ai_broker_open(x.fh.path, &rb, &err), AI_OK);
    ck_assert_int_eq(ai_broker_verify(rb, ai_token_serialize(t),
                                      ai_token_serialized_len(t), &out, &err),
                     AI_EREVOKED);
    ai_broker_close(rb);
    ai_token_free(t);
    fx_down(&x);
}
END_TEST

START_TEST(test_sync_refuses_a_page_off_the_chain)
{
    fx x;
    json_t *page, *c;
    char other[STORE_HASH_HEX + 1];
    int64_t s1;
    bool more = false;
    ai_err err;

    s1 = follow(&x);
    revoke_agent(&x, "agent-c");
    page = feed_page(&x, s1);
    /* the second change's hash is well formed but not the chain's */
    c = json_array_get(json_object_get(page, "changes"), 1);
    snprintf(other, sizeof other, "%s",
             json_string_value(json_object_get(c, "hash")));
    other[10] = other[10] == 'a' ? 'b' : 'a';
    json_object_set_new(c, "hash", json_string(other));
    publish_json("changes", page);
    json_decref(page);
    /* a parted history sends the follower to the snapshot: let it fail,
     * so only the refusal of the page is seen */
    publish("snapshot", "503", "{\"error\":\"busy\"}");
    ck_assert_int_ne(fl_sync_once(x.f, 0, &more, &err), AI_OK);
    ck_assert(t_has(x.f->last_error, "hash chain"));
    ck_assert_int_eq(requests_with("/v1/replication/snapshot"), 2);
    ck_assert_int_eq(atomic_load(&x.f->applied), s1);
    ck_assert_int_eq(replica_seq(&x), s1);
    ck_assert(!replica_revoked(&x, "agent-b")); /* not even the first */
    ck_assert(!replica_revoked(&x, "agent-c"));
    fx_down(&x);
}
END_TEST

START_TEST(test_sync_gone_reloads_the_snapshot)
{
    fx x;
    int64_t s1, s2;
    bool more = true;
    ai_err err;

    s1 = follow(&x);
    s2 = publish_snapshot(&x);
    ck_assert_int_gt(s2, s1);
    publish("changes", "410",
            "{\"error\":\"changes after 1 are no longer kept\","
            "\"code\":\"gone\"}");
    ck_assert_msg(fl_sync_once(x.f, 0, &more, &err) == AI_OK, "%s",
                  err.msg);
    ck_assert_int_eq(requests_with("/v1/replication/changes"), 1);
    ck_assert_int_eq(requests_with("/v1/replication/snapshot"), 2);
    ck_assert_int_eq(atomic_load(&x.f->applied), s2);
    ck_assert_int_eq(replica_seq(&x), s2);
    ck_assert(replica_revoked(&x, "agent-b"));
    ck_assert(t_has(x.f->last_error, "no longer kept"));
    fx_down(&x);
}
END_TEST

START_TEST(test_sync_malformed_answer_changes_nothing)
{
    static const char *const bodies[] = {
        "{\"leaderSeq\":9,\"changes\":[{\"seq\":",
        "[1,2,3]",
        "{\"leaderSeq\":9,\"changes\":{}}",
        "{\"changes\":[]}",
    };
    fx x;
    int64_t s1;
    bool more = false;
    ai_err err;

    s1 = follow(&x);
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        publish("changes", "200", bodies[i]);
        ck_assert_int_eq(fl_sync_once(x.f, 0, &more, &err), AI_EINVAL);
        ck_assert_msg(t_has(err.msg, "malformed"), "%s", err.msg);
        ck_assert_int_eq(atomic_load(&x.f->applied), s1);
    }
    ck_assert_int_eq(replica_seq(&x), s1);
    ck_assert(!replica_revoked(&x, "agent-b"));
    /* none of it made the follower reload the snapshot */
    ck_assert_int_eq(requests_with("/v1/replication/snapshot"), 1);
    fx_down(&x);
}
END_TEST

START_TEST(test_sync_silent_leader_times_out)
{
    fx x;
    int64_t s1, t0, took;
    bool more = false;
    ai_err err;

    s1 = follow(&x);
    publish("changes", "hang", "");
    x.f->fetch_ms = 1000;
    t0 = ms_now();
    ck_assert_int_eq(fl_sync_once(x.f, 0, &more, &err), AI_EUNAVAILABLE);
    took = ms_now() - t0;
    ck_assert_msg(took >= 900 && took < 5000, "gave up after %lld ms",
                  (long long)took);
    ck_assert_int_eq(requests_with("/v1/replication/changes"), 1);
    ck_assert_int_eq(atomic_load(&x.f->applied), s1);
    ck_assert_int_eq(replica_seq(&x), s1);
    fx_down(&x);
}
END_TEST

Suite *suite_follower_sync(void)
{
    Suite *s = suite_create("follower_sync");
    TCase *tc = tcase_create("sync");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sync_loads_the_snapshot_then_applies_a_page);
    tcase_add_test(tc, test_sync_refuses_a_page_off_the_chain);
    tcase_add_test(tc, test_sync_gone_reloads_the_snapshot);
    tcase_add_test(tc, test_sync_malformed_answer_changes_nothing);
    tcase_add_test(tc, test_sync_silent_leader_times_out);
    suite_add_tcase(s, tc);
    return s;
}
