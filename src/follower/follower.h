/*
 * follower.h - what other modules may ask of src/follower (its public
 * header, DESIGN §1). Running a follower is the public API's
 * (ai_follower_run in agent_iam.h); the follower's state and what its
 * files share are private to it (follower/internal.h).
 */
#ifndef AI_FOLLOWER_H
#define AI_FOLLOWER_H

#include <stdint.h>

#include "agent_iam.h"

/* The state of a replica by the time since its last contact with the
 * leader and the thresholds of c (for `agent-iam status` on a home). */
const char *follower_state_at(int64_t last_contact, int64_t now,
                              const ai_follower_config *c);

#endif /* AI_FOLLOWER_H */
