/* disk.c - a failed sync of the follower, told where it belongs: a full
 * disk (AI_ESTORAGE_FULL, in applying a batch or a snapshot, or in noting
 * the contact) goes to the server's storage state, which logs it once for
 * the episode, answers /readyz with 503 storage_full, says it in
 * /v1/status and /metrics and notices when space returns; anything else
 * is the follower's last error, logged when it changes. Either way the
 * replica is not taken for fresh: only a batch applied moves it on. */
#include <stdio.h>

#include "follower/internal.h"

void fl_sync_failed(ai_follower *f, const ai_err *err)
{
    if (!srv_store_failed(f->s, err->code, err->msg)) {
        fl_set_error(f, err->msg);
        return;
    }
    /* already logged by the storage state: kept for /v1/status only */
    pthread_mutex_lock(&f->lock);
    snprintf(f->last_error, sizeof f->last_error, "%s", err->msg);
    pthread_mutex_unlock(&f->lock);
}
