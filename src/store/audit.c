/* audit.c - the audit log (being written). */
#include "store/db.h"

ai_code store_audit(store *st, const audit_entry *e, ai_err *err)
{
    (void)st, (void)e;
    return ai_err_set(err, AI_EINTERNAL, "audit log not built yet");
}

ai_code store_audit_verify(store *st, int64_t *bad_id, ai_err *err)
{
    (void)st, (void)bad_id;
    return ai_err_set(err, AI_EINTERNAL, "audit log not built yet");
}

ai_code store_audit_tail(store *st, size_t n, audit_fn fn, void *ud,
                         ai_err *err)
{
    (void)st, (void)n, (void)fn, (void)ud;
    return ai_err_set(err, AI_EINTERNAL, "audit log not built yet");
}
