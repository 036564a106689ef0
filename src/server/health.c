/* health.c - the routes every role serves: /healthz, /readyz, /metrics
 * and /v1/status. */
#include <string.h>

#include "core/core.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/storage.h"

static const srv_role *role_of(srv_req *rq);

static void healthz(srv_req *rq)
{
    srv_reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

static void readyz(srv_req *rq)
{
    const srv_role *r = role_of(rq);

    if (srv_draining(rq->s))
        srv_reply_error(rq, 503, "unavailable", "shutting down");
    else if (r != NULL && r->ready != NULL && !r->ready(rq->app))
        srv_reply_error(rq, 503, "unavailable", "not ready");
    else if (!storage_writable(srv_get_storage(rq->s)))
        srv_reply_error(rq, 503, "storage_full",
                        "the store cannot write (its disk is full): writes "
                        "are refused, reads and token checks go on");
    else
        srv_reply_json(rq, 200, json_pack("{s:b}", "ready", 1));
}

static void metrics(srv_req *rq)
{
    const srv_role *r = role_of(rq);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ai_err err;

    (void)srv_sync(rq, &err);
    if (!metrics_render(srv_get_metrics(rq->s), &buf, &len, &cap)) {
        ai_free(buf);
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if (r != NULL && r->metrics != NULL)
        r->metrics(rq->app, rq->th, &buf, &len, &cap);
    (void)storage_metrics(srv_get_storage(rq->s), &buf, &len, &cap);
    srv_reply_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8", buf,
                   len);
}

static void status(srv_req *rq)
{
    const srv_role *r = role_of(rq);
    json_t *o = json_pack("{s:s, s:s}", "version", ai_version(), "role",
                          r ? r->name : "server");
    ai_err err;

    if (o == NULL) {
        srv_reply_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if (srv_sync(rq, &err) != AI_OK) {
        json_decref(o);
        srv_reply_ai(rq, err.code, err.msg);
        return;
    }
    if (r != NULL && r->status != NULL)
        r->status(rq->app, rq->th, o);
    storage_status(srv_get_storage(rq->s), o);
    srv_reply_json(rq, 200, o);
}

const srv_route srv_common_routes[] = {
    {"GET", "/healthz", false, SRV_AUTH_NONE, healthz, "/healthz"},
    {"GET", "/readyz", false, SRV_AUTH_NONE, readyz, "/readyz"},
    {"GET", "/metrics", false, SRV_AUTH_METRICS, metrics, "/metrics"},
    {"GET", "/v1/status", false, SRV_AUTH_METRICS, status, "/v1/status"},
};
const size_t srv_common_nroutes =
    sizeof srv_common_routes / sizeof *srv_common_routes;

static const srv_role *role_of(srv_req *rq)
{
    return srv_role_of(rq->s);
}
