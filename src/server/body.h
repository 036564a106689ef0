/*
 * body.h - JSON request bodies read from their bytes alone (no connection,
 * no store), so that a handler and a test or fuzz target parse a body
 * through the same code. The generic readers (body_object, body_str,
 * body_int, body_int_only) are in server.h, for the admin API's bodies
 * too; they back srv_body_object, srv_str and srv_int. The agent API's
 * bodies (agent_api.c) are parsed whole here, private to src/server.
 *
 * The *_parse functions clear err first. AI_EINVAL (the
 * handler's 400 "bad_request") names the first problem; AI_ENOMEM is a
 * 500. On error the outputs hold nothing to free. Strings handed back are
 * borrowed from the parsed object the output owns. Thread-safe: no
 * shared state.
 */
#ifndef AI_SERVER_BODY_H
#define AI_SERVER_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "agent_iam.h"
#include "server/server.h"

/* POST /v1/check and /v1/credentials: {scope, resource?}. */
typedef struct body_scope {
    json_t *root;
    const char *scope;    /* borrowed from root */
    const char *resource; /* "" when absent */
} body_scope;
ai_code body_scope_parse(const char *body, size_t len, body_scope *out,
                         ai_err *err);
void body_scope_free(body_scope *b);

/* POST /v1/tokens/delegate: a well-formed object, then the core's strict
 * DelegationRequest parser (ai_delegation_from_json). *storage (OUT: NULL
 * on error) backs d; free it with ai_delegation_storage_free. */
ai_code body_delegation_parse(const char *body, size_t len, ai_delegation *d,
                              ai_delegation_storage **storage, ai_err *err);

/* POST /v1/tokens/refresh: {ttlMinutes?} (1..90 days), or no body.
 * *ttl_minutes: 0 when not given. */
#define BODY_REFRESH_TTL_MAX (90 * 24 * 60)
ai_code body_refresh_parse(const char *body, size_t len, int *ttl_minutes,
                           ai_err *err);

#endif /* AI_SERVER_BODY_H */
