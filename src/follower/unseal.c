/* unseal.c - opening what the leader sealed for this follower (DESIGN §8):
 * a signing key's or an API key's "sealed" member becomes its "secret"
 * again, a provider's {"sealed"} its config, under the transport key the
 * follower derives from its credential. The plaintext lives only in the
 * parsed value on its way into the store (which seals it again under the
 * follower's own master key). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "follower/internal.h"

ai_code fl_open_value(const unsigned char key[32], const char *kind,
                      const char *name, json_t *value, ai_err *err)
{
    const char *sealed = json_string_value(json_object_get(value, "sealed"));
    unsigned char *plain = NULL;
    char aad[128];
    size_t n = 0;
    json_t *cfg;
    ai_code rc;

    if (sealed == NULL)
        return AI_OK; /* nothing sealed in it (a revocation) */
    snprintf(aad, sizeof aad, "%s:%s", kind, name);
    if ((rc = store_unseal_text(key, aad, sealed, &plain, &n, err)) != AI_OK)
        return rc;
    if (strcmp(kind, "provider") == 0) {
        json_error_t je;
        cfg = json_loadb((const char *)plain, n, JSON_REJECT_DUPLICATES, &je);
        if (cfg == NULL || !json_is_object(cfg)) {
            json_wipe_decref(cfg);
            cfg = NULL;
            rc = ai_err_set(err, AI_EINVAL, "the sealed %s is not a config",
                            aad);
        } else if (json_object_update(value, cfg) != 0 ||
                   json_object_del(value, "sealed") != 0) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        }
        /* its members are value's now (the batch is wiped as a whole) */
        json_decref(cfg);
    } else if (strlen((const char *)plain) != n ||
               json_object_set_new(value, "secret",
                                   json_string((const char *)plain)) != 0 ||
               json_object_del(value, "sealed") != 0) {
        rc = ai_err_set(err, AI_EINVAL, "the sealed %s is not a secret", aad);
    }
    OPENSSL_cleanse(plain, n);
    ai_free(plain);
    return rc;
}

/* The name an entity is sealed under: the key's version, the API key's
 * or the provider's name. */
static void entity_name(const char *kind, const json_t *holder,
                        const json_t *value, char *out, size_t cap)
{
    const char *n;

    if (strcmp(kind, "key") == 0) {
        snprintf(out, cap, "%lld",
                 (long long)json_integer_value(
                     json_object_get(value, "version")));
        return;
    }
    n = json_string_value(json_object_get(
        strcmp(kind, "apikey") == 0 ? value : holder, "name"));
    snprintf(out, cap, "%s", n ? n : "");
}

ai_code fl_open_line(const unsigned char key[32], json_t *line, ai_err *err)
{
    const char *kind = json_string_value(json_object_get(line, "kind"));
    json_t *v = json_object_get(line, "value");
    char name[128];

    if (kind == NULL || !json_is_object(v))
        return AI_OK; /* the store refuses what is malformed */
    entity_name(kind, line, v, name, sizeof name);
    return fl_open_value(key, kind, name, v, err);
}

ai_code fl_open_changes(const unsigned char key[32], const json_t *changes,
                        ai_err *err)
{
    size_t i;
    json_t *c;
    ai_code rc;

    json_array_foreach(changes, i, c) {
        const char *kind = json_string_value(json_object_get(c, "kind"));
        const char *k = json_string_value(json_object_get(c, "key"));
        json_t *v = json_object_get(c, "value");
        if (kind == NULL || k == NULL || !json_is_object(v))
            continue;
        /* a change names its entity by its key ("3", "openai") */
        if ((rc = fl_open_value(key, kind, k, v, err)) != AI_OK)
            return rc;
    }
    return AI_OK;
}
