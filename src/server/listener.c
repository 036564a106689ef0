/* listener.c - the listening socket and its accept thread (see
 * listener.h for why they are not libmicrohttpd's). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "server/listener.h"

/* Out of descriptors or memory: accepting again after this long, so a
 * queue of clients the process cannot take does not spin the thread. */
#define LISTENER_BACKOFF_MS 50
#define LISTENER_LOG_EVERY_S 10

struct srv_listener {
    int fd;
    int wake[2];          /* a byte on wake[1] stops the accept thread */
    struct MHD_Daemon *d;
    pthread_t th;
    bool started;
    atomic_bool stop;
};

static bool fd_flags(int fd, bool nonblock)
{
    int f = fcntl(fd, F_GETFD);

    if (f < 0 || fcntl(fd, F_SETFD, f | FD_CLOEXEC) < 0)
        return false;
    if (!nonblock)
        return true;
    f = fcntl(fd, F_GETFL);
    return f >= 0 && fcntl(fd, F_SETFL, f | O_NONBLOCK) == 0;
}

int listener_open(const struct sockaddr *addr, socklen_t len, int backlog,
                  srv_listener **out)
{
    srv_listener *l;
    int one = 1, e;

    *out = NULL;
    if ((l = ai_calloc(1, sizeof *l)) == NULL)
        return ENOMEM;
    l->wake[0] = l->wake[1] = -1;
    if ((l->fd = socket(addr->sa_family, SOCK_STREAM, 0)) < 0)
        goto fail;
    if (!fd_flags(l->fd, true) ||
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) !=
             0) ||
        bind(l->fd, addr, len) != 0 || listen(l->fd, backlog) != 0 ||
        pipe(l->wake) != 0 || !fd_flags(l->wake[0], true) ||
        !fd_flags(l->wake[1], true))
        goto fail;
    *out = l;
    return 0;
fail:
    e = errno ? errno : EINVAL;
    listener_close(l);
    return e;
}

uint16_t listener_port(const srv_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t n = sizeof ss;

    if (getsockname(l->fd, (struct sockaddr *)&ss, &n) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
}

/* A shortage of descriptors or memory, said at most once per
 * LISTENER_LOG_EVERY_S with the number of times it stood for. */
static void log_shortage(int e)
{
    static time_t last;
    static unsigned long held;
    time_t now = time(NULL);

    if (last != 0 && now - last < LISTENER_LOG_EVERY_S) {
        held++;
        return;
    }
    fprintf(stderr, "agent-iam: http: cannot accept a connection: %s "
                    "(%lu more times in the last %d s)\n",
            strerror(e), held, LISTENER_LOG_EVERY_S);
    last = now;
    held = 0;
}

/* Accept until the queue is empty or the thread is told to stop; false
 * after a shortage (the caller waits before trying again). */
static bool accept_all(srv_listener *l)
{
    while (!atomic_load(&l->stop)) {
        struct sockaddr_storage ss;
        socklen_t n = sizeof ss;
        int c = accept(l->fd, (struct sockaddr *)&ss, &n);

        if (c >= 0) {
            (void)fd_flags(c, false); /* MHD makes it non-blocking */
            /* MHD closes what it refuses (limits) and logs why. */
            (void)MHD_add_connection(l->d, c, (struct sockaddr *)&ss, n);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            log_shortage(errno);
            return false;
        }
        return true; /* EAGAIN: the queue is empty */
    }
    return true;
}

static void *accept_loop(void *arg)
{
    srv_listener *l = arg;
    int wait_ms = -1;

    while (!atomic_load(&l->stop)) {
        struct pollfd p[2] = {{l->wake[0], POLLIN, 0}, {l->fd, POLLIN, 0}};
        /* after a shortage only the wake-up is watched, for a while */
        int r = poll(p, wait_ms < 0 ? 2 : 1, wait_ms);

        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && p[0].revents != 0)
            break;
        wait_ms = accept_all(l) ? -1 : LISTENER_BACKOFF_MS;
    }
    return NULL;
}

ai_code listener_start(srv_listener *l, struct MHD_Daemon *d, ai_err *err)
{
    l->d = d;
    if (pthread_create(&l->th, NULL, accept_loop, l) != 0)
        return ai_err_set(err, AI_EINTERNAL, "cannot start the accept thread");
    l->started = true;
    return AI_OK;
}

void listener_close(srv_listener *l)
{
    if (l == NULL)
        return;
    if (l->started) {
        atomic_store(&l->stop, true);
        while (write(l->wake[1], "x", 1) < 0 && errno == EINTR)
            ;
        pthread_join(l->th, NULL);
    }
    if (l->fd >= 0)
        close(l->fd);
    if (l->wake[0] >= 0)
        close(l->wake[0]);
    if (l->wake[1] >= 0)
        close(l->wake[1]);
    ai_free(l);
}
