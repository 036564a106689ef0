/* feed.c - what the leader sends a follower, read from its bytes: an
 * answer of the change feed, and the snapshot stream's lines applied to
 * a store as they arrive (see follower.h). sync.c brings the bytes. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "follower/internal.h"

ai_code fl_feed_parse(const char *body, size_t len, fl_feed *out,
                      ai_err *err)
{
    json_error_t je;
    const json_t *seq, *last;

    memset(out, 0, sizeof *out);
    out->root = json_loadb(body, len, 0, &je);
    if (out->root == NULL || !json_is_object(out->root)) {
        fl_feed_free(out);
        return ai_err_set(err, AI_EINVAL, "leader sent malformed JSON: %s",
                          je.text);
    }
    out->changes = json_object_get(out->root, "changes");
    seq = json_object_get(out->root, "leaderSeq");
    if (!json_is_array(out->changes) || !json_is_integer(seq)) {
        fl_feed_free(out);
        return ai_err_set(err, AI_EINVAL, "leader sent a malformed feed");
    }
    out->leader_seq = json_integer_value(seq);
    out->leader_id = json_string_value(json_object_get(out->root, "leaderId"));
    if (json_array_size(out->changes) > 0) {
        last = json_array_get(out->changes, json_array_size(out->changes) - 1);
        out->last_seq = json_integer_value(json_object_get(last, "seq"));
    }
    out->more = json_is_true(json_object_get(out->root, "more"));
    return AI_OK;
}

bool fl_feed_chain(fl_feed *f, int64_t since, const char *have, ai_err *err)
{
    unsigned char prev[STORE_HASH_BYTES], h[STORE_HASH_BYTES];
    bool known = store_hash_parse(have, prev);
    int64_t last = since;
    size_t i;
    const json_t *c;

    ai_err_clear(err);
    f->last_hash[0] = '\0';
    json_array_foreach(f->changes, i, c) {
        store_change ch;
        const char *stated = json_string_value(json_object_get(c, "hash"));
        const json_t *at = json_object_get(c, "at");
        ch.seq = json_integer_value(json_object_get(c, "seq"));
        ch.at = json_integer_value(at);
        ch.kind = json_string_value(json_object_get(c, "kind"));
        ch.key = json_string_value(json_object_get(c, "key"));
        if (ch.seq <= last) {
            ai_err_set(err, AI_EINVAL,
                       "the leader sent change %lld after %lld",
                       (long long)ch.seq, (long long)last);
            return false;
        }
        last = ch.seq;
        if (stated == NULL) { /* a leader without the chain */
            known = false;
            continue;
        }
        if (ch.kind == NULL || ch.key == NULL || !json_is_integer(at) ||
            !store_hash_parse(stated, h)) {
            ai_err_set(err, AI_EINVAL,
                       "the leader sent change %lld with a malformed hash",
                       (long long)ch.seq);
            return false;
        }
        if (known) {
            store_change_hash(prev, &ch, prev);
            if (memcmp(prev, h, sizeof h) != 0) {
                ai_err_set(err, AI_EINVAL,
                           "change %lld does not continue this replica's "
                           "history (hash chain)",
                           (long long)ch.seq);
                return false;
            }
        }
        memcpy(prev, h, sizeof h);
        known = true;
    }
    if (known && json_array_size(f->changes) > 0)
        store_hash_hex(prev, f->last_hash);
    return true;
}

void fl_feed_free(fl_feed *f)
{
    json_wipe_decref(f->root); /* opened secrets live in it */
    memset(f, 0, sizeof *f);
}

void fl_snap_init(fl_snap *sl, store *st, int64_t now_ms, ai_err *err)
{
    memset(sl, 0, sizeof *sl);
    sl->st = st;
    sl->now_ms = now_ms;
    sl->rc = AI_OK;
    sl->err = err;
}

void fl_snap_progress(const fl_snap *sl)
{
    ai_follower_progress p = {.snapshot = true,
                              .entities = sl->count,
                              .revocations = sl->revocations,
                              .bytes = sl->bytes};

    if (sl->progress != NULL)
        sl->progress(sl->progress_ud, &p);
}

bool fl_snap_line(void *ud, char *line, size_t len)
{
    fl_snap *sl = ud;
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    bool ok = true;

    if (o == NULL || !json_is_object(o) || sl->end) {
        sl->rc = ai_err_set(sl->err, AI_EINVAL,
                            "snapshot line %lld is malformed", sl->lines);
        ok = false;
    } else if (!sl->header) {
        json_t *seq = json_object_get(o, "seq");
        sl->header = true;
        if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
            sl->rc = ai_err_set(sl->err, AI_EINVAL,
                                "the snapshot has no seq");
            ok = false;
        } else {
            const char *lid =
                json_string_value(json_object_get(o, "leaderId"));
            const char *h = json_string_value(json_object_get(o, "hash"));
            unsigned char raw[STORE_HASH_BYTES];
            snprintf(sl->leader_id, sizeof sl->leader_id, "%s",
                     lid ? lid : "");
            sl->seq = json_integer_value(seq);
            if (h != NULL && !store_hash_parse(h, raw))
                sl->rc = ai_err_set(sl->err, AI_EINVAL,
                                    "the snapshot's hash is malformed");
            else if (h != NULL)
                memcpy(sl->hash, h, STORE_HASH_HEX + 1);
            if (sl->rc == AI_OK)
                sl->rc = store_snapshot_apply_begin(sl->st, sl->now_ms,
                                                    &sl->apply, sl->err);
            ok = sl->rc == AI_OK;
        }
    } else if (json_is_true(json_object_get(o, "end"))) {
        sl->end = true;
        if (json_integer_value(json_object_get(o, "count")) != sl->count) {
            sl->rc = ai_err_set(sl->err, AI_EINVAL,
                                "the snapshot ended after %lld of %lld "
                                "entities",
                                sl->count,
                                (long long)json_integer_value(
                                    json_object_get(o, "count")));
            ok = false;
        }
    } else {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        sl->count++;
        if (kind != NULL && strcmp(kind, "revocation") == 0)
            sl->revocations++;
        if (sl->tkey != NULL)
            sl->rc = fl_open_line(sl->tkey, o, sl->err);
        if (sl->rc == AI_OK)
            sl->rc = store_snapshot_apply_line(sl->apply, o, sl->err);
        ok = sl->rc == AI_OK;
    }
    sl->lines++;
    sl->bytes += len + 1;
    if (ok && sl->progress != NULL &&
        (sl->end || sl->count % FL_PROGRESS_LINES == 0))
        fl_snap_progress(sl);
    json_wipe_decref(o);
    return ok;
}

void fl_snap_abort(fl_snap *sl)
{
    store_snapshot_apply_abort(sl->apply);
    sl->apply = NULL;
}

ai_code fl_snap_finish(fl_snap *sl, ai_code rc, ai_err *err)
{
    if (rc == AI_OK && sl->rc != AI_OK)
        rc = sl->rc;
    if (rc == AI_OK && !sl->end)
        rc = ai_err_set(err, AI_EUNAVAILABLE,
                        "the snapshot stream was cut short");
    if (rc != AI_OK) {
        fl_snap_abort(sl);
        return rc;
    }
    rc = store_snapshot_apply_commit(sl->apply, sl->seq, sl->hash, err);
    sl->apply = NULL; /* freed by the commit, whatever its result */
    if (rc != AI_OK)
        return rc;
    return store_set_replica_leader_id(sl->st, sl->leader_id, err);
}
