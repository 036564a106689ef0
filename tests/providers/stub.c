/* stub.c - starting and stopping the provider stub servers. */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "stub.h"

pid_t t_stub_start(const char *const *argv, int *port)
{
    int fds[2];
    char line[64];
    size_t n = 0;
    time_t deadline = time(NULL) + 60;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no orphan if we crash */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp("python3", (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    while (n + 1 < sizeof line && time(NULL) < deadline) {
        struct pollfd p = {fds[0], POLLIN, 0};
        char c;
        if (poll(&p, 1, 1000) <= 0)
            continue;
        if (read(fds[0], &c, 1) != 1)
            break;
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = '\0';
    close(fds[0]);
    ck_assert_msg(sscanf(line, "PORT %d", port) == 1,
                  "the stub did not start (python3 and openssl needed): "
                  "\"%s\"",
                  line);
    return pid;
}

void t_stub_stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        *pid = -1;
    }
}
