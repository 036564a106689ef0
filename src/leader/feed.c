/* feed.c - what a follower receives, read from the leader's store: where
 * the change feed may resume, a page of it, and the snapshot's lines as
 * that follower may see them (feed.h). replication.c adds the HTTP. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "leader/feed.h"
#include "leader/leader.h"

ai_code leader_feed_check(store *st, int64_t since, const char *hash,
                          int64_t *head, ai_err *err)
{
    char have[STORE_HASH_HEX + 1];
    unsigned char raw[STORE_HASH_BYTES];
    int64_t oldest = 0;
    bool found = false;
    ai_code rc;

    ai_err_clear(err);
    *head = 0;
    if ((rc = store_changelog_head(st, head, err)) != AI_OK ||
        (rc = store_changelog_oldest(st, &oldest, err)) != AI_OK)
        return rc;
    if (since > *head) /* restored from a backup, or another home */
        return ai_err_set(err, AI_ENOTFOUND,
                          "since %lld is ahead of the leader (%lld): load "
                          "the snapshot",
                          (long long)since, (long long)*head);
    if (oldest > 0 && since + 1 < oldest)
        return ai_err_set(err, AI_ENOTFOUND,
                          "changes after %lld are no longer kept (oldest "
                          "%lld): load the snapshot",
                          (long long)since, (long long)oldest);
    /* The follower's view of the log at since (the hash of the change it
     * applied last) must be the leader's: otherwise the histories parted
     * (a restored home, another log at this URL) and only a snapshot
     * makes the replica right again. */
    if (hash == NULL || since == 0)
        return AI_OK;
    if (!store_hash_parse(hash, raw))
        return ai_err_set(err, AI_EINVAL,
                          "hash must be 64 lowercase hex characters");
    if ((rc = store_change_hash_at(st, since, have, &found, err)) != AI_OK)
        return rc;
    if (!found)
        return ai_err_set(err, AI_ENOTFOUND,
                          "change %lld is no longer kept: load the snapshot",
                          (long long)since);
    if (CRYPTO_memcmp(have, hash, STORE_HASH_HEX) != 0)
        return ai_err_set(err, AI_ENOTFOUND,
                          "the leader's history differs from the follower's "
                          "at %lld (a restored or replaced home): load the "
                          "snapshot",
                          (long long)since);
    return AI_OK;
}

typedef struct page {
    const srv_follower *fol;
    store *st;
    json_t *arr;
    int64_t last;
    size_t bytes, max_bytes; /* the answer so far, its bound */
    ai_code rc;
    ai_err *err;
} page;

static bool add_change(void *ud, const store_change *ch)
{
    page *f = ud;
    json_t *c, *value = NULL;
    const char *op = ch->op;
    size_t n;

    if (f->rc != AI_OK)
        return false;
    if (strcmp(op, "set") == 0) {
        bool drop = false;
        if ((f->rc = store_change_value(f->st, ch->kind, ch->key, &value,
                                        f->err)) != AI_OK)
            return false;
        if (value != NULL &&
            (f->rc = leader_outgoing(f->fol, ch->kind, ch->key, value, &drop,
                                     f->err)) != AI_OK) {
            json_wipe_decref(value);
            return false;
        }
        if (drop) { /* not this follower's: make sure it has none */
            json_wipe_decref(value);
            value = NULL;
            op = "delete";
        }
    }
    c = json_pack("{s:I, s:I, s:s, s:s, s:s}", "seq", (json_int_t)ch->seq,
                  "at", (json_int_t)ch->at, "kind", ch->kind, "key", ch->key,
                  "op", op);
    if (c != NULL && ch->hash[0] != '\0' &&
        json_object_set_new(c, "hash", json_string(ch->hash)) != 0) {
        json_decref(c);
        c = NULL;
    }
    if (c == NULL || (value != NULL && json_object_set_new(c, "value", value))) {
        json_decref(c);
        f->rc = ai_err_set(f->err, AI_ENOMEM, "out of memory");
        return false;
    }
    /* Bounded by bytes as well as by count, so a slow link that moves
     * bytes at all moves whole batches; never fewer than one change. */
    n = json_dumpb(c, NULL, 0, JSON_COMPACT) + 1;
    if (f->bytes > 0 && f->bytes + n > f->max_bytes) {
        json_wipe_decref(c);
        return false;
    }
    f->bytes += n;
    if (json_array_append_new(f->arr, c) != 0) {
        f->rc = ai_err_set(f->err, AI_ENOMEM, "out of memory");
        return false;
    }
    f->last = ch->seq;
    return true;
}

ai_code leader_feed_page(store *st, const srv_follower *fol,
                         const char *leader_id, int64_t since, int64_t head,
                         size_t limit, size_t max_bytes, json_t **out,
                         ai_err *err)
{
    page f;
    ai_code rc;

    ai_err_clear(err);
    *out = NULL;
    if (limit < 1 || limit > LEADER_FEED_LIMIT_MAX ||
        max_bytes < (size_t)LEADER_FEED_BYTES_MIN ||
        max_bytes > (size_t)LEADER_FEED_BYTES_MAX)
        return ai_err_set(err, AI_EINVAL,
                          "a page is 1 to %d changes of %ld to %ld bytes",
                          LEADER_FEED_LIMIT_MAX, LEADER_FEED_BYTES_MIN,
                          LEADER_FEED_BYTES_MAX);
    memset(&f, 0, sizeof f);
    f.fol = fol;
    f.st = st;
    f.last = since;
    f.max_bytes = max_bytes;
    f.rc = AI_OK;
    f.err = err;
    if ((f.arr = json_array()) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if ((rc = store_changes(st, since, limit, add_change, &f, err)) ==
        AI_OK)
        rc = f.rc;
    if (rc != AI_OK) {
        json_wipe_decref(f.arr);
        return rc;
    }
    if (f.last > head)
        head = f.last;
    *out = json_pack("{s:I, s:s, s:o, s:b}", "leaderSeq", (json_int_t)head,
                     "leaderId", leader_id, "changes", f.arr, "more",
                     f.last < head);
    if (*out == NULL) /* json_pack released the array */
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    return AI_OK;
}

ai_code leader_snapshot_filter(void *ud, json_t *line, bool *drop,
                               ai_err *err)
{
    const srv_follower *fol = ud;
    const char *kind = json_string_value(json_object_get(line, "kind"));
    json_t *v = json_object_get(line, "value");
    const char *n;
    char name[128];

    *drop = false;
    if (kind == NULL || v == NULL)
        return AI_OK;
    if (strcmp(kind, "key") == 0) {
        snprintf(name, sizeof name, "%lld",
                 (long long)json_integer_value(json_object_get(v, "version")));
    } else {
        n = json_string_value(json_object_get(
            strcmp(kind, "apikey") == 0 ? v : line, "name"));
        snprintf(name, sizeof name, "%s", n ? n : "");
    }
    return leader_outgoing(fol, kind, name, v, drop, err);
}
