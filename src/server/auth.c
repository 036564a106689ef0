/* auth.c - who is calling: the bearer of the Authorization header checked
 * against what its route requires (an agent token, a follower's
 * credential, the admin or metrics secret). Secrets are kept as SHA-256
 * digests and compared in constant time. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/core.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "server/server.h"

void srv_hash_secret(const char *s, size_t n, unsigned char out[32])
{
    SHA256((const unsigned char *)s, n, out);
}

/* The bearer value of the Authorization header, or NULL. */
static const char *bearer(struct MHD_Connection *c, size_t *len)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    *len = strlen(h);
    while (*len > 0 && h[*len - 1] == ' ')
        (*len)--;
    return *len ? h : NULL;
}

static bool secret_is(const unsigned char want[32], const char *got,
                      size_t n)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    bool ok;

    srv_hash_secret(got, n, h); /* equal-length digests: constant time */
    ok = CRYPTO_memcmp(h, want, sizeof h) == 0;
    OPENSSL_cleanse(h, sizeof h);
    return ok;
}

static void verify_outcome(srv *s, ai_code rc)
{
    metrics_verify(s->metrics, rc);
}

/* A follower by its credential: the shared --auth-token (its id is what
 * X-Follower-Id says, it is granted no secrets) or one registered in the
 * home (X-Follower-Id, when sent, must be its id). False after replying. */
static bool authenticate_follower(srv *s, srv_req *rq, const char *b,
                                  size_t n)
{
    const char *id = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                 "X-Follower-Id");
    const srv_role *role = s->cfg.role;
    ai_err err;
    ai_code rc;

    memset(&rq->fol, 0, sizeof rq->fol);
    rq->follower[0] = '\0';
    if (b == NULL) {
        srv_reply_error(rq, 401, "unauthorized",
                        "a follower credential is required");
        return false;
    }
    if (id != NULL && !word_valid(id, 64)) {
        srv_reply_error(rq, 400, "bad_request",
                        "X-Follower-Id must be 1 to 64 of A-Z a-z 0-9 . _ -");
        return false;
    }
    if (s->has_follower && secret_is(s->follower_hash, b, n)) {
        bool taken = false;
        if (id == NULL) {
            srv_reply_error(rq, 400, "bad_request",
                            "X-Follower-Id is required with the shared "
                            "--auth-token");
            return false;
        }
        /* A registered follower's id is its credential's alone: the
         * shared secret may not speak (and be counted) for it. */
        if ((rc = srv_sync(rq, &err)) != AI_OK ||
            (rc = store_follower_registered(rq->th->st, id, &taken,
                                            &err)) != AI_OK) {
            srv_reply_ai(rq, rc, err.msg);
            return false;
        }
        if (taken) {
            srv_reply_error(rq, 403, "forbidden",
                            "X-Follower-Id names a registered follower: "
                            "use its own credential");
            return false;
        }
        snprintf(rq->follower, sizeof rq->follower, "%s", id);
        rq->fol.shared = true;
        memcpy(rq->fol.key, s->follower_key, sizeof rq->fol.key);
        return true;
    }
    if (role == NULL || role->follower_find == NULL ||
        (rc = srv_sync(rq, &err)) != AI_OK ||
        (rc = role->follower_find(s->cfg.app, rq, b, n, &err)) ==
            AI_ENOTFOUND) {
        srv_reply_error(rq, 401, "unauthorized",
                        "a valid follower credential is required (agent-iam "
                        "followers add)");
        return false;
    }
    if (rc != AI_OK) {
        srv_reply_ai(rq, rc, err.msg);
        return false;
    }
    if (id != NULL && strcmp(id, rq->follower) != 0) {
        srv_reply_error(rq, 403, "forbidden",
                        "X-Follower-Id does not name this credential's "
                        "follower");
        return false;
    }
    return true;
}

/* Authenticate; false after replying. */
bool srv_authenticate(srv *s, srv_req *rq)
{
    const char *b;
    size_t n = 0;
    ai_err err;
    ai_code rc;

    if (rq->route->auth == SRV_AUTH_NONE)
        return true;
    b = bearer(rq->conn, &n);
    if (rq->route->auth == SRV_AUTH_AGENT) {
        const char *why;
        if (b == NULL) {
            srv_reply_error(rq, 401, "unauthorized",
                            "an agent token is required "
                            "(Authorization: Bearer <token>)");
            return false;
        }
        if (s->cfg.role && s->cfg.role->refuse_agents &&
            (why = s->cfg.role->refuse_agents(s->cfg.app)) != NULL) {
            srv_reply_error(rq, 503, "unavailable", "%s", why);
            return false;
        }
        if ((rc = srv_sync(rq, &err)) == AI_OK)
            rc = broker_verify_quiet(rq->th->broker, b, n, rq->now, &rq->token,
                                     &err);
        verify_outcome(s, rc);
        if (rc != AI_OK) {
            if (rc == AI_EINVAL)
                rc = AI_ETOKEN;
            srv_reply_ai(rq, rc, err.msg);
            return false;
        }
        rq->bearer = b;
        rq->bearer_len = n;
        snprintf(rq->subject, sizeof rq->subject, "agent=%.64s token=%.64s",
                 ai_token_agent_id(rq->token),
                 ai_token_id(rq->token) ? ai_token_id(rq->token) : "-");
        for (char *c = rq->subject; *c; c++) /* one log line, always */
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        return true;
    }
    if (rq->route->auth == SRV_AUTH_FOLLOWER)
        return authenticate_follower(s, rq, b, n);
    if (rq->route->auth == SRV_AUTH_METRICS) {
        if (s->cfg.public_metrics ||
            (b != NULL && ((s->has_admin && secret_is(s->admin_hash, b, n)) ||
                           (s->has_metrics &&
                            secret_is(s->metrics_hash, b, n)))))
            return true;
        srv_reply_error(rq, 401, "unauthorized",
                        "the admin or metrics token is required (or start "
                        "the server with --public-metrics)");
        return false;
    }
    /* admin */
    if (!s->has_admin) {
        srv_reply_error(rq, 404, "not_found",
                        "the admin API is off: start the server with "
                        "--admin-token(-file), or administer its home "
                        "locally");
        return false;
    }
    if (b != NULL && secret_is(s->admin_hash, b, n)) {
        snprintf(rq->subject, sizeof rq->subject, "admin");
        return true;
    }
    srv_reply_error(rq, 401, "unauthorized", "a valid admin token is required");
    return false;
}
