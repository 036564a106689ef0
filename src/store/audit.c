/* audit.c - the audit log: one row per admin action, delegation, refresh,
 * credential issue and denial, chained so that editing, inserting or
 * deleting a row is detected.
 *
 * DESIGN: row i carries prev = mac of row i-1 (32 zero bytes for row 1)
 * and mac = HMAC-SHA256(audit_key, prev || encode(row)), where encode
 * writes id and at as 8-byte big-endian integers and each text field as a
 * presence byte, a 4-byte big-endian length and its bytes, so no two rows
 * encode alike. Ids are consecutive from 1. The key is derived from the
 * master key (db.c), so rows cannot be forged without it. Deleting the
 * last rows leaves no row behind to notice, so the id of the last row is
 * also kept in meta ("audit_head"), written in the same transaction.
 * Appends take the write lock first (BEGIN IMMEDIATE): processes sharing
 * a home keep one chain. The row of a change (a revocation, a key, a
 * provider, an API key, a follower) is appended by audit_append inside the
 * change's own transaction, so the change and its row commit together.
 *
 * Retention (store_audit_retain) deletes a prefix of the log: the oldest
 * rows, in id order, never one in the middle. The oldest row kept still
 * carries the chain's checkpoint in its prev (the mac the deleted prefix
 * ended with); meta "audit_base" records where the log now starts, "<id of
 * the first row kept>:<hex of that prev>:<hex of a MAC>", the MAC being
 * HMAC-SHA256(audit_key, "agent-iam audit base v1" || id as 8 bytes
 * big-endian || prev). Verification starts from it, so rows deleted by
 * retention are not reported, while a prefix deleted by anyone else (who
 * cannot make that MAC) still is: the log then starts after the recorded
 * first row. Retention checks the chain of the rows it deletes first and
 * stops at a bad one, so it never erases the evidence of an edit. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "store/db.h"

#define NAME_MAX_BYTES 64   /* actor, action, decision */
#define ID_MAX_BYTES 256    /* token_id, agent_id */
#define REASON_MAX_BYTES 512
#define MAC_BYTES 32
#define HEAD_KEY "audit_head"
#define BASE_KEY "audit_base"
#define BASE_LABEL "agent-iam audit base v1"

/* prev, id, at, then six fields of at most these sizes, each with 5 bytes
 * of framing. */
#define ENC_MAX                                                            \
    (MAC_BYTES + 16 + 6 * 5 + 3 * NAME_MAX_BYTES + 2 * ID_MAX_BYTES +     \
     REASON_MAX_BYTES)

/* A text field of a row as stored: p == NULL means SQL NULL. */
typedef struct field {
    const char *p;
    size_t n;
} field;

typedef struct enc {
    unsigned char b[ENC_MAX];
    size_t len;
    bool over; /* a field was larger than any row store_audit writes */
} enc;

static void put_u64(enc *e, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        e->b[e->len++] = (unsigned char)(v >> (8 * i));
}

static void put_field(enc *e, field f, size_t max)
{
    if (f.n > max) {
        e->over = true;
        return;
    }
    e->b[e->len++] = f.p != NULL;
    for (int i = 3; i >= 0; i--)
        e->b[e->len++] = (unsigned char)(f.n >> (8 * i));
    if (f.n > 0)
        memcpy(e->b + e->len, f.p, f.n);
    e->len += f.n;
}

/* mac = HMAC(audit_key, prev || encode(row)). false when a field is over
 * its limit (only a row changed outside store_audit can be) or HMAC
 * fails. f: actor, action, token_id, agent_id, decision, reason. */
static bool row_mac(const store *st, const unsigned char prev[MAC_BYTES],
                    int64_t id, int64_t at, const field f[6],
                    unsigned char mac[MAC_BYTES])
{
    static const size_t max[6] = {NAME_MAX_BYTES, NAME_MAX_BYTES,
                                  ID_MAX_BYTES,   ID_MAX_BYTES,
                                  NAME_MAX_BYTES, REASON_MAX_BYTES};
    enc e;
    unsigned int len = 0;
    bool ok;

    e.len = 0;
    e.over = false;
    memcpy(e.b, prev, MAC_BYTES);
    e.len = MAC_BYTES;
    put_u64(&e, (uint64_t)id);
    put_u64(&e, (uint64_t)at);
    for (int i = 0; i < 6 && !e.over; i++)
        put_field(&e, f[i], max[i]);
    ok = !e.over &&
         HMAC(EVP_sha256(), st->audit_key, AI_KEY_BYTES, e.b, e.len, mac,
              &len) != NULL &&
         len == MAC_BYTES;
    OPENSSL_cleanse(&e, sizeof e);
    return ok;
}

/* A field of an entry: 1..max bytes of UTF-8 (NULL allowed when
 * optional); names (actor, action, decision) have no control characters. */
static ai_code check_field(const char *what, const char *s, size_t max,
                           bool optional, bool name, ai_err *err)
{
    size_t n;

    if (s == NULL) {
        if (optional)
            return AI_OK;
        return ai_err_set(err, AI_EINVAL, "audit: %s is required", what);
    }
    n = strlen(s);
    if (n > max)
        return ai_err_set(err, AI_EINVAL, "audit: %s is longer than %zu bytes",
                          what, max);
    if (n == 0 && !optional)
        return ai_err_set(err, AI_EINVAL, "audit: %s is empty", what);
    if (!utf8_valid(s, n))
        return ai_err_set(err, AI_EINVAL, "audit: %s is not UTF-8", what);
    for (size_t i = 0; name && i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return ai_err_set(err, AI_EINVAL,
                              "audit: %s has control characters", what);
    return AI_OK;
}

static field opt_field(const char *s)
{
    /* An empty id is stored as no id: one form for one meaning. */
    field f = {NULL, 0};

    if (s != NULL && s[0] != '\0') {
        f.p = s;
        f.n = strlen(s);
    }
    return f;
}

static field req_field(const char *s)
{
    field f = {s ? s : "", s ? strlen(s) : 0};
    return f;
}

/* The head: id of the last row appended (0 when none or unreadable). */
static ai_code head_get(store *st, int64_t *id, bool *present, ai_err *err)
{
    char *v = NULL, *end = NULL;
    ai_code rc = meta_get(st, HEAD_KEY, &v, err);

    *id = 0;
    *present = false;
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc != AI_OK)
        return rc;
    long long n = strtoll(v, &end, 10);
    if (end != v && *end == '\0' && n > 0) {
        *id = n;
        *present = true;
    }
    ai_free(v);
    return AI_OK;
}

/* Where the log starts: the first row kept and the mac of the row before
 * it (row 1 and zeros when retention never ran). */
typedef struct base {
    int64_t first;
    unsigned char prev[MAC_BYTES];
    bool bad; /* recorded, but unreadable or its MAC does not match */
} base;

static bool base_mac(const store *st, int64_t first,
                     const unsigned char prev[MAC_BYTES],
                     unsigned char mac[MAC_BYTES])
{
    unsigned char msg[sizeof BASE_LABEL - 1 + 8 + MAC_BYTES];
    unsigned int len = 0;
    size_t n = sizeof BASE_LABEL - 1;

    memcpy(msg, BASE_LABEL, n);
    for (int i = 7; i >= 0; i--)
        msg[n++] = (unsigned char)((uint64_t)first >> (8 * i));
    memcpy(msg + n, prev, MAC_BYTES);
    n += MAC_BYTES;
    return HMAC(EVP_sha256(), st->audit_key, AI_KEY_BYTES, msg, n, mac,
                &len) != NULL &&
           len == MAC_BYTES;
}

static void hex_put(char *out, const unsigned char *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool hex_get(const char *s, unsigned char *b, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        int v = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                                             : -1;
        if (v < 0)
            return false;
        if (i % 2 == 0)
            b[i / 2] = (unsigned char)(v << 4);
        else
            b[i / 2] |= (unsigned char)v;
    }
    return s[2 * n] == '\0' || s[2 * n] == ':';
}

static ai_code base_get(store *st, base *b, ai_err *err)
{
    unsigned char have[MAC_BYTES], want[MAC_BYTES];
    char *v = NULL, *end = NULL;
    long long first;
    ai_code rc = meta_get(st, BASE_KEY, &v, err);

    b->first = 1;
    b->bad = false;
    memset(b->prev, 0, MAC_BYTES);
    if (rc == AI_ENOTFOUND) {
        ai_err_clear(err);
        return AI_OK;
    }
    if (rc != AI_OK)
        return rc;
    first = strtoll(v, &end, 10);
    /* WARNING: the MAC is compared with CRYPTO_memcmp, in constant time. */
    if (end == v || *end != ':' || first < 1 || first == INT64_MAX ||
        strlen(end + 1) != 4 * MAC_BYTES + 1 ||
        !hex_get(end + 1, b->prev, MAC_BYTES) ||
        !hex_get(end + 2 + 2 * MAC_BYTES, have, MAC_BYTES) ||
        !base_mac(st, (int64_t)first, b->prev, want) ||
        CRYPTO_memcmp(have, want, MAC_BYTES) != 0)
        b->bad = true;
    if (end != v && first >= 1)
        b->first = first;
    OPENSSL_cleanse(want, sizeof want);
    ai_free(v);
    return AI_OK;
}

static ai_code base_set(store *st, int64_t first,
                        const unsigned char prev[MAC_BYTES], ai_err *err)
{
    unsigned char mac[MAC_BYTES];
    char v[24 + 4 * MAC_BYTES + 2];
    int n;

    if (!base_mac(st, first, prev, mac))
        return ai_err_set(err, AI_EINTERNAL, "audit: HMAC failed");
    n = snprintf(v, sizeof v, "%" PRId64 ":", first);
    hex_put(v + n, prev, MAC_BYTES);
    v[n + 2 * MAC_BYTES] = ':';
    hex_put(v + n + 2 * MAC_BYTES + 1, mac, MAC_BYTES);
    return meta_set(st, BASE_KEY, v, err);
}

/* See db.h: e after the last row, in the caller's write transaction. */
ai_code audit_append(store *st, const audit_entry *e, ai_err *err)
{
    unsigned char prev[MAC_BYTES] = {0}, mac[MAC_BYTES];
    sqlite3_stmt *q = NULL;
    int64_t last = 0, head = 0, id;
    bool have_head;
    char headv[32];
    base b;
    field f[6];
    ai_code rc;
    int step;

    if (st == NULL || e == NULL)
        return ai_err_set(err, AI_EINVAL, "audit: no entry");
    if ((rc = check_field("actor", e->actor, NAME_MAX_BYTES, false, true,
                          err)) != AI_OK ||
        (rc = check_field("action", e->action, NAME_MAX_BYTES, false, true,
                          err)) != AI_OK ||
        (rc = check_field("decision", e->decision, NAME_MAX_BYTES, false,
                          true, err)) != AI_OK ||
        (rc = check_field("token id", e->token_id, ID_MAX_BYTES, true, false,
                          err)) != AI_OK ||
        (rc = check_field("agent id", e->agent_id, ID_MAX_BYTES, true, false,
                          err)) != AI_OK ||
        (rc = check_field("reason", e->reason, REASON_MAX_BYTES, true, false,
                          err)) != AI_OK)
        return rc;
    f[0] = req_field(e->actor);
    f[1] = req_field(e->action);
    f[2] = opt_field(e->token_id);
    f[3] = opt_field(e->agent_id);
    f[4] = req_field(e->decision);
    f[5] = req_field(e->reason); /* the column is NOT NULL: "" for none */

    /* The caller holds the write lock (BEGIN IMMEDIATE): the last row
     * read is still last at insert. */
    if ((rc = db_prepare(st,
                         "SELECT id, mac FROM audit ORDER BY id DESC LIMIT 1",
                         &q, err)) != AI_OK)
        return rc;
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        const void *m = sqlite3_column_blob(q, 1);
        int mn = sqlite3_column_bytes(q, 1);
        last = sqlite3_column_int64(q, 0);
        /* A damaged mac is chained as it is (verify reports that row). */
        if (m != NULL && mn > 0)
            memcpy(prev, m, mn < MAC_BYTES ? (size_t)mn : MAC_BYTES);
    } else if (step != SQLITE_DONE) {
        rc = db_fail(st, "audit", err);
        goto done;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = head_get(st, &head, &have_head, err)) != AI_OK ||
        (step == SQLITE_DONE && (rc = base_get(st, &b, err)) != AI_OK))
        goto done;
    /* Retention deleted every row: the next one chains to the last
     * deleted, as the first row kept would have. */
    if (step == SQLITE_DONE) {
        memcpy(prev, b.prev, MAC_BYTES);
        last = b.first - 1;
    }
    /* After deleted last rows the head is ahead: the id gap stays visible
     * instead of the next row taking a deleted row's place. */
    id = (head > last ? head : last);
    if (id < 0 || id == INT64_MAX) {
        rc = ai_err_set(err, AI_ESTORE, "audit: no row id left");
        goto done;
    }
    id++;
    if (!row_mac(st, prev, id, e->at, f, mac)) {
        rc = ai_err_set(err, AI_EINTERNAL, "audit: HMAC failed");
        goto done;
    }
    if ((rc = db_prepare(st,
                         "INSERT INTO audit (id, at, actor, action, "
                         "token_id, agent_id, decision, reason, prev, mac) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         &q, err)) != AI_OK)
        goto done;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, e->at);
    for (int i = 0; i < 6; i++) {
        if (f[i].p == NULL)
            sqlite3_bind_null(q, 3 + i);
        else
            sqlite3_bind_text(q, 3 + i, f[i].p, (int)f[i].n, SQLITE_STATIC);
    }
    sqlite3_bind_blob(q, 9, prev, MAC_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(q, 10, mac, MAC_BYTES, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "audit", err);
        goto done;
    }
    sqlite3_finalize(q);
    q = NULL;
    snprintf(headv, sizeof headv, "%" PRId64, id);
    rc = meta_set(st, HEAD_KEY, headv, err);
done:
    sqlite3_finalize(q);
    return rc;
}

/* Append e (its id is ignored: the next one is used) after the last row,
 * in one write transaction of its own, so it must not be called inside
 * another. AI_EINVAL for a missing or oversize field (nothing written);
 * AI_ESTORE when SQLite fails (rolled back). */
ai_code store_audit(store *st, const audit_entry *e, ai_err *err)
{
    ai_code rc;

    ai_err_clear(err);
    if (st == NULL || e == NULL)
        return ai_err_set(err, AI_EINVAL, "audit: no entry");
    /* The write lock first: the last row read is still last at insert. */
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = audit_append(st, e, err)) != AI_OK ||
        (rc = db_commit(st, err)) != AI_OK) {
        db_rollback(st);
        return rc;
    }
    return AI_OK;
}

/* A text column as stored (length from SQLite: an embedded NUL counts). */
static field col_field(sqlite3_stmt *q, int col)
{
    field f = {NULL, 0};

    if (sqlite3_column_type(q, col) != SQLITE_NULL) {
        f.p = (const char *)sqlite3_column_text(q, col);
        f.n = (size_t)sqlite3_column_bytes(q, col);
        if (f.p == NULL)
            f.p = "";
    }
    return f;
}

#define ROW_COLUMNS                                                         \
    "id, at, actor, action, token_id, agent_id, decision, reason, prev, mac"

/* The row q stands on (ROW_COLUMNS) against the chain so far: its id is
 * *expect_id and its prev *expect_prev, and its mac is right. Advances
 * both on success; else AI_EDENIED naming the row, *bad_id its id. */
static ai_code row_follows(const store *st, sqlite3_stmt *q,
                           int64_t *expect_id,
                           unsigned char expect_prev[MAC_BYTES],
                           int64_t *bad_id, ai_err *err)
{
    unsigned char mac[MAC_BYTES];
    int64_t id = sqlite3_column_int64(q, 0);
    field f[6];
    ai_code rc = AI_OK;

    for (int i = 0; i < 6; i++)
        f[i] = col_field(q, 2 + i);
    /* Each column is read once: pointers stay valid until the next step,
     * as no column is converted twice. */
    const unsigned char *prev = sqlite3_column_blob(q, 8);
    int prevn = sqlite3_column_bytes(q, 8);
    const unsigned char *have = sqlite3_column_blob(q, 9);
    int haven = sqlite3_column_bytes(q, 9);

    /* WARNING: macs are compared with CRYPTO_memcmp, in constant time,
     * after checking the (public) lengths. */
    if (prevn != MAC_BYTES || haven != MAC_BYTES || prev == NULL ||
        have == NULL ||
        !row_mac(st, prev, id, sqlite3_column_int64(q, 1), f, mac) ||
        CRYPTO_memcmp(mac, have, MAC_BYTES) != 0)
        rc = ai_err_set(err, AI_EDENIED,
                        "audit row %" PRId64 " was altered or inserted "
                        "(its MAC does not match)",
                        id);
    else if (id != *expect_id)
        rc = ai_err_set(err, AI_EDENIED,
                        "audit row %" PRId64 " follows a deleted row "
                        "(row %" PRId64 " is missing)",
                        id, *expect_id);
    else if (CRYPTO_memcmp(prev, expect_prev, MAC_BYTES) != 0)
        rc = ai_err_set(err, AI_EDENIED,
                        "audit row %" PRId64 " does not follow row "
                        "%" PRId64 " (a row before it was replaced)",
                        id, id - 1);
    if (rc == AI_OK) {
        memcpy(expect_prev, have, MAC_BYTES);
        *expect_id = id + 1;
    } else {
        *bad_id = id;
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

/* The start of the log: AI_EDENIED when its record was altered. */
static ai_code base_checked(store *st, base *b, int64_t *bad_id, ai_err *err)
{
    ai_code rc = base_get(st, b, err);

    if (rc == AI_OK && b->bad) {
        *bad_id = b->first;
        rc = ai_err_set(err, AI_EDENIED,
                        "audit row %" PRId64 ": the record of the rows "
                        "deleted before it (retention) was altered",
                        b->first);
    }
    return rc;
}

/* Walk the rows in one read transaction (a consistent snapshot). */
static ai_code walk(store *st, int64_t *bad_id, int64_t *rows, ai_err *err)
{
    unsigned char expect_prev[MAC_BYTES];
    sqlite3_stmt *q = NULL;
    int64_t expect_id, head = 0;
    bool have_head;
    base b;
    ai_code rc;
    int step;

    if ((rc = base_checked(st, &b, bad_id, err)) != AI_OK)
        return rc;
    expect_id = b.first;
    memcpy(expect_prev, b.prev, MAC_BYTES);
    if ((rc = db_prepare(st, "SELECT " ROW_COLUMNS " FROM audit ORDER BY id",
                         &q, err)) != AI_OK)
        return rc;
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        if ((rc = row_follows(st, q, &expect_id, expect_prev, bad_id,
                              err)) != AI_OK)
            goto done;
    if (step != SQLITE_DONE) {
        rc = db_fail(st, "audit", err);
        goto done;
    }
    sqlite3_finalize(q);
    q = NULL;
    *rows = expect_id - 1; /* the id of the last row */
    if ((rc = head_get(st, &head, &have_head, err)) != AI_OK)
        goto done;
    if (*rows > 0 && !have_head) {
        *bad_id = expect_id;
        rc = ai_err_set(err, AI_EDENIED,
                        "audit row %" PRId64 " and later may have been "
                        "deleted (the record of the last row is missing)",
                        expect_id);
    } else if (head > *rows) {
        *bad_id = expect_id;
        rc = ai_err_set(err, AI_EDENIED,
                        "audit row %" PRId64 " was deleted (the log ends at "
                        "row %" PRId64 " instead of row %" PRId64 ")",
                        expect_id, *rows, head);
    } else if (head < *rows) {
        *bad_id = head + 1;
        rc = ai_err_set(err, AI_EDENIED,
                        "audit row %" PRId64 " is not recorded as appended "
                        "(the last row appended was %" PRId64 ")",
                        head + 1, head);
    }
done:
    sqlite3_finalize(q);
    OPENSSL_cleanse(expect_prev, sizeof expect_prev);
    return rc;
}

/* See store.h. */
ai_code store_audit_retain(store *st, int64_t cutoff_ms, size_t max_rows,
                           size_t *removed, bool *more, ai_err *err)
{
    unsigned char expect_prev[MAC_BYTES];
    sqlite3_stmt *q = NULL;
    int64_t expect_id, bad = 0;
    size_t n = 0;
    bool young = false;
    base b;
    ai_code rc;
    int step = SQLITE_DONE;

    ai_err_clear(err);
    if (removed != NULL)
        *removed = 0;
    if (more != NULL)
        *more = false;
    if (st == NULL || max_rows == 0)
        return ai_err_set(err, AI_EINVAL, "audit: no store or no rows");
    if ((rc = db_begin(st, err)) != AI_OK)
        return rc;
    if ((rc = base_checked(st, &b, &bad, err)) != AI_OK)
        goto fail;
    expect_id = b.first;
    memcpy(expect_prev, b.prev, MAC_BYTES);
    if ((rc = db_prepare(st,
                         "SELECT " ROW_COLUMNS " FROM audit ORDER BY id "
                         "LIMIT ?",
                         &q, err)) != AI_OK)
        goto fail;
    sqlite3_bind_int64(q, 1, max_rows > (size_t)INT64_MAX ? INT64_MAX
                                                          : (int64_t)max_rows);
    /* The old rows at the start, up to the first young one: `at` is taken
     * before the write lock, so a few rows may be out of time order, and
     * those are kept a little longer rather than leaving a hole. */
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_int64(q, 1) >= cutoff_ms) {
            young = true;
            break;
        }
        if ((rc = row_follows(st, q, &expect_id, expect_prev, &bad, err)) !=
            AI_OK) {
            ai_err_clear(err);
            rc = ai_err_set(err, AI_EDENIED,
                            "audit row %" PRId64 " does not verify: rows "
                            "are kept from there on (agent-iam audit "
                            "verify)",
                            bad);
            goto fail;
        }
        n++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = db_fail(st, "audit", err);
        goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (n == 0) {
        db_rollback(st);
        return AI_OK;
    }
    /* expect_id is now the first row kept and expect_prev the mac of the
     * last row deleted: the checkpoint the kept rows start from. */
    if ((rc = db_prepare(st, "DELETE FROM audit WHERE id < ?", &q, err)) !=
        AI_OK)
        goto fail;
    sqlite3_bind_int64(q, 1, expect_id);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = db_fail(st, "audit", err);
        goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = base_set(st, expect_id, expect_prev, err)) != AI_OK ||
        (rc = db_commit(st, err)) != AI_OK)
        goto fail;
    if (removed != NULL)
        *removed = n;
    if (more != NULL)
        *more = !young && n == max_rows;
    OPENSSL_cleanse(expect_prev, sizeof expect_prev);
    return AI_OK;
fail:
    sqlite3_finalize(q);
    db_rollback(st);
    OPENSSL_cleanse(expect_prev, sizeof expect_prev);
    return rc;
}

/* Walk the chain in one read snapshot. AI_OK (and *bad_id 0) when every
 * row is intact; AI_EDENIED with *bad_id the first bad row and a message
 * naming it; AI_ESTORE when the table cannot be read. */
ai_code store_audit_verify(store *st, int64_t *bad_id, ai_err *err)
{
    int64_t rows = 0;
    ai_code rc;

    ai_err_clear(err);
    if (bad_id != NULL)
        *bad_id = 0;
    if (st == NULL || bad_id == NULL)
        return ai_err_set(err, AI_EINVAL, "audit: no store");
    if ((rc = db_exec(st, "BEGIN", err)) != AI_OK)
        return rc;
    rc = walk(st, bad_id, &rows, err);
    db_rollback(st); /* read only: nothing to commit */
    return rc;
}

/* The last n rows, oldest first, to fn; strings are borrowed for the
 * call, and a row with no reason has reason NULL. Reads only: it does not
 * check the chain (a tampered row is shown as stored). */
ai_code store_audit_tail(store *st, size_t n, audit_fn fn, void *ud,
                         ai_err *err)
{
    sqlite3_stmt *q = NULL;
    ai_code rc;
    int step;

    ai_err_clear(err);
    if (st == NULL || fn == NULL)
        return ai_err_set(err, AI_EINVAL, "audit: no callback");
    if (n == 0)
        return AI_OK;
    if ((rc = db_prepare(st,
                         "SELECT id, at, actor, action, token_id, agent_id, "
                         "decision, reason FROM (SELECT * FROM audit "
                         "ORDER BY id DESC LIMIT ?) ORDER BY id",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_int64(q, 1, n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        audit_entry e;
        e.id = sqlite3_column_int64(q, 0);
        e.at = sqlite3_column_int64(q, 1);
        e.actor = (const char *)sqlite3_column_text(q, 2);
        e.action = (const char *)sqlite3_column_text(q, 3);
        e.token_id = (const char *)sqlite3_column_text(q, 4);
        e.agent_id = (const char *)sqlite3_column_text(q, 5);
        e.decision = (const char *)sqlite3_column_text(q, 6);
        e.reason = (const char *)sqlite3_column_text(q, 7);
        if (e.actor == NULL)
            e.actor = "";
        if (e.action == NULL)
            e.action = "";
        if (e.decision == NULL)
            e.decision = "";
        if (e.reason != NULL && e.reason[0] == '\0')
            e.reason = NULL; /* stored as "" for none */
        fn(ud, &e);
    }
    if (step != SQLITE_DONE)
        rc = db_fail(st, "audit", err);
    sqlite3_finalize(q);
    return rc;
}
