/* changelog.c - the replication log: one row per change followers need,
 * written in the same transaction as the change, with an increasing seq.
 * Rows name the entity; readers fetch its current state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "store/db.h"

void store_change_hash(const unsigned char prev[STORE_HASH_BYTES],
                       const store_change *c,
                       unsigned char out[STORE_HASH_BYTES])
{
    unsigned char num[16];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;

    for (int i = 0; i < 8; i++) {
        num[i] = (unsigned char)((uint64_t)c->seq >> (56 - 8 * i));
        num[8 + i] = (unsigned char)((uint64_t)c->at >> (56 - 8 * i));
    }
    if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(md, prev, STORE_HASH_BYTES) ||
        !EVP_DigestUpdate(md, num, sizeof num) ||
        !EVP_DigestUpdate(md, c->kind, strlen(c->kind) + 1) ||
        !EVP_DigestUpdate(md, c->key, strlen(c->key)) ||
        !EVP_DigestFinal_ex(md, out, &n))
        abort(); /* out of memory in OpenSSL: no chain can be trusted */
    EVP_MD_CTX_free(md);
}

void store_hash_hex(const unsigned char raw[STORE_HASH_BYTES],
                    char hex[STORE_HASH_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < STORE_HASH_BYTES; i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 15];
    }
    hex[STORE_HASH_HEX] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool store_hash_parse(const char *hex, unsigned char raw[STORE_HASH_BYTES])
{
    if (hex == NULL || strlen(hex) != STORE_HASH_HEX)
        return false;
    for (int i = 0; i < STORE_HASH_BYTES; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* The hash of the newest row below seq (zero when there is none, or it
 * has none: a log that starts there). */
static ai_code hash_before(store *st, int64_t seq,
                           unsigned char prev[STORE_HASH_BYTES], ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    memset(prev, 0, STORE_HASH_BYTES);
    if ((rc = db_prepare(st,
                         "SELECT hash FROM changelog WHERE seq < ? "
                         "ORDER BY seq DESC LIMIT 1",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, seq);
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) == STORE_HASH_BYTES)
            memcpy(prev, sqlite3_column_blob(q, 0), STORE_HASH_BYTES);
    } else if (step != SQLITE_DONE) {
        rc = db_fail(st, "changelog", err);
    }
    sqlite3_finalize(q);
    return rc;
}

static ai_code set_hash(store *st, int64_t seq,
                        const unsigned char h[STORE_HASH_BYTES], ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    if ((rc = db_prepare(st, "UPDATE changelog SET hash = ? WHERE seq = ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_blob(q, 1, h, STORE_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, seq);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

/* ---- the change key ----------------------------------------------------
 * The one writer and the one reader of a change's (kind, key): every row
 * of the log is written through store_change_key (changelog_add) and read
 * through store_change_parse (the views, the feed's values, a replica's
 * apply), so what one accepts the other wrote. */

static const char *const kind_names[] = {
    [STORE_KIND_KEY] = "key",           [STORE_KIND_REVOCATION] = "revocation",
    [STORE_KIND_PROVIDER] = "provider", [STORE_KIND_APIKEY] = "apikey",
    [STORE_KIND_RESET] = "reset",
};

const char *store_kind_name(store_kind kind)
{
    return (unsigned)kind < sizeof kind_names / sizeof *kind_names
               ? kind_names[kind]
               : NULL;
}

/* An id as store_revoke takes it: 1 to AI_ID_MAX bytes of UTF-8 without
 * control characters. */
static bool id_valid(const char *id)
{
    size_t n = strnlen(id, AI_ID_MAX + 1);

    if (n == 0 || n > AI_ID_MAX || !utf8_valid(id, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return false;
    return true;
}

/* A signing key's version: 1 to 2^31 in decimal, no sign, no leading
 * zero, nothing after. */
static bool version_parse(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (s[0] < '1' || s[0] > '9')
        return false;
    for (i = 0; s[i] != '\0'; i++) {
        if (i >= 10 || s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT64_C(2147483648))
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Whether ref names an entity a change may name (what the parser takes). */
static bool ref_valid(const store_ref *r)
{
    switch (r->kind) {
    case STORE_KIND_KEY:
        return r->version >= 1 && r->version <= UINT32_C(2147483648);
    case STORE_KIND_REVOCATION:
        return (r->target == REVOKE_TOKEN || r->target == REVOKE_AGENT) &&
               r->name != NULL && id_valid(r->name);
    case STORE_KIND_PROVIDER:
        return provider_known(r->name);
    case STORE_KIND_APIKEY:
        return r->name != NULL && word_valid(r->name, APIKEY_NAME_MAX);
    case STORE_KIND_RESET:
        return true;
    }
    return false;
}

bool store_change_key(const store_ref *ref, char out[STORE_CHANGE_KEY_CAP])
{
    out[0] = '\0';
    if (!ref_valid(ref))
        return false;
    switch (ref->kind) {
    case STORE_KIND_KEY:
        snprintf(out, STORE_CHANGE_KEY_CAP, "%u", (unsigned)ref->version);
        break;
    case STORE_KIND_REVOCATION:
        snprintf(out, STORE_CHANGE_KEY_CAP, "%d:%s", (int)ref->target,
                 ref->name);
        break;
    case STORE_KIND_PROVIDER:
    case STORE_KIND_APIKEY:
        snprintf(out, STORE_CHANGE_KEY_CAP, "%s", ref->name);
        break;
    case STORE_KIND_RESET:
        break;
    }
    return true;
}

bool store_change_parse(const char *kind, const char *key, store_ref *out)
{
    size_t k;

    memset(out, 0, sizeof *out);
    if (kind == NULL || key == NULL)
        return false;
    for (k = 0; k < sizeof kind_names / sizeof *kind_names; k++)
        if (strcmp(kind, kind_names[k]) == 0)
            break;
    out->kind = (store_kind)k;
    switch (out->kind) {
    case STORE_KIND_KEY:
        return version_parse(key, &out->version);
    case STORE_KIND_REVOCATION:
        if ((key[0] != '0' && key[0] != '1') || key[1] != ':')
            return false;
        out->target = key[0] == '1' ? REVOKE_AGENT : REVOKE_TOKEN;
        out->name = key + 2;
        return id_valid(out->name);
    case STORE_KIND_PROVIDER:
    case STORE_KIND_APIKEY:
        out->name = key;
        return ref_valid(out);
    case STORE_KIND_RESET:
        return key[0] == '\0';
    }
    return false; /* an unknown kind */
}

/* A statement kept for the store's life (reset after each use). */
static ai_code kept(store *st, sqlite3_stmt **q, const char *sql,
                    ai_err *err)
{
    if (*q != NULL)
        return AI_OK;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, q,
                           NULL) != SQLITE_OK) {
        *q = NULL;
        return db_fail(st, "database", err);
    }
    return AI_OK;
}

ai_code changelog_add(store *st, const store_ref *ref, const char *op,
                      int64_t now_ms, ai_err *err)
{
    unsigned char prev[STORE_HASH_BYTES], h[STORE_HASH_BYTES];
    char key[STORE_CHANGE_KEY_CAP];
    const char *kind = store_kind_name(ref->kind);
    store_change c = {0, now_ms, kind, key, op, ""};
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if (kind == NULL || !store_change_key(ref, key))
        return ai_err_set(err, AI_EINVAL,
                          "changelog: a change must name a valid entity");

    /* The seq AUTOINCREMENT would give (never one used before, even by a
     * row since deleted) and the hash of the newest row, in this
     * transaction: the row goes in whole, chained, in one statement. */
    if ((rc = kept(st, &st->cl_last,
                   "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE "
                   "name = 'changelog'), 0), coalesce((SELECT max(seq) FROM "
                   "changelog), 0), (SELECT hash FROM changelog ORDER BY "
                   "seq DESC LIMIT 1)",
                   err)) != AI_OK ||
        (rc = kept(st, &st->cl_insert,
                   "INSERT INTO changelog (seq, at, kind, key, op, hash) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   err)) != AI_OK)
        return rc;
    q = st->cl_last;
    memset(prev, 0, sizeof prev);
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t a = sqlite3_column_int64(q, 0), b = sqlite3_column_int64(q, 1);
        c.seq = (a > b ? a : b) + 1;
        if (sqlite3_column_bytes(q, 2) == STORE_HASH_BYTES)
            memcpy(prev, sqlite3_column_blob(q, 2), STORE_HASH_BYTES);
    }
    if (step != SQLITE_ROW)
        rc = db_fail(st, "changelog", err);
    sqlite3_reset(q);
    if (rc != AI_OK)
        return rc;
    store_change_hash(prev, &c, h);
    q = st->cl_insert;
    sqlite3_bind_int64(q, 1, c.seq);
    sqlite3_bind_int64(q, 2, now_ms);
    sqlite3_bind_text(q, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, op, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 6, h, STORE_HASH_BYTES, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, "changelog", err);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc;
}

/* A row read as "seq, at, kind, key, op" (the hash apart). */
static void row_change(sqlite3_stmt *q, store_change *c)
{
    c->seq = sqlite3_column_int64(q, 0);
    c->at = sqlite3_column_int64(q, 1);
    c->kind = (const char *)sqlite3_column_text(q, 2);
    c->key = (const char *)sqlite3_column_text(q, 3);
    c->op = (const char *)sqlite3_column_text(q, 4);
    c->hash[0] = '\0';
}

ai_code changelog_backfill(store *st, ai_err *err)
{
    unsigned char prev[STORE_HASH_BYTES], h[STORE_HASH_BYTES];
    sqlite3_stmt *q = NULL;
    int64_t newest = 0, missing = 0;
    ai_code rc;
    int step;

    /* Only when the newest row has none: after the migration that added
     * the chain, or rows written by something that does not know it. */
    if ((rc = db_prepare(st,
                         "SELECT seq, hash IS NULL FROM changelog "
                         "ORDER BY seq DESC LIMIT 1",
                         &q, err)) != AI_OK)
        return rc;
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        newest = sqlite3_column_int64(q, 0);
        missing = sqlite3_column_int64(q, 1);
    } else if (step != SQLITE_DONE) {
        rc = db_fail(st, "changelog", err);
    }
    sqlite3_finalize(q);
    if (rc != AI_OK || newest == 0 || !missing)
        return rc;
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    /* From the first row without a hash to the end, each chained to the
     * one before: the rows after it change too, whatever they held. */
    if ((rc = db_prepare(st,
                         "SELECT seq, at, kind, key, op FROM changelog "
                         "WHERE seq >= (SELECT min(seq) FROM changelog "
                         "WHERE hash IS NULL) ORDER BY seq",
                         &q, err)) != AI_OK)
        goto fail;
    for (bool first = true; (step = sqlite3_step(q)) == SQLITE_ROW;
         first = false) {
        store_change c;
        row_change(q, &c);
        if (first && (rc = hash_before(st, c.seq, prev, err)) != AI_OK)
            goto fail;
        store_change_hash(prev, &c, h);
        if ((rc = set_hash(st, c.seq, h, err)) != AI_OK)
            goto fail;
        memcpy(prev, h, sizeof h);
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(st, "changelog", err);
        goto fail;
    }
    sqlite3_finalize(q);
    return db_commit(st, err);
fail:
    sqlite3_finalize(q);
    db_rollback(st);
    return rc;
}

ai_code store_changelog_head(store *st, int64_t *seq, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    *seq = 0;
    if ((rc = db_prepare(st, "SELECT coalesce(max(seq), 0) FROM changelog",
                         &q, err)) != AI_OK)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW)
        *seq = sqlite3_column_int64(q, 0);
    else
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

/* A row's stored hash as hex, "" when it has none. */
static void column_hash(sqlite3_stmt *q, int col, char hex[STORE_HASH_HEX + 1])
{
    if (sqlite3_column_bytes(q, col) == STORE_HASH_BYTES)
        store_hash_hex(sqlite3_column_blob(q, col), hex);
    else
        hex[0] = '\0';
}

ai_code store_changes(store *st, int64_t since, size_t limit, change_fn fn,
                      void *ud, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if ((rc = db_prepare(st,
                         "SELECT seq, at, kind, key, op, hash FROM changelog "
                         "WHERE seq > ? ORDER BY seq LIMIT ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, since);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)limit);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_change c;
        row_change(q, &c);
        column_hash(q, 5, c.hash);
        if (!fn(ud, &c)) {
            step = SQLITE_DONE;
            break;
        }
    }
    if (step != SQLITE_DONE)
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_change_hash_at(store *st, int64_t seq,
                             char hex[STORE_HASH_HEX + 1], bool *found,
                             ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    ai_err_clear(err);
    hex[0] = '\0';
    *found = false;
    if ((rc = db_prepare(st, "SELECT hash FROM changelog WHERE seq = ?", &q,
                         err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, seq);
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        column_hash(q, 0, hex);
        *found = hex[0] != '\0';
    } else if (step != SQLITE_DONE) {
        rc = db_fail(st, "changelog", err);
    }
    sqlite3_finalize(q);
    return rc;
}

ai_code store_changelog_oldest(store *st, int64_t *seq, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    ai_err_clear(err);
    *seq = 0;
    if ((rc = db_prepare(st, "SELECT coalesce(min(seq), 0) FROM changelog",
                         &q, err)) != AI_OK)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW)
        *seq = sqlite3_column_int64(q, 0);
    else
        rc = db_fail(st, "changelog", err);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_changelog_trim(store *st, int64_t keep, int64_t min_age_ms,
                             int64_t now_ms, int64_t *removed, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    ai_err_clear(err);
    *removed = 0;
    if ((rc = db_prepare(st,
                         "DELETE FROM changelog WHERE seq <= "
                         "(SELECT coalesce(max(seq), 0) FROM changelog) - ? "
                         "AND at < ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, keep < 1 ? 1 : keep);
    sqlite3_bind_int64(q, 2, now_ms - min_age_ms);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, "changelog trim", err);
    else
        *removed = sqlite3_changes(st->db);
    sqlite3_finalize(q);
    return rc;
}

ai_code store_group_id(store *st, char out[STORE_LEADER_ID_LEN + 1],
                       ai_err *err)
{
    static const char label[] = "agent-iam leader group v1";
    unsigned char mac[32];
    unsigned int len = sizeof mac;

    ai_err_clear(err);
    HMAC(EVP_sha256(), st->master, AI_KEY_BYTES,
         (const unsigned char *)label, sizeof label - 1, mac, &len);
    for (size_t i = 0; i < STORE_LEADER_ID_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    OPENSSL_cleanse(mac, sizeof mac);
    /* what store_leader_id (the feed, the snapshot) says from now on */
    return meta_set(st, "leader_id", out, err);
}

ai_code store_leader_id(store *st, char out[STORE_LEADER_ID_LEN + 1],
                        ai_err *err)
{
    unsigned char raw[STORE_LEADER_ID_LEN / 2];
    char *v = NULL;
    ai_code rc;

    ai_err_clear(err);
    if ((rc = meta_get(st, "leader_id", &v, err)) == AI_OK && v != NULL &&
        strlen(v) == STORE_LEADER_ID_LEN) {
        memcpy(out, v, STORE_LEADER_ID_LEN + 1);
        ai_free(v);
        return AI_OK;
    }
    ai_free(v);
    if (rc != AI_OK && rc != AI_ENOTFOUND)
        return rc;
    ai_err_clear(err);
    if (!rand_fill(raw, sizeof raw))
        return ai_err_set(err, AI_EINTERNAL, "random generator failed");
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return meta_set(st, "leader_id", out, err);
}
