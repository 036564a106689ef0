/* buf.c - a growable byte buffer with a sticky out-of-memory flag. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core.h"

void buf_init(ai_buf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void buf_free(ai_buf *b)
{
    if (b->p != NULL)
        explicit_bzero(b->p, b->cap);
    ai_free(b->p);
    buf_init(b);
}

bool buf_reserve(ai_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->oom)
        return false;
    if (extra > SIZE_MAX / 2 - b->len - 1)
        goto fail;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    /* Not realloc: the old block may hold secret bytes to wipe. */
    p = ai_malloc(cap);
    if (p == NULL)
        goto fail;
    if (b->p != NULL) {
        memcpy(p, b->p, b->len);
        explicit_bzero(b->p, b->cap);
        ai_free(b->p);
    }
    b->p = p;
    b->cap = cap;
    return true;
fail:
    b->oom = true;
    return false;
}

void buf_put_u64(ai_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    buf_put(b, tmp + i, sizeof tmp - i);
}

char *buf_steal(ai_buf *b)
{
    char *p;

    if (b->oom) {
        buf_free(b);
        return NULL;
    }
    if (b->p == NULL && !buf_reserve(b, 0))
        return NULL;
    if (b->p == NULL)
        return NULL;
    b->p[b->len] = '\0';
    p = b->p;
    buf_init(b);
    return p;
}
