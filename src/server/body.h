/*
 * body.h - JSON request bodies read from their bytes alone (no connection,
 * no store), so that a handler and a test or fuzz target parse a body
 * through the same code. The generic readers back srv_body_object,
 * srv_str and srv_int; the agent API's bodies (agent_api.c) are parsed
 * whole here.
 *
 * body_object and the *_parse functions clear err first; body_str and
 * body_int do not (called in a row, the first error wins). AI_EINVAL (the
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

/* The body as a JSON object (duplicate members refused). empty_ok: an
 * empty body is {}. NULL on error: AI_EINVAL "malformed JSON body: ..."
 * or "the body must be a JSON object". New reference. */
json_t *body_object(const char *body, size_t len, bool empty_ok, ai_err *err);

/* A string member without NUL bytes: *out borrowed from o; NULL when
 * absent or null, which is an error only when required. false with
 * AI_EINVAL ("\"key\" is required", "\"key\" must be a string"). */
bool body_str(const json_t *o, const char *key, bool required,
              const char **out, ai_err *err);

/* An integer member in [min, max]: *present tells whether it was given
 * (absent or null: false, *out untouched). false with AI_EINVAL "\"key\"
 * must be a whole number from min to max". */
bool body_int(const json_t *o, const char *key, long long min, long long max,
              bool *present, long long *out, ai_err *err);

/* An empty body ({}) or an object whose only member read is key, an
 * optional integer in [min, max] (as body_int). */
ai_code body_int_only(const char *body, size_t len, const char *key,
                      long long min, long long max, bool *present,
                      long long *out, ai_err *err);

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
