/*
 * upstream.h - a follower's HTTPS connection to its leader: one libcurl
 * handle kept open (keep-alive) for the follower API (change feed,
 * snapshot, uses). TLS verification always on (the CA file given, else the
 * system's); plain http only to loopback. The bearer secret lives in one
 * header line, wiped when the connection is freed, and never appears in an
 * error. A transfer is aborted when *stop becomes true. Not thread-safe:
 * one per thread (or guarded).
 */
#ifndef AI_FOLLOWER_UPSTREAM_H
#define AI_FOLLOWER_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "agent_iam.h"

typedef struct upstream upstream;

/* url: the leader's base URL; NULL and an error if it is not usable. */
upstream *upstream_new(const char *url, const char *token,
                       const char *ca_file, const char *follower_id,
                       atomic_bool *stop, ai_err *err);
void upstream_free(upstream *u);

/* METHOD path (with query) with an optional JSON body. AI_OK whenever the
 * leader answered (any status, in *status; *body NUL-terminated, caller
 * wipes and ai_frees); AI_EUNAVAILABLE when it could not be reached,
 * timed out (timeout_ms), or the answer was over max bytes. */
ai_code upstream_call(upstream *u, const char *method, const char *path,
                      const char *json, long timeout_ms, size_t max,
                      long *status, char **body, size_t *len, ai_err *err);

/* POST path as the agent whose bearer (n bytes) is given, without the
 * follower's own credential or id: a request forwarded to the leader.
 * As upstream_call otherwise. */
ai_code upstream_call_as(upstream *u, const char *bearer, size_t n,
                         const char *path, const char *json, long timeout_ms,
                         size_t max, long *status, char **body, size_t *len,
                         ai_err *err);

/* GET path and hand each line of a 200 answer to fn as it arrives
 * (NUL-terminated, without its newline; the buffer is wiped after fn);
 * fn returns false to stop. Lines over line_max bytes abort, and so does
 * a stream that moves no byte for UPSTREAM_STALL_S seconds (a silent
 * network), whatever timeout_ms allows the whole. Another status: AI_OK
 * with *status and the answer (up to 64 KiB) in *body. */
#define UPSTREAM_STALL_S 20L
typedef bool (*upstream_line_fn)(void *ud, char *line, size_t len);
ai_code upstream_stream(upstream *u, const char *path, long timeout_ms,
                        size_t line_max, upstream_line_fn fn, void *ud,
                        long *status, char **body, size_t *len, ai_err *err);

/* The leader's error text of an answer ({"error": ...}), or a generic
 * one, into buf. */
void upstream_error_text(const char *body, long status, char *buf,
                         size_t cap);

#endif
