/* leader.c - the leader service: its route table, TLS material, the
 * followers it has seen, /v1/status and /metrics figures, and upkeep on
 * the watcher thread (revocation pruning, changelog retention). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "core/core.h"
#include "leader/leader.h"

#define TRIM_EVERY_MS (INT64_C(5) * 1000)

static srv_route routes[64];
static size_t nroutes;
static pthread_once_t routes_once = PTHREAD_ONCE_INIT;

#define ADD(r, n) \
    srv_routes_add(routes, &nroutes, sizeof routes / sizeof *routes, r, n)

static void build_routes(void)
{
    ADD(srv_agent_routes, srv_agent_nroutes);
    ADD(leader_admin_routes, leader_admin_nroutes);
    ADD(leader_group_routes, leader_group_nroutes);
    ADD(leader_follower_routes, leader_follower_nroutes);
    ADD(leader_repl_routes, leader_repl_nroutes);
    ADD(srv_common_routes, srv_common_nroutes);
}
#undef ADD

void leader_saw_follower(ai_leader *l, srv_req *rq, int64_t applied)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[64] = "";
    size_t i;

    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                      addr, sizeof addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6,
                      &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      addr, sizeof addr);
    }
    pthread_mutex_lock(&l->lock);
    for (i = 0; i < l->nfollowers; i++)
        if (strcmp(l->followers[i].id, rq->follower) == 0)
            break;
    if (i == l->nfollowers && l->nfollowers < LEADER_FOLLOWERS_MAX) {
        snprintf(l->followers[i].id, sizeof l->followers[i].id, "%s",
                 rq->follower);
        l->nfollowers++;
    }
    if (i < l->nfollowers) {
        follower_rec *f = &l->followers[i];
        snprintf(f->address, sizeof f->address, "%s", addr);
        if (applied >= 0)
            f->applied_seq = applied;
        f->last_seen = time_now_ms();
    }
    pthread_mutex_unlock(&l->lock);
}

/* The followers as JSON (for /v1/status and /v1/admin/followers). */
json_t *leader_followers_json(ai_leader *l, int64_t head)
{
    json_t *arr = json_array();

    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; arr != NULL && i < l->nfollowers; i++) {
        const follower_rec *f = &l->followers[i];
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:I, s:s}", "id", f->id,
                           "appliedSeq", (json_int_t)f->applied_seq, "lag",
                           (json_int_t)(head > f->applied_seq
                                            ? head - f->applied_seq
                                            : 0),
                           "lastSeenMs", (json_int_t)f->last_seen, "address",
                           f->address));
    }
    pthread_mutex_unlock(&l->lock);
    return arr;
}

static void status(void *app, srv_thread *th, json_t *out)
{
    ai_leader *l = app;
    const ai_keyring *kr = NULL;
    int64_t head = 0;
    ai_err err;
    key_info *keys = NULL;
    size_t nkeys = 0;
    json_int_t verifying = 0;

    if (store_keyring(th->st, &kr, &err) == AI_OK)
        json_object_set_new(out, "signingKeyVersion",
                            json_integer(ai_keyring_signing_version(kr)));
    if (store_list_keys(th->st, time_now_ms(), &keys, &nkeys, &err) == AI_OK) {
        for (size_t i = 0; i < nkeys; i++)
            verifying += keys[i].state != KEY_RETIRED;
        json_object_set_new(out, "verifyingKeys", json_integer(verifying));
    }
    free(keys);
    (void)store_changelog_head(th->st, &head, &err);
    json_object_set_new(out, "revocations",
                        json_integer((json_int_t)store_revocation_count(th->st)));
    json_object_set_new(out, "changelogSeq", json_integer(head));
    json_object_set_new(out, "uptimeSeconds",
                        json_integer((time_now_ms() - l->started) / 1000));
    json_object_set_new(out, "followers", leader_followers_json(l, head));
    if (l->cluster != NULL)
        json_object_set_new(out, "cluster", leader_group_json(l));
    if (l->s != NULL && srv_shared_follower_secret(l->s)) {
        json_object_set_new(out, "sharedFollowerSecret", json_true());
        json_object_set_new(out, "warning",
                            json_string("a follower secret shared by every "
                                        "follower is in use (--auth-token): "
                                        "it cannot be revoked for one "
                                        "follower; prefer `agent-iam "
                                        "followers add`"));
    }
}

static void metrics(void *app, srv_thread *th, char **buf, size_t *len,
                    size_t *cap)
{
    ai_leader *l = app;
    const ai_keyring *kr = NULL;
    int64_t head = 0, now = time_now_ms();
    ai_err err;

    (void)store_changelog_head(th->st, &head, &err);
    (void)store_keyring(th->st, &kr, &err);
    srv_appendf(buf, len, cap,
                "# HELP agent_iam_revocations Revocations in force.\n"
                "# TYPE agent_iam_revocations gauge\n"
                "agent_iam_revocations %zu\n"
                "# HELP agent_iam_signing_key_version The signing key.\n"
                "# TYPE agent_iam_signing_key_version gauge\n"
                "agent_iam_signing_key_version %u\n"
                "# HELP agent_iam_changelog_seq The last change.\n"
                "# TYPE agent_iam_changelog_seq gauge\n"
                "agent_iam_changelog_seq %lld\n",
                store_revocation_count(th->st),
                kr ? (unsigned)ai_keyring_signing_version(kr) : 0u,
                (long long)head);
    pthread_mutex_lock(&l->lock);
    srv_appendf(buf, len, cap,
                "# HELP agent_iam_followers Followers seen.\n"
                "# TYPE agent_iam_followers gauge\n"
                "agent_iam_followers %zu\n"
                "# HELP agent_iam_follower_lag Changes a follower has yet "
                "to apply.\n# TYPE agent_iam_follower_lag gauge\n",
                l->nfollowers);
    for (size_t i = 0; i < l->nfollowers; i++) {
        const follower_rec *f = &l->followers[i];
        srv_appendf(buf, len, cap, "agent_iam_follower_lag{follower=\"%s\"} %lld\n",
                    f->id,
                    (long long)(head > f->applied_seq ? head - f->applied_seq
                                                      : 0));
    }
    srv_appendf(buf, len, cap,
                "# HELP agent_iam_follower_last_seen_seconds Seconds since "
                "a follower's last call.\n"
                "# TYPE agent_iam_follower_last_seen_seconds gauge\n");
    for (size_t i = 0; i < l->nfollowers; i++)
        srv_appendf(buf, len, cap,
                    "agent_iam_follower_last_seen_seconds{follower=\"%s\"} "
                    "%.3f\n",
                    l->followers[i].id,
                    (double)(now - l->followers[i].last_seen) / 1000.0);
    pthread_mutex_unlock(&l->lock);
    leader_group_metrics(l, buf, len, cap);
}

static void tick(void *app, srv *s, store *st, int64_t now)
{
    ai_leader *l = app;
    int64_t removed = 0, head = 0;
    size_t pruned = 0;
    ai_err err;

    (void)s;
    if (store_changelog_head(st, &head, &err) == AI_OK)
        atomic_store(&l->head, head);
    leader_group_tick(l, st, now);
    /* Pruning logs nothing (every home prunes by the same times), so each
     * voter of a group prunes on its own too: its changelog stays the
     * group's. */
    if (now >= l->next_prune) {
        l->next_prune = now + STORE_PRUNE_EVERY_MS;
        if (store_prune(st, now, &pruned, &err) != AI_OK)
            fprintf(stderr, "agent-iam: prune: %s\n", err.msg);
    }
    if (now >= l->next_trim) {
        l->next_trim = now + TRIM_EVERY_MS;
        if (store_changelog_trim(st, l->retain, 0, now, &removed, &err) !=
            AI_OK)
            fprintf(stderr, "agent-iam: changelog trim: %s\n", err.msg);
    }
}

static bool ready(void *app)
{
    (void)app;
    return true;
}

/* A registered follower's credential (srv_role.follower_find). */
static ai_code follower_find(void *app, srv_req *rq, const char *secret,
                             size_t n, ai_err *err)
{
    follower_info fi;
    ai_code rc;

    (void)app;
    if ((rc = store_follower_find(rq->th->st, secret, n, &fi, rq->fol.key,
                                  err)) != AI_OK)
        return rc;
    snprintf(rq->follower, sizeof rq->follower, "%s", fi.id);
    snprintf(rq->fol.providers, sizeof rq->fol.providers, "%s",
             fi.providers);
    rq->fol.shared = false;
    return AI_OK;
}

static const srv_role leader_role = {"leader", status, metrics, ready, NULL,
                                     tick, leader_group_thread_init,
                                     follower_find, NULL};

void ai_leader_config_init(ai_leader_config *c)
{
    memset(c, 0, sizeof *c);
    c->port = 8443;
    c->access_log_fd = 2;
    c->agent_rate = SRV_AGENT_RATE;
    c->audit_retain_ms = STORE_AUDIT_RETAIN_DEFAULT_MS;
}

ai_code ai_leader_start(const ai_leader_config *c, ai_leader **out,
                        ai_err *err)
{
    ai_err local;
    srv_config sc;
    char home[4096];
    ai_leader *l;
    ai_code rc;

    if (err == NULL)
        err = &local;
    ai_err_clear(err);
    if (out == NULL || c == NULL)
        return ai_err_set(err, AI_EINVAL, "no config or output");
    *out = NULL;
    if ((rc = store_home_path(c->home, home, sizeof home, err)) != AI_OK)
        return rc;
    pthread_once(&routes_once, build_routes);
    if ((l = ai_calloc(1, sizeof *l)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    {
        store *st = NULL; /* create the home (0700) before tls/ goes in */
        bool replica = false;
        if ((rc = store_open(home, true, &st, err)) == AI_OK &&
            (rc = store_is_replica(st, &replica, err)) == AI_OK &&
            replica)
            rc = ai_err_set(err, AI_EINVAL,
                            "%s is a follower's replica: a leader needs a "
                            "home of its own",
                            home);
        if (rc == AI_OK && c->cluster_file != NULL)
            rc = store_group_id(st, l->leader_id, err);
        else if (rc == AI_OK)
            rc = store_leader_id(st, l->leader_id, err);
        store_close(st);
        if (rc != AI_OK) {
            ai_free(l);
            return rc;
        }
    }
    pthread_mutex_init(&l->lock, NULL);
    l->retain = c->changelog_retain > 0 ? c->changelog_retain
                                        : LEADER_DEFAULT_RETAIN;
    l->started = time_now_ms();
    if (!c->insecure_http &&
        (rc = srv_tls_load(home, c->tls_cert_file, c->tls_key_file, &l->tls,
                           err)) != AI_OK)
        goto fail;
    memset(&sc, 0, sizeof sc);
    /* srv keeps the pointer (workers open the home on first use): it must
     * outlive this call, unlike the stack buffer above. */
    memcpy(l->home, home, sizeof l->home);
    sc.home = l->home;
    sc.host = c->host;
    sc.port = c->port;
    sc.tls_cert_pem = l->tls.cert_pem;
    sc.tls_key_pem = l->tls.key_pem;
    sc.insecure_http = c->insecure_http;
    sc.follower_secret = c->auth_token;
    sc.admin_secret = c->admin_token; /* the only admin credential */
    sc.metrics_secret = c->metrics_token;
    sc.public_metrics = c->public_metrics;
    sc.threads = c->threads;
    sc.max_connections = c->max_conns;
    sc.max_conns_per_ip = c->max_conns_per_ip;
    sc.access_log_fd = c->access_log_fd;
    sc.agent_rate = c->agent_rate;
    sc.agent_burst = c->agent_burst;
    sc.audit_retain_ms = c->audit_retain_ms;
    sc.routes = routes;
    sc.nroutes = nroutes;
    sc.role = &leader_role;
    sc.app = l;
    if (c->cluster_file != NULL) {
        cluster_opts co = {.file = c->cluster_file, .node_id = c->node_id,
                           .home = l->home, .tls_cert = c->tls_cert_file,
                           .tls_key = c->tls_key_file,
                           .election_ms = c->election_ms,
                           .join = c->join,
                           .snapshot_every = c->snapshot_every};
        /* the group's first key comes from its log, not from this home */
        sc.replica = true;
        if (c->insecure_http || c->tls_cert_file == NULL) {
            rc = ai_err_set(err, AI_EINVAL,
                            "a voter of a leader group needs --tls-cert "
                            "and --tls-key signed by the cluster file's ca");
            goto fail;
        }
        if ((rc = cluster_start(&co, &l->cluster, err)) != AI_OK)
            goto fail;
    }
    if ((rc = srv_start(&sc, &l->s, err)) != AI_OK)
        goto fail;
    /* The key stays in memory only as long as GnuTLS needs it: MHD has
     * parsed it at start. */
    if (l->tls.key_pem != NULL) {
        explicit_bzero(l->tls.key_pem, strlen(l->tls.key_pem));
    }
    *out = l;
    return AI_OK;
fail:
    cluster_stop(l->cluster);
    srv_tls_clear(&l->tls);
    pthread_mutex_destroy(&l->lock);
    ai_free(l);
    return rc;
}

uint16_t ai_leader_port(const ai_leader *l)
{
    return srv_port(l->s);
}

const char *ai_leader_ca_path(const ai_leader *l)
{
    return l->tls.ca_path;
}

bool ai_leader_tls_generated(const ai_leader *l)
{
    return l->tls.generated;
}

void ai_leader_stop(ai_leader *l, int drain_ms)
{
    if (l == NULL)
        return;
    srv_stop(l->s, drain_ms);
    cluster_stop(l->cluster);
    srv_tls_clear(&l->tls);
    pthread_mutex_destroy(&l->lock);
    ai_free(l);
}
