/* metrics.h - the server's Prometheus counters: requests by route and
 * status, a latency histogram per route, verification outcomes by reason,
 * credentials by provider and result. Lock-free on the request path. */
#ifndef AI_SERVER_METRICS_H
#define AI_SERVER_METRICS_H

#include "server/server.h"

srv_metrics *metrics_new(const srv_route *routes, size_t nroutes);
void metrics_free(srv_metrics *m);

/* route_idx == nroutes: a request that matched no route; a 405 comes with
 * the index of a route of its path. method: the request's (one of the
 * usual methods, else counted as "other"). */
void metrics_request(srv_metrics *m, unsigned route_idx, const char *method,
                     int status, double seconds);
void metrics_verify(srv_metrics *m, ai_code outcome);
/* An agent write refused with 429 (agent_iam_rate_limited_total). */
void metrics_rate_limited(srv_metrics *m);

/* Append the text exposition of every counter to *buf. */
bool metrics_render(srv_metrics *m, char **buf, size_t *len, size_t *cap);

#endif
