/* outgoing.c - what one follower may receive of a replicated entity
 * (DESIGN §8): signing keys always, sealed under the follower's transport
 * key; provider configs and API keys only of the providers granted to it,
 * their secrets sealed; revocations as they are. Nothing secret leaves the
 * leader as plaintext JSON, whatever carries it (TLS, a proxy, a log). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "leader/leader.h"

/* Replace the string member `secret` of v with "sealed" (bound to aad). */
static ai_code seal_member(const srv_follower *fol, json_t *v,
                           const char *aad, ai_err *err)
{
    const char *plain = json_string_value(json_object_get(v, "secret"));
    char *sealed = NULL;
    ai_code rc;

    if (plain == NULL)
        return ai_err_set(err, AI_EINTERNAL, "%s has no secret", aad);
    if ((rc = store_seal_text(fol->key, aad, plain, strlen(plain), &sealed,
                              err)) != AI_OK)
        return rc;
    /* jansson frees its copy: wipe it first */
    OPENSSL_cleanse((void *)(uintptr_t)plain, strlen(plain));
    json_object_del(v, "secret");
    if (json_object_set_new(v, "sealed", json_string(sealed)) != 0)
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    ai_free(sealed);
    return rc;
}

/* A provider config becomes {"sealed": the whole config, sealed}. */
static ai_code seal_config(const srv_follower *fol, json_t *v,
                           const char *aad, ai_err *err)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS), *sealed = NULL;
    ai_code rc;

    if (text == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    rc = store_seal_text(fol->key, aad, text, strlen(text), &sealed, err);
    OPENSSL_cleanse(text, strlen(text));
    free(text); /* jansson's allocation */
    if (rc != AI_OK)
        return rc;
    json_wipe(v); /* the secrets jansson holds, nested ones too */
    json_object_clear(v);
    if (json_object_set_new(v, "sealed", json_string(sealed)) != 0)
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
    ai_free(sealed);
    return rc;
}

ai_code leader_outgoing(const srv_follower *fol, const char *kind,
                        const char *name, json_t *value, bool *drop,
                        ai_err *err)
{
    char aad[128];

    *drop = false;
    if (strcmp(kind, "revocation") == 0)
        return AI_OK;
    snprintf(aad, sizeof aad, "%s:%s", kind, name);
    if (strcmp(kind, "key") == 0)
        return seal_member(fol, value, aad, err);
    if (strcmp(kind, "apikey") == 0) {
        const char *prov = json_string_value(json_object_get(value,
                                                             "provider"));
        if (prov == NULL || !store_follower_grants(fol->providers, prov)) {
            *drop = true;
            return AI_OK;
        }
        return seal_member(fol, value, aad, err);
    }
    if (strcmp(kind, "provider") == 0) {
        if (!store_follower_grants(fol->providers, name)) {
            *drop = true;
            return AI_OK;
        }
        return seal_config(fol, value, aad, err);
    }
    return ai_err_set(err, AI_EINTERNAL, "unknown kind %s", kind);
}
