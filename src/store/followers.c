/* followers.c - the followers registered on a leader: one credential each
 * (kept as its SHA-256), a transport key sealed under the master key, and
 * the providers whose secrets it may receive (DESIGN §8). */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "store/db.h"

#define SECRET_PREFIX "aif1_"
#define SECRET_BYTES 32

bool store_follower_grants(const char *providers, const char *provider)
{
    size_t n = strlen(provider);

    if (strcmp(providers, "*") == 0)
        return n > 0;
    for (const char *p = providers; *p != '\0';) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && memcmp(p, provider, n) == 0)
            return true;
        p += k + (e != NULL);
    }
    return false;
}

static ai_code check_id(const char *id, ai_err *err)
{
    if (!word_valid(id, 64))
        return ai_err_set(err, AI_EINVAL,
                          "a follower id is 1 to 64 of A-Z a-z 0-9 . _ -");
    return AI_OK;
}

/* "*", "" or names of [A-Za-z0-9._-] (1-64) separated by single commas. */
static bool providers_valid(const char *s)
{
    size_t n = strlen(s);

    if (n > STORE_FOLLOWER_PROVIDERS_MAX)
        return false;
    if (n == 0 || strcmp(s, "*") == 0)
        return true;
    for (const char *p = s;;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        char name[65];
        if (k == 0 || k > 64)
            return false;
        memcpy(name, p, k);
        name[k] = '\0';
        if (!word_valid(name, 64))
            return false;
        if (e == NULL)
            return true;
        p = e + 1;
    }
}

ai_code store_follower_add(store *st, const char *id, const char *providers,
                           const unsigned char digest[STORE_FOLLOWER_DIGEST_BYTES],
                           const unsigned char transport[AI_KEY_BYTES],
                           int64_t now_ms, const audit_entry *audit,
                           ai_err *err)
{
    unsigned char *sealed = NULL;
    size_t slen = 0;
    char aad[96];
    sqlite3_stmt *q = NULL;
    ai_code rc;

    ai_err_clear(err);
    if ((rc = check_id(id, err)) != AI_OK)
        return rc;
    if (providers == NULL || !providers_valid(providers))
        return ai_err_set(err, AI_EINVAL,
                          "--providers is \"*\" or provider names (A-Z a-z "
                          "0-9 . _ -) separated by commas");
    if (digest == NULL || transport == NULL)
        return ai_err_set(err, AI_EINVAL, "no follower credential");
    snprintf(aad, sizeof aad, "follower:%s", id);
    if ((rc = seal(st, aad, transport, AI_KEY_BYTES, &sealed, &slen, err)) !=
            AI_OK ||
        (rc = db_begin(st, err)) != AI_OK)
        goto done;
    if ((rc = db_prepare(st,
                         "INSERT INTO followers (id, digest, transport, "
                         "providers, created_at) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET "
                         "digest = excluded.digest, "
                         "transport = excluded.transport, "
                         "providers = excluded.providers, "
                         "created_at = excluded.created_at",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, digest, STORE_FOLLOWER_DIGEST_BYTES,
                      SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, sealed, (int)slen, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, providers, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, now_ms);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "follower", err);
        goto fail;
    }
    if ((audit != NULL && (rc = audit_append(st, audit, err)) != AI_OK) ||
        (rc = db_commit(st, err)) != AI_OK)
        goto fail;
    goto done;
fail:
    db_rollback(st);
done:
    sqlite3_finalize(q);
    ai_free(sealed);
    return rc;
}

ai_code store_follower_remove(store *st, const char *id,
                              const audit_entry *audit, ai_err *err)
{
    sqlite3_stmt *q = NULL;
    ai_code rc;

    ai_err_clear(err);
    if ((rc = check_id(id, err)) != AI_OK)
        return rc;
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = db_prepare(st, "DELETE FROM followers WHERE id = ?", &q, err)) !=
        AI_OK)
        goto fail;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "follower", err);
        goto fail;
    }
    if (sqlite3_changes(st->db) == 0) {
        rc = ai_err_set(err, AI_ENOTFOUND, "no follower \"%s\" is registered",
                        id);
        goto fail;
    }
    if ((audit != NULL && (rc = audit_append(st, audit, err)) != AI_OK) ||
        (rc = db_commit(st, err)) != AI_OK)
        goto fail;
    sqlite3_finalize(q);
    return AI_OK;
fail:
    sqlite3_finalize(q);
    db_rollback(st);
    return rc;
}

/* See store.h. */
ai_code store_follower_credential(char **secret_out,
                                  unsigned char digest[STORE_FOLLOWER_DIGEST_BYTES],
                                  unsigned char transport[AI_KEY_BYTES],
                                  ai_err *err)
{
    unsigned char raw[SECRET_BYTES];
    size_t n = sizeof SECRET_PREFIX - 1 + b64url_encoded_len(SECRET_BYTES);
    char *secret;

    ai_err_clear(err);
    *secret_out = NULL;
    if ((secret = ai_malloc(n + 1)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if (RAND_bytes(raw, sizeof raw) != 1) {
        OPENSSL_cleanse(raw, sizeof raw);
        ai_free(secret);
        return ai_err_set(err, AI_EINTERNAL, "no randomness");
    }
    memcpy(secret, SECRET_PREFIX, sizeof SECRET_PREFIX - 1);
    b64url_encode(raw, sizeof raw, secret + sizeof SECRET_PREFIX - 1);
    OPENSSL_cleanse(raw, sizeof raw);
    SHA256((const unsigned char *)secret, n, digest);
    store_transport_key(secret, n, transport);
    *secret_out = secret;
    return AI_OK;
}

static void row_info(sqlite3_stmt *q, follower_info *fi)
{
    const char *id = (const char *)sqlite3_column_text(q, 0);
    const char *pv = (const char *)sqlite3_column_text(q, 1);

    snprintf(fi->id, sizeof fi->id, "%s", id ? id : "");
    snprintf(fi->providers, sizeof fi->providers, "%s", pv ? pv : "");
    fi->created_at = sqlite3_column_int64(q, 2);
}

ai_code store_follower_list(store *st, follower_fn fn, void *ud, ai_err *err)
{
    sqlite3_stmt *q = NULL;
    follower_info fi;
    ai_code rc;
    int step;

    ai_err_clear(err);
    if ((rc = db_prepare(st,
                         "SELECT id, providers, created_at FROM followers "
                         "ORDER BY id",
                         &q, err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        row_info(q, &fi);
        fn(ud, &fi);
    }
    if (step != SQLITE_DONE)
        rc = db_fail(st, "followers", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_follower_find(store *st, const char *secret, size_t n,
                            follower_info *out,
                            unsigned char transport[AI_KEY_BYTES],
                            ai_err *err)
{
    unsigned char digest[SHA256_DIGEST_LENGTH], *key = NULL;
    sqlite3_stmt *q = NULL;
    size_t klen = 0;
    char aad[96];
    ai_code rc;
    int step;

    ai_err_clear(err);
    memset(out, 0, sizeof *out);
    /* Looked up by its SHA-256: what the lookup's timing could tell is
     * about a hash, which gives nothing of a credential. */
    SHA256((const unsigned char *)secret, n, digest);
    if ((rc = db_prepare(st,
                         "SELECT id, providers, created_at, transport FROM "
                         "followers WHERE digest = ?",
                         &q, err)) != AI_OK)
        goto done;
    sqlite3_bind_blob(q, 1, digest, sizeof digest, SQLITE_STATIC);
    if ((step = sqlite3_step(q)) != SQLITE_ROW) {
        rc = step == SQLITE_DONE
                 ? ai_err_set(err, AI_ENOTFOUND, "no such follower")
                 : db_fail(st, "followers", err);
        goto done;
    }
    row_info(q, out);
    snprintf(aad, sizeof aad, "follower:%s", out->id);
    if ((rc = unseal(st, aad, sqlite3_column_blob(q, 3),
                     (size_t)sqlite3_column_bytes(q, 3), &key, &klen, err)) !=
        AI_OK)
        goto done;
    if (klen != AI_KEY_BYTES) {
        rc = ai_err_set(err, AI_ESTORE, "follower %s is damaged", out->id);
        goto done;
    }
    memcpy(transport, key, AI_KEY_BYTES);
done:
    if (key != NULL) {
        OPENSSL_cleanse(key, klen);
        ai_free(key);
    }
    sqlite3_finalize(q);
    OPENSSL_cleanse(digest, sizeof digest);
    return rc;
}

ai_code store_follower_registered(store *st, const char *id, bool *yes,
                                  ai_err *err)
{
    sqlite3_stmt *q = NULL;
    ai_code rc;
    int step;

    ai_err_clear(err);
    *yes = false;
    if ((rc = db_prepare(st, "SELECT 1 FROM followers WHERE id = ?", &q,
                         err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if ((step = sqlite3_step(q)) == SQLITE_ROW)
        *yes = true;
    else if (step != SQLITE_DONE)
        rc = db_fail(st, "followers", err);
    sqlite3_finalize(q);
    return rc;
}
