/* apikeys.c - named API keys (openai, anthropic, ...): the key sealed at
 * rest under the master key with "apikey:<name>" as associated data, its
 * provider, base URL and credential TTL in clear; every change logged for
 * the followers. Listing never reads a secret. */
#include <stdio.h>
#include <string.h>

#include "store/db.h"


static ai_code check_name(const char *name, ai_err *err)
{
    if (!word_valid(name, APIKEY_NAME_MAX))
        return ai_err_set(err, AI_EINVAL,
                          "an API key name is 1 to %d characters of "
                          "A-Z a-z 0-9 . _ -",
                          APIKEY_NAME_MAX);
    return AI_OK;
}

/* http(s)://, then printable ASCII without spaces. */
static bool valid_url(const char *u)
{
    size_t n = strnlen(u, APIKEY_URL_MAX + 1);

    if (n > APIKEY_URL_MAX ||
        (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return false;
    return n > (u[4] == 's' ? 8u : 7u);
}

ai_code apikey_check(const apikey_info *info, const char *secret,
                     ai_err *err)
{
    size_t n;
    ai_code rc;

    if (info == NULL)
        return ai_err_set(err, AI_EINVAL, "API key details required");
    if ((rc = check_name(info->name, err)) != AI_OK)
        return rc;
    if (!word_valid(info->provider, APIKEY_NAME_MAX))
        return ai_err_set(err, AI_EINVAL,
                          "an API key provider is 1 to %d characters of "
                          "A-Z a-z 0-9 . _ -",
                          APIKEY_NAME_MAX);
    if (info->base_url != NULL && !valid_url(info->base_url))
        return ai_err_set(err, AI_EINVAL,
                          "a base URL is http:// or https:// and at most %d "
                          "printable characters",
                          APIKEY_URL_MAX);
    if (info->ttl_minutes < 0 || info->ttl_minutes > APIKEY_TTL_MAX)
        return ai_err_set(err, AI_EINVAL,
                          "an API key TTL is 0 (the default) to %d minutes",
                          APIKEY_TTL_MAX);
    /* The message never quotes the secret. */
    n = secret ? strnlen(secret, APIKEY_SECRET_MAX + 1) : 0;
    if (n == 0 || n > APIKEY_SECRET_MAX)
        return ai_err_set(err, AI_EINVAL, "an API key is 1 to %d bytes",
                          APIKEY_SECRET_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)secret[i] < 0x20 || secret[i] == 0x7f)
            return ai_err_set(err, AI_EINVAL,
                              "an API key has no control characters");
    /* It travels in headers and JSON credential results. */
    if (!utf8_valid(secret, n))
        return ai_err_set(err, AI_EINVAL, "an API key is UTF-8 text");
    return AI_OK;
}

static void apikey_aad(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "apikey:%s", name);
}

/* Add (or replace) the key `info->name` with its sealed secret, logged in
 * the same transaction. AI_EINVAL for a bad name, provider, URL, TTL or
 * secret (the message never holds the secret). */
ai_code store_apikey_add(store *st, const apikey_info *info,
                         const char *secret, int64_t now_ms,
                         const audit_entry *audit, ai_err *err)
{
    char aad[APIKEY_NAME_MAX + 16];
    unsigned char *blob = NULL;
    size_t bloblen = 0;
    sqlite3_stmt *q = NULL;
    store_ref ref = {.kind = STORE_KIND_APIKEY};
    ai_code rc;

    ai_err_clear(err);
    if ((rc = apikey_check(info, secret, err)) != AI_OK)
        return rc;
    apikey_aad(info->name, aad, sizeof aad);
    if ((rc = seal(st, aad, secret, strlen(secret), &blob, &bloblen, err)) !=
        AI_OK)
        return rc;
    if ((rc = db_begin(st, err)) != AI_OK)
        goto done;
    if ((rc = db_prepare(st,
                         "INSERT INTO api_keys (name, provider, secret, "
                         "base_url, ttl_minutes, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO "
                         "UPDATE SET provider = excluded.provider, "
                         "secret = excluded.secret, "
                         "base_url = excluded.base_url, "
                         "ttl_minutes = excluded.ttl_minutes, "
                         "created_at = excluded.created_at",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_text(q, 1, info->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, info->provider, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, blob, (int)bloblen, SQLITE_STATIC);
    if (info->base_url != NULL)
        sqlite3_bind_text(q, 4, info->base_url, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 4);
    sqlite3_bind_int(q, 5, info->ttl_minutes);
    sqlite3_bind_int64(q, 6, now_ms);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "API keys", err);
        goto fail;
    }
    ref.name = info->name;
    rc = db_log_commit(st, &ref, "set", now_ms, audit, err);
    goto done;
fail:
    db_rollback(st);
done:
    sqlite3_finalize(q);
    ai_free(blob);
    return rc;
}

/* The secret of `name`: *secret is ai_malloc'd (wipe it, then
 * store_free); NULL on error, AI_ENOTFOUND when there is no such key. */
ai_code store_apikey_secret(store *st, const char *name, char **secret,
                            ai_err *err)
{
    sqlite3_stmt *q = NULL;
    unsigned char *plain = NULL;
    size_t n = 0;
    char aad[APIKEY_NAME_MAX + 16];
    ai_code rc;
    int step;

    ai_err_clear(err);
    *secret = NULL;
    if ((rc = check_name(name, err)) != AI_OK ||
        (rc = db_prepare(st, "SELECT secret FROM api_keys WHERE name = ?", &q,
                         err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        apikey_aad(name, aad, sizeof aad);
        rc = unseal(st, aad, sqlite3_column_blob(q, 0),
                    (size_t)sqlite3_column_bytes(q, 0), &plain, &n, err);
        if (rc == AI_OK && (n == 0 || strlen((const char *)plain) != n)) {
            explicit_bzero(plain, n);
            ai_free(plain);
            plain = NULL;
            rc = ai_err_set(err, AI_ESTORE, "API key %s is damaged", name);
        }
        if (rc == AI_OK)
            *secret = (char *)plain; /* unseal NUL-terminates it */
    } else if (step == SQLITE_DONE) {
        rc = ai_err_set(err, AI_ENOTFOUND, "API key \"%s\" not found", name);
    } else {
        rc = db_fail(st, "API keys", err);
    }
    sqlite3_finalize(q);
    return rc;
}

/* Remove the key `name` and log it; AI_ENOTFOUND when there is none. */
ai_code store_apikey_remove(store *st, const char *name, int64_t now_ms,
                            const audit_entry *audit, ai_err *err)
{
    char missing[128];
    ai_code rc;

    ai_err_clear(err);
    if ((rc = check_name(name, err)) != AI_OK)
        return rc;
    snprintf(missing, sizeof missing, "API key \"%s\" not found", name);
    return db_delete_logged(st, "DELETE FROM api_keys WHERE name = ?",
                            STORE_KIND_APIKEY, name, now_ms, audit, missing,
                            err);
}

/* Every key, by name, to fn (strings borrowed for the call); secrets are
 * never read. */
ai_code store_apikey_list(store *st, apikey_fn fn, void *ud, ai_err *err)
{
    sqlite3_stmt *q = NULL;
    ai_code rc;
    int step;

    ai_err_clear(err);
    if ((rc = db_prepare(st,
                         "SELECT name, provider, base_url, ttl_minutes, "
                         "created_at FROM api_keys ORDER BY name",
                         &q, err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        apikey_info info;
        info.name = (const char *)sqlite3_column_text(q, 0);
        info.provider = (const char *)sqlite3_column_text(q, 1);
        info.base_url = (const char *)sqlite3_column_text(q, 2);
        info.ttl_minutes = sqlite3_column_int(q, 3);
        info.created_at = sqlite3_column_int64(q, 4);
        if (info.name == NULL || info.provider == NULL) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            break;
        }
        fn(ud, &info);
    }
    if (rc == AI_OK && step != SQLITE_DONE)
        rc = db_fail(st, "API keys", err);
    sqlite3_finalize(q);
    return rc;
}
