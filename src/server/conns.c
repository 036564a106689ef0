/* conns.c - per-connection deadlines: the handshake + header deadline and
 * the keep-alive deadline of DESIGN §8 (see conns.h for the design). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "core/core.h"
#include "server/conns.h"

typedef struct srv_conn {
    int fd;
    atomic_int_fast64_t deadline; /* monotonic ms; 0: none (in a request) */
    bool cut;                     /* shut down once already (list lock) */
    struct srv_conn *prev, *next;
} srv_conn;

struct srv_conns {
    pthread_mutex_t lock;
    srv_conn *head;
    size_t open;
    atomic_uint_fast64_t cut_total;
    int header_ms, body_ms, idle_ms;
};

srv_conns *conns_new(int header_ms, int body_ms, int idle_ms)
{
    srv_conns *cs = ai_calloc(1, sizeof *cs);

    if (cs == NULL)
        return NULL;
    pthread_mutex_init(&cs->lock, NULL);
    cs->header_ms = header_ms;
    cs->body_ms = body_ms;
    cs->idle_ms = idle_ms;
    return cs;
}

void conns_free(srv_conns *cs)
{
    if (cs == NULL)
        return;
    while (cs->head != NULL) { /* only if the daemon never closed them */
        srv_conn *k = cs->head;
        cs->head = k->next;
        ai_free(k);
    }
    pthread_mutex_destroy(&cs->lock);
    ai_free(cs);
}

void conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    srv_conns *cs = cls;
    srv_conn *k = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *i =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (i == NULL || (k = ai_calloc(1, sizeof *k)) == NULL)
            return; /* no deadline: MHD's idle timeout still applies */
        k->fd = i->connect_fd;
        atomic_store(&k->deadline, time_mono_ns() / 1000000 + cs->header_ms);
        pthread_mutex_lock(&cs->lock);
        k->next = cs->head;
        if (cs->head != NULL)
            cs->head->prev = k;
        cs->head = k;
        cs->open++;
        pthread_mutex_unlock(&cs->lock);
        *socket_context = k;
        return;
    }
    if (k == NULL)
        return;
    /* Closed: off the list before libmicrohttpd closes the descriptor. */
    pthread_mutex_lock(&cs->lock);
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        cs->head = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    cs->open--;
    pthread_mutex_unlock(&cs->lock);
    ai_free(k);
    *socket_context = NULL;
}

static srv_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return i != NULL ? i->socket_context : NULL;
}

void conns_request_started(srv_conns *cs, struct MHD_Connection *c)
{
    srv_conn *k = conn_of(c);

    if (k != NULL)
        atomic_store(&k->deadline, time_mono_ns() / 1000000 + cs->body_ms);
}

void conns_request_received(struct MHD_Connection *c)
{
    srv_conn *k = conn_of(c);

    if (k != NULL)
        atomic_store(&k->deadline, 0);
}

void conns_request_done(srv_conns *cs, struct MHD_Connection *c)
{
    srv_conn *k = conn_of(c);

    if (k != NULL)
        atomic_store(&k->deadline, time_mono_ns() / 1000000 + cs->idle_ms);
}

size_t conns_sweep(srv_conns *cs, int64_t now_ms)
{
    size_t n = 0;

    pthread_mutex_lock(&cs->lock);
    for (srv_conn *k = cs->head; k != NULL; k = k->next) {
        int64_t d = atomic_load(&k->deadline);
        if (d != 0 && d <= now_ms && !k->cut) {
            /* The worker sees the end of the stream and closes it. */
            (void)shutdown(k->fd, SHUT_RDWR);
            k->cut = true;
            n++;
        }
    }
    pthread_mutex_unlock(&cs->lock);
    if (n > 0)
        atomic_fetch_add(&cs->cut_total, n);
    return n;
}

uint64_t conns_cut_total(srv_conns *cs)
{
    return atomic_load(&cs->cut_total);
}

size_t conns_open(srv_conns *cs)
{
    size_t n;

    pthread_mutex_lock(&cs->lock);
    n = cs->open;
    pthread_mutex_unlock(&cs->lock);
    return n;
}
