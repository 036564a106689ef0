/* verify.c - from untrusted bytes to a verified token, in the order of
 * DESIGN §2: shape, key version, HMAC (constant time), and only then the
 * strict parse, key agreement, expiry and revocation. A forged token costs
 * a base64 decode and one HMAC, and no allocation. */
#include <string.h>

#include <openssl/crypto.h>

#include "core.h"

#define SIG_PREFIX ",\"signature\":\""
#define SIG_PREFIX_LEN 14
#define SIG_CHARS 43
#define SUFFIX_LEN (SIG_PREFIX_LEN + SIG_CHARS + 2)
#define KV_PREFIX ",\"keyVersion\":"
#define KV_PREFIX_LEN 14

typedef struct shape {
    size_t body_len;  /* bytes of J' before ,"signature" */
    const char *sig;  /* the 43 signature characters inside J' */
    uint32_t version; /* from a trailing "keyVersion" member, else 1 */
} shape;

static ai_code bad(ai_err *err, const char *why)
{
    return ai_err_set2(err, AI_ETOKEN, "invalid token: ", why);
}

/* Decode the wire form into out (at least AI_TOKEN_JSON_MAX + 3 bytes)
 * and check the signature member's shape. */
static ai_code decode(const char *wire, size_t len, unsigned char *out,
                      size_t *dlen, shape *sh, ai_err *err)
{
    const char *j;
    size_t body, i, nd;
    uint64_t ver = 0;

    if (wire == NULL || len == 0)
        return bad(err, "empty");
    if (len > AI_TOKEN_WIRE_MAX)
        return bad(err, "longer than 22000 characters");
    if (!b64url_decode(wire, len, out, dlen))
        return bad(err, "not unpadded base64url");
    if (*dlen > AI_TOKEN_JSON_MAX)
        return bad(err, "JSON larger than 16 KiB");
    if (*dlen < SUFFIX_LEN + 2)
        return bad(err, "too short");
    j = (const char *)out;
    body = *dlen - SUFFIX_LEN;
    if (j[0] != '{' || memcmp(j + body, SIG_PREFIX, SIG_PREFIX_LEN) != 0 ||
        j[*dlen - 2] != '"' || j[*dlen - 1] != '}')
        return bad(err, "no signature as the last member");
    if (!b64url_valid(j + body + SIG_PREFIX_LEN, SIG_CHARS))
        return bad(err, "signature is not 43 base64url characters");
    sh->body_len = body;
    sh->sig = j + body + SIG_PREFIX_LEN;
    sh->version = 1;
    /* "keyVersion":N just before the signature names the key. */
    for (nd = 0; nd < body && nd < 11 && j[body - 1 - nd] >= '0' &&
                 j[body - 1 - nd] <= '9';
         nd++)
        ;
    if (nd > 0 && nd <= 10 && body >= nd + KV_PREFIX_LEN &&
        memcmp(j + body - nd - KV_PREFIX_LEN, KV_PREFIX, KV_PREFIX_LEN) == 0) {
        const char *d = j + body - nd;
        if (d[0] == '0')
            return bad(err, "bad keyVersion");
        for (i = 0; i < nd; i++)
            ver = ver * 10 + (uint64_t)(d[i] - '0');
        if (ver < 1 || ver > (UINT64_C(1) << 31))
            return bad(err, "bad keyVersion");
        sh->version = (uint32_t)ver;
    }
    return AI_OK;
}

/* Parse J' (copied into a new token) and keep the wire form with it. */
static ai_code build(const char *wire, size_t len, const unsigned char *json,
                     size_t dlen, ai_token **out, ai_err *err)
{
    ai_token *t = token_alloc(len + dlen + dlen / 2 + 1024);
    char *scratch;
    const char *why = NULL;

    if (t == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    t->wire = tk_strdup(t, wire, len);
    scratch = tk_strdup(t, (const char *)json, dlen);
    if (t->wire == NULL || scratch == NULL) {
        ai_token_free(t);
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    }
    t->wire_len = len;
    /* t->json stays NULL: ai_token_json decodes the wire form on demand,
     * which keeps a copy off the verification path. */
    if (!token_parse(t, scratch, dlen, &why)) {
        ai_token_free(t);
        if (strcmp(why, "out of memory") == 0)
            return ai_err_set(err, AI_ENOMEM, "out of memory");
        return bad(err, why);
    }
    *out = t;
    return AI_OK;
}

ai_code token_check_live(const ai_verifier *v, const ai_token *t,
                         int64_t now_ms, ai_err *err)
{
    char when[AI_TIME_BUF];

    if (t->expires_at == 0)
        return bad(err, "no expiresAt");
    if (now_ms >= t->expires_at) {
        ai_time_format(t->expires_at, when);
        return ai_err_set(err, AI_EEXPIRED, "token expired at %s", when);
    }
    if (v->revoked == NULL)
        return AI_OK;
    if (t->token_id != NULL &&
        v->revoked(v->revoked_ud, AI_REVOKED_TOKEN, t->token_id))
        return ai_err_set(err, AI_EREVOKED, "token %s is revoked",
                          t->token_id);
    for (size_t i = 0; i < t->nanc; i++)
        if (v->revoked(v->revoked_ud, AI_REVOKED_ANCESTOR, t->ancestors[i]))
            return ai_err_set(err, AI_EREVOKED,
                              "ancestor token %s is revoked", t->ancestors[i]);
    if (v->revoked(v->revoked_ud, AI_REVOKED_AGENT, t->agent_id))
        return ai_err_set(err, AI_EREVOKED, "agent \"%s\" is revoked",
                          t->agent_id);
    for (size_t i = 0; i < t->nanc_agents; i++)
        if (v->revoked(v->revoked_ud, AI_REVOKED_ANCESTOR_AGENT,
                       t->ancestor_agents[i]))
            return ai_err_set(err, AI_EREVOKED,
                              "ancestor agent \"%s\" is revoked",
                              t->ancestor_agents[i]);
    /* parentId names an ancestor's agent too: the only one a Node.js
     * token names, and in a token minted here the last ancestorAgents
     * entry (asked once). */
    if (t->parent_id != NULL &&
        (t->nanc_agents == 0 ||
         strcmp(t->parent_id, t->ancestor_agents[t->nanc_agents - 1]) != 0) &&
        v->revoked(v->revoked_ud, AI_REVOKED_ANCESTOR_AGENT, t->parent_id))
        return ai_err_set(err, AI_EREVOKED,
                          "ancestor agent \"%s\" is revoked", t->parent_id);
    return AI_OK;
}

ai_code ai_token_verify(const ai_verifier *v, const char *wire, size_t len,
                        int64_t now_ms, ai_token **out, ai_err *err)
{
    unsigned char json[AI_TOKEN_WIRE_MAX / 4 * 3 + 4];
    unsigned char mac[32];
    char expect[SIG_CHARS + 1];
    const key_entry *k;
    size_t dlen = 0;
    shape sh;
    ai_token *t = NULL;
    ai_code rc;
    int diff;

    ai_err_clear(err); /* callers need not zero it */

    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *out = NULL;
    if (v == NULL || v->keys == NULL)
        return ai_err_set(err, AI_EINVAL, "verifier has no keys");
    /* json holds the decoding of the longest wire form accepted. */
    if ((rc = decode(wire, len, json, &dlen, &sh, err)) != AI_OK)
        goto done;
    k = keyring_find(v->keys, sh.version, now_ms);
    if (k == NULL) {
        rc = bad(err, "unknown or retired signing key");
        goto done;
    }
    key_hmac2(k, json, sh.body_len, "}", 1, mac);
    b64url_encode(mac, sizeof mac, expect);
    diff = CRYPTO_memcmp(expect, sh.sig, SIG_CHARS);
    /* The expected MAC of forged bytes is a valid signature for them. */
    explicit_bzero(mac, sizeof mac);
    explicit_bzero(expect, sizeof expect);
    if (diff != 0) {
        /* Wiped too: a genuine token shown to the wrong verifier. */
        rc = bad(err, "signature mismatch");
        goto done;
    }
    if ((rc = build(wire, len, json, dlen, &t, err)) != AI_OK)
        goto done;
    if (t->key_version != sh.version) {
        rc = bad(err, "keyVersion does not match the signing key");
        goto done;
    }
    if ((rc = token_check_live(v, t, now_ms, err)) != AI_OK)
        goto done;
    t->verified = true;
    *out = t;
    t = NULL;
done:
    ai_token_free(t);
    explicit_bzero(json, dlen);
    return rc;
}

ai_code ai_token_deserialize(const char *wire, size_t len, ai_token **out,
                             ai_err *err)
{
    unsigned char json[AI_TOKEN_WIRE_MAX / 4 * 3 + 4];
    size_t dlen = 0;
    shape sh;
    ai_code rc;

    ai_err_clear(err); /* callers need not zero it */

    if (out == NULL)
        return ai_err_set(err, AI_EINVAL, "no output token");
    *out = NULL;
    rc = decode(wire, len, json, &dlen, &sh, err);
    if (rc == AI_OK)
        rc = build(wire, len, json, dlen, out, err);
    explicit_bzero(json, dlen);
    return rc;
}
