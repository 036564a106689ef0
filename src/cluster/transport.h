/*
 * transport.h - the leader group's Raft traffic over mutual TLS: a
 * struct raft_uv_transport (libraft 0.15, <raft/uv.h>) that replaces
 * libraft's plain-TCP one (DESIGN §9). Private to src/cluster.
 *
 * Every connection is TLS 1.2 or later with both sides authenticated: a
 * node presents its certificate (the server's --tls-cert/--tls-key) and
 * accepts only a peer whose certificate chains to the cluster file's `ca`.
 * No host name is checked: the CA is what makes a peer a member. A peer
 * with a certificate from another CA, or none, is refused on both sides
 * (connect fails; accept never reaches libraft).
 *
 * After TLS, the connecting side sends a fixed-size preamble (272 bytes:
 * magic "AIRAFT\0\1", its raft id as 8 bytes big-endian, its address in
 * 256 bytes NUL-padded) and waits for a one-byte acknowledgement, so a
 * refusal is seen by connect and not by the first write. Then the bytes
 * flow unchanged between libraft's stream and TLS.
 *
 * THREADS: libraft's side stays on the loop thread: for each connection a
 * socketpair, one end a uv_pipe_t handed to libraft, the other pumped
 * to/from TLS by a bridge thread of its own (poll() on the TLS socket, its
 * pipe end and the transport's stop pipe). An acceptor thread owns the
 * listening socket. So TCP connect, TLS handshakes (of strangers too) and
 * encryption never run on the loop thread, where libraft's heartbeats run.
 * Threads hand results back with uv_async_send and the loop thread makes
 * every libraft callback. A handshake (TCP connect, TLS, preamble, ack)
 * has CLUSTER_HANDSHAKE_MS; at most CLUSTER_MAX_PENDING incoming
 * connections are in their handshake at once, and CLUSTER_MAX_CONNS in
 * all; an incoming connection over either limit is closed at once. A
 * connection that is up has no deadline of its own (libraft's heartbeats
 * keep it busy); TCP keepalive and TCP_USER_TIMEOUT end it within about
 * half a minute when its peer vanishes, and libraft sees an EOF.
 *
 * Addresses are numeric ("10.0.0.1:9441", "[fd00::1]:9441"): nothing on
 * the way may block on a resolver. The listening socket binds the node's
 * own raft address.
 */
#ifndef AI_CLUSTER_TRANSPORT_H
#define AI_CLUSTER_TRANSPORT_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "agent_iam.h"

#define CLUSTER_HANDSHAKE_MS 5000 /* default deadline of a handshake */
#define CLUSTER_MAX_PENDING 16    /* default: incoming, not yet authenticated */
#define CLUSTER_MAX_CONNS 64      /* connections (bridge threads) in all */
#define CLUSTER_ADDR_MAX 255      /* a raft address: "IPv4:port", "[IPv6]:port" */

/* What a node needs to speak to its peers. The strings are read during
 * cluster_transport_init only. */
typedef struct cluster_tls {
    const char *cert_path; /* this node's certificate chain, PEM */
    const char *key_path;  /* its private key, PEM, not encrypted */
    const char *ca_path;   /* the cluster file's ca: the only trust anchor */
    unsigned handshake_ms; /* 0: CLUSTER_HANDSHAKE_MS */
    unsigned max_pending;  /* 0: CLUSTER_MAX_PENDING */
    /* One line per refused incoming connection (peer address and why;
     * never key material). Called from the transport's threads, at any
     * time until the transport is closed; may be NULL. */
    void (*log)(void *arg, const char *line);
    void *log_arg;
} cluster_tls;

/* Counters since init, readable from any thread. */
typedef struct cluster_transport_stats {
    uint64_t accepted; /* incoming connections handed to libraft */
    uint64_t refused;  /* incoming ones refused: TLS, preamble, timeout, limits */
} cluster_transport_stats;

/* Make t a mutual-TLS transport on loop: load the certificate, key and CA
 * now (a missing, mismatched or unreadable file fails here, with its path
 * in err). Then pass t to raft_uv_init; libraft calls t->init, listen,
 * connect and close on the loop thread.
 *
 * Errors: AI_EINVAL (bad tls, files), AI_ENOMEM; t is then unusable and
 * needs no cluster_transport_close. */
ai_code cluster_transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                               const cluster_tls *tls, ai_err *err);

/* Release what cluster_transport_init made. Call it after t->close's
 * callback has fired (raft_close's callback), or when libraft never
 * called t->init (t->init registers a uv_async_t on the loop that only
 * t->close unregisters). Not thread-safe; the loop thread. */
void cluster_transport_close(struct raft_uv_transport *t);

/* Counters of t (thread-safe). */
void cluster_transport_stats_get(const struct raft_uv_transport *t,
                                 cluster_transport_stats *out /* OUT */);

#endif /* AI_CLUSTER_TRANSPORT_H */
