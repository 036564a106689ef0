/* epoll_delay.c - an LD_PRELOAD library for tests/security/connections_test.py:
 * the main thread's EPOLL_CTL_DEL waits 5 ms before it is made, as when
 * that thread loses its CPU at that point on a loaded machine. With
 * libmicrohttpd's MHD_quiesce_daemon (a server that let it stop accepting)
 * a worker thread then removes the listening socket first and the quiesce
 * aborts the process; the test SIGTERMs a server under a connection flood
 * with this library loaded, so that race is met nearly every time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    static int (*real)(int, int, int, struct epoll_event *);

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
    if (op == EPOLL_CTL_DEL && syscall(SYS_gettid) == getpid())
        usleep(5000);
    return real(epfd, op, fd, ev);
}
