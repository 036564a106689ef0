/* fsm.h - a voter's state machine (DESIGN §9), private to src/cluster:
 * each committed Raft entry is one broker command applied to the voter's
 * own home through src/broker, in one SQLite transaction with the entry's
 * index and request id (store_entry_*).
 *
 * Applying is deterministic and never fails for a business reason: a
 * command the broker refuses (an unknown id to unrevoke, a bad config)
 * is still applied, as its refusal, which is the result its client gets;
 * the index moves on. A retry (a request id applied before) changes
 * nothing and gets the first result again. Only a failure of the store
 * itself (disk full, I/O error, memory) or an entry this voter cannot read
 * (sealed under another master.key) fails: the voter must then stop
 * rather than skip an entry. */
#ifndef AI_CLUSTER_FSM_H
#define AI_CLUSTER_FSM_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "cluster/codec.h"

typedef struct cluster_fsm {
    ai_broker *b;         /* borrowed: the voter's broker, its own handle */
    uint64_t applied;     /* the last index applied */
    cluster_result last;  /* of the last cluster_fsm_apply that succeeded */
} cluster_fsm;

/* Over broker b (its store's applied index read now). */
ai_code cluster_fsm_open(cluster_fsm *f, ai_broker *b, ai_err *err);

/* Apply the entry of len bytes at index. An index at or below f->applied
 * was applied before (a restart replays the log from its snapshot): AI_OK,
 * nothing done, f->last.repeated. Otherwise AI_OK with f->last filled, or
 * the failure that must stop the voter. */
ai_code cluster_fsm_apply(cluster_fsm *f, uint64_t index, const void *buf,
                          size_t len, ai_err *err);

/* The result as the JSON text kept for retries, and back. */
char *cluster_result_json(const cluster_result *r);
bool cluster_result_parse(const char *json, cluster_result *r);

#endif /* AI_CLUSTER_FSM_H */
