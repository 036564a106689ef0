/* clock.c - the one place that reads the clocks.
 *
 * DESIGN: nothing in src/core calls these. Core's logic takes the time as
 * `now_ms` from its caller, so tests fix it; these are for the modules
 * above (DESIGN §1), which read the clock here rather than each with a
 * copy of its own (docs/decisions.md). Reading a clock is a system call
 * but not I/O: no file, socket or state outside the process is touched. */
#include <time.h>

#include "core.h"

int64_t time_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void time_deadline(clockid_t clk, int64_t ms, struct timespec *ts)
{
    clock_gettime(clk, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
