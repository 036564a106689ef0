/* keyring.c - signing keys by version, with precomputed HMAC-SHA256 state.
 *
 * DESIGN: verification is the hot path of the broker, and HMAC over a
 * token of a few hundred bytes is most of its cost. HMAC(k, m) =
 * H(k^opad || H(k^ipad || m)); the two key blocks are hashed once per key
 * here, and each MAC resumes from copies of those states. OpenSSL's
 * one-shot HMAC() and EVP_MAC re-key or allocate per call (measured: see
 * bench/README.md), so this file uses OpenSSL's SHA-256 block API, which
 * 3.0 marks deprecated but still ships. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core.h"

_Static_assert(sizeof(SHA256_CTX) <= 128, "SHA256_CTX fits key_entry");

/* Generations come from one process-wide counter, so no two keyrings (one
 * freed, another allocated at the same address) ever share a generation:
 * a cache that remembers (keyring, generation) can never mistake a new
 * keyring for the one it verified under. */
static _Atomic uint64_t generations;

static uint64_t next_generation(void)
{
    return atomic_fetch_add(&generations, 1) + 1;
}

struct ai_keyring {
    key_entry *keys;
    size_t n, cap;
    uint32_t signing;
    uint64_t generation;
};

ai_keyring *ai_keyring_new(void)
{
    ai_keyring *kr = ai_calloc(1, sizeof(ai_keyring));

    if (kr != NULL)
        kr->generation = next_generation();
    return kr;
}

void ai_keyring_free(ai_keyring *kr)
{
    if (kr == NULL)
        return;
    if (kr->keys != NULL)
        explicit_bzero(kr->keys, kr->cap * sizeof *kr->keys);
    ai_free(kr->keys);
    ai_free(kr);
}

static key_entry *find(const ai_keyring *kr, uint32_t version)
{
    for (size_t i = 0; i < kr->n; i++)
        if (kr->keys[i].version == version)
            return &kr->keys[i];
    return NULL;
}

ai_code ai_keyring_add(ai_keyring *kr, uint32_t version,
                       const unsigned char key[AI_KEY_BYTES],
                       int64_t verify_until_ms, ai_err *err)
{
    unsigned char block[SHA256_CBLOCK];
    SHA256_CTX ctx;
    key_entry *e;

    ai_err_clear(err); /* callers need not zero it */

    if (kr == NULL || key == NULL)
        return ai_err_set(err, AI_EINVAL, "keyring and key are required");
    if (version < 1 || version > (UINT32_C(1) << 31))
        return ai_err_set(err, AI_EINVAL, "key version must be 1 to 2^31");
    e = find(kr, version);
    if (e == NULL) {
        if (kr->n == kr->cap) {
            size_t cap = kr->cap ? kr->cap * 2 : 4;
            key_entry *k = ai_calloc(cap, sizeof *k);
            if (k == NULL)
                return ai_err_set(err, AI_ENOMEM, "out of memory");
            if (kr->keys != NULL) {
                memcpy(k, kr->keys, kr->n * sizeof *k);
                explicit_bzero(kr->keys, kr->cap * sizeof *k);
                ai_free(kr->keys);
            }
            kr->keys = k;
            kr->cap = cap;
        }
        e = &kr->keys[kr->n++];
    }
    e->version = version;
    e->verify_until = verify_until_ms;

    memset(block, 0x36, sizeof block);
    for (size_t i = 0; i < AI_KEY_BYTES; i++)
        block[i] ^= key[i];
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, block, sizeof block);
    memcpy(e->ipad_state, &ctx, sizeof ctx);
    for (size_t i = 0; i < sizeof block; i++)
        block[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, block, sizeof block);
    memcpy(e->opad_state, &ctx, sizeof ctx);
    explicit_bzero(block, sizeof block);
    explicit_bzero(&ctx, sizeof ctx);

    if (kr->signing == 0)
        kr->signing = version;
    kr->generation = next_generation();
    return AI_OK;
}

ai_code ai_keyring_set_signing(ai_keyring *kr, uint32_t version, ai_err *err)
{
    ai_err_clear(err); /* callers need not zero it */
    if (kr == NULL || find(kr, version) == NULL)
        return ai_err_set(err, AI_ENOTFOUND, "no signing key version %u",
                          (unsigned)version);
    kr->signing = version;
    kr->generation = next_generation();
    return AI_OK;
}

uint32_t ai_keyring_signing_version(const ai_keyring *kr)
{
    return kr ? kr->signing : 0;
}

uint64_t ai_keyring_generation(const ai_keyring *kr)
{
    return kr ? kr->generation : 0;
}

const key_entry *keyring_find(const ai_keyring *kr, uint32_t version,
                              int64_t now_ms)
{
    const key_entry *e = find(kr, version);

    if (e == NULL || (e->verify_until != 0 && now_ms >= e->verify_until))
        return NULL;
    return e;
}

const key_entry *keyring_signing(const ai_keyring *kr, int64_t now_ms)
{
    /* A retired key signs nothing: its tokens would fail at once. */
    return kr && kr->signing ? keyring_find(kr, kr->signing, now_ms) : NULL;
}

void key_hmac2(const key_entry *k, const void *a, size_t an, const void *b,
               size_t bn, unsigned char mac[32])
{
    SHA256_CTX ctx;
    unsigned char inner[SHA256_DIGEST_LENGTH];

    memcpy(&ctx, k->ipad_state, sizeof ctx);
    SHA256_Update(&ctx, a, an);
    if (bn != 0)
        SHA256_Update(&ctx, b, bn);
    SHA256_Final(inner, &ctx);
    memcpy(&ctx, k->opad_state, sizeof ctx);
    SHA256_Update(&ctx, inner, sizeof inner);
    SHA256_Final(mac, &ctx);
    explicit_bzero(&ctx, sizeof ctx);
    explicit_bzero(inner, sizeof inner);
}

/* See core.h. */
int key_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}
