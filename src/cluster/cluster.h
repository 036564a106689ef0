/* cluster.h - a voter of a leader group (DESIGN §9): the public face of
 * src/cluster for the server and the CLI.
 *
 * DESIGN: libraft drives the group on one thread of its own (its libuv
 * loop): every raft_* call happens there. A writer on another thread
 * (an HTTP worker) hands its command to that thread through a queue and
 * uv_async_send and waits until the command is committed and applied on
 * this voter (cluster_submit); the apply goes through src/broker in the
 * voter's own home (fsm.h). A new leader appends a barrier before it takes
 * writes, so that everything its predecessor committed is applied first.
 * The state of the node (role, leader, term, indexes) is sampled on the
 * loop thread every few milliseconds for other threads to read
 * (libraft 0.15 has no state-change callback). */
#ifndef AI_CLUSTER_CLUSTER_H
#define AI_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"

#define CLUSTER_REQ_ID_BYTES STORE_REQ_ID_BYTES
#define CLUSTER_URL_MAX 256
/* Use budgets one entry carries at most (a use of a metered scope). */
#define CLUSTER_BUDGETS_MAX 64
#define CLUSTER_LATENCY_BUCKETS 9

/* What applying a command gave: the command's own outcome. */
typedef struct cluster_result {
    ai_code code;               /* AI_OK, or the broker's refusal */
    char msg[AI_ERR_MSG_MAX];   /* the refusal's message ("" when ok) */
    broker_result r;            /* what the command made (command.h) */
    bool repeated;              /* a retry: the first application's result */
    uint64_t leader;            /* a leadership transfer: the new leader */
} cluster_result;

typedef struct cluster_opts {
    const char *file;      /* the cluster file (config.h) */
    uint64_t node_id;      /* this voter's id in it */
    const char *home;      /* this voter's home (master.key shared) */
    const char *tls_cert;  /* this node's certificate and key (PEM), shown */
    const char *tls_key;   /* to its peers, which check it against "ca" */
    bool join;             /* a node added to a running group (cluster
                            * add): it waits to be added, no bootstrap */
    unsigned election_ms;  /* 0: 1000 */
    unsigned snapshot_every; /* entries between snapshots; 0: 10000 */
    unsigned heartbeat_ms; /* 0: election_ms / 10 */
} cluster_opts;

typedef struct ai_cluster ai_cluster;

/* Start the voter: read the file, open the home, start the loop thread,
 * bootstrap the group from the file on a first start. AI_EINVAL for a
 * bad file or an id not in it. */
ai_code cluster_start(const cluster_opts *o, ai_cluster **out, ai_err *err);

/* Stop the loop thread and free everything (NULL is fine). */
void cluster_stop(ai_cluster *c);

typedef enum cluster_role {
    CLUSTER_UNAVAILABLE = 0,
    CLUSTER_FOLLOWER,
    CLUSTER_CANDIDATE,
    CLUSTER_LEADER
} cluster_role;

typedef struct cluster_status {
    uint64_t node_id;
    cluster_role role;
    bool ready;            /* a leader whose barrier has applied */
    uint64_t leader_id;    /* 0: none known */
    char leader_url[CLUSTER_URL_MAX]; /* "" when none is known */
    uint64_t term, commit_index, applied_index, last_index;
    uint64_t elections;    /* times this node became leader */
    size_t voters;
    bool failed;           /* an entry could not be applied: stopped */
    /* writes this voter answered as leader (cluster_submit, AI_OK): from
     * the call to the answer, committed and applied */
    uint64_t writes;
    double write_seconds;  /* their sum */
    uint64_t write_le[CLUSTER_LATENCY_BUCKETS]; /* how many took <= each
                                                 * of cluster_latency_le */
} cluster_status;

/* The upper bounds of the write latency buckets, in seconds. */
extern const double cluster_latency_le[CLUSTER_LATENCY_BUCKETS];

void cluster_get_status(ai_cluster *c, cluster_status *out);
const char *cluster_role_name(cluster_role r);

/* Submit cmd (with the caller's request id: the same id for a retry) and
 * wait up to timeout_ms for it to be committed and applied here. AI_OK:
 * *out is the command's result (its own refusal included). AI_EUNAVAILABLE
 * when this voter is not a ready leader (leader_url says where the leader
 * is, "" during an election), or the wait ran out (the command may still
 * apply: a retry with the same id applies it at most once). cmd's secrets
 * are sealed under master.key before they leave this call. Thread-safe. */
ai_code cluster_submit(ai_cluster *c, const broker_cmd *cmd,
                       const unsigned char req_id[CLUSTER_REQ_ID_BYTES],
                       int timeout_ms, cluster_result *out,
                       char leader_url[CLUSTER_URL_MAX], ai_err *err);

/* Hand the leadership of this leader to voter `to` (0: the most
 * up-to-date one), waiting until it moved: *leader the new leader's id.
 * AI_EUNAVAILABLE when this voter is not the leader (leader_url) or the
 * move did not happen in time; AI_EINVAL for an unknown voter. */
ai_code cluster_transfer(ai_cluster *c, uint64_t to, uint64_t *leader,
                         char leader_url[CLUSTER_URL_MAX], ai_err *err);

/* Change the group's membership (on its leader): add node id, as the
 * cluster file (read again now) lists it, first as a spare and then a
 * voter once its log caught up; or remove it. Waits until the change is
 * committed. AI_EINVAL: not in the file, or already a member;
 * AI_ENOTFOUND: no such member to remove; AI_EUNAVAILABLE: not the
 * leader (leader_url) or the change did not go through. */
ai_code cluster_member(ai_cluster *c, bool add, uint64_t id,
                       char leader_url[CLUSTER_URL_MAX], ai_err *err);

#endif /* AI_CLUSTER_CLUSTER_H */
