/* broker.h - the broker module for the modules above it (cli, leader,
 * follower, runtime): token operations on a home's store. */
#ifndef AI_BROKER_H
#define AI_BROKER_H

#include "agent_iam.h"
#include "store/store.h"

/* A broker over an already open store (borrowed: the caller closes it
 * after ai_broker_close). */
ai_code broker_wrap(store *st, ai_broker **out, ai_err *err);

/* The store under a broker. */
store *broker_store(ai_broker *b);

#endif
