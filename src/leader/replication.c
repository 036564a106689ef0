/* replication.c - what followers call on the leader: the change feed
 * (long-poll: a held request is a suspended connection, no worker waits;
 * its pages are read by feed.c), the snapshot, and use counting for
 * maxUses budgets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "leader/feed.h"
#include "leader/leader.h"

#define WAIT_MAX_S 60

/* A query parameter as a whole number in [min, max]; def when absent. */
static bool query_int(srv_req *rq, const char *key, long long min,
                      long long max, long long def, long long *out)
{
    const char *v = srv_query(rq, key);
    char *end;

    *out = def;
    if (v == NULL)
        return true;
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0 || *out < min ||
        *out > max) {
        srv_reply_error(rq, 400, "bad_request",
                        "%s must be a whole number from %lld to %lld", key,
                        min, max);
        return false;
    }
    return true;
}

static void changes(srv_req *rq)
{
    ai_leader *l = rq->app;
    long long since, wait, limit, max_bytes;
    int64_t head = 0;
    json_t *page = NULL;
    ai_err err;
    ai_code rc;

    if (!query_int(rq, "since", 0, INT64_MAX, 0, &since) ||
        !query_int(rq, "wait", 0, WAIT_MAX_S, 0, &wait) ||
        !query_int(rq, "limit", 1, LEADER_FEED_LIMIT_MAX,
                   LEADER_FEED_LIMIT_DEFAULT, &limit) ||
        !query_int(rq, "maxBytes", LEADER_FEED_BYTES_MIN,
                   LEADER_FEED_BYTES_MAX, LEADER_FEED_BYTES_DEFAULT,
                   &max_bytes))
        return;
    rc = leader_feed_check(rq->th->st, since, srv_query(rq, "hash"), &head,
                           &err);
    /* a since the log does not vouch for is no applied seq to show */
    leader_saw_follower(l, rq, rc == AI_OK ? since : -1);
    if (rc == AI_ENOTFOUND) { /* behind, ahead or beside the log */
        srv_reply_error(rq, 410, "gone", "%s", err.msg);
        return;
    }
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    if (since == head && wait > 0 && !srv_draining(rq->s)) {
        if (rq->deadline == 0)
            rq->deadline = rq->now + wait * 1000;
        if (rq->now < rq->deadline) {
            srv_suspend(rq, rq->deadline);
            return;
        }
    }
    if ((rc = leader_feed_page(rq->th->st, &rq->fol, l->leader_id, since,
                               head, (size_t)limit, (size_t)max_bytes, &page,
                               &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    srv_reply_secret(rq, 200, page);
}

/* The snapshot stream: NDJSON lines from a cursor of its own, copied
 * into MHD's buffer as it asks. */
typedef struct snap_stream {
    snap_cursor *cur;
    char *line;      /* the current line and its newline, being sent */
    size_t len, off;
    bool done;
} snap_stream;

static void snap_line_free(snap_stream *ss)
{
    if (ss->line != NULL) {
        explicit_bzero(ss->line, ss->len);
        ai_free(ss->line);
        ss->line = NULL;
    }
}

static long snap_read(void *ud, char *buf, size_t max)
{
    snap_stream *ss = ud;
    size_t n = 0;
    ai_err err;

    while (n < max) {
        if (ss->line == NULL || ss->off == ss->len) {
            char *l = NULL;
            snap_line_free(ss);
            if (ss->done)
                break;
            if (store_snapshot_line(ss->cur, &l, &ss->done, &err) != AI_OK) {
                fprintf(stderr, "agent-iam: snapshot: %s\n", err.msg);
                return -1;
            }
            if (ss->done)
                break;
            ss->len = strlen(l);
            l[ss->len] = '\0';
            /* room for the newline: jansson's buffer is exact */
            if ((ss->line = ai_malloc(ss->len + 1)) == NULL) {
                explicit_bzero(l, ss->len);
                ai_free(l);
                return -1;
            }
            memcpy(ss->line, l, ss->len);
            ss->line[ss->len++] = '\n';
            explicit_bzero(l, ss->len - 1);
            ai_free(l);
            ss->off = 0;
        }
        {
            size_t k = ss->len - ss->off;
            if (k > max - n)
                k = max - n;
            memcpy(buf + n, ss->line + ss->off, k);
            ss->off += k;
            n += k;
        }
    }
    return (long)n;
}

static void snap_free(void *ud)
{
    snap_stream *ss = ud;

    snap_line_free(ss);
    store_snapshot_close(ss->cur);
    ai_free(ss);
}

static void snapshot(srv_req *rq)
{
    snap_stream *ss = ai_calloc(1, sizeof *ss);
    int64_t seq = 0;
    ai_err err;
    ai_code rc;

    if (ss == NULL) {
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if ((rc = store_snapshot_open(srv_home(rq->s), &ss->cur, &seq, &err)) !=
        AI_OK) {
        ai_free(ss);
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    store_snapshot_set_filter(ss->cur, leader_snapshot_filter, &rq->fol);
    /* the seq it reflects is the follower's applied seq from now */
    leader_saw_follower(rq->app, rq, seq);
    srv_reply_stream(rq, 200, "application/x-ndjson", snap_read, ss,
                     snap_free);
}

static void consume(srv_req *rq)
{
    json_t *o = srv_body_object(rq, false);
    const char *tid, *scope, *wire;
    ai_budget_ref budgets[AI_LIST_MAX * AI_BUDGETS_MAX];
    ai_token *t = NULL;
    size_t n = 0;
    broker_cmd c;
    broker_result res = {0};
    ai_err err;
    ai_code rc;

    if (o == NULL)
        return;
    leader_saw_follower(rq->app, rq, -1);
    if (!srv_str(rq, o, "tokenId", true, &tid) ||
        !srv_str(rq, o, "scope", true, &scope) ||
        !srv_str(rq, o, "token", true, &wire))
        goto done;
    if ((rc = srv_sync(rq, &err)) == AI_OK)
        rc = broker_verify_quiet(rq->th->broker, wire, strlen(wire), rq->now,
                                 &t, &err);
    if (rc == AI_OK && (ai_token_id(t) == NULL ||
                        strcmp(ai_token_id(t), tid) != 0)) {
        srv_reply_error(rq, 400, "bad_request",
                        "\"tokenId\" is not the token's id");
        goto done;
    }
    if (rc == AI_OK)
        rc = ai_token_budgets(t, scope, budgets,
                              sizeof budgets / sizeof *budgets, &n, &err);
    if (rc == AI_EINVAL || rc == AI_ENOBUFS) {
        srv_reply_ai(rq, AI_EINVAL, err.msg);
        goto done;
    }
    if (rc != AI_OK) { /* the token no longer verifies: no use */
        srv_reply_json(rq, 200, json_pack("{s:b, s:i, s:s}", "allowed", 0,
                                          "remaining", 0, "error", err.msg));
        goto done;
    }
    memset(&c, 0, sizeof c);
    c.op = BROKER_USES_CONSUME;
    c.at_ms = rq->now;
    c.budgets = budgets;
    c.nbudgets = n;
    if (n == 0) {
        res.granted = true;
    } else if ((rc = leader_exec(rq, &c, &res, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        goto done;
    }
    snprintf(rq->subject, sizeof rq->subject, "token=%s", tid);
    srv_reply_json(rq, 200,
                   json_pack("{s:b, s:I}", "allowed", res.granted, "remaining",
                             n ? (json_int_t)res.remaining : (json_int_t)-1));
done:
    ai_token_free(t);
    json_decref(o);
}

const srv_route leader_repl_routes[] = {
    {"GET", "/v1/replication/changes", false, SRV_AUTH_FOLLOWER, changes,
     "/v1/replication/changes"},
    {"GET", "/v1/replication/snapshot", false, SRV_AUTH_FOLLOWER, snapshot,
     "/v1/replication/snapshot"},
    {"POST", "/v1/uses/consume", false, SRV_AUTH_FOLLOWER, consume,
     "/v1/uses/consume"},
};
const size_t leader_repl_nroutes =
    sizeof leader_repl_routes / sizeof *leader_repl_routes;
