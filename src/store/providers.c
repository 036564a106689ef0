/* providers.c - provider configs (github, google, aws): one JSON object
 * per provider, sealed whole at rest under the master key, replaced as a
 * whole, and logged for the followers.
 *
 * The JSON is validated with jansson (an object of string, number and
 * boolean members, at most PROVIDER_JSON_MAX bytes) and stored as given.
 * Its secret members (privateKey, clientSecret, ...) are never readable
 * in the database file: the blob's associated data is "provider:<name>",
 * so a blob copied to another provider's row does not open there. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "store/db.h"

static const char *const provider_names[] = {"github", "google", "aws"};

bool provider_known(const char *name)
{
    for (size_t i = 0; i < sizeof provider_names / sizeof *provider_names;
         i++)
        if (name != NULL && strcmp(name, provider_names[i]) == 0)
            return true;
    return false;
}

static ai_code check_name(const char *name, ai_err *err)
{
    if (provider_known(name))
        return AI_OK;
    return ai_err_set(err, AI_EINVAL,
                      "unknown provider \"%.64s\": github, google or aws",
                      name ? name : "");
}

static void provider_aad(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "provider:%s", name);
}

/* An object of string, number and boolean members, at most
 * PROVIDER_JSON_MAX bytes. The message never quotes the input. */
static ai_code check_config(const char *json, ai_err *err)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *k;
    size_t n = json ? strnlen(json, PROVIDER_JSON_MAX + 1) : 0;
    ai_code rc = AI_OK;

    if (n == 0 || n > PROVIDER_JSON_MAX)
        return ai_err_set(err, AI_EINVAL,
                          "a provider config is 1 to %d bytes of JSON",
                          PROVIDER_JSON_MAX);
    /* XXX jansson's lexer frees its copy of each string unwiped. */
    root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return ai_err_set(err, AI_EINVAL,
                          "a provider config is not valid JSON (line %d, "
                          "column %d)",
                          jerr.line, jerr.column);
    if (!json_is_object(root)) {
        rc = ai_err_set(err, AI_EINVAL, "a provider config is a JSON object");
    } else if (json_object_size(root) == 0) {
        rc = ai_err_set(err, AI_EINVAL, "a provider config is empty");
    } else {
        json_object_foreach(root, k, v) {
            if (!json_is_string(v) && !json_is_number(v) &&
                !json_is_boolean(v)) {
                rc = ai_err_set(err, AI_EINVAL,
                                "provider config member \"%.64s\" is not a "
                                "string, number or boolean",
                                k);
                break;
            }
        }
    }
    json_wipe_decref(root); /* a config may hold secrets */
    return rc;
}

/* Replace the config of `name` (the JSON as given, sealed) and log the
 * change, in one transaction. AI_EINVAL for a bad name or config. */
ai_code store_provider_set(store *st, const char *name, const char *json,
                           int64_t now_ms, const audit_entry *audit,
                           ai_err *err)
{
    char aad[32];
    unsigned char *blob = NULL;
    size_t bloblen = 0;
    sqlite3_stmt *q = NULL;
    store_ref ref = {.kind = STORE_KIND_PROVIDER, .name = name};
    ai_code rc;

    ai_err_clear(err);
    if ((rc = provider_check(name, json, err)) != AI_OK)
        return rc;
    provider_aad(name, aad, sizeof aad);
    if ((rc = seal(st, aad, json, strlen(json), &blob, &bloblen, err)) !=
        AI_OK)
        return rc;
    if ((rc = db_begin(st, err)) != AI_OK)
        goto done;
    if ((rc = db_prepare(st,
                         "INSERT INTO providers (name, config, updated_at) "
                         "VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                         "config = excluded.config, "
                         "updated_at = excluded.updated_at",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, blob, (int)bloblen, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, now_ms);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "provider config", err);
        goto fail;
    }
    rc = db_log_commit(st, &ref, "set", now_ms, audit, err);
    goto done;
fail:
    db_rollback(st);
done:
    sqlite3_finalize(q);
    ai_free(blob);
    return rc;
}

/* The config of `name` with its secrets in clear: *json is ai_malloc'd
 * (wipe it, then store_free); NULL on error, AI_ENOTFOUND when absent. */
ai_code store_provider_get(store *st, const char *name, char **json,
                           ai_err *err)
{
    sqlite3_stmt *q = NULL;
    unsigned char *plain = NULL;
    size_t n = 0;
    char aad[32];
    ai_code rc;
    int step;

    ai_err_clear(err);
    *json = NULL;
    if ((rc = check_name(name, err)) != AI_OK ||
        (rc = db_prepare(st, "SELECT config FROM providers WHERE name = ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        provider_aad(name, aad, sizeof aad);
        rc = unseal(st, aad, sqlite3_column_blob(q, 0),
                    (size_t)sqlite3_column_bytes(q, 0), &plain, &n, err);
        if (rc == AI_OK && strlen((const char *)plain) != n) {
            explicit_bzero(plain, n);
            ai_free(plain);
            plain = NULL;
            rc = ai_err_set(err, AI_ESTORE, "provider config %s is damaged",
                            name);
        }
        if (rc == AI_OK)
            *json = (char *)plain; /* unseal NUL-terminates it */
    } else if (step == SQLITE_DONE) {
        rc = ai_err_set(err, AI_ENOTFOUND, "provider %s is not configured",
                        name);
    } else {
        rc = db_fail(st, "provider config", err);
    }
    sqlite3_finalize(q);
    return rc;
}

/* Remove the config of `name` and log it; AI_ENOTFOUND when absent. */
ai_code store_provider_delete(store *st, const char *name, int64_t now_ms,
                              const audit_entry *audit, ai_err *err)
{
    char missing[96];
    ai_code rc;

    ai_err_clear(err);
    if ((rc = check_name(name, err)) != AI_OK)
        return rc;
    snprintf(missing, sizeof missing, "provider %s is not configured", name);
    return db_delete_logged(st, "DELETE FROM providers WHERE name = ?",
                            STORE_KIND_PROVIDER, name, now_ms, audit, missing,
                            err);
}

ai_code provider_check(const char *name, const char *json, ai_err *err)
{
    ai_code rc = check_name(name, err);

    return rc != AI_OK ? rc : check_config(json, err);
}
