/* seal.c - secrets at rest: AES-256-GCM under the home's master key, with
 * a fresh 96-bit nonce per blob and the blob's purpose as associated data,
 * so a blob copied to another row does not open there. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "store/db.h"

#define NONCE 12
#define TAG 16

ai_code seal_with(const unsigned char key[AI_KEY_BYTES], const char *aad,
                  const void *plain, size_t n, unsigned char **out,
                  size_t *outlen, ai_err *err)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *b;
    int len = 0, fin = 0;
    ai_code rc = AI_EINTERNAL;

    *out = NULL;
    if (n > (1u << 24))
        return ai_err_set(err, AI_EINVAL, "secret too large");
    if ((b = ai_malloc(NONCE + n + TAG)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if (RAND_bytes(b, NONCE) != 1 || (ctx = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, b) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad,
                          (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(ctx, b + NONCE, &len, plain, (int)n) != 1 ||
        EVP_EncryptFinal_ex(ctx, b + NONCE + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, b + NONCE + n) !=
            1) {
        rc = ai_err_set(err, AI_EINTERNAL, "encryption failed");
        ai_free(b);
        b = NULL;
    } else {
        *out = b;
        *outlen = NONCE + n + TAG;
        rc = AI_OK;
    }
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

ai_code unseal_with(const unsigned char key[AI_KEY_BYTES], const char *aad,
                    const unsigned char *blob, size_t bloblen,
                    unsigned char **plain, size_t *n, ai_err *err)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *p;
    unsigned char tag[TAG];
    size_t m;
    int len = 0, fin = 0, ok;

    *plain = NULL;
    if (blob == NULL || bloblen < NONCE + TAG)
        return ai_err_set(err, AI_ESTORE, "sealed %s is damaged", aad);
    m = bloblen - NONCE - TAG;
    if ((p = ai_malloc(m + 1)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    memcpy(tag, blob + NONCE + m, TAG);
    ok = (ctx = EVP_CIPHER_CTX_new()) != NULL &&
         EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, blob) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad,
                           (int)strlen(aad)) == 1 &&
         EVP_DecryptUpdate(ctx, p, &len, blob + NONCE, (int)m) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag) == 1 &&
         EVP_DecryptFinal_ex(ctx, p + len, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        explicit_bzero(p, m + 1);
        ai_free(p);
        /* Never garbage: the tag did not match, so nothing is returned. */
        return ai_err_set(err, AI_ESTORE,
                          "cannot decrypt %s: wrong master key or damaged "
                          "data",
                          aad);
    }
    p[m] = '\0';
    *plain = p;
    *n = m;
    return AI_OK;
}

ai_code seal(const store *st, const char *aad, const void *plain, size_t n,
             unsigned char **out, size_t *outlen, ai_err *err)
{
    return seal_with(st->master, aad, plain, n, out, outlen, err);
}

ai_code unseal(const store *st, const char *aad, const unsigned char *blob,
               size_t bloblen, unsigned char **plain, size_t *n, ai_err *err)
{
    return unseal_with(st->master, aad, blob, bloblen, plain, n, err);
}

ai_code store_seal_own(const store *st, const char *aad, const void *plain,
                       size_t n, unsigned char **out, size_t *outlen,
                       ai_err *err)
{
    return seal(st, aad, plain, n, out, outlen, err);
}

ai_code store_unseal_own(const store *st, const char *aad,
                         const unsigned char *blob, size_t bloblen,
                         unsigned char **plain, size_t *n, ai_err *err)
{
    return unseal(st, aad, blob, bloblen, plain, n, err);
}

/* ---- in transit: sealed text for followers ----------------------------- */

#define TRANSPORT_LABEL "agent-iam follower transport v1"

void store_transport_key(const char *secret, size_t n,
                         unsigned char key[AI_KEY_BYTES])
{
    unsigned int len = AI_KEY_BYTES;

    HMAC(EVP_sha256(), secret, (int)n, (const unsigned char *)TRANSPORT_LABEL,
         sizeof TRANSPORT_LABEL - 1, key, &len);
}

ai_code store_seal_text(const unsigned char key[AI_KEY_BYTES],
                        const char *aad, const void *plain, size_t n,
                        char **out, ai_err *err)
{
    unsigned char *blob = NULL;
    size_t blen = 0;
    ai_code rc;

    *out = NULL;
    if ((rc = seal_with(key, aad, plain, n, &blob, &blen, err)) != AI_OK)
        return rc;
    if ((*out = ai_malloc(b64url_encoded_len(blen) + 1)) == NULL)
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    else
        b64url_encode(blob, blen, *out);
    ai_free(blob); /* ciphertext: nothing to wipe */
    return rc;
}

ai_code store_unseal_text(const unsigned char key[AI_KEY_BYTES],
                          const char *aad, const char *text,
                          unsigned char **plain, size_t *n, ai_err *err)
{
    size_t tl = text ? strlen(text) : 0, blen = 0;
    unsigned char *blob;
    ai_code rc;

    *plain = NULL;
    if (tl == 0 || tl > (1u << 25))
        return ai_err_set(err, AI_ESTORE, "sealed %s is missing", aad);
    if ((blob = ai_malloc(tl / 4 * 3 + 2)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if (!b64url_decode(text, tl, blob, &blen)) {
        ai_free(blob);
        return ai_err_set(err, AI_ESTORE, "sealed %s is not base64url", aad);
    }
    rc = unseal_with(key, aad, blob, blen, plain, n, err);
    if (rc != AI_OK) {
        ai_err_clear(err);
        rc = ai_err_set(err, AI_ESTORE,
                        "cannot open the sealed %s: not sealed for this "
                        "follower's credential, or damaged", aad);
    }
    ai_free(blob);
    return rc;
}
