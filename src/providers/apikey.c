/*
 * apikey.c - the API-key credential (credentialType "api_key"), in the
 * shape of the Node package's APIKeyProvider: the stored key, its provider
 * name, its base URL when one is set and an Authorization header, valid
 * for the key's TTL (default 60 minutes). No network: the key is the
 * credential. The caller (broker) finds the key in the store.
 */
#include <string.h>

#include "core/core.h"
#include "providers/providers.h"

#define APIKEY_DEFAULT_TTL_MIN 60

/* See providers.h. */
ai_code prov_apikey_build(const char *provider, const char *secret,
                          const char *base_url, int ttl_minutes,
                          int64_t now_ms, cred_result *out, ai_err *err)
{
    static const char bearer[] = "Bearer ";
    ai_buf b, auth;

    ai_err_clear(err);
    memset(out, 0, sizeof *out);
    if (provider == NULL || secret == NULL)
        return ai_err_set(err, AI_EINVAL, "api key: no provider or key");
    if (ttl_minutes <= 0)
        ttl_minutes = APIKEY_DEFAULT_TTL_MIN;
    buf_init(&b);
    buf_init(&auth);
    buf_put(&auth, bearer, sizeof bearer - 1);
    buf_puts(&auth, secret);
    buf_putc(&b, '{');
    jw_key(&b, "apiKey", true);
    jw_str(&b, secret, strlen(secret));
    jw_key(&b, "providerName", false);
    jw_str(&b, provider, strlen(provider));
    if (base_url != NULL && *base_url != '\0') {
        jw_key(&b, "baseUrl", false);
        jw_str(&b, base_url, strlen(base_url));
    }
    jw_key(&b, "headers", false);
    buf_putc(&b, '{');
    jw_key(&b, "Authorization", true);
    jw_str(&b, auth.p ? auth.p : "", auth.len);
    buf_put(&b, "}}", 2);
    buf_free(&auth);
    if ((out->credential = buf_steal(&b)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    memcpy(out->type, "api_key", sizeof "api_key");
    out->expires_at = now_ms + (int64_t)ttl_minutes * 60000;
    return AI_OK;
}
