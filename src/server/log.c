/* log.c - the access log (one line per request, buffered, naming the
 * route or the sanitized path, never the raw target) and libmicrohttpd's
 * own messages on stderr (each at most once per SRV_LOG_EVERY_MS). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_iam.h"
#include "core/core.h"
#include "server/internal.h"
#include "server/server.h"

/* Write out the access log buffer (caller holds loglock). */
static void log_flush_locked(srv *s)
{
    size_t off = 0;

    while (off < s->loglen) {
        ssize_t w = write(s->cfg.access_log_fd, s->logbuf + off,
                          s->loglen - off);
        if (w <= 0 && errno != EINTR)
            break; /* a log that cannot be written must not stop serving */
        if (w > 0)
            off += (size_t)w;
    }
    s->loglen = 0;
}

void srv_log_flush(srv *s)
{
    if (s->cfg.access_log_fd < 0)
        return;
    pthread_mutex_lock(&s->loglock);
    if (s->loglen > 0)
        log_flush_locked(s);
    pthread_mutex_unlock(&s->loglock);
}

/* Append text to a line buffer, truncating at its end. */
static size_t put_str(char *line, size_t n, size_t cap, const char *t)
{
    size_t k = strlen(t);

    if (k > cap - 1 - n)
        k = cap - 1 - n;
    memcpy(line + n, t, k);
    return n + k;
}

static size_t put_num(char *line, size_t n, size_t cap, unsigned long long v,
                      int min_digits)
{
    char d[24];
    int k = 0;

    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 || k < min_digits);
    while (k > 0 && n < cap - 1)
        line[n++] = d[--k];
    return n;
}

/* One line per request, buffered: written when the buffer fills and by
 * the watcher every SRV_WATCH_MS, so the log costs no syscall per
 * request under load. Built by hand: this runs for every request. */
void srv_log_line(srv *s, req_priv *p, int status, int64_t micros)
{
    char line[512], at[AI_TIME_BUF];
    size_t n = 0, cap = sizeof line;

    if (s->cfg.access_log_fd < 0)
        return;
    ai_time_format(time_now_ms(), at);
    n = put_str(line, n, cap, at);
    n = put_str(line, n, cap, " ");
    n = put_str(line, n, cap, p->rq.method ? p->rq.method : "-");
    n = put_str(line, n, cap, " ");
    n = put_str(line, n, cap, p->rq.route ? p->rq.route->name : p->path);
    n = put_str(line, n, cap, " ");
    n = put_num(line, n, cap, (unsigned long long)status, 1);
    n = put_str(line, n, cap, " ");
    n = put_num(line, n, cap, (unsigned long long)(micros / 1000), 1);
    n = put_str(line, n, cap, ".");
    n = put_num(line, n, cap, (unsigned long long)(micros % 1000), 3);
    n = put_str(line, n, cap, "ms ");
    n = put_str(line, n, cap, p->rq.subject[0] ? p->rq.subject : "-");
    if (p->rq.follower[0]) {
        n = put_str(line, n, cap, " follower=");
        n = put_str(line, n, cap, p->rq.follower);
    }
    line[n++] = '\n'; /* put_* leave one byte free */
    pthread_mutex_lock(&s->loglock);
    if (s->loglen + n > sizeof s->logbuf)
        log_flush_locked(s);
    memcpy(s->logbuf + s->loglen, line, n);
    s->loglen += n;
    pthread_mutex_unlock(&s->loglock);
}

/* libmicrohttpd's messages. A flood of clients makes the same message
 * (connection limit reached, a failed handshake) once per connection:
 * each message is printed at most once per SRV_LOG_EVERY_MS, with the
 * number of repeats it stood for. */
#define SRV_LOG_EVERY_MS 10000
#define SRV_LOG_SLOTS 16

typedef struct log_slot {
    const char *fmt; /* MHD passes the same literal for the same message */
    int64_t last_ms;
    unsigned long held;
} log_slot;

void srv_mhd_log(void *cls, const char *fmt, va_list ap)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static log_slot slots[SRV_LOG_SLOTS];
    int64_t now = time_mono_ns() / 1000000;
    unsigned long held = 0;
    log_slot *sl = NULL, *oldest = &slots[0];

    (void)cls;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < SRV_LOG_SLOTS; i++) {
        if (slots[i].fmt == fmt) {
            sl = &slots[i];
            break;
        }
        if (slots[i].last_ms < oldest->last_ms)
            oldest = &slots[i];
    }
    if (sl != NULL && now - sl->last_ms < SRV_LOG_EVERY_MS) {
        sl->held++;
        pthread_mutex_unlock(&lock);
        return;
    }
    if (sl == NULL) {
        sl = oldest;
        sl->fmt = fmt;
        sl->held = 0;
    }
    held = sl->held;
    sl->held = 0;
    sl->last_ms = now;
    pthread_mutex_unlock(&lock);
    if (held > 0)
        fprintf(stderr, "agent-iam: http: (the next message %lu more "
                        "times in the last %d s)\n", held,
                SRV_LOG_EVERY_MS / 1000);
    fputs("agent-iam: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}
