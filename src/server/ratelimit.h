/*
 * ratelimit.h - per-agent token buckets for the agent API's writes
 * (DESIGN §8), private to src/server.
 *
 * A delegation, a refresh or a credential request writes an audit row
 * (fsynced), and whatever the answer, so one valid token could fill the
 * disk. Each process keeps one bucket per key (the root agent of the
 * caller's delegation chain, see srv_rate_take), refilled at `rate` per
 * second up to `burst`, shared by every worker thread.
 *
 * Memory is fixed: RL_SETS sets of RL_WAYS buckets, about 140 KiB, made
 * at start. A key is hashed (HMAC-SHA256 under a random key of the
 * process, so nobody can aim many keys at one set) to a set and a 128-bit
 * tag; the key itself is not kept. A new key takes an empty slot of its
 * set, else an idle one (a bucket full again: forgetting it loses
 * nothing), else the fullest, whose agent then gets at most one burst
 * more. The work is a hash and one short critical section on the set's
 * own mutex: 256 sets, so threads rarely wait for each other.
 *
 * THREADS: ratelimit_take is thread-safe; new and free are not.
 */
#ifndef AI_SERVER_RATELIMIT_H
#define AI_SERVER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

#define RL_SETS 256
#define RL_WAYS 16

typedef struct ratelimit ratelimit;

/* rate > 0 per second; burst 0: 2 x rate (at least 1). NULL: out of
 * memory or no randomness for the hash key. */
ratelimit *ratelimit_new(double rate, unsigned burst);
void ratelimit_free(ratelimit *rl);

/* Take one token of key's bucket at now_ns (a monotonic clock): true
 * when there was one; else false with *retry_s, the whole seconds (>= 1)
 * until there is. */
bool ratelimit_take(ratelimit *rl, const char *key, size_t len,
                    int64_t now_ns, unsigned *retry_s);

/* For an agent API handler that writes, before it does anything: true
 * when the caller's bucket had a token (or the server has no limit);
 * else false after replying 429 rate_limited with Retry-After. The key is
 * the root of the verified token's delegation chain: the first of its
 * ancestorAgents, else its parentId (a token minted before
 * ancestorAgents), else its own agentId. So sub-agents count against the
 * agent that minted them, and minting new agentIds escapes nothing. */
bool srv_agent_rate_ok(srv_req *rq);

#endif /* AI_SERVER_RATELIMIT_H */
