/* replica.c - a follower's copy of the leader's replicated state (DESIGN
 * §5): the leader's snapshot, and batches of its change feed, each applied
 * in one transaction together with the leader seq it reflects (meta
 * "applied_seq"), secrets re-sealed under this home's master key. A home
 * that has applied either is marked a replica (meta "replica"): it never
 * makes or rotates a signing key of its own (keys.c asks replica_marked).
 *
 * DESIGN: both paths go through the same entity writers, with statements
 * prepared once per call and reset after each row (a snapshot may hold
 * 1,000,000 revocations). Input is checked as it is written; the first bad
 * entity rolls the whole transaction back, so a refused batch writes
 * nothing. Each change is logged locally (changelog_add) so that other
 * handles' store_sync follow; a snapshot logs one "reset" row instead,
 * which makes them reload their views whole (db.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

/* As revocations.c checks a reason (API keys and provider configs go
 * through the store's own checks, db.h). */
#define REASON_MAX 512
#define LEADER_URL_MAX 2048

/* The row a snapshot logs instead of one per entity. */
static const store_ref reset = {.kind = STORE_KIND_RESET};

enum { S_KEY_SET, S_KEY_DEL, S_REV_SET, S_REV_DEL, S_PROV_SET, S_PROV_DEL,
       S_API_SET, S_API_DEL, S_COUNT };

static const char *const writer_sql[S_COUNT] = {
    "INSERT INTO signing_keys (version, secret, created_at, verify_until) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET "
    "secret = excluded.secret, created_at = excluded.created_at, "
    "verify_until = excluded.verify_until",
    "DELETE FROM signing_keys WHERE version = ?",
    "INSERT INTO revocations (target, id, reason, revoked_at, prune_after) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, id) DO UPDATE SET "
    "reason = excluded.reason, revoked_at = excluded.revoked_at, "
    "prune_after = excluded.prune_after",
    "DELETE FROM revocations WHERE target = ? AND id = ?",
    "INSERT INTO providers (name, config, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET config = excluded.config, "
    "updated_at = excluded.updated_at",
    "DELETE FROM providers WHERE name = ?",
    "INSERT INTO api_keys (name, provider, secret, base_url, ttl_minutes, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
    "provider = excluded.provider, secret = excluded.secret, "
    "base_url = excluded.base_url, ttl_minutes = excluded.ttl_minutes, "
    "created_at = excluded.created_at",
    "DELETE FROM api_keys WHERE name = ?",
};

/* One transaction's writes: the statements, and what is being written
 * ("change" and its seq, or "snapshot revocation" and its index) for the
 * error message. */
typedef struct writer {
    store *st;
    sqlite3_stmt *q[S_COUNT];
    bool log;       /* a changelog row per entity (not for a snapshot) */
    int64_t now_ms;
    const char *what;
    long long n;
    ai_err *err;
} writer;

static ai_code writer_open(writer *w, store *st, bool log, int64_t now_ms,
                           ai_err *err)
{
    ai_code rc;

    memset(w, 0, sizeof *w);
    w->st = st;
    w->log = log;
    w->now_ms = now_ms;
    w->what = "replica";
    w->err = err;
    for (int i = 0; i < S_COUNT; i++)
        if ((rc = db_prepare(st, writer_sql[i], &w->q[i], err)) != AI_OK)
            return rc;
    return AI_OK;
}

static void writer_close(writer *w)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(w->q[i]);
        w->q[i] = NULL;
    }
}

static ai_code bad(const writer *w, const char *why)
{
    return ai_err_set(w->err, AI_EINVAL, "%s %lld: %s", w->what, w->n, why);
}

/* Step a bound statement, then reset it for the next row (and drop its
 * bindings, which may point at buffers about to be freed). */
static ai_code run(writer *w, int s, const char *what)
{
    ai_code rc = AI_OK;

    if (sqlite3_step(w->q[s]) != SQLITE_DONE)
        rc = db_fail(w->st, what, w->err);
    sqlite3_reset(w->q[s]);
    sqlite3_clear_bindings(w->q[s]);
    return rc;
}

static ai_code logged(writer *w, const store_ref *ref, const char *op)
{
    return w->log ? changelog_add(w->st, ref, op, w->now_ms, w->err) : AI_OK;
}

/* ---- checks ------------------------------------------------------------ */

static bool get_int(const json_t *o, const char *k, int64_t min, int64_t max,
                    int64_t *out)
{
    const json_t *v = json_object_get(o, k);

    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* A string member of 1..max bytes without NUL; NULL otherwise. */
static const char *get_str(const json_t *o, const char *k, size_t max)
{
    const json_t *v = json_object_get(o, k);
    const char *s = json_string_value(v);

    if (s == NULL || json_string_length(v) == 0 ||
        json_string_length(v) > max || strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

static bool no_controls(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* ---- entity writers ---------------------------------------------------- */

/* A key object; want_version 0 takes any version. */
static ai_code key_put(writer *w, const json_t *v, int64_t want_version)
{
    unsigned char secret[48], *blob = NULL;
    size_t n = 0, bloblen = 0;
    int64_t ver, created, until;
    const char *b64 = get_str(v, "secret", 64);
    char aad[32];
    store_ref ref = {.kind = STORE_KIND_KEY};
    ai_code rc;

    if (!get_int(v, "version", 1, INT64_C(2147483648), &ver) ||
        (want_version != 0 && ver != want_version))
        return bad(w, "bad key version");
    if (!get_int(v, "createdAt", 0, INT64_MAX, &created) ||
        !get_int(v, "verifyUntil", 0, INT64_MAX, &until))
        return bad(w, "bad key times");
    if (b64 == NULL || strlen(b64) != b64url_encoded_len(AI_KEY_BYTES) ||
        !b64url_decode(b64, strlen(b64), secret, &n) || n != AI_KEY_BYTES) {
        explicit_bzero(secret, sizeof secret);
        return bad(w, "a key secret is 32 bytes of base64url");
    }
    snprintf(aad, sizeof aad, "signing_key:%u", (unsigned)ver);
    ref.version = (uint32_t)ver;
    rc = seal(w->st, aad, secret, AI_KEY_BYTES, &blob, &bloblen, w->err);
    explicit_bzero(secret, sizeof secret);
    if (rc != AI_OK)
        return rc;
    sqlite3_bind_int64(w->q[S_KEY_SET], 1, ver);
    sqlite3_bind_blob(w->q[S_KEY_SET], 2, blob, (int)bloblen, SQLITE_STATIC);
    sqlite3_bind_int64(w->q[S_KEY_SET], 3, created);
    sqlite3_bind_int64(w->q[S_KEY_SET], 4, until);
    rc = run(w, S_KEY_SET, "signing keys");
    ai_free(blob);
    return rc != AI_OK ? rc : logged(w, &ref, "set");
}

/* A revocation object; want (what the change's key names) NULL takes
 * any. */
static ai_code rev_put(writer *w, const json_t *v, const store_ref *want)
{
    const char *target = json_string_value(json_object_get(v, "target"));
    const char *id = get_str(v, "id", AI_ID_MAX);
    const json_t *jreason = json_object_get(v, "reason");
    const char *reason = json_string_value(jreason);
    int64_t at, prune;
    store_ref ref = {.kind = STORE_KIND_REVOCATION, .name = id};
    char key[STORE_CHANGE_KEY_CAP];
    ai_code rc;

    if (target == NULL ||
        (strcmp(target, "token") != 0 && strcmp(target, "agent") != 0))
        return bad(w, "a revocation target is \"token\" or \"agent\"");
    ref.target = target[0] == 'a' ? REVOKE_AGENT : REVOKE_TOKEN;
    if (!store_change_key(&ref, key))
        return bad(w, "bad revocation id");
    if (jreason != NULL && (reason == NULL || json_string_length(jreason) > REASON_MAX ||
                       strlen(reason) != json_string_length(jreason)))
        return bad(w, "bad revocation reason");
    if (!get_int(v, "revokedAt", 0, INT64_MAX, &at) ||
        !get_int(v, "pruneAfter", 0, INT64_MAX, &prune))
        return bad(w, "bad revocation times");
    if (want != NULL &&
        (want->target != ref.target || strcmp(want->name, id) != 0))
        return bad(w, "the revocation does not match its key");
    sqlite3_bind_int(w->q[S_REV_SET], 1, (int)ref.target);
    sqlite3_bind_text(w->q[S_REV_SET], 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(w->q[S_REV_SET], 3, reason ? reason : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(w->q[S_REV_SET], 4, at);
    sqlite3_bind_int64(w->q[S_REV_SET], 5, prune);
    if ((rc = run(w, S_REV_SET, "revocations")) != AI_OK)
        return rc;
    return logged(w, &ref, "set");
}

/* An object of string, number and boolean members, as providers.c takes
 * it, sealed as compact JSON. */
static ai_code prov_put(writer *w, const char *name, json_t *cfg)
{
    char text[PROVIDER_JSON_MAX + 1], aad[32];
    unsigned char *blob = NULL;
    size_t n, bloblen = 0;
    store_ref ref = {.kind = STORE_KIND_PROVIDER, .name = name};
    ai_err cerr;
    ai_code rc;

    if (!json_is_object(cfg))
        return bad(w, "a provider config is an object");
    n = json_dumpb(cfg, text, sizeof text - 1,
                   JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (n == 0 || n > PROVIDER_JSON_MAX) {
        explicit_bzero(text, sizeof text);
        return bad(w, "a provider config is at most 8192 bytes of JSON");
    }
    text[n] = '\0';
    if (provider_check(name, text, &cerr) != AI_OK) {
        explicit_bzero(text, sizeof text);
        return bad(w, cerr.msg);
    }
    snprintf(aad, sizeof aad, "provider:%s", name);
    rc = seal(w->st, aad, text, n, &blob, &bloblen, w->err);
    explicit_bzero(text, sizeof text);
    if (rc != AI_OK)
        return rc;
    sqlite3_bind_text(w->q[S_PROV_SET], 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(w->q[S_PROV_SET], 2, blob, (int)bloblen, SQLITE_STATIC);
    sqlite3_bind_int64(w->q[S_PROV_SET], 3, w->now_ms);
    rc = run(w, S_PROV_SET, "provider config");
    ai_free(blob);
    return rc != AI_OK ? rc : logged(w, &ref, "set");
}

/* An API key object; want_name NULL takes any. */
static ai_code api_put(writer *w, const json_t *v, const char *want_name)
{
    const char *name = get_str(v, "name", APIKEY_NAME_MAX);
    const char *prov = get_str(v, "provider", APIKEY_NAME_MAX);
    const char *secret = get_str(v, "secret", APIKEY_SECRET_MAX);
    const json_t *ju = json_object_get(v, "baseUrl");
    const char *url = get_str(v, "baseUrl", APIKEY_URL_MAX);
    unsigned char *blob = NULL;
    size_t bloblen = 0;
    int64_t ttl, created;
    char aad[APIKEY_NAME_MAX + 16];
    store_ref ref = {.kind = STORE_KIND_APIKEY, .name = name};
    ai_err cerr;
    ai_code rc;

    if (name == NULL || prov == NULL ||
        (want_name != NULL && strcmp(name, want_name) != 0))
        return bad(w, "bad API key name or provider");
    if (ju != NULL && !json_is_null(ju) && url == NULL)
        return bad(w, "bad API key base URL");
    if (!get_int(v, "ttlMinutes", 0, APIKEY_TTL_MAX, &ttl) ||
        !get_int(v, "createdAt", 0, INT64_MAX, &created))
        return bad(w, "bad API key TTL or time");
    {
        apikey_info info = {name, prov, url, (int)ttl, created};
        if (apikey_check(&info, secret, &cerr) != AI_OK)
            return bad(w, cerr.msg);
    }
    snprintf(aad, sizeof aad, "apikey:%s", name);
    if ((rc = seal(w->st, aad, secret, strlen(secret), &blob, &bloblen,
                   w->err)) != AI_OK)
        return rc;
    sqlite3_bind_text(w->q[S_API_SET], 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(w->q[S_API_SET], 2, prov, -1, SQLITE_STATIC);
    sqlite3_bind_blob(w->q[S_API_SET], 3, blob, (int)bloblen, SQLITE_STATIC);
    if (url != NULL)
        sqlite3_bind_text(w->q[S_API_SET], 4, url, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(w->q[S_API_SET], 4);
    sqlite3_bind_int64(w->q[S_API_SET], 5, ttl);
    sqlite3_bind_int64(w->q[S_API_SET], 6, created);
    rc = run(w, S_API_SET, "API keys");
    ai_free(blob);
    return rc != AI_OK ? rc : logged(w, &ref, "set");
}

/* Delete what the change names (absent is fine), logged as a delete. */
static ai_code del(writer *w, const store_ref *ref)
{
    ai_code rc;

    switch (ref->kind) {
    case STORE_KIND_KEY:
        sqlite3_bind_int64(w->q[S_KEY_DEL], 1, ref->version);
        rc = run(w, S_KEY_DEL, "signing keys");
        break;
    case STORE_KIND_REVOCATION:
        sqlite3_bind_int(w->q[S_REV_DEL], 1, (int)ref->target);
        sqlite3_bind_text(w->q[S_REV_DEL], 2, ref->name, -1, SQLITE_STATIC);
        rc = run(w, S_REV_DEL, "revocations");
        break;
    case STORE_KIND_PROVIDER:
        sqlite3_bind_text(w->q[S_PROV_DEL], 1, ref->name, -1, SQLITE_STATIC);
        rc = run(w, S_PROV_DEL, "provider config");
        break;
    case STORE_KIND_APIKEY:
        sqlite3_bind_text(w->q[S_API_DEL], 1, ref->name, -1, SQLITE_STATIC);
        rc = run(w, S_API_DEL, "API keys");
        break;
    default:
        return bad(w, "unknown kind");
    }
    return rc != AI_OK ? rc : logged(w, ref, "delete");
}

/* One change of the feed: {seq, kind, key, op, value?}. */
static ai_code apply_one(writer *w, const json_t *c, size_t index)
{
    const char *kind, *key, *op;
    json_t *value;
    int64_t seq;
    store_ref ref;

    w->what = "change";
    w->n = (long long)index;
    if (!json_is_object(c) || !get_int(c, "seq", 1, INT64_MAX, &seq))
        return ai_err_set(w->err, AI_EINVAL, "change #%zu: no seq", index);
    w->n = (long long)seq;
    kind = get_str(c, "kind", 16);
    key = get_str(c, "key", STORE_CHANGE_KEY_CAP - 1);
    op = get_str(c, "op", 8);
    if (kind == NULL || key == NULL || op == NULL ||
        (strcmp(op, "set") != 0 && strcmp(op, "delete") != 0))
        return bad(w, "a change has a kind, a key and op set or delete");
    /* a leader never sends a reset: that row is a replica's own */
    if (!store_change_parse(kind, key, &ref) || ref.kind == STORE_KIND_RESET)
        return bad(w, store_kind_name(ref.kind) == NULL ||
                              ref.kind == STORE_KIND_RESET
                          ? "unknown kind"
                          : "bad key");
    value = json_object_get(c, "value");
    if (strcmp(op, "delete") == 0 || value == NULL || json_is_null(value))
        return del(w, &ref);
    switch (ref.kind) {
    case STORE_KIND_KEY:
        return key_put(w, value, ref.version);
    case STORE_KIND_REVOCATION:
        return rev_put(w, value, &ref);
    case STORE_KIND_PROVIDER:
        return prov_put(w, ref.name, value);
    case STORE_KIND_APIKEY:
        return api_put(w, value, ref.name);
    default:
        return bad(w, "unknown kind");
    }
}

/* ---- meta -------------------------------------------------------------- */

static ai_code meta_get_int(store *st, const char *key, int64_t *v,
                            ai_err *err)
{
    char *s = NULL, *end;
    ai_code rc = meta_get(st, key, &s, err);

    *v = 0;
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc == AI_OK) {
        *v = strtoll(s, &end, 10);
        if (*end != '\0')
            rc = ai_err_set(err, AI_ESTORE, "meta %s is damaged", key);
    }
    ai_free(s);
    return rc;
}

static ai_code meta_set_int(store *st, const char *key, int64_t v,
                            ai_err *err)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return meta_set(st, key, buf, err);
}

/* Within the caller's transaction: this home reflects leader seq `seq`,
 * whose place in the leader's hash chain is hash ("" or NULL: unknown). */
static ai_code mark_applied(store *st, int64_t seq, const char *hash,
                            ai_err *err)
{
    ai_code rc = meta_set_int(st, "applied_seq", seq, err);

    if (rc == AI_OK)
        rc = meta_set(st, "applied_hash", hash ? hash : "", err);
    return rc != AI_OK ? rc : meta_set(st, "replica", "1", err);
}

ai_code replica_marked(store *st, bool *yes, ai_err *err)
{
    char *v = NULL;
    ai_code rc = meta_get(st, "replica", &v, err);

    *yes = rc == AI_OK && strcmp(v, "1") == 0;
    ai_free(v);
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        rc = AI_OK;
    }
    return rc;
}

ai_code store_is_replica(store *st, bool *yes, ai_err *err)
{
    ai_err_clear(err);
    return replica_marked(st, yes, err);
}

ai_code store_mark_replica(store *st, ai_err *err)
{
    ai_err_clear(err);
    return meta_set(st, "replica", "1", err);
}

ai_code store_applied_seq(store *st, int64_t *seq, ai_err *err)
{
    ai_err_clear(err);
    return meta_get_int(st, "applied_seq", seq, err);
}

ai_code store_applied_hash(store *st, char hex[STORE_HASH_HEX + 1],
                           ai_err *err)
{
    unsigned char raw[STORE_HASH_BYTES];
    char *v = NULL;
    ai_code rc;

    ai_err_clear(err);
    hex[0] = '\0';
    rc = meta_get(st, "applied_hash", &v, err);
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc == AI_OK && store_hash_parse(v, raw))
        memcpy(hex, v, STORE_HASH_HEX + 1);
    ai_free(v);
    return rc;
}

/* ---- applying ---------------------------------------------------------- */

/* After a batch committed: this handle's own views (data_version does not
 * move for its own commits, so store_sync would not see them). */
static ai_code refresh_views(store *st, const json_t *changes, ai_err *err)
{
    size_t i;
    json_t *c;
    bool reload = false;
    ai_code rc;

    json_array_foreach(changes, i, c) {
        if ((rc = views_apply(st, json_string_value(json_object_get(c, "kind")),
                              json_string_value(json_object_get(c, "key")),
                              &reload, err)) != AI_OK)
            return rc;
        if (reload)
            return views_reload(st, err);
    }
    return AI_OK;
}

ai_code store_apply_changes(store *st, const json_t *changes, int64_t new_seq,
                            const char *new_hash, int64_t now_ms, ai_err *err)
{
    writer w;
    int64_t have = 0;
    size_t i;
    json_t *c;
    ai_code rc;

    ai_err_clear(err);
    memset(&w, 0, sizeof w);
    if (!json_is_array(changes) || new_seq < 0)
        return ai_err_set(err, AI_EINVAL,
                          "changes are an array and a seq is >= 0");
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = meta_get_int(st, "applied_seq", &have, err)) != AI_OK)
        goto fail;
    if (new_seq <= have) {
        db_rollback(st); /* already applied (or older): nothing to do */
        return AI_OK;
    }
    if ((rc = writer_open(&w, st, true, now_ms, err)) != AI_OK)
        goto fail;
    json_array_foreach(changes, i, c) {
        if ((rc = apply_one(&w, c, i)) != AI_OK)
            goto fail;
    }
    writer_close(&w);
    if ((rc = mark_applied(st, new_seq, new_hash, err)) != AI_OK ||
        (rc = db_commit(st, err)) != AI_OK)
        goto fail;
    return refresh_views(st, changes, err);
fail:
    writer_close(&w);
    db_rollback(st);
    return rc;
}

/* The snapshot's four collections, each checked as it is written. */
static ai_code snapshot_write(writer *w, const json_t *snap)
{
    json_t *keys = json_object_get(snap, "keys");
    json_t *revs = json_object_get(snap, "revocations");
    json_t *provs = json_object_get(snap, "providers");
    json_t *apis = json_object_get(snap, "apiKeys");
    json_t *v;
    const char *name;
    size_t i;
    ai_code rc;

    if (!json_is_array(keys) || !json_is_array(revs) ||
        !json_is_object(provs) || !json_is_array(apis))
        return ai_err_set(w->err, AI_EINVAL,
                          "a snapshot has keys, revocations, providers and "
                          "apiKeys");
    w->what = "snapshot key";
    json_array_foreach(keys, i, v) {
        w->n = (long long)i;
        if ((rc = key_put(w, v, 0)) != AI_OK)
            return rc;
    }
    w->what = "snapshot revocation";
    json_array_foreach(revs, i, v) {
        w->n = (long long)i;
        if ((rc = rev_put(w, v, NULL)) != AI_OK)
            return rc;
    }
    w->what = "snapshot provider";
    w->n = 0;
    json_object_foreach(provs, name, v) {
        if ((rc = prov_put(w, name, v)) != AI_OK)
            return rc;
        w->n++;
    }
    w->what = "snapshot API key";
    json_array_foreach(apis, i, v) {
        w->n = (long long)i;
        if ((rc = api_put(w, v, NULL)) != AI_OK)
            return rc;
    }
    return AI_OK;
}

ai_code store_apply_snapshot(store *st, const json_t *snap, int64_t now_ms,
                             ai_err *err)
{
    writer w;
    int64_t seq = 0;
    ai_code rc;

    ai_err_clear(err);
    memset(&w, 0, sizeof w);
    if (!json_is_object(snap) || !get_int(snap, "seq", 0, INT64_MAX, &seq))
        return ai_err_set(err, AI_EINVAL, "a snapshot is an object with a seq");
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = db_exec(st,
                      "DELETE FROM signing_keys; DELETE FROM revocations; "
                      "DELETE FROM providers; DELETE FROM api_keys;",
                      err)) != AI_OK ||
        (rc = writer_open(&w, st, false, now_ms, err)) != AI_OK ||
        (rc = snapshot_write(&w, snap)) != AI_OK)
        goto fail;
    writer_close(&w);
    if ((rc = mark_applied(st, seq, NULL, err)) != AI_OK ||
        (rc = changelog_add(st, &reset, "set", now_ms, err)) != AI_OK ||
        (rc = db_commit(st, err)) != AI_OK)
        goto fail;
    return views_reload(st, err);
fail:
    writer_close(&w);
    db_rollback(st);
    return rc;
}

/* ---- follower bookkeeping ---------------------------------------------- */

ai_code store_follower_meta_set(store *st, const char *leader_url,
                                int64_t last_contact_ms, ai_err *err)
{
    ai_code rc;

    ai_err_clear(err);
    if (leader_url != NULL &&
        (strnlen(leader_url, LEADER_URL_MAX + 1) > LEADER_URL_MAX ||
         !no_controls(leader_url)))
        return ai_err_set(err, AI_EINVAL,
                          "a leader URL is at most %d printable characters",
                          LEADER_URL_MAX);
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((leader_url != NULL &&
         (rc = meta_set(st, "follower_leader_url", leader_url, err)) !=
             AI_OK) ||
        (last_contact_ms >= 0 &&
         (rc = meta_set_int(st, "follower_last_contact_ms", last_contact_ms,
                            err)) != AI_OK) ||
        (rc = db_commit(st, err)) != AI_OK) {
        db_rollback(st);
        return rc;
    }
    return AI_OK;
}

ai_code store_follower_meta_get(store *st, char **leader_url,
                                int64_t *last_contact_ms, ai_err *err)
{
    ai_code rc;

    ai_err_clear(err);
    *leader_url = NULL;
    *last_contact_ms = 0;
    rc = meta_get(st, "follower_leader_url", leader_url, err);
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        rc = AI_OK;
    }
    if (rc == AI_OK &&
        (rc = meta_get_int(st, "follower_last_contact_ms", last_contact_ms,
                           err)) != AI_OK) {
        ai_free(*leader_url);
        *leader_url = NULL;
    }
    return rc;
}

/* ---- a snapshot applied line by line (the NDJSON stream) -------------- */

struct snap_apply {
    store *st;
    writer w;
    int64_t now_ms;
    long long n;
};

ai_code store_snapshot_apply_begin(store *st, int64_t now_ms,
                                   snap_apply **out, ai_err *err)
{
    snap_apply *a;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    if ((a = ai_calloc(1, sizeof *a)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    a->st = st;
    a->now_ms = now_ms;
    if ((rc = db_begin(st, err)) != AI_OK) {
        ai_free(a);
        return rc;
    }
    if ((rc = db_exec(st,
                      "DELETE FROM signing_keys; DELETE FROM revocations; "
                      "DELETE FROM providers; DELETE FROM api_keys;",
                      err)) != AI_OK ||
        (rc = writer_open(&a->w, st, false, now_ms, err)) != AI_OK) {
        store_snapshot_apply_abort(a);
        return rc;
    }
    *out = a;
    return AI_OK;
}

ai_code store_snapshot_apply_line(snap_apply *a, const json_t *line,
                                  ai_err *err)
{
    const char *kind = json_string_value(json_object_get(line, "kind"));
    json_t *v = json_object_get(line, "value");

    ai_err_clear(err);
    a->w.err = err;
    a->w.n = a->n++;
    if (kind == NULL || !json_is_object(v))
        return ai_err_set(err, AI_EINVAL,
                          "snapshot line %lld: no kind or value", a->w.n);
    if (strcmp(kind, "key") == 0) {
        a->w.what = "snapshot key";
        return key_put(&a->w, v, 0);
    }
    if (strcmp(kind, "revocation") == 0) {
        a->w.what = "snapshot revocation";
        return rev_put(&a->w, v, NULL);
    }
    if (strcmp(kind, "provider") == 0) {
        const char *name = json_string_value(json_object_get(line, "name"));
        a->w.what = "snapshot provider";
        if (name == NULL)
            return ai_err_set(err, AI_EINVAL,
                              "snapshot line %lld: a provider has a name",
                              a->w.n);
        return prov_put(&a->w, name, v);
    }
    if (strcmp(kind, "apikey") == 0) {
        a->w.what = "snapshot API key";
        return api_put(&a->w, v, NULL);
    }
    return ai_err_set(err, AI_EINVAL, "snapshot line %lld: unknown kind",
                      a->w.n);
}

ai_code store_snapshot_apply_commit(snap_apply *a, int64_t seq,
                                    const char *hash, ai_err *err)
{
    store *st = a->st;
    ai_code rc;

    ai_err_clear(err);
    writer_close(&a->w);
    if ((rc = mark_applied(st, seq, hash, err)) != AI_OK ||
        (rc = changelog_add(st, &reset, "set", a->now_ms, err)) !=
            AI_OK ||
        (rc = db_commit(st, err)) != AI_OK) {
        db_rollback(st);
        ai_free(a);
        return rc;
    }
    ai_free(a);
    return views_reload(st, err);
}

void store_snapshot_apply_abort(snap_apply *a)
{
    if (a == NULL)
        return;
    writer_close(&a->w);
    db_rollback(a->st);
    ai_free(a);
}

/* ---- the leader a replica follows -------------------------------------- */

ai_code store_replica_leader_id(store *st, char out[STORE_LEADER_ID_LEN + 1],
                                ai_err *err)
{
    char *v = NULL;
    ai_code rc;

    ai_err_clear(err);
    out[0] = '\0';
    if ((rc = meta_get(st, "replica_leader_id", &v, err)) == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc == AI_OK)
        snprintf(out, STORE_LEADER_ID_LEN + 1, "%s", v);
    ai_free(v);
    return rc;
}

ai_code store_set_replica_leader_id(store *st, const char *id, ai_err *err)
{
    ai_err_clear(err);
    return meta_set(st, "replica_leader_id", id, err);
}
