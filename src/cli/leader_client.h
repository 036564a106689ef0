/*
 * leader_client.h - the CLI's client of a leader: one HTTPS call to the
 * API of a running `agent-iam serve` (docs/http-api.md), for the CLI's
 * commands that act on a leader instead of the local home. Built on the
 * project's HTTPS client (src/http); private to src/cli.
 *
 * TLS verification is always on (the CA file given, else the system's
 * CAs); plain http only to 127.0.0.1, localhost or [::1] (http_url_ok of
 * src/http). Connect timeout 5 s, total 30 s, answers over 1 MiB
 * refused. The URL may list the voters of a leader group ("URL,URL"):
 * a voter that could not be connected to (nothing sent) gives way to the
 * next, a 307 (a voter that is not the leader) is followed to the
 * Location it gives, a 503 (an election) is tried again on the next voter
 * for up to LEADER_ELECTION_MS. Other failures are not retried: a write
 * that may have arrived is not sent again (a single leader would apply
 * it twice). Every write carries an Idempotency-Key of its own, the same
 * on each attempt, which a leader group uses to apply it once.
 *
 * The bearer secret goes into one header line, built in a buffer that is
 * wiped afterwards; it is never printed, logged or put in an error
 * message. Error messages name the leader's host and port and the
 * transport failure, or the server's own error text and HTTP status.
 */
#ifndef AI_CLI_LEADER_CLIENT_H
#define AI_CLI_LEADER_CLIENT_H

#include <stdbool.h>

#include "agent_iam.h"

#define LEADER_URL_MAX 2048      /* the base URL */
#define LEADER_TOKEN_MAX AI_TOKEN_WIRE_MAX /* the bearer: an admin secret
                                               or an agent's token */
#define LEADER_BODY_MAX (1024 * 1024)
#define LEADER_CONNECT_MS 5000L
#define LEADER_TOTAL_MS 30000L
#define LEADER_ELECTION_MS 4000L /* a group's failover waited this long */

/* Where the leader is and how to reach it. Every member is borrowed. */
typedef struct leader_client {
    const char *url;     /* base URL: "https://host:port" (a path prefix is
                            kept; trailing slashes are ignored), or a
                            comma-separated list of a group's voters */
    const char *token;   /* admin bearer secret; NULL: no Authorization */
    const char *ca_file; /* PEM CA bundle; NULL: the system's CAs */
} leader_client;

/* Is url a base URL the client accepts: at most LEADER_URL_MAX visible
 * ASCII characters, no query or fragment, and what http_url_ok allows
 * (https, or http to a loopback host; no user info)? No network use. */
bool leader_url_ok(const char *url);

/* Is t a bearer secret the client sends: 1..LEADER_TOKEN_MAX visible
 * ASCII characters (no space, no control character: it goes into a
 * header line)? */
bool leader_token_ok(const char *t);

/* Call METHOD ("GET", "POST", "PUT" or "DELETE") on the leader's path
 * (begins with '/', appended to the base URL as given: the caller encodes
 * it), sending json_body (NUL-terminated; NULL: no body) as
 * application/json.
 *
 * A 2xx answer: AI_OK, *status the HTTP status, *resp_body (OUT: the
 * answer, NUL-terminated, possibly empty; free with leader_body_free) set.
 * Otherwise *resp_body is NULL and err holds the reason:
 *  - the server answered non-2xx: *status is that status and the code is
 *    the one its machine code names (err_code_name: "token_revoked"
 *    AI_EREVOKED, "storage_full" AI_ESTORAGE_FULL...), else mapped from
 *    the status (400/405/413 AI_EINVAL, 401/403/409 AI_EDENIED, 404/410
 *    AI_ENOTFOUND, 429/503 AI_EUNAVAILABLE, 502 AI_EPROVIDER, other
 *    AI_EINTERNAL), the message "leader: <the server's error> (<status>)";
 *  - bad arguments (URL, token, method, path): AI_EINVAL, *status 0;
 *  - transport failures (connect, TLS, timeout): AI_EUNAVAILABLE "leader
 *    HOST:PORT: <reason>"; an answer over 1 MiB AI_EINTERNAL; *status 0.
 * Thread-safe: each call uses its own libcurl handle. */
ai_code leader_client_call(const leader_client *c, const char *method,
                           const char *path, const char *json_body,
                           long *status, char **resp_body, ai_err *err);

/* Wipe (answers may hold tokens) and free an answer; NULL does nothing. */
void leader_body_free(char *body);

#endif /* AI_CLI_LEADER_CLIENT_H */
