/* codec.c - broker commands to and from Raft log entries (codec.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cluster/codec.h"
#include "core/core.h"

#define MAGIC "AIRC"
#define FORMAT 1
#define HEAD (4 + 4 + CLUSTER_REQ_ID_BYTES + 4)
#define NONE 0xffffffffu
#define STR_MAX (64u * 1024)
#define CONFIG_MAX (CLUSTER_ENTRY_MAX / 2)
#define OP_LAST BROKER_KEY_FIRST

/* What the seal is bound to: the format and the request id, so an entry's
 * sealed part moved under another id does not open. */
static void entry_aad(const unsigned char id[CLUSTER_REQ_ID_BYTES],
                      char aad[64])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = (size_t)snprintf(aad, 64, "agent-iam raft entry v%d ", FORMAT);

    for (size_t i = 0; i < CLUSTER_REQ_ID_BYTES; i++) {
        aad[o++] = hex[id[i] >> 4];
        aad[o++] = hex[id[i] & 15];
    }
    aad[o] = '\0';
}

/* ---- writing ------------------------------------------------------------ */

static void put_le(ai_buf *b, uint64_t v, size_t bytes)
{
    unsigned char t[8];

    for (size_t i = 0; i < bytes; i++)
        t[i] = (unsigned char)(v >> (8 * i));
    buf_put(b, t, bytes);
}

/* A string and its NUL (so that a decoded one is used in place); false
 * for one that cannot be read back as it was. */
static bool put_str(ai_buf *b, const char *s, size_t max)
{
    size_t n;

    if (s == NULL) {
        put_le(b, NONE, 4);
        return true;
    }
    if ((n = strnlen(s, max + 1)) > max)
        return false;
    put_le(b, n, 4);
    buf_put(b, s, n + 1);
    return true;
}

static ai_code write_cmd(ai_buf *b, const broker_cmd *c, ai_err *err)
{
    bool ok;

    if (c->nbudgets > CLUSTER_BUDGETS_MAX ||
        (c->nbudgets > 0 && c->budgets == NULL))
        return ai_err_set(err, AI_EINVAL, "a use counts against at most %d "
                                          "budgets",
                          CLUSTER_BUDGETS_MAX);
    put_le(b, (uint64_t)c->op, 2);
    put_le(b, (uint64_t)c->at_ms, 8);
    ok = put_str(b, c->actor, STR_MAX);
    put_le(b, (uint64_t)c->target, 1);
    ok = ok && put_str(b, c->id, STR_MAX) && put_str(b, c->reason, STR_MAX) &&
         put_str(b, c->name, STR_MAX);
    put_le(b, (uint64_t)c->grace_ms, 8);
    put_le(b, c->force ? 1 : 0, 1);
    buf_put(b, c->key, sizeof c->key);
    ok = ok && put_str(b, c->config_json, CONFIG_MAX) &&
         put_str(b, c->provider, STR_MAX) && put_str(b, c->secret, STR_MAX) &&
         put_str(b, c->base_url, STR_MAX);
    put_le(b, (uint64_t)(uint32_t)c->ttl_minutes, 4);
    ok = ok && put_str(b, c->providers, STR_MAX);
    buf_put(b, c->digest, sizeof c->digest);
    buf_put(b, c->transport, sizeof c->transport);
    put_le(b, c->nbudgets, 4);
    for (size_t i = 0; ok && i < c->nbudgets; i++) {
        ok = put_str(b, c->budgets[i].id, STR_MAX);
        put_le(b, c->budgets[i].max_uses, 4);
    }
    if (!ok)
        return ai_err_set(err, AI_EINVAL, "a command's text is too long");
    if (b->oom)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    return AI_OK;
}

ai_code cluster_encode(const store *st,
                       const unsigned char req_id[CLUSTER_REQ_ID_BYTES],
                       const broker_cmd *c, unsigned char **out, size_t *len,
                       ai_err *err)
{
    ai_buf plain;
    unsigned char *sealed = NULL, *e;
    size_t slen = 0, total;
    char aad[64];
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    *len = 0;
    buf_init(&plain);
    if ((rc = write_cmd(&plain, c, err)) != AI_OK)
        goto done;
    if (plain.len > CLUSTER_ENTRY_MAX - HEAD - 64) {
        rc = ai_err_set(err, AI_EINVAL, "a command is at most %u bytes",
                        CLUSTER_ENTRY_MAX - HEAD - 64);
        goto done;
    }
    entry_aad(req_id, aad);
    if ((rc = store_seal_own(st, aad, plain.p, plain.len, &sealed, &slen,
                             err)) != AI_OK)
        goto done;
    total = (HEAD + slen + 7) & ~(size_t)7;
    if ((e = ai_calloc(1, total)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(e, MAGIC, 4);
    e[4] = FORMAT;
    memcpy(e + 8, req_id, CLUSTER_REQ_ID_BYTES);
    for (size_t i = 0; i < 4; i++)
        e[8 + CLUSTER_REQ_ID_BYTES + i] = (unsigned char)(slen >> (8 * i));
    memcpy(e + HEAD, sealed, slen);
    *out = e;
    *len = total;
done:
    ai_free(sealed);
    buf_free(&plain);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct rd {
    const unsigned char *p;
    size_t n, off;
    bool bad;
} rd;

static uint64_t get_le(rd *r, size_t bytes)
{
    uint64_t v = 0;

    if (r->bad || r->n - r->off < bytes) {
        r->bad = true;
        return 0;
    }
    for (size_t i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += bytes;
    return v;
}

static void get_bytes(rd *r, unsigned char *out, size_t n)
{
    if (r->bad || r->n - r->off < n) {
        r->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p + r->off, n);
    r->off += n;
}

/* A string in place: its bytes, no NUL among them, then its NUL. */
static const char *get_str(rd *r, size_t max)
{
    uint64_t n = get_le(r, 4);
    const char *s;

    if (r->bad || n == NONE)
        return NULL;
    if (n > max || r->n - r->off < n + 1 || r->p[r->off + n] != '\0' ||
        memchr(r->p + r->off, '\0', (size_t)n) != NULL) {
        r->bad = true;
        return NULL;
    }
    s = (const char *)r->p + r->off;
    r->off += (size_t)n + 1;
    return s;
}

static bool read_cmd(rd *r, cluster_entry *e)
{
    broker_cmd *c = &e->cmd;
    uint64_t op = get_le(r, 2), nb;

    if (op < 1 || op > OP_LAST)
        return false;
    c->op = (broker_op)op;
    c->at_ms = (int64_t)get_le(r, 8);
    c->actor = get_str(r, STR_MAX);
    c->target = (revoke_target)get_le(r, 1);
    c->id = get_str(r, STR_MAX);
    c->reason = get_str(r, STR_MAX);
    c->name = get_str(r, STR_MAX);
    c->grace_ms = (int64_t)get_le(r, 8);
    c->force = get_le(r, 1) != 0;
    get_bytes(r, c->key, sizeof c->key);
    c->config_json = get_str(r, CONFIG_MAX);
    c->provider = get_str(r, STR_MAX);
    c->secret = get_str(r, STR_MAX);
    c->base_url = get_str(r, STR_MAX);
    c->ttl_minutes = (int)(int32_t)(uint32_t)get_le(r, 4);
    c->providers = get_str(r, STR_MAX);
    get_bytes(r, c->digest, sizeof c->digest);
    get_bytes(r, c->transport, sizeof c->transport);
    nb = get_le(r, 4);
    if (nb > CLUSTER_BUDGETS_MAX)
        return false;
    for (size_t i = 0; i < nb; i++) {
        e->budgets[i].id = get_str(r, STR_MAX);
        e->budgets[i].max_uses = (uint32_t)get_le(r, 4);
        if (e->budgets[i].id == NULL)
            r->bad = true;
    }
    c->budgets = nb > 0 ? e->budgets : NULL;
    c->nbudgets = (size_t)nb;
    return !r->bad && r->off == r->n;
}

ai_code cluster_decode(const store *st, const void *p, size_t n,
                       cluster_entry *e, ai_err *err)
{
    const unsigned char *b = p;
    size_t slen = 0;
    char aad[64];
    rd r;
    ai_code rc;

    ai_err_clear(err);
    memset(e, 0, sizeof *e);
    if (b == NULL || n < HEAD || n > CLUSTER_ENTRY_MAX || n % 8 != 0 ||
        memcmp(b, MAGIC, 4) != 0 || b[4] != FORMAT || b[5] || b[6] || b[7])
        return ai_err_set(err, AI_EINVAL, "not a log entry of this format");
    for (size_t i = 0; i < 4; i++)
        slen |= (size_t)b[8 + CLUSTER_REQ_ID_BYTES + i] << (8 * i);
    if (slen > n - HEAD || n - HEAD - slen >= 8)
        return ai_err_set(err, AI_EINVAL, "a log entry's length is wrong");
    for (size_t i = HEAD + slen; i < n; i++)
        if (b[i] != 0)
            return ai_err_set(err, AI_EINVAL, "a log entry's padding is not "
                                              "zero");
    memcpy(e->req_id, b + 8, CLUSTER_REQ_ID_BYTES);
    entry_aad(e->req_id, aad);
    if ((rc = store_unseal_own(st, aad, b + HEAD, slen, &e->plain,
                               &e->plain_len, err)) != AI_OK) {
        memset(e, 0, sizeof *e);
        return rc;
    }
    r = (rd){e->plain, e->plain_len, 0, false};
    if (!read_cmd(&r, e)) {
        cluster_entry_free(e);
        return ai_err_set(err, AI_EINVAL, "a log entry's command is "
                                          "malformed");
    }
    return AI_OK;
}

void cluster_entry_free(cluster_entry *e)
{
    if (e == NULL)
        return;
    if (e->plain != NULL) {
        OPENSSL_cleanse(e->plain, e->plain_len);
        ai_free(e->plain);
    }
    broker_cmd_wipe(&e->cmd);
    memset(e, 0, sizeof *e);
}
