/* stub.h - the provider suites' stub servers (tests/providers/stub_*.py):
 * start one as a child process and learn its port, stop it. */
#ifndef AI_TESTS_STUB_H
#define AI_TESTS_STUB_H

#include <sys/types.h>

/* Run python3 with argv (argv[0] "python3"); wait (60 s at most) for its
 * "PORT <n>" line and store n in *port. Fails the test if it does not
 * start. The child gets SIGTERM if the test process dies. */
pid_t t_stub_start(const char *const *argv, int *port);

/* SIGTERM and reap the stub; *pid becomes -1. */
void t_stub_stop(pid_t *pid);

#endif
