/*
 * tls.h - TLS material for the HTTPS server: find the certificate and key
 * the operator gave, or make a local CA and a server certificate signed by
 * it in <home>/tls on first start. libmicrohttpd (GnuTLS) takes the result
 * as two PEM strings. srv_tls, srv_tls_load and srv_tls_clear are in
 * server.h (the leader and the follower load their material); what is
 * here is private to src/server.
 *
 * THREADS: the functions share no state and may run on any thread. Writers
 * of one directory (other processes, or other calls here) are serialized
 * by an flock on the directory, so two brokers starting at once in the
 * same home end up with one CA.
 *
 * Errors: every call returns an ai_code and fills ai_err. The text of a
 * private key never appears in a message; paths do.
 */
#ifndef AI_SERVER_TLS_H
#define AI_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "agent_iam.h"
#include "server/server.h"

/* Write a new CA (ca.pem, ca.key) into dir (made 0700 if missing) unless ca.pem/ca.key exist there already
 * (then reuse them), and a certificate <name>.pem / <name>.key signed by it for the given SAN entries
 * (each "DNS:x" or "IP:x"; server certs get serverAuth, and clientAuth too when client is true).
 * Used by srv_tls_load, by tests, and later by certs/gen.sh through a CLI command.
 *
 * name: 1..64 of [A-Za-z0-9._-], not starting with '.', not "ca". sans: 1..32
 * entries; a DNS name is checked (labels of letters, digits and '-', no
 * wildcard), an IP is IPv4 or IPv6 text. An existing <name>.pem/<name>.key
 * is replaced; a reused CA must be valid, match its key (0600) and outlive
 * nothing it signs: the certificate's end is capped at the CA's. */
ai_code srv_tls_issue(const char *dir, const char *name, const char *const *sans, size_t nsans, bool client, ai_err *err);

#endif /* AI_SERVER_TLS_H */
