/* runtime.h - the runtime module's internals: the HTTPS client of a remote
 * runtime (remote.c), used by runtime.c. */
#ifndef AI_RUNTIME_H
#define AI_RUNTIME_H

#include <stdatomic.h>

#include "agent_iam.h"

#define RT_BODY_MAX (1024 * 1024) /* largest answer read */
#define RT_ELECTION_MS 4000L      /* a group's failover waited this long */

/* METHOD base+path with the bearer token and an optional JSON body, TLS
 * always verified (ca: a CA file, NULL for the system's). A 2xx answer:
 * AI_OK and *body (OUT: NUL-terminated, ai_malloc'd; NULL on error) which
 * may hold secrets: the caller wipes and frees it (ai_free_string). A
 * non-2xx answer: its code (docs/http-api.md: invalid_token -> AI_ETOKEN,
 * forbidden -> AI_EDENIED...) and the server's message. Unreachable,
 * timed out or aborted (*abort became true; polled every 100 ms):
 * AI_EUNAVAILABLE naming the host. The token never reaches an error.
 * base may list a leader group's voters ("URL,URL"): one that could not
 * be connected to gives way to the next, and so does a 503 (for up to
 * RT_ELECTION_MS); other failures are not sent again.
 * Thread-safe: one libcurl handle per call. */
ai_code rt_http_call(const char *base, const char *ca, long timeout_ms,
                     const char *bearer, const char *method,
                     const char *path, const char *json,
                     const atomic_bool *abort, char **body, ai_err *err);

#endif
