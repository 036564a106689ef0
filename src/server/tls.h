/*
 * tls.h - TLS material for the HTTPS server: find the certificate and key
 * the operator gave, or make a local CA and a server certificate signed by
 * it in <home>/tls on first start. libmicrohttpd (GnuTLS) takes the result
 * as two PEM strings.
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

typedef struct srv_tls {
    char *cert_pem;      /* server certificate chain, PEM (ai_malloc'd) */
    char *key_pem;       /* server private key, PEM (ai_malloc'd; wiped by srv_tls_clear) */
    char cert_path[4096];/* where the certificate came from */
    char ca_path[4096];  /* the CA certificate clients should trust ("" when not known, i.e. operator-supplied material) */
    bool generated;      /* true when this call created the material */
} srv_tls;

/* Find the server's TLS material: cert_path/key_path when given (both or neither, else AI_EINVAL);
 * else $AGENT_IAM_TLS_CERT / $AGENT_IAM_TLS_KEY when set; else <home>/tls/server.pem and <home>/tls/server.key
 * when they exist; else generate in <home>/tls (directory 0700): ca.pem, ca.key (0600), server.pem, server.key (0600):
 * a local CA (EC P-256, 10 years, CA:TRUE, keyCertSign) and a server certificate signed by it (EC P-256, 825 days,
 * serverAuth, SANs: DNS:localhost, IP:127.0.0.1, IP:::1, and DNS:<gethostname()> when it is a valid DNS name),
 * written atomically (temp file + rename, keys created 0600 with O_EXCL, never world readable at any moment).
 * A key file readable by group/others is refused (AI_EINVAL, naming the file and "chmod 600"), as is a key that
 * does not match the certificate, an unreadable/garbage PEM, or an expired certificate (clear message naming the path).
 * The key text never appears in an error message.
 *
 * An empty string counts as not given, for the paths and the variables.
 * <home> must exist; only <home>/tls is created. Both strings are
 * re-encoded by OpenSSL (certificates in file order, the key as PKCS#8),
 * so stray text around the PEM blocks is dropped and an encrypted key is
 * refused. Generation failures (files, OpenSSL) are AI_ESTORE or
 * AI_EINTERNAL. out: OUT, zeroed (NULL strings) on error; release with
 * srv_tls_clear. */
ai_code srv_tls_load(const char *home, const char *cert_path, const char *key_path, srv_tls *out, ai_err *err);

/* Wipe the key and free both strings. */
void srv_tls_clear(srv_tls *t);

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
