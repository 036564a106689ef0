/* group.c - a leader that is a voter of a leader group (DESIGN §9): its
 * writes go through the group, a voter that is not the leader sends them
 * on (307), and the group's first signing key is made by its first leader
 * as a command of the log. */
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/core.h"
#include "leader/leader.h"

#define WRITE_WAIT_MS 10000 /* a write's wait for its commit and apply */
#define FIRST_KEY_EVERY_MS 1000

/* The client's Idempotency-Key makes the id (a retry applies once);
 * without one, a random id. */
static void request_id(srv_req *rq, unsigned char id[CLUSTER_REQ_ID_BYTES])
{
    const char *key = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                  "Idempotency-Key");
    unsigned char h[SHA256_DIGEST_LENGTH];
    char text[600];
    int n;

    if (key == NULL || key[0] == '\0' || strlen(key) > 255) {
        if (RAND_bytes(id, CLUSTER_REQ_ID_BYTES) == 1)
            return;
        key = rq->path; /* no randomness left: still an id */
    }
    /* the route is part of it: one key on two routes is two requests */
    n = snprintf(text, sizeof text, "agent-iam request v1 %s %.255s %s",
                 rq->method, rq->path, key);
    SHA256((const unsigned char *)text,
           n > 0 && (size_t)n < sizeof text ? (size_t)n : sizeof text - 1, h);
    memcpy(id, h, CLUSTER_REQ_ID_BYTES);
}

/* A write this voter cannot take (AI_EUNAVAILABLE): the leader's URL for
 * a 307 when one is known, else a Retry-After for the 503 (an election). */
static void note_leader(srv_req *rq, const char *url)
{
    if (url[0] != '\0')
        snprintf(rq->location, sizeof rq->location, "%s", url);
    else
        rq->retry_after = 1;
}

ai_code leader_exec(srv_req *rq, const broker_cmd *c, broker_result *out,
                    ai_err *err)
{
    ai_leader *l = rq->app;
    unsigned char id[CLUSTER_REQ_ID_BYTES];
    char url[CLUSTER_URL_MAX];
    cluster_result res;
    ai_code rc;

    if (l->cluster == NULL)
        return broker_exec(rq->th->broker, c, out, err);
    request_id(rq, id);
    rc = cluster_submit(l->cluster, c, id, WRITE_WAIT_MS, &res, url, err);
    if (rc == AI_EUNAVAILABLE)
        note_leader(rq, url);
    if (rc != AI_OK)
        return rc;
    if (out != NULL)
        *out = res.r;
    if (res.code != AI_OK)
        return ai_err_set(err, res.code, "%s", res.msg);
    return AI_OK;
}

/* Uses of a voter's agents are counted by the group (broker_set_consume):
 * every voter then holds the same counts; a voter that is not the leader
 * cannot count (AI_EUNAVAILABLE: 503), so a budget is never spent twice. */
static ai_code group_consume(void *ud, const char *wire, size_t len,
                             const ai_token *t, const char *scope,
                             bool *granted, uint32_t *remaining, ai_err *err)
{
    ai_leader *l = ud;
    ai_budget_ref budgets[CLUSTER_BUDGETS_MAX];
    unsigned char id[CLUSTER_REQ_ID_BYTES];
    char url[CLUSTER_URL_MAX];
    cluster_result res;
    broker_cmd c;
    size_t n = 0;
    ai_code rc;

    (void)wire;
    (void)len;
    *granted = false;
    *remaining = 0;
    if ((rc = ai_token_budgets(t, scope, budgets,
                               sizeof budgets / sizeof *budgets, &n, err)) !=
        AI_OK)
        return rc;
    memset(&c, 0, sizeof c);
    c.op = BROKER_USES_CONSUME;
    c.at_ms = time_now_ms();
    c.budgets = budgets;
    c.nbudgets = n;
    if (RAND_bytes(id, sizeof id) != 1)
        return ai_err_set(err, AI_EINTERNAL, "random generator failed");
    if ((rc = cluster_submit(l->cluster, &c, id, WRITE_WAIT_MS, &res, url,
                             err)) != AI_OK)
        return rc == AI_EUNAVAILABLE
                   ? ai_err_set(err, AI_EUNAVAILABLE,
                                "uses are counted by the leader of the "
                                "group%s%s",
                                url[0] ? ": " : "", url)
                   : rc;
    if (res.code != AI_OK)
        return ai_err_set(err, res.code, "%s", res.msg);
    *granted = res.r.granted;
    *remaining = res.r.remaining;
    return AI_OK;
}

void leader_group_thread_init(void *app, srv_thread *th)
{
    ai_leader *l = app;

    if (l->cluster != NULL)
        broker_set_consume(th->broker, group_consume, l);
}

/* On the watcher thread: the group's first leader makes its first
 * signing key, as a command (every voter then has the same). */
void leader_group_tick(ai_leader *l, store *st, int64_t now)
{
    cluster_status s;
    const ai_keyring *kr = NULL;
    unsigned char id[CLUSTER_REQ_ID_BYTES];
    char url[CLUSTER_URL_MAX];
    broker_cmd c;
    cluster_result res;
    ai_err err;

    if (l->cluster == NULL || now < l->next_first_key)
        return;
    l->next_first_key = now + FIRST_KEY_EVERY_MS;
    cluster_get_status(l->cluster, &s);
    if (s.role != CLUSTER_LEADER || !s.ready ||
        store_sync(st, &err) != AI_OK ||
        store_keyring(st, &kr, &err) != AI_OK ||
        ai_keyring_signing_version(kr) != 0)
        return;
    memset(&c, 0, sizeof c);
    c.op = BROKER_KEY_FIRST;
    c.at_ms = now;
    c.actor = "cluster";
    /* the same id on every attempt: one first key however often asked */
    memset(id, 0, sizeof id);
    memcpy(id, "first signing ky", 16);
    if (broker_cmd_new_key(&c, &err) == AI_OK &&
        cluster_submit(l->cluster, &c, id, WRITE_WAIT_MS, &res, url, &err) !=
            AI_OK)
        fprintf(stderr, "agent-iam: cluster: first signing key: %s\n",
                err.msg);
    broker_cmd_wipe(&c);
}

/* /v1/status: the group as this voter sees it. */
json_t *leader_group_json(ai_leader *l)
{
    cluster_status s;

    if (l->cluster == NULL)
        return NULL;
    cluster_get_status(l->cluster, &s);
    return json_pack("{s:I, s:s, s:b, s:I, s:s, s:I, s:I, s:I, s:I, s:I, "
                     "s:b}",
                     "nodeId", (json_int_t)s.node_id, "role",
                     cluster_role_name(s.role), "ready", s.ready, "leaderId",
                     (json_int_t)s.leader_id, "leaderUrl", s.leader_url,
                     "term", (json_int_t)s.term, "commitIndex",
                     (json_int_t)s.commit_index, "appliedIndex",
                     (json_int_t)s.applied_index, "voters",
                     (json_int_t)s.voters, "elections",
                     (json_int_t)s.elections, "failed", s.failed);
}

/* A group's admin route on a server that is not a voter: 404. */
static bool in_group(srv_req *rq, const ai_leader *l)
{
    if (l->cluster != NULL)
        return true;
    srv_reply_error(rq, 404, "not_found",
                    "this leader is not in a leader group (--cluster)");
    return false;
}

/* A change the group did not make: 307 to the leader when this voter is
 * not it (url), 503 with Retry-After when none is known, else the error. */
static void refused(srv_req *rq, ai_code rc, const char *url,
                    const ai_err *err)
{
    if (rc == AI_EUNAVAILABLE)
        note_leader(rq, url);
    srv_reply_ai(rq, rc, err->msg);
}

/* The body's {"id": N}, a node of the cluster file (0 when it may be left
 * out and is); false after a 400. */
static bool node_id(srv_req *rq, bool required, uint64_t *id)
{
    json_t *o = srv_body_object(rq, !required);
    long long v = 0;
    bool present = false, ok;

    if (o == NULL)
        return false;
    ok = srv_int(rq, o, "id", 1, INT64_C(2147483648), &present, &v);
    json_decref(o);
    if (ok && required && !present) {
        srv_reply_error(rq, 400, "bad_request",
                        "the body is {\"id\": N}, a node of the cluster "
                        "file");
        return false;
    }
    *id = (uint64_t)v;
    return ok;
}

/* POST /v1/admin/cluster/transfer {"id"?}: hand the leadership over (to
 * voter id, or the most up-to-date one). */
static void transfer(srv_req *rq)
{
    ai_leader *l = rq->app;
    uint64_t to, now_leader = 0;
    char url[CLUSTER_URL_MAX];
    ai_err err;
    ai_code rc;

    if (!in_group(rq, l) || !node_id(rq, false, &to))
        return;
    rc = cluster_transfer(l->cluster, to, &now_leader, url, &err);
    if (rc != AI_OK) {
        refused(rq, rc, url, &err);
        return;
    }
    srv_reply_json(rq, 200, json_pack("{s:I}", "leaderId",
                                      (json_int_t)now_leader));
}

/* POST /v1/admin/cluster/add and /remove {"id"}: the group's members. */
static void member(srv_req *rq, bool add)
{
    ai_leader *l = rq->app;
    char url[CLUSTER_URL_MAX];
    uint64_t n;
    ai_err err;
    ai_code rc;

    if (!in_group(rq, l) || !node_id(rq, true, &n))
        return;
    snprintf(rq->subject, sizeof rq->subject, "admin cluster %s %llu",
             add ? "add" : "remove", (unsigned long long)n);
    rc = cluster_member(l->cluster, add, n, url, &err);
    if (rc != AI_OK) {
        refused(rq, rc, url, &err);
        return;
    }
    srv_reply_json(rq, 200, json_pack("{s:I, s:b}", "id", (json_int_t)n,
                                      add ? "added" : "removed", 1));
}

static void member_add(srv_req *rq)
{
    member(rq, true);
}

static void member_remove(srv_req *rq)
{
    member(rq, false);
}

const srv_route leader_group_routes[] = {
    {"POST", "/v1/admin/cluster/add", false, SRV_AUTH_ADMIN, member_add,
     "/v1/admin/cluster/add"},
    {"POST", "/v1/admin/cluster/remove", false, SRV_AUTH_ADMIN, member_remove,
     "/v1/admin/cluster/remove"},
    {"POST", "/v1/admin/cluster/transfer", false, SRV_AUTH_ADMIN, transfer,
     "/v1/admin/cluster/transfer"},
};
const size_t leader_group_nroutes =
    sizeof leader_group_routes / sizeof *leader_group_routes;

/* The group's figures for /metrics (Prometheus text format). */
void leader_group_metrics(ai_leader *l, char **buf, size_t *len, size_t *cap)
{
    static const cluster_role roles[] = {CLUSTER_LEADER, CLUSTER_FOLLOWER,
                                         CLUSTER_CANDIDATE,
                                         CLUSTER_UNAVAILABLE};
    cluster_status s;

    if (l->cluster == NULL)
        return;
    cluster_get_status(l->cluster, &s);
    srv_appendf(buf, len, cap,
                "# HELP agent_iam_cluster_role This voter's Raft role (1: "
                "the one it has).\n# TYPE agent_iam_cluster_role gauge\n");
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        srv_appendf(buf, len, cap, "agent_iam_cluster_role{role=\"%s\"} %d\n",
                    cluster_role_name(roles[i]), s.role == roles[i]);
    srv_appendf(buf, len, cap,
                "# HELP agent_iam_cluster_term The Raft term.\n"
                "# TYPE agent_iam_cluster_term gauge\n"
                "agent_iam_cluster_term %llu\n"
                "# HELP agent_iam_cluster_commit_index The last entry known "
                "committed.\n# TYPE agent_iam_cluster_commit_index gauge\n"
                "agent_iam_cluster_commit_index %llu\n"
                "# HELP agent_iam_cluster_applied_index The last entry "
                "applied to this voter's home.\n"
                "# TYPE agent_iam_cluster_applied_index gauge\n"
                "agent_iam_cluster_applied_index %llu\n"
                "# HELP agent_iam_cluster_elections_total Times this voter "
                "became a ready leader.\n"
                "# TYPE agent_iam_cluster_elections_total counter\n"
                "agent_iam_cluster_elections_total %llu\n"
                "# HELP agent_iam_cluster_failed 1 when an entry could not "
                "be applied and this voter stopped.\n"
                "# TYPE agent_iam_cluster_failed gauge\n"
                "agent_iam_cluster_failed %d\n"
                "# HELP agent_iam_cluster_write_seconds Writes answered as "
                "leader, from submission to applied.\n"
                "# TYPE agent_iam_cluster_write_seconds histogram\n",
                (unsigned long long)s.term,
                (unsigned long long)s.commit_index,
                (unsigned long long)s.applied_index,
                (unsigned long long)s.elections, s.failed ? 1 : 0);
    for (size_t i = 0; i < CLUSTER_LATENCY_BUCKETS; i++)
        srv_appendf(buf, len, cap,
                    "agent_iam_cluster_write_seconds_bucket{le=\"%g\"} "
                    "%llu\n",
                    cluster_latency_le[i], (unsigned long long)s.write_le[i]);
    srv_appendf(buf, len, cap,
                "agent_iam_cluster_write_seconds_bucket{le=\"+Inf\"} %llu\n"
                "agent_iam_cluster_write_seconds_sum %.6f\n"
                "agent_iam_cluster_write_seconds_count %llu\n",
                (unsigned long long)s.writes, s.write_seconds,
                (unsigned long long)s.writes);
}
