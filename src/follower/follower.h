/*
 * follower.h - a follower's state shared by its files: follower.c (start,
 * stop, the server role: status, metrics, 503 when stale, 409 for admin
 * calls, uses counted at the leader) and sync.c (the replication loop:
 * snapshot, change feed, backoff, states).
 */
#ifndef AI_FOLLOWER_H
#define AI_FOLLOWER_H

#include <pthread.h>
#include <stdatomic.h>

#include "follower/upstream.h"
#include "server/server.h"
#include "server/tls.h"

typedef enum fl_phase {
    FL_STARTING = 0,
    FL_INITIAL_SYNC,
    FL_RUNNING /* has a replica: state from the last contact */
} fl_phase;

struct ai_follower {
    ai_follower_config cfg;
    char home[4096];
    char leader_url[2048];
    char follower_id[65];
    char ca[4096];
    srv *s;                 /* NULL when not serving */
    srv_tls tls;
    store *st;              /* the sync thread's handle */
    upstream *up;           /* the sync thread's connection */
    upstream *up_uses;      /* workers' use counting, under uses_lock */
    pthread_mutex_t uses_lock;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t lock;   /* last_error, sleep */
    pthread_cond_t wake;
    char last_error[AI_ERR_MSG_MAX];
    atomic_int phase;
    atomic_llong applied;      /* leader seq the replica reflects */
    atomic_llong leader_seq;   /* as the leader last said */
    atomic_llong last_contact; /* ms; 0: never */
    atomic_llong syncs, failures;
};

/* The state of a replica by the time since its last contact with the
 * leader and the thresholds of c (for `agent-iam status` on a home). */
const char *follower_state_at(int64_t last_contact, int64_t now,
                              const ai_follower_config *c);

/* The state's name from the phase and the time since the last contact. */
const char *fl_state(ai_follower *f, int64_t now);

/* One round: a snapshot when there is no replica (or the leader says the
 * replica is too far behind), else one call of the change feed with
 * `wait` seconds of long-poll; applies what came. *more: the leader has
 * more changes right now. */
ai_code fl_sync_once(ai_follower *f, int wait, bool *more, ai_err *err);

/* The replication thread: fl_sync_once in a loop, backoff on failure. */
void *fl_loop(void *arg);

void fl_set_error(ai_follower *f, const char *msg);

#endif
