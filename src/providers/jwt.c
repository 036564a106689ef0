/* jwt.c - the RS256 JWT a GitHub App signs with its private key to ask
 * for installation tokens (GitHub "Authenticating as a GitHub App").
 *
 * The key is parsed from the PEM text for each call and freed (OpenSSL
 * cleanses the RSA key on free); no state is kept, so it is thread-safe. */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/core.h"
#include "providers/providers.h"

/* GitHub refuses an exp more than 10 minutes after iat; iat is set 60 s
 * in the past against clock drift, so exp = now + 540 keeps exp - iat at
 * exactly 10 minutes. */
#define JWT_BACKDATE_S 60
#define JWT_LIFETIME_S 540
#define APP_ID_MAX 64
#define PEM_MAX 16384

static const char jwt_header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";

/* 1: all digits, 2: an identifier of [A-Za-z0-9._-], 0: refused. */
static int app_id_kind(const char *s)
{
    size_t n = s ? strnlen(s, APP_ID_MAX + 1) : 0;
    bool digits = true;

    if (n == 0 || n > APP_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool d = c >= '0' && c <= '9';
        if (!d && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') &&
            c != '.' && c != '_' && c != '-')
            return 0;
        digits = digits && d;
    }
    return digits ? 1 : 2;
}

static EVP_PKEY *load_key(const char *pem, size_t pem_len)
{
    BIO *bio;
    EVP_PKEY *pk;

    if (pem_len == 0 || pem_len > PEM_MAX)
        return NULL;
    if ((bio = BIO_new_mem_buf(pem, (int)pem_len)) == NULL)
        return NULL;
    pk = PEM_read_bio_PrivateKey(bio, NULL, key_no_passphrase, NULL);
    BIO_free(bio);
    if (pk != NULL && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    return pk;
}

/* Build a GitHub App JWT; see providers.h. */
ai_code jwt_github_app(const char *pem, size_t pem_len, const char *app_id,
                       int64_t now_s, char **out, ai_err *err)
{
    char claims[160];
    char *hdr64 = NULL, *cl64 = NULL, *jwt = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0, hlen, clen, slen, n;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *md = NULL;
    int kind, cn;
    ai_code rc = AI_ENOMEM;

    *out = NULL;
    if ((kind = app_id_kind(app_id)) == 0)
        return ai_err_set(err, AI_EPROVIDER,
                          "github: appId must be 1 to %d characters of "
                          "[A-Za-z0-9._-]",
                          APP_ID_MAX);
    cn = snprintf(claims, sizeof claims,
                  kind == 1 ? "{\"iat\":%lld,\"exp\":%lld,\"iss\":%s}"
                            : "{\"iat\":%lld,\"exp\":%lld,\"iss\":\"%s\"}",
                  (long long)(now_s - JWT_BACKDATE_S),
                  (long long)(now_s + JWT_LIFETIME_S), app_id);
    if (cn < 0 || (size_t)cn >= sizeof claims)
        return ai_err_set(err, AI_EINTERNAL, "github: JWT claims too long");

    if ((pk = load_key(pem, pem_len)) == NULL) {
        ERR_clear_error();
        return ai_err_set(err, AI_EPROVIDER,
                          "github: privateKey is not an unencrypted RSA "
                          "private key in PEM form");
    }

    hlen = b64url_encoded_len(sizeof jwt_header - 1);
    clen = b64url_encoded_len((size_t)cn);
    if ((hdr64 = ai_malloc(hlen + 1)) == NULL ||
        (cl64 = ai_malloc(clen + 1)) == NULL)
        goto fail;
    b64url_encode((const unsigned char *)jwt_header, sizeof jwt_header - 1,
                  hdr64);
    b64url_encode((const unsigned char *)claims, (size_t)cn, cl64);

    /* Sign "<header>.<claims>": assemble it in the output buffer, which
     * is sized for the signature too. */
    if ((md = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
        EVP_DigestSignUpdate(md, hdr64, hlen) != 1 ||
        EVP_DigestSignUpdate(md, ".", 1) != 1 ||
        EVP_DigestSignUpdate(md, cl64, clen) != 1 ||
        EVP_DigestSignFinal(md, NULL, &siglen) != 1) {
        rc = ai_err_set(err, AI_EPROVIDER, "github: signing the JWT failed");
        goto fail;
    }
    if ((sig = ai_malloc(siglen)) == NULL)
        goto fail;
    if (EVP_DigestSignFinal(md, sig, &siglen) != 1) {
        rc = ai_err_set(err, AI_EPROVIDER, "github: signing the JWT failed");
        goto fail;
    }
    slen = b64url_encoded_len(siglen);
    n = hlen + 1 + clen + 1 + slen;
    if ((jwt = ai_malloc(n + 1)) == NULL)
        goto fail;
    memcpy(jwt, hdr64, hlen);
    jwt[hlen] = '.';
    memcpy(jwt + hlen + 1, cl64, clen);
    jwt[hlen + 1 + clen] = '.';
    b64url_encode(sig, siglen, jwt + hlen + 1 + clen + 1);
    *out = jwt;
    rc = AI_OK;
    goto done;

fail:
    if (rc == AI_ENOMEM)
        ai_err_set(err, AI_ENOMEM, "github: out of memory");
done:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    ai_free(hdr64);
    ai_free(cl64);
    if (sig != NULL) {
        OPENSSL_cleanse(sig, siglen);
        ai_free(sig);
    }
    return rc;
}
