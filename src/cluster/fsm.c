/* fsm.c - a voter applying committed entries (fsm.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cluster/fsm.h"
#include "core/core.h"

ai_code cluster_fsm_open(cluster_fsm *f, ai_broker *b, ai_err *err)
{
    ai_code rc;

    memset(f, 0, sizeof *f);
    f->b = b;
    if ((rc = store_entry_sync_relaxed(broker_store(b), err)) != AI_OK)
        return rc;
    return store_entry_applied(broker_store(b), &f->applied, err);
}

char *cluster_result_json(const cluster_result *r)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:I}", "code",
                          r->code == AI_OK ? "ok" : err_code_name(r->code),
                          "message", r->msg,
                          "version", (json_int_t)r->r.version, "granted",
                          r->r.granted, "remaining",
                          (json_int_t)r->r.remaining);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return s;
}

bool cluster_result_parse(const char *json, cluster_result *r)
{
    json_t *o = json_loads(json, 0, NULL);
    const char *code = NULL, *msg = NULL;
    json_int_t version = 0, remaining = 0;
    int granted = 0;
    bool ok;

    memset(r, 0, sizeof *r);
    ok = o != NULL &&
         json_unpack(o, "{s:s, s:s, s:I, s:b, s:I}", "code", &code,
                     "message", &msg, "version", &version, "granted",
                     &granted, "remaining", &remaining) == 0 &&
         (strcmp(code, "ok") == 0 || err_code_parse(code, &r->code)) &&
         version >= 0 &&
         version <= UINT32_MAX && remaining >= 0 && remaining <= UINT32_MAX;
    if (ok) {
        snprintf(r->msg, sizeof r->msg, "%s", msg);
        r->r.version = (uint32_t)version;
        r->r.granted = granted != 0;
        r->r.remaining = (uint32_t)remaining;
    } else {
        memset(r, 0, sizeof *r);
    }
    json_decref(o);
    return ok;
}

/* A failure of the store itself, not a refusal of the command. */
static bool fatal(ai_code rc)
{
    return rc == AI_ENOMEM || rc == AI_ESTORE || rc == AI_ESTORAGE_FULL ||
           rc == AI_EINTERNAL;
}

/* A request applied before: its first result. */
static ai_code seen_before(cluster_fsm *f, const cluster_entry *e,
                           bool *seen, ai_err *err)
{
    uint64_t at = 0;
    char *json = NULL;
    ai_code rc = store_entry_find(broker_store(f->b), e->req_id, &at, &json,
                                  err);

    *seen = false;
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc == AI_OK) {
        if (!cluster_result_parse(json, &f->last))
            rc = ai_err_set(err, AI_ESTORE, "the result of entry %llu is "
                                            "damaged",
                            (unsigned long long)at);
        f->last.repeated = true;
        *seen = rc == AI_OK;
    }
    ai_free(json);
    return rc;
}

ai_code cluster_fsm_apply(cluster_fsm *f, uint64_t index, const void *buf,
                          size_t len, ai_err *err)
{
    store *st = broker_store(f->b);
    cluster_entry e;
    cluster_result res;
    ai_err why;
    char *json = NULL;
    bool seen = false;
    ai_code rc;

    ai_err_clear(err);
    if (index <= f->applied) {
        memset(&f->last, 0, sizeof f->last);
        f->last.repeated = true;
        return AI_OK;
    }
    if ((rc = cluster_decode(st, buf, len, &e, err)) != AI_OK)
        return rc;
    if ((rc = store_entry_begin(st, err)) != AI_OK)
        goto done;
    if ((rc = seen_before(f, &e, &seen, err)) != AI_OK)
        goto abort;
    memset(&res, 0, sizeof res);
    if (seen) {
        res = f->last;
    } else {
        if (e.cmd.actor == NULL)
            e.cmd.actor = "cluster";
        res.code = broker_exec(f->b, &e.cmd, &res.r, &why);
        if (fatal(res.code)) {
            rc = ai_err_set(err, res.code, "entry %llu: %s",
                            (unsigned long long)index, why.msg);
            goto abort;
        }
        if (res.code != AI_OK)
            snprintf(res.msg, sizeof res.msg, "%s", why.msg);
    }
    if ((json = cluster_result_json(&res)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto abort;
    }
    if ((rc = store_entry_commit(st, index, e.req_id, json, err)) != AI_OK)
        goto done;
    f->applied = index;
    f->last = res;
    goto done;
abort:
    store_entry_abort(st);
done:
    free(json);
    cluster_entry_free(&e);
    return rc;
}
