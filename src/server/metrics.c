/* metrics.c - counters kept with relaxed atomics (a request adds to three
 * of them) and rendered in the Prometheus text format on scrape. Requests
 * are counted by route and method: a series is a route's name, the method
 * and the status, and routes sharing a name (PUT and DELETE of
 * /v1/admin/providers/{name}) add up into one series each method. */
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "server/metrics.h"

static const int statuses[] = {200, 400, 401, 403, 404, 405, 409, 410,
                               413, 429, 499, 500, 502, 503};
#define NSTATUS (sizeof statuses / sizeof *statuses + 1) /* + other */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKET (sizeof buckets / sizeof *buckets)
/* The method label: these, else "other" (a label value never comes
 * unchecked from the client). */
static const char *const methods[] = {"GET",    "HEAD",  "POST",   "PUT",
                                      "DELETE", "PATCH", "OPTIONS"};
#define NMETHOD (sizeof methods / sizeof *methods + 1) /* + other */

typedef struct route_counters {
    atomic_ullong by_status[NSTATUS];
    atomic_ullong hist[NBUCKET];
    atomic_ullong count;
    atomic_ullong micros; /* sum of durations */
} route_counters;

/* One series' counters, added up for rendering. */
typedef struct series {
    unsigned long long by_status[NSTATUS], hist[NBUCKET], count, micros;
} series;

#define VERIFY_KINDS 14 /* ai_code values */
#define PROVIDERS_MAX 64

typedef struct provider_counter {
    char name[65];
    unsigned long long ok, failed;
} provider_counter;

struct srv_metrics {
    const srv_route *routes;
    size_t nroutes;
    route_counters *rc; /* (nroutes + 1) x NMETHOD */
    atomic_ullong verify[VERIFY_KINDS];
    atomic_ullong rate_limited;
    pthread_mutex_t plock;
    provider_counter prov[PROVIDERS_MAX];
    size_t nprov;
};

srv_metrics *metrics_new(const srv_route *routes, size_t nroutes)
{
    srv_metrics *m = ai_calloc(1, sizeof *m);

    if (m == NULL)
        return NULL;
    if ((m->rc = ai_calloc((nroutes + 1) * NMETHOD, sizeof *m->rc)) ==
        NULL) {
        ai_free(m);
        return NULL;
    }
    m->routes = routes;
    m->nroutes = nroutes;
    pthread_mutex_init(&m->plock, NULL);
    return m;
}

void metrics_free(srv_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->plock);
    ai_free(m->rc);
    ai_free(m);
}

static size_t method_index(const char *method)
{
    for (size_t i = 0; method != NULL && i < NMETHOD - 1; i++)
        if (strcmp(method, methods[i]) == 0)
            return i;
    return NMETHOD - 1;
}

void metrics_request(srv_metrics *m, unsigned route_idx, const char *method,
                     int status, double seconds)
{
    route_counters *c;
    size_t si = NSTATUS - 1;

    if (m == NULL)
        return;
    c = &m->rc[(route_idx <= m->nroutes ? route_idx : m->nroutes) * NMETHOD +
               method_index(method)];
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (statuses[i] == status) {
            si = i;
            break;
        }
    atomic_fetch_add_explicit(&c->by_status[si], 1, memory_order_relaxed);
    for (size_t i = 0; i < NBUCKET; i++)
        if (seconds <= buckets[i]) {
            atomic_fetch_add_explicit(&c->hist[i], 1, memory_order_relaxed);
            break;
        }
    atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->micros,
                              (unsigned long long)(seconds * 1e6 + 0.5),
                              memory_order_relaxed);
}

void metrics_verify(srv_metrics *m, ai_code outcome)
{
    if (m != NULL && (unsigned)outcome < VERIFY_KINDS)
        atomic_fetch_add_explicit(&m->verify[outcome], 1,
                                  memory_order_relaxed);
}

void metrics_rate_limited(srv_metrics *m)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->rate_limited, 1, memory_order_relaxed);
}

void metrics_credential(srv_metrics *m, const char *provider, bool ok)
{
    size_t i;

    if (m == NULL || provider == NULL)
        return;
    for (const char *c = provider; *c; c++) /* a label value: keep it plain */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_')) {
            provider = "other";
            break;
        }
    pthread_mutex_lock(&m->plock);
    for (i = 0; i < m->nprov; i++)
        if (strcmp(m->prov[i].name, provider) == 0)
            break;
    if (i == m->nprov && m->nprov < PROVIDERS_MAX &&
        strlen(provider) < sizeof m->prov[0].name) {
        snprintf(m->prov[i].name, sizeof m->prov[i].name, "%s", provider);
        m->nprov++;
    }
    if (i < m->nprov) {
        if (ok)
            m->prov[i].ok++;
        else
            m->prov[i].failed++;
    }
    pthread_mutex_unlock(&m->plock);
}

static const char *verify_reason(ai_code c)
{
    switch (c) {
    case AI_OK: return "ok";
    case AI_ETOKEN: return "invalid";
    case AI_EEXPIRED: return "expired";
    case AI_EREVOKED: return "revoked";
    case AI_EINVAL: return "malformed";
    default: return "error";
    }
}

static const char *route_name(const srv_metrics *m, size_t r)
{
    return r < m->nroutes ? m->routes[r].name : "unmatched";
}

/* Whether route r is the first of its name (the one its series go under). */
static bool first_of_name(const srv_metrics *m, size_t r)
{
    for (size_t i = 0; i < r; i++)
        if (strcmp(route_name(m, i), route_name(m, r)) == 0)
            return false;
    return true;
}

/* The counters of every route named as r is, for one method, added up. */
static void sum_series(const srv_metrics *m, size_t r, size_t mi,
                       series *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = r; i <= m->nroutes; i++) {
        const route_counters *c = &m->rc[i * NMETHOD + mi];
        if (strcmp(route_name(m, i), route_name(m, r)) != 0)
            continue;
        for (size_t k = 0; k < NSTATUS; k++)
            out->by_status[k] += atomic_load(&c->by_status[k]);
        for (size_t k = 0; k < NBUCKET; k++)
            out->hist[k] += atomic_load(&c->hist[k]);
        out->count += atomic_load(&c->count);
        out->micros += atomic_load(&c->micros);
    }
}

static const char *method_name(size_t mi)
{
    return mi < NMETHOD - 1 ? methods[mi] : "other";
}

bool metrics_render(srv_metrics *m, char **buf, size_t *len, size_t *cap)
{
    series t;
    bool ok = srv_appendf(
        buf, len, cap,
        "# HELP agent_iam_http_requests_total HTTP requests by route, "
        "method and status.\n# TYPE agent_iam_http_requests_total counter\n");

    for (size_t r = 0; ok && r <= m->nroutes; r++) {
        if (!first_of_name(m, r))
            continue;
        for (size_t mi = 0; ok && mi < NMETHOD; mi++) {
            sum_series(m, r, mi, &t);
            for (size_t i = 0; ok && i < NSTATUS; i++) {
                char st[16];
                unsigned long long v = t.by_status[i];
                if (v == 0)
                    continue;
                if (i < NSTATUS - 1)
                    snprintf(st, sizeof st, "%d", statuses[i]);
                else
                    snprintf(st, sizeof st, "other");
                ok = srv_appendf(buf, len, cap,
                                 "agent_iam_http_requests_total{route=\"%s\","
                                 "method=\"%s\",status=\"%s\"} %llu\n",
                                 route_name(m, r), method_name(mi), st, v);
            }
        }
    }
    ok = ok && srv_appendf(buf, len, cap,
                           "# HELP agent_iam_http_request_duration_seconds "
                           "Request latency by route and method.\n# TYPE "
                           "agent_iam_http_request_duration_seconds "
                           "histogram\n");
    for (size_t r = 0; ok && r <= m->nroutes; r++) {
        const char *name = route_name(m, r);
        if (!first_of_name(m, r))
            continue;
        for (size_t mi = 0; ok && mi < NMETHOD; mi++) {
            const char *meth = method_name(mi);
            unsigned long long cum = 0;
            sum_series(m, r, mi, &t);
            if (t.count == 0)
                continue;
            for (size_t i = 0; ok && i < NBUCKET; i++) {
                cum += t.hist[i];
                ok = srv_appendf(buf, len, cap,
                                 "agent_iam_http_request_duration_seconds_"
                                 "bucket{route=\"%s\",method=\"%s\","
                                 "le=\"%g\"} %llu\n",
                                 name, meth, buckets[i], cum);
            }
            ok = ok &&
                 srv_appendf(buf, len, cap,
                             "agent_iam_http_request_duration_seconds_bucket{"
                             "route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n"
                             "agent_iam_http_request_duration_seconds_sum{"
                             "route=\"%s\",method=\"%s\"} %.6f\n"
                             "agent_iam_http_request_duration_seconds_count{"
                             "route=\"%s\",method=\"%s\"} %llu\n",
                             name, meth, t.count, name, meth,
                             (double)t.micros / 1e6, name, meth, t.count);
        }
    }
    ok = ok && srv_appendf(buf, len, cap,
                           "# HELP agent_iam_token_verifications_total Agent "
                           "token verifications by outcome.\n# TYPE "
                           "agent_iam_token_verifications_total counter\n");
    {
        static const ai_code shown[] = {AI_OK, AI_ETOKEN, AI_EEXPIRED,
                                        AI_EREVOKED};
        unsigned long long other = 0;
        for (size_t i = 0; i < VERIFY_KINDS; i++) {
            bool listed = false;
            for (size_t j = 0; j < sizeof shown / sizeof *shown; j++)
                listed |= shown[j] == (ai_code)i;
            if (!listed)
                other += atomic_load(&m->verify[i]);
        }
        for (size_t j = 0; ok && j < sizeof shown / sizeof *shown; j++)
            ok = srv_appendf(buf, len, cap,
                             "agent_iam_token_verifications_total{result=\"%s\"}"
                             " %llu\n",
                             verify_reason(shown[j]),
                             atomic_load(&m->verify[shown[j]]));
        ok = ok && srv_appendf(buf, len, cap,
                               "agent_iam_token_verifications_total{result="
                               "\"error\"} %llu\n",
                               other);
    }
    ok = ok && srv_appendf(buf, len, cap,
                           "# HELP agent_iam_rate_limited_total Agent writes "
                           "(delegate, refresh, credentials) refused with "
                           "429 over the per-agent rate.\n# TYPE "
                           "agent_iam_rate_limited_total counter\n"
                           "agent_iam_rate_limited_total %llu\n",
                           atomic_load(&m->rate_limited));
    ok = ok && srv_appendf(buf, len, cap,
                           "# HELP agent_iam_credentials_total Credentials "
                           "issued or failed by provider.\n# TYPE "
                           "agent_iam_credentials_total counter\n");
    pthread_mutex_lock(&m->plock);
    for (size_t i = 0; ok && i < m->nprov; i++)
        ok = srv_appendf(buf, len, cap,
                         "agent_iam_credentials_total{provider=\"%s\","
                         "result=\"issued\"} %llu\n"
                         "agent_iam_credentials_total{provider=\"%s\","
                         "result=\"failed\"} %llu\n",
                         m->prov[i].name, m->prov[i].ok, m->prov[i].name,
                         m->prov[i].failed);
    pthread_mutex_unlock(&m->plock);
    return ok;
}
