/* replication.c - what followers call on the leader: the change feed
 * (long-poll: a held request is a suspended connection, no worker waits),
 * the snapshot, and use counting for maxUses budgets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "leader/leader.h"

#define WAIT_MAX_S 60
#define LIMIT_DEFAULT 1000
#define LIMIT_MAX 10000
#define BYTES_MIN 1024
#define BYTES_DEFAULT (1L << 20)
#define BYTES_MAX (16L << 20)

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

typedef struct feed {
    const srv_follower *fol;
    store *st;
    json_t *arr;
    int64_t last;
    size_t bytes, max_bytes; /* the answer so far, its bound */
    ai_code rc;
    ai_err *err;
} feed;

static bool add_change(void *ud, const store_change *ch)
{
    feed *f = ud;
    json_t *c, *value = NULL;
    const char *op = ch->op;
    size_t n;

    if (f->rc != AI_OK)
        return false;
    if (strcmp(op, "set") == 0) {
        bool drop = false;
        if ((f->rc = store_change_value(f->st, ch->kind, ch->key, &value,
                                        f->err)) != AI_OK)
            return false;
        if (value != NULL &&
            (f->rc = leader_outgoing(f->fol, ch->kind, ch->key, value, &drop,
                                     f->err)) != AI_OK) {
            json_wipe_decref(value);
            return false;
        }
        if (drop) { /* not this follower's: make sure it has none */
            json_wipe_decref(value);
            value = NULL;
            op = "delete";
        }
    }
    c = json_pack("{s:I, s:I, s:s, s:s, s:s}", "seq", (json_int_t)ch->seq,
                  "at", (json_int_t)ch->at, "kind", ch->kind, "key", ch->key,
                  "op", op);
    if (c != NULL && ch->hash[0] != '\0' &&
        json_object_set_new(c, "hash", json_string(ch->hash)) != 0) {
        json_decref(c);
        c = NULL;
    }
    if (c == NULL || (value != NULL && json_object_set_new(c, "value", value))) {
        json_decref(c);
        f->rc = ai_err_set(f->err, AI_ENOMEM, "out of memory");
        return false;
    }
    /* Bounded by bytes as well as by count, so a slow link that moves
     * bytes at all moves whole batches; never fewer than one change. */
    n = json_dumpb(c, NULL, 0, JSON_COMPACT) + 1;
    if (f->bytes > 0 && f->bytes + n > f->max_bytes) {
        json_wipe_decref(c);
        return false;
    }
    f->bytes += n;
    json_array_append_new(f->arr, c);
    f->last = ch->seq;
    return true;
}

/* The follower's view of the log at since (the hash of the change it
 * applied last, when it sends one) must be the leader's: otherwise the
 * histories parted (a restored home, another log at this URL) and only a
 * snapshot makes the replica right again. Replies 410 and returns false
 * when they differ or the leader cannot tell. */
static bool same_history(srv_req *rq, long long since)
{
    const char *want = srv_query(rq, "hash");
    char have[STORE_HASH_HEX + 1];
    unsigned char raw[STORE_HASH_BYTES];
    bool found = false;
    ai_err err;
    ai_code rc;

    if (want == NULL || since == 0)
        return true;
    if (!store_hash_parse(want, raw)) {
        srv_reply_error(rq, 400, "bad_request",
                        "hash must be 64 lowercase hex characters");
        return false;
    }
    if ((rc = store_change_hash_at(rq->th->st, since, have, &found, &err)) !=
        AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return false;
    }
    if (!found) {
        srv_reply_error(rq, 410, "gone",
                        "change %lld is no longer kept: load the snapshot",
                        since);
        return false;
    }
    if (CRYPTO_memcmp(have, want, STORE_HASH_HEX) != 0) {
        srv_reply_error(rq, 410, "gone",
                        "the leader's history differs from the follower's at "
                        "%lld (a restored or replaced home): load the "
                        "snapshot",
                        since);
        return false;
    }
    return true;
}

static void changes(srv_req *rq)
{
    ai_leader *l = rq->app;
    long long since, wait, limit, max_bytes;
    int64_t head = 0, oldest = 0;
    feed f;
    ai_err err;
    ai_code rc;

    if (!query_int(rq, "since", 0, INT64_MAX, 0, &since) ||
        !query_int(rq, "wait", 0, WAIT_MAX_S, 0, &wait) ||
        !query_int(rq, "limit", 1, LIMIT_MAX, LIMIT_DEFAULT, &limit) ||
        !query_int(rq, "maxBytes", BYTES_MIN, BYTES_MAX, BYTES_DEFAULT,
                   &max_bytes))
        return;
    leader_saw_follower(l, rq, since);
    if ((rc = store_changelog_head(rq->th->st, &head, &err)) != AI_OK ||
        (rc = store_changelog_oldest(rq->th->st, &oldest, &err)) != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    if (since > head) { /* restored from a backup, or another home */
        srv_reply_error(rq, 410, "gone",
                        "since %lld is ahead of the leader (%lld): load the "
                        "snapshot",
                        since, (long long)head);
        return;
    }
    if (oldest > 0 && since + 1 < oldest) {
        srv_reply_error(rq, 410, "gone",
                        "changes after %lld are no longer kept (oldest %lld):"
                        " load the snapshot",
                        since, (long long)oldest);
        return;
    }
    if (!same_history(rq, since))
        return;
    if (since == head && wait > 0 && !srv_draining(rq->s)) {
        if (rq->deadline == 0)
            rq->deadline = rq->now + wait * 1000;
        if (rq->now < rq->deadline) {
            srv_suspend(rq, rq->deadline);
            return;
        }
    }
    memset(&f, 0, sizeof f);
    f.fol = &rq->fol;
    f.st = rq->th->st;
    f.arr = json_array();
    f.last = since;
    f.max_bytes = (size_t)max_bytes;
    f.rc = AI_OK;
    f.err = &err;
    if (f.arr == NULL) {
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if ((rc = store_changes(rq->th->st, since, (size_t)limit, add_change, &f,
                            &err)) == AI_OK)
        rc = f.rc;
    if (rc != AI_OK) {
        json_decref(f.arr);
        srv_reply_ai(rq, rc, err.msg);
        return;
    }
    if (f.last > head)
        head = f.last;
    srv_reply_secret(rq, 200,
                     json_pack("{s:I, s:s, s:o, s:b}", "leaderSeq",
                               (json_int_t)head, "leaderId", l->leader_id,
                               "changes", f.arr, "more", f.last < head));
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

/* A snapshot line as this follower may receive it (leader_outgoing). */
static ai_code snap_filter(void *ud, json_t *line, bool *drop, ai_err *err)
{
    const srv_follower *fol = ud;
    const char *kind = json_string_value(json_object_get(line, "kind"));
    json_t *v = json_object_get(line, "value");
    const char *n;
    char name[128];

    *drop = false;
    if (kind == NULL || v == NULL)
        return AI_OK;
    if (strcmp(kind, "key") == 0) {
        snprintf(name, sizeof name, "%lld",
                 (long long)json_integer_value(json_object_get(v, "version")));
    } else {
        n = json_string_value(json_object_get(
            strcmp(kind, "apikey") == 0 ? v : line, "name"));
        snprintf(name, sizeof name, "%s", n ? n : "");
    }
    return leader_outgoing(fol, kind, name, v, drop, err);
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
    store_snapshot_set_filter(ss->cur, snap_filter, &rq->fol);
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
    } else if ((rc = broker_exec(rq->th->broker, &c, &res, &err)) != AI_OK) {
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
