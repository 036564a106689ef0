/*
 * listener.h - the server's listening socket and the thread that accepts
 * on it, private to src/server.
 *
 * The socket is ours, not libmicrohttpd's: the daemon runs with
 * MHD_USE_NO_LISTEN_SOCKET and each accepted connection is handed to it
 * with MHD_add_connection (which applies the per-address and total
 * limits, and closes what it refuses). Stopping to accept is closing this
 * socket, so new clients are refused at once. libmicrohttpd 0.9.75's own
 * way, MHD_quiesce_daemon, races its worker threads with a thread pool
 * and epoll: both remove the listening socket from a worker's epoll set,
 * and when the worker is first the quiesce aborts the process ("Failed
 * to remove listen FD from epoll set", daemon.c:5531) - SIGTERM during a
 * connection flood did that.
 *
 * THREADS: listener_open, listener_start and listener_close run on the
 * thread that starts and stops the server; the accept thread only calls
 * accept(2) and MHD_add_connection (thread-safe with MHD_USE_ITC).
 */
#ifndef AI_SERVER_LISTENER_H
#define AI_SERVER_LISTENER_H

#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "agent_iam.h"

typedef struct srv_listener srv_listener;

/* Bind and listen on addr (SO_REUSEADDR, IPV6_V6ONLY for IPv6, the given
 * backlog): 0, or the errno value of what failed (*out is then NULL). */
int listener_open(const struct sockaddr *addr, socklen_t len, int backlog,
                  srv_listener **out);
/* The bound port (the one the kernel chose for port 0). */
uint16_t listener_port(const srv_listener *l);
/* Start the accept thread, handing connections to d. */
ai_code listener_start(srv_listener *l, struct MHD_Daemon *d, ai_err *err);
/* Stop the accept thread (if started) and close the socket: from here on
 * new connections are refused. NULL is fine. */
void listener_close(srv_listener *l);

#endif /* AI_SERVER_LISTENER_H */
