/* ratelimit.c - per-agent token buckets in a fixed table (see
 * ratelimit.h), and the check the agent API's writing handlers make. */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/core.h"
#include "server/metrics.h"
#include "server/ratelimit.h"

typedef struct bucket {
    uint64_t tag[2];  /* the key's hash; both 0: an empty slot */
    double tokens;
    int64_t last_ns;  /* when tokens was computed */
} bucket;

typedef struct rl_set {
    pthread_mutex_t lock;
    bucket b[RL_WAYS];
} rl_set;

struct ratelimit {
    double rate;   /* tokens per ns */
    double burst;
    unsigned char key[32];
    rl_set sets[RL_SETS];
};

ratelimit *ratelimit_new(double rate, unsigned burst)
{
    ratelimit *rl;

    if (!(rate > 0) || (rl = ai_calloc(1, sizeof *rl)) == NULL)
        return NULL;
    if (!rand_fill(rl->key, sizeof rl->key)) {
        ai_free(rl);
        return NULL;
    }
    rl->rate = rate / 1e9;
    /* 2 x rate, whole (the cast truncates), at least 1 */
    rl->burst = burst > 0 ? (double)burst
                : 2 * rate >= 1e9 ? 1e9
                : 2 * rate >= 1 ? (double)(unsigned)(2 * rate)
                                : 1.0;
    for (size_t i = 0; i < RL_SETS; i++)
        pthread_mutex_init(&rl->sets[i].lock, NULL);
    return rl;
}

void ratelimit_free(ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < RL_SETS; i++)
        pthread_mutex_destroy(&rl->sets[i].lock);
    OPENSSL_cleanse(rl->key, sizeof rl->key);
    ai_free(rl);
}

/* The bucket's tokens at now (refilled, at most burst). */
static double level(const ratelimit *rl, const bucket *b, int64_t now_ns)
{
    double t = b->tokens;

    if (now_ns > b->last_ns)
        t += (double)(now_ns - b->last_ns) * rl->rate;
    return t < rl->burst ? t : rl->burst;
}

bool ratelimit_take(ratelimit *rl, const char *key, size_t len,
                    int64_t now_ns, unsigned *retry_s)
{
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    uint64_t tag[2];
    bucket *b = NULL, *spare = NULL;
    double t, best = -1;
    bool empty = false;
    rl_set *set;
    bool ok;

    *retry_s = 0;
    if (HMAC(EVP_sha256(), rl->key, sizeof rl->key,
             (const unsigned char *)key, len, h, &hl) == NULL ||
        hl < 2 * sizeof tag)
        return true; /* only a broken OpenSSL: not a reason to refuse */
    memcpy(tag, h, sizeof tag);
    if (tag[0] == 0 && tag[1] == 0)
        tag[1] = 1; /* never the empty slot's tag */
    set = &rl->sets[h[sizeof tag] % RL_SETS];
    pthread_mutex_lock(&set->lock);
    for (size_t i = 0; i < RL_WAYS && b == NULL; i++) {
        bucket *c = &set->b[i];
        if (c->tag[0] == tag[0] && c->tag[1] == tag[1]) {
            b = c;
        } else if (c->tag[0] == 0 && c->tag[1] == 0) {
            if (!empty)
                spare = c;
            empty = true;
        } else if (!empty && (t = level(rl, c, now_ns)) > best) {
            spare = c; /* the fullest so far: idle when t == burst */
            best = t;
        }
    }
    if (b == NULL) {
        b = spare;
        b->tag[0] = tag[0];
        b->tag[1] = tag[1];
        b->tokens = rl->burst;
        b->last_ns = now_ns;
    }
    t = level(rl, b, now_ns);
    ok = t >= 1.0;
    b->tokens = ok ? t - 1.0 : t;
    b->last_ns = now_ns > b->last_ns ? now_ns : b->last_ns;
    pthread_mutex_unlock(&set->lock);
    if (!ok) {
        /* whole seconds, rounded up, until one token is back */
        double s = (1.0 - t) / rl->rate / 1e9;
        *retry_s = s >= 3600 ? 3600 : (unsigned)s + ((double)(unsigned)s < s);
        if (*retry_s < 1)
            *retry_s = 1;
    }
    OPENSSL_cleanse(h, sizeof h);
    return ok;
}

/* The root of the token's delegation chain (see ratelimit.h). */
static const char *root_agent(const ai_token *t)
{
    const char *a;

    if (ai_token_ancestor_agent_count(t) > 0 &&
        (a = ai_token_ancestor_agent(t, 0)) != NULL && *a != '\0')
        return a;
    if ((a = ai_token_parent_id(t)) != NULL && *a != '\0')
        return a;
    return ai_token_agent_id(t);
}

bool srv_agent_rate_ok(srv_req *rq)
{
    ratelimit *rl = srv_get_ratelimit(rq->s);
    const char *key;
    unsigned retry;

    if (rl == NULL || rq->token == NULL)
        return true;
    key = root_agent(rq->token);
    if (ratelimit_take(rl, key, strlen(key), time_mono_ns(), &retry))
        return true;
    metrics_rate_limited(srv_get_metrics(rq->s));
    rq->retry_after = retry;
    srv_reply_error(rq, 429, "rate_limited",
                    "too many writes for agent %.64s (delegations, "
                    "refreshes and credential requests): try again in "
                    "%u s",
                    key, retry);
    return false;
}
