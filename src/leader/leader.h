/*
 * leader.h - the leader's state shared by its handlers (leader.c: start,
 * stop, status, metrics and upkeep; admin.c: the admin API; replication.c:
 * the change feed, the snapshot and use counting for followers; feed.c,
 * declared in feed.h: the feed's pages and the snapshot's lines read from
 * the store).
 */
#ifndef AI_LEADER_H
#define AI_LEADER_H

#include <pthread.h>

#include "cluster/cluster.h"
#include "server/server.h"

#define LEADER_FOLLOWERS_MAX 256
#define LEADER_DEFAULT_RETAIN 100000 /* changelog rows kept */

typedef struct follower_rec {
    char id[65];
    char address[64];
    int64_t applied_seq;
    int64_t last_seen; /* ms */
} follower_rec;

struct ai_leader {
    srv *s;
    srv_tls tls;
    int64_t retain;       /* changelog rows kept for followers */
    int64_t started;      /* ms */
    int64_t next_trim, next_prune;
    atomic_llong head;    /* changelog seq, as the watcher last saw it */
    char leader_id[STORE_LEADER_ID_LEN + 1]; /* this home's changelog */
    char home[4096];      /* the server keeps a pointer to it */
    pthread_mutex_t lock; /* followers */
    follower_rec followers[LEADER_FOLLOWERS_MAX];
    size_t nfollowers;
    ai_cluster *cluster;  /* a voter of a leader group; NULL: alone */
    int64_t next_first_key; /* a group leader's first-key attempt, ms */
};

/* Apply c as broker_exec does; on a voter of a leader group through the
 * group (committed and applied before it returns). A voter that is not
 * the leader: AI_EUNAVAILABLE with rq->location set to the leader's URL
 * (srv_reply_ai answers 307 there) or, during an election, Retry-After.
 * The request id is the Idempotency-Key header's (a client's retry
 * applies once), else random. */
ai_code leader_exec(srv_req *rq, const broker_cmd *c, broker_result *out,
                    ai_err *err);
/* Upkeep on the watcher thread: a group's first leader makes its first
 * signing key (group.c). */
void leader_group_tick(ai_leader *l, store *st, int64_t now);
/* srv_role.thread_init: a voter's worker counts uses through the group. */
void leader_group_thread_init(void *app, srv_thread *th);
/* The group's /metrics lines (nothing when not in a group). */
void leader_group_metrics(ai_leader *l, char **buf, size_t *len, size_t *cap);
/* The status's "cluster" object; NULL when not in a group. */
json_t *leader_group_json(ai_leader *l);

/* The followers as a JSON array, lag against head. */
json_t *leader_followers_json(ai_leader *l, int64_t head);

/* What the follower fol may receive of one entity (outgoing.c): its
 * secrets sealed in place under fol's transport key, or *drop when the
 * entity's provider is not granted to fol (the feed then sends a delete,
 * the snapshot nothing). name: the key version, API key or provider. */
ai_code leader_outgoing(const srv_follower *fol, const char *kind,
                        const char *name, json_t *value, bool *drop,
                        ai_err *err);

/* Note a follower's call: its id, address and applied seq. */
void leader_saw_follower(ai_leader *l, srv_req *rq, int64_t applied);

extern const srv_route leader_admin_routes[];
extern const size_t leader_admin_nroutes;
extern const srv_route leader_follower_routes[];
extern const size_t leader_follower_nroutes;
extern const srv_route leader_group_routes[];
extern const size_t leader_group_nroutes;
extern const srv_route leader_repl_routes[];
extern const size_t leader_repl_nroutes;

#endif
