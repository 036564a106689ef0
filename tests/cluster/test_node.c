/* test_node.c - three voters in one process on 127.0.0.1 (each its own
 * home, one master.key, libraft on its own thread): a leader is elected,
 * a write through it is applied on every voter once, a write sent to a
 * follower is refused with the leader's URL, and when the leader stops
 * the two others elect a new one that takes writes, while the stopped
 * one catches up when it comes back. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tests.h"
#include "../store/home_fixture.h"
#include "cluster/cluster.h"
#include "server/tls.h"
#include "core/core.h"

#define N 3

typedef struct group {
    char *homes[N];
    char file[256];
    char pki[64];      /* ca.pem, node.pem/key; other/ a foreign CA */
    char cert[N][128]; /* each voter's certificate and key */
    char key[N][128];
    ai_cluster *nodes[N];
} group;


static void start(group *g, int i)
{
    cluster_opts o = {.file = g->file, .node_id = (uint64_t)i + 1,
                      .home = g->homes[i], .tls_cert = g->cert[i],
                      .tls_key = g->key[i], .election_ms = 600,
                      .heartbeat_ms = 60};
    ai_err err;

    ck_assert_msg(cluster_start(&o, &g->nodes[i], &err) == AI_OK,
                  "node %d: %s", i + 1, err.msg);
}

static void group_up(group *g)
{
    char p[4096];
    unsigned char *key = NULL;
    size_t n = 0;
    FILE *f;

    memset(g, 0, sizeof *g);
    snprintf(g->pki, sizeof g->pki, "/tmp/agent-iam-cnode-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g->pki));
    {
        char other[128];
        ai_err err;
        snprintf(other, sizeof other, "%s/other", g->pki);
        ck_assert_int_eq(srv_tls_issue(g->pki, "node",
                                       T_LIST("IP:127.0.0.1"), true, &err),
                         AI_OK);
        ck_assert_int_eq(srv_tls_issue(other, "node", T_LIST("IP:127.0.0.1"),
                                       true, &err),
                         AI_OK);
    }
    for (int i = 0; i < N; i++) {
        snprintf(g->cert[i], sizeof g->cert[i], "%s/node.pem", g->pki);
        snprintf(g->key[i], sizeof g->key[i], "%s/node.key", g->pki);
    }
    for (int i = 0; i < N; i++) {
        g->homes[i] = fx_home_new();
        ck_assert_int_eq(mkdir(g->homes[i], 0700), 0);
        if (i == 0) {
            store_close(fx_open(g->homes[0]));
            key = fx_read(fx_path(p, sizeof p, g->homes[0], STORE_KEY_FILE),
                          &n);
        } else {
            fx_write(fx_path(p, sizeof p, g->homes[i], STORE_KEY_FILE), key,
                     n, 0600);
        }
    }
    free(key);
    snprintf(g->file, sizeof g->file, "%s.cluster.json", g->homes[0]);
    f = fopen(g->file, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"ca\":\"%s/ca.pem\",\"nodes\":[", g->pki);
    for (int i = 0; i < N; i++)
        fprintf(f, "%s{\"id\":%d,\"raft\":\"127.0.0.1:%d\","
                   "\"url\":\"https://127.0.0.1:%d\"}",
                i ? "," : "", i + 1, t_free_port(), 9000 + i + 1);
    fprintf(f, "]}");
    fclose(f);
    for (int i = 0; i < N; i++)
        start(g, i);
}

static void group_down(group *g)
{
    for (int i = 0; i < N; i++)
        cluster_stop(g->nodes[i]);
    unlink(g->file);
    for (int i = 0; i < N; i++)
        fx_home_free(g->homes[i]);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g->pki);
        ck_assert_int_eq(system(cmd), 0);
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The index of the ready leader among the running nodes (waits up to
 * 10 s), -1 if none. */
static int leader(group *g)
{
    for (int t = 0; t < 1000; t++) {
        for (int i = 0; i < N; i++) {
            cluster_status s;
            if (g->nodes[i] == NULL)
                continue;
            cluster_get_status(g->nodes[i], &s);
            if (s.role == CLUSTER_LEADER && s.ready)
                return i;
        }
        sleep_ms(10);
    }
    return -1;
}

static ai_code submit_revoke(group *g, int i, const char *agent, unsigned char id,
                      cluster_result *res, char url[CLUSTER_URL_MAX],
                      ai_err *err)
{
    unsigned char req[CLUSTER_REQ_ID_BYTES];
    broker_cmd c = {.op = BROKER_REVOKE, .at_ms = T_NOW, .actor = "admin",
                    .target = REVOKE_AGENT, .id = agent};

    memset(req, id, sizeof req);
    return cluster_submit(g->nodes[i], &c, req, 5000, res, url, err);
}

/* Whether agent is revoked in voter i's home (waits up to 5 s). */
static bool revoked_in(group *g, int i, const char *agent)
{
    for (int t = 0; t < 500; t++) {
        store *st = fx_open(g->homes[i]);
        ai_err err;
        bool yes = store_sync(st, &err) == AI_OK &&
                   store_revoked(st, AI_REVOKED_AGENT, agent);
        store_close(st);
        if (yes)
            return true;
        sleep_ms(10);
    }
    return false;
}

/* Whether agent is revoked in voter i's home now. */
static bool revoked_in_now(group *g, int i, const char *agent)
{
    store *st = fx_open(g->homes[i]);
    ai_err err;
    bool yes = store_sync(st, &err) == AI_OK &&
               store_revoked(st, AI_REVOKED_AGENT, agent);

    store_close(st);
    return yes;
}

START_TEST(test_node_three_voters_elect_and_apply)
{
    group g;
    cluster_result res;
    cluster_status s;
    char url[CLUSTER_URL_MAX];
    int l, f, l2;
    ai_err err;

    group_up(&g);
    l = leader(&g);
    ck_assert_int_ge(l, 0);
    ck_assert_int_eq(submit_revoke(&g, l, "rogue", 1, &res, url, &err), AI_OK);
    ck_assert_int_eq(res.code, AI_OK);
    ck_assert(!res.repeated);
    for (int i = 0; i < N; i++)
        ck_assert_msg(revoked_in(&g, i, "rogue"), "voter %d", i + 1);
    /* the same request again: applied once, answered the same */
    ck_assert_int_eq(submit_revoke(&g, l, "rogue", 1, &res, url, &err), AI_OK);
    ck_assert(res.repeated);
    ck_assert_int_eq(res.code, AI_OK);
    /* a refusal is a result */
    {
        unsigned char req[CLUSTER_REQ_ID_BYTES];
        broker_cmd c = {.op = BROKER_UNREVOKE, .at_ms = T_NOW,
                        .actor = "admin", .target = REVOKE_AGENT,
                        .id = "nobody"};
        memset(req, 2, sizeof req);
        ck_assert_int_eq(cluster_submit(g.nodes[l], &c, req, 5000, &res, url,
                                        &err),
                         AI_OK);
        ck_assert_int_eq(res.code, AI_ENOTFOUND);
    }
    /* a follower refuses and names the leader */
    f = (l + 1) % N;
    ck_assert_int_eq(submit_revoke(&g, f, "other", 3, &res, url, &err),
                     AI_EUNAVAILABLE);
    {
        char want[64];
        snprintf(want, sizeof want, "https://127.0.0.1:%d", 9000 + l + 1);
        ck_assert_str_eq(url, want);
    }
    cluster_get_status(g.nodes[f], &s);
    ck_assert_int_eq(s.role, CLUSTER_FOLLOWER);
    ck_assert_uint_eq(s.leader_id, (uint64_t)l + 1);
    ck_assert_uint_eq(s.voters, 3);

    /* the leader stops: the two others elect one and take writes */
    cluster_stop(g.nodes[l]);
    g.nodes[l] = NULL;
    l2 = leader(&g);
    ck_assert_int_ge(l2, 0);
    ck_assert_int_ne(l2, l);
    ck_assert_int_eq(submit_revoke(&g, l2, "after", 4, &res, url, &err), AI_OK);
    ck_assert_int_eq(res.code, AI_OK);
    /* the old leader comes back and catches up */
    start(&g, l);
    ck_assert(revoked_in(&g, l, "after"));
    cluster_get_status(g.nodes[l], &s);
    ck_assert_int_ne(s.role, CLUSTER_LEADER);
    group_down(&g);
}
END_TEST

START_TEST(test_node_refuses_a_home_with_outside_state)
{
    group g;
    store *st;
    cluster_opts o;
    ai_cluster *c = NULL;
    ai_err err;

    group_up(&g);
    cluster_stop(g.nodes[2]);
    g.nodes[2] = NULL;
    /* a change written to voter 3's home outside the group */
    st = fx_open(g.homes[2]);
    ck_assert_int_eq(store_revoke(st, REVOKE_AGENT, "local", NULL, 0, T_NOW,
                                  NULL, &err),
                     AI_OK);
    store_close(st);
    /* a new home, not the group's: refused */
    o = (cluster_opts){.file = g.file, .node_id = 3, .home = g.homes[2],
                       .tls_cert = g.cert[2], .tls_key = g.key[2]};
    {
        /* a fresh raft dir: the home never applied an entry */
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/raft'", g.homes[2]);
        ck_assert_int_eq(system(cmd), 0);
    }
    ck_assert_int_eq(cluster_start(&o, &c, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "outside this leader group"), "%s",
                  err.msg);
    ck_assert_ptr_null(c);
    o.node_id = 9;
    ck_assert_int_eq(cluster_start(&o, &c, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "not in the cluster file"), "%s", err.msg);
    group_down(&g);
}
END_TEST

START_TEST(test_node_refuses_a_foreign_ca_and_another_master_key)
{
    group g;
    cluster_result res;
    cluster_status s;
    char url[CLUSTER_URL_MAX];
    int l;
    ai_err err;

    group_up(&g);
    /* voter 3 comes back with a certificate of another CA: its peers
     * refuse it, it never hears of a leader, the two others go on */
    cluster_stop(g.nodes[2]);
    g.nodes[2] = NULL;
    snprintf(g.cert[2], sizeof g.cert[2], "%s/other/node.pem", g.pki);
    snprintf(g.key[2], sizeof g.key[2], "%s/other/node.key", g.pki);
    start(&g, 2);
    l = leader(&g);
    ck_assert_int_ge(l, 0);
    ck_assert_int_ne(l, 2);
    ck_assert_int_eq(submit_revoke(&g, l, "while-foreign", 5, &res, url, &err),
                     AI_OK);
    sleep_ms(1500);
    cluster_get_status(g.nodes[2], &s);
    ck_assert_int_ne(s.role, CLUSTER_LEADER);
    ck_assert_uint_eq(s.leader_id, 0);
    ck_assert(!revoked_in_now(&g, 2, "while-foreign"));
    cluster_stop(g.nodes[2]);
    g.nodes[2] = NULL;

    /* voter 3 with the right CA but another master.key: it stops at the
     * first entry it cannot open, applying nothing */
    snprintf(g.cert[2], sizeof g.cert[2], "%s/node.pem", g.pki);
    snprintf(g.key[2], sizeof g.key[2], "%s/node.key", g.pki);
    fx_home_free(g.homes[2]);
    g.homes[2] = fx_home_new(); /* a new home: its own master.key */
    store_close(fx_open(g.homes[2]));
    start(&g, 2);
    for (int t = 0; t < 500; t++) {
        cluster_get_status(g.nodes[2], &s);
        if (s.failed)
            break;
        sleep_ms(10);
    }
    ck_assert(s.failed);
    ck_assert(!revoked_in_now(&g, 2, "rogue"));
    ck_assert(!revoked_in_now(&g, 2, "while-foreign"));
    group_down(&g);
}
END_TEST

Suite *suite_cluster_node(void)
{
    Suite *s = suite_create("cluster_node");
    TCase *tc = tcase_create("node");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_node_three_voters_elect_and_apply);
    tcase_add_test(tc, test_node_refuses_a_home_with_outside_state);
    tcase_add_test(tc, test_node_refuses_a_foreign_ca_and_another_master_key);
    suite_add_tcase(s, tc);
    return s;
}
