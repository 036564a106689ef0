/* failover.c - going round the voters of a leader group after a try on
 * one of them failed: one rule for the CLI's leader client, the
 * follower's upstream and the runtime's remote mode (see http.h). */
#include <time.h>

#include "http/http.h"

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* See http.h. */
void http_failover_init(http_failover *f, size_t n, size_t start,
                        long window_ms, long pause_ms, size_t max_tries)
{
    f->n = n;
    f->cur = n > 0 ? start % n : 0;
    f->tries = 0;
    f->max_tries = max_tries;
    f->until_ms = window_ms > 0 ? mono_ms() + window_ms : 0;
    f->pause_ms = pause_ms;
}

/* See http.h. */
bool http_failover_next(http_failover *f, bool not_sent, bool resend_ok,
                        long status)
{
    if (f->n < 2)
        return false;
    f->tries++;
    if (f->max_tries > 0 && f->tries >= f->max_tries)
        return false;
    if (f->until_ms > 0 && mono_ms() >= f->until_ms)
        return false;
    /* nothing reached a server; or a read, which may be sent again, did
     * not complete; or the group has no leader now (503) */
    if (!not_sent && status != 503 && !(status == 0 && resend_ok))
        return false;
    if (f->pause_ms > 0 && f->tries % f->n == 0) {
        struct timespec p = {f->pause_ms / 1000, (f->pause_ms % 1000) * 1000000L};
        nanosleep(&p, NULL);
    }
    f->cur = (f->cur + 1) % f->n;
    return true;
}

/* See http.h. */
bool http_not_sent(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST;
}
