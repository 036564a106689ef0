/*
 * conns.h - the deadlines of the server's connections (DESIGN §8), private
 * to src/server.
 *
 * libmicrohttpd times out a connection only when it is idle: a client that
 * sends one byte every few seconds, or never finishes its TLS handshake,
 * keeps its connection (and a slot of the per-address and global limits)
 * for as long as it likes. So every connection carries a deadline of its
 * own: from its accept, the TLS handshake and a whole request header must
 * arrive within header_ms; once the header is in, its body within
 * body_ms; between two requests on a keep-alive connection, the next
 * header must arrive within idle_ms of the last answer. While a request is
 * being handled and answered (handler, long-poll, reply) there is no
 * deadline: those have limits of their own.
 *
 * THREADS: conns_notify runs on the worker that owns the connection;
 * conns_request_* on the worker serving it; conns_sweep on the server's
 * watcher thread. The list is guarded by a mutex; a deadline is an atomic
 * so requests do not take it. A connection past its deadline is cut with
 * shutdown(2) on its socket: that wakes its worker, which reads the end of
 * the stream and closes the connection itself (the descriptor is never
 * closed behind libmicrohttpd's back, and it stays open, so never reused,
 * until the connection's close notification has removed it here).
 */
#ifndef AI_SERVER_CONNS_H
#define AI_SERVER_CONNS_H

#include <stdint.h>
#include <stddef.h>

#include <microhttpd.h>

typedef struct srv_conns srv_conns;

/* NULL on out of memory. */
srv_conns *conns_new(int header_ms, int body_ms, int idle_ms);
/* Every connection must have been closed (the daemon stopped). */
void conns_free(srv_conns *cs);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the srv_conns. */
void conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);

/* A whole request header has arrived on c: its body is due within
 * body_ms. */
void conns_request_started(srv_conns *cs, struct MHD_Connection *c);
/* The whole body is in: no deadline until conns_request_done. */
void conns_request_received(struct MHD_Connection *c);
/* The request on c is over: the next header is due within idle_ms. */
void conns_request_done(srv_conns *cs, struct MHD_Connection *c);

/* Cut every connection past its deadline (now: time_mono_ns() in ms);
 * returns how many were cut by this call. */
size_t conns_sweep(srv_conns *cs, int64_t now_ms);
/* Connections cut so far, and open now. */
uint64_t conns_cut_total(srv_conns *cs);
size_t conns_open(srv_conns *cs);

#endif /* AI_SERVER_CONNS_H */
