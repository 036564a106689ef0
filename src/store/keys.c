/* keys.c - signing keys: versioned, sealed at rest, rotated with a grace
 * period for the older ones, imported from (and exported to) the Node.js
 * package's raw 32-byte token_secret. */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "store/db.h"

static void key_aad(uint32_t version, char *buf, size_t cap)
{
    snprintf(buf, cap, "signing_key:%u", (unsigned)version);
}

/* Within a transaction: store `secret` as `version`, logged. */
static ai_code put_key(store *st, uint32_t version,
                       const unsigned char secret[AI_KEY_BYTES],
                       int64_t now_ms, ai_err *err)
{
    char aad[32];
    unsigned char *blob = NULL;
    size_t bloblen;
    sqlite3_stmt *q = NULL;
    store_ref ref = {.kind = STORE_KIND_KEY, .version = version};
    ai_code rc;

    key_aad(version, aad, sizeof aad);
    if ((rc = seal(st, aad, secret, AI_KEY_BYTES, &blob, &bloblen, err)) !=
        AI_OK)
        return rc;
    if ((rc = db_prepare(st,
                         "INSERT INTO signing_keys (version, secret, "
                         "created_at, verify_until) VALUES (?, ?, ?, 0) "
                         "ON CONFLICT (version) DO UPDATE SET "
                         "secret = excluded.secret, "
                         "created_at = excluded.created_at, verify_until = 0",
                         &q, err)) != AI_OK)
        goto done;
    sqlite3_bind_int64(q, 1, version);
    sqlite3_bind_blob(q, 2, blob, (int)bloblen, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, now_ms);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "signing keys", err);
        goto done;
    }
    rc = changelog_add(st, &ref, "set", now_ms, err);
done:
    sqlite3_finalize(q);
    ai_free(blob);
    return rc;
}

static ai_code max_version(store *st, uint32_t *v, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    if ((rc = db_prepare(st,
                         "SELECT coalesce(max(version), 0) FROM signing_keys",
                         &q, err)) != AI_OK)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW)
        *v = (uint32_t)sqlite3_column_int64(q, 0);
    else
        rc = db_fail(st, "signing keys", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code keys_load(store *st, int64_t now_ms, ai_err *err)
{
    ai_keyring *kr = ai_keyring_new();
    sqlite3_stmt *q = NULL;
    uint32_t last = 0;
    ai_code rc;
    int step;

    (void)now_ms;
    if (kr == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if ((rc = db_prepare(st,
                         "SELECT version, secret, verify_until FROM "
                         "signing_keys ORDER BY version",
                         &q, err)) != AI_OK)
        goto fail;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        uint32_t v = (uint32_t)sqlite3_column_int64(q, 0);
        unsigned char *secret = NULL;
        size_t n = 0;
        char aad[32];
        key_aad(v, aad, sizeof aad);
        rc = unseal(st, aad, sqlite3_column_blob(q, 1),
                    (size_t)sqlite3_column_bytes(q, 1), &secret, &n, err);
        if (rc == AI_OK && n != AI_KEY_BYTES)
            rc = ai_err_set(err, AI_ESTORE, "signing key %u is damaged",
                            (unsigned)v);
        if (rc == AI_OK)
            rc = ai_keyring_add(kr, v, secret, sqlite3_column_int64(q, 2),
                                err);
        if (secret != NULL) {
            explicit_bzero(secret, n);
            ai_free(secret);
        }
        if (rc != AI_OK)
            goto fail;
        last = v;
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(st, "signing keys", err);
        goto fail;
    }
    /* The newest version signs. */
    if (last != 0 && (rc = ai_keyring_set_signing(kr, last, err)) != AI_OK)
        goto fail;
    sqlite3_finalize(q);
    ai_keyring_free(st->keys);
    st->keys = kr;
    return AI_OK;
fail:
    sqlite3_finalize(q);
    ai_keyring_free(kr);
    return rc;
}

/* Within a transaction: AI_EDENIED on a replica (its keys come from the
 * leader). */
static ai_code refuse_on_replica(store *st, const char *what, ai_err *err)
{
    bool replica = false;
    ai_code rc = replica_marked(st, &replica, err);

    if (rc == AI_OK && replica)
        rc = ai_err_set(err, AI_EDENIED,
                        "this home is a follower's replica: %s on the leader",
                        what);
    return rc;
}

/* Within a transaction begun by the caller: key as version 1 with its
 * audit row, committed and loaded; rolled back on failure. */
static ai_code put_version_1(store *st, const unsigned char key[AI_KEY_BYTES],
                             int64_t now_ms, const audit_entry *audit,
                             ai_err *err)
{
    ai_code rc;

    if ((rc = put_key(st, 1, key, now_ms, err)) != AI_OK ||
        (audit != NULL && (rc = audit_append(st, audit, err)) != AI_OK) ||
        (rc = db_commit(st, err)) != AI_OK) {
        db_rollback(st);
        return rc;
    }
    return keys_load(st, now_ms, err);
}

ai_code store_first_key(store *st, const unsigned char key[AI_KEY_BYTES],
                        int64_t now_ms, const audit_entry *audit,
                        bool *made, ai_err *err)
{
    uint32_t have = 0;
    bool replica = false;
    ai_code rc;

    ai_err_clear(err);
    *made = false;
    /* One transaction: of two first uses at once, the second finds the
     * first one's key and writes nothing. */
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = max_version(st, &have, err)) != AI_OK)
        goto fail;
    if (have != 0)
        return db_commit(st, err);
    /* A replica's keys are the leader's: one of its own would sign tokens
     * nobody else can verify. */
    if ((rc = replica_marked(st, &replica, err)) != AI_OK)
        goto fail;
    if (replica) {
        rc = ai_err_set(err, AI_ENOTFOUND,
                        "no signing key yet (replica not synced)");
        goto fail;
    }
    rc = put_version_1(st, key, now_ms, audit, err);
    *made = rc == AI_OK;
    return rc;
fail:
    db_rollback(st);
    return rc;
}

ai_code store_keyring(store *st, const ai_keyring **out, ai_err *err)
{
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    /* A keyring without a signing key is read again each time: the first
     * key may have been made since, by another handle. */
    if ((st->keys == NULL || ai_keyring_signing_version(st->keys) == 0) &&
        (rc = keys_load(st, 0, err)) != AI_OK)
        return rc;
    *out = st->keys;
    return AI_OK;
}

ai_code store_rotate_key(store *st, int64_t grace_ms,
                         const unsigned char key[AI_KEY_BYTES],
                         int64_t now_ms, const audit_entry *audit,
                         uint32_t *version, ai_err *err)
{
    char why[64];
    audit_entry row;
    sqlite3_stmt *q = NULL;
    uint32_t have = 0;
    int64_t until;
    ai_code rc;
    int step;

    ai_err_clear(err);
    if (version != NULL)
        *version = 0;
    if (key == NULL)
        return ai_err_set(err, AI_EINVAL, "no new key");
    if (grace_ms < 0)
        grace_ms = STORE_DEFAULT_GRACE_MS;
    until = now_ms + grace_ms;
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = refuse_on_replica(st, "rotate keys", err)) != AI_OK ||
        (rc = max_version(st, &have, err)) != AI_OK)
        goto fail;
    if (have >= (UINT32_C(1) << 31)) {
        rc = ai_err_set(err, AI_EINVAL, "no key version left");
        goto fail;
    }
    /* Every key still verifying without an end (or ending later) now ends
     * at now + grace; one already ending sooner keeps its end. */
    if ((rc = db_prepare(st,
                         "UPDATE signing_keys SET verify_until = ?1 "
                         "WHERE verify_until = 0 OR verify_until > ?1 "
                         "RETURNING version",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_int64(q, 1, until);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_ref ref = {.kind = STORE_KIND_KEY,
                         .version = (uint32_t)sqlite3_column_int64(q, 0)};
        if ((rc = changelog_add(st, &ref, "set", now_ms, err)) != AI_OK)
            goto fail;
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(st, "signing keys", err);
        goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = put_key(st, have + 1, key, now_ms, err)) != AI_OK)
        goto fail;
    if (audit != NULL) {
        /* The new version is known only here, under the write lock. */
        row = *audit;
        if (row.reason == NULL) {
            snprintf(why, sizeof why, "new signing key version %u",
                     (unsigned)(have + 1));
            row.reason = why;
        }
        if ((rc = audit_append(st, &row, err)) != AI_OK)
            goto fail;
    }
    if ((rc = db_commit(st, err)) != AI_OK)
        goto fail;
    if (version != NULL)
        *version = have + 1;
    return keys_load(st, now_ms, err);
fail:
    sqlite3_finalize(q);
    db_rollback(st);
    return rc;
}

ai_code store_note_signed(store *st, ai_err *err)
{
    char *v = NULL;
    ai_code rc;

    ai_err_clear(err);
    rc = meta_get(st, "signed", &v, err);
    if (rc == AI_OK && strcmp(v, "1") == 0) {
        ai_free(v);
        return AI_OK;
    }
    ai_free(v);
    ai_err_clear(err);
    return meta_set(st, "signed", "1", err);
}

ai_code store_import_key(store *st, const unsigned char key[AI_KEY_BYTES],
                         bool force, int64_t now_ms, const audit_entry *audit,
                         ai_err *err)
{
    uint32_t have = 0;
    char *signed_flag = NULL;
    bool used;
    ai_code rc;

    ai_err_clear(err);
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = refuse_on_replica(st, "import keys", err)) != AI_OK ||
        (rc = max_version(st, &have, err)) != AI_OK)
        goto fail;
    rc = meta_get(st, "signed", &signed_flag, err);
    used = rc == AI_OK && strcmp(signed_flag, "0") != 0;
    ai_free(signed_flag);
    if (rc != AI_OK && rc != AI_ENOTFOUND)
        goto fail;
    ai_err_clear(err);
    if (!force && (have > 1 || used)) {
        rc = ai_err_set(err, AI_EDENIED,
                        "this home has already signed tokens with its own "
                        "keys (version %u); importing a key as version 1 "
                        "would break them: pass --force to do it anyway",
                        (unsigned)(have ? have : 1));
        goto fail;
    }
    return put_version_1(st, key, now_ms, audit, err);
fail:
    db_rollback(st);
    return rc;
}

ai_code store_export_key(store *st, uint32_t version,
                         unsigned char out[AI_KEY_BYTES], ai_err *err)
{
    sqlite3_stmt *q;
    unsigned char *secret = NULL;
    size_t n = 0;
    char aad[32];
    ai_code rc;
    int step;

    ai_err_clear(err);
    if ((rc = db_prepare(st,
                         "SELECT secret FROM signing_keys WHERE version = ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, version);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        key_aad(version, aad, sizeof aad);
        rc = unseal(st, aad, sqlite3_column_blob(q, 0),
                    (size_t)sqlite3_column_bytes(q, 0), &secret, &n, err);
        if (rc == AI_OK && n != AI_KEY_BYTES)
            rc = ai_err_set(err, AI_ESTORE, "signing key %u is damaged",
                            (unsigned)version);
        if (rc == AI_OK)
            memcpy(out, secret, AI_KEY_BYTES);
        if (secret != NULL) {
            explicit_bzero(secret, n);
            ai_free(secret);
        }
    } else if (step == SQLITE_DONE) {
        rc = ai_err_set(err, AI_ENOTFOUND, "no signing key version %u",
                        (unsigned)version);
    } else {
        rc = db_fail(st, "signing keys", err);
    }
    sqlite3_finalize(q);
    return rc;
}

ai_code store_list_keys(store *st, int64_t now_ms, key_info **list, size_t *n,
                        ai_err *err)
{
    sqlite3_stmt *q;
    key_info *v = NULL;
    size_t count = 0, cap = 0;
    uint32_t newest = 0;
    ai_code rc;
    int step;

    ai_err_clear(err);
    *list = NULL;
    *n = 0;
    if ((rc = max_version(st, &newest, err)) != AI_OK ||
        (rc = db_prepare(st,
                         "SELECT version, created_at, verify_until FROM "
                         "signing_keys ORDER BY version",
                         &q, err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 8;
            key_info *nv = ai_malloc(nc * sizeof *nv);
            if (nv == NULL) {
                rc = ai_err_set(err, AI_ENOMEM, "out of memory");
                break;
            }
            if (count)
                memcpy(nv, v, count * sizeof *v);
            ai_free(v);
            v = nv;
            cap = nc;
        }
        key_info *k = &v[count++];
        k->version = (uint32_t)sqlite3_column_int64(q, 0);
        k->created_at = sqlite3_column_int64(q, 1);
        k->verify_until = sqlite3_column_int64(q, 2);
        k->state = k->version == newest && k->verify_until == 0
                       ? KEY_SIGNING
                   : k->verify_until == 0 || now_ms < k->verify_until
                       ? KEY_VERIFYING
                       : KEY_RETIRED;
    }
    if (rc == AI_OK && step != SQLITE_DONE)
        rc = db_fail(st, "signing keys", err);
    sqlite3_finalize(q);
    if (rc != AI_OK) {
        ai_free(v);
        return rc;
    }
    *list = v;
    *n = count;
    return AI_OK;
}
