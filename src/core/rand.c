/* rand.c - random bytes for tokenIds and generated agentIds.
 *
 * DESIGN: OpenSSL's RAND_bytes costs about 1.6 us a call here, more than
 * the rest of a delegation, so each thread draws 1 KiB at a time from it
 * and hands out slices. The pool is per thread (_Thread_local: never
 * shared, no lock), wiped as it is used, and dropped in the child after
 * fork() (pthread_atfork), so a parent and child never hand out the same
 * bytes. These bytes name tokens; they are not key material. */
#include <pthread.h>
#include <string.h>

#include <openssl/rand.h>

#include "core.h"

#define POOL 1024

static _Thread_local struct {
    unsigned char buf[POOL];
    size_t left; /* unused bytes at the end of buf */
} pool;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void forget_in_child(void)
{
    explicit_bzero(pool.buf, sizeof pool.buf);
    pool.left = 0;
}

static void register_fork_handler(void)
{
    (void)pthread_atfork(NULL, NULL, forget_in_child);
}

bool rand_fill(void *out, size_t n)
{
    unsigned char *o = out;

    pthread_once(&once, register_fork_handler);
    if (n > POOL)
        return RAND_bytes(o, (int)n) == 1;
    if (pool.left < n) {
        if (RAND_bytes(pool.buf, POOL) != 1) {
            pool.left = 0;
            return false;
        }
        pool.left = POOL;
    }
    memcpy(o, pool.buf + POOL - pool.left, n);
    explicit_bzero(pool.buf + POOL - pool.left, n);
    pool.left -= n;
    return true;
}
