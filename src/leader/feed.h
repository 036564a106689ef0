/*
 * feed.h - what a follower receives from the leader, made from the store
 * with no HTTP around it (replication.c serves it; a test drives it on a
 * home of its own): where a follower may resume the change feed, one page
 * of the feed, and the snapshot's lines as that follower may see them.
 *
 * Each function uses the store handle it is given (one thread's, as every
 * store handle) and keeps no state: thread-safe on distinct handles.
 */
#ifndef AI_LEADER_FEED_H
#define AI_LEADER_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "server/server.h"

/* A page holds at most this many changes (the follower's `limit`) ... */
#define LEADER_FEED_LIMIT_DEFAULT 1000
#define LEADER_FEED_LIMIT_MAX 10000
/* ... and about this many bytes of them (`maxBytes`), never fewer than
 * one change: a slow link that moves bytes at all moves whole pages. */
#define LEADER_FEED_BYTES_MIN 1024L
#define LEADER_FEED_BYTES_DEFAULT (1L << 20)
#define LEADER_FEED_BYTES_MAX (16L << 20)

/* Can the feed go on from since, where the follower applied the change
 * whose chain hash is hash (NULL: not sent; ignored at since 0)? AI_OK
 * with *head the seq of the log's last change. AI_ENOTFOUND when it
 * cannot and the follower must load the snapshot (the handler's 410):
 * since is ahead of head (a restored home), the changes after it are no
 * longer kept, or the log's hash at since is not hash (another history);
 * err says which. AI_EINVAL when hash is not 64 lowercase hex; the
 * store's errors as it reports them (never AI_ENOTFOUND). */
ai_code leader_feed_check(store *st, int64_t since, const char *hash,
                          int64_t *head, ai_err *err);

/* One page of the change feed after since, as fol may receive it
 * (leader_outgoing: secrets sealed under its transport key, entities of
 * providers not granted to it sent as deletes): *out is the answer
 * {"leaderSeq", "leaderId", "changes": [...], "more"}. The changes are
 * those after since in seq order, at most limit of them
 * (1..LEADER_FEED_LIMIT_MAX), cut before the one that would take their
 * compact JSON past max_bytes (LEADER_FEED_BYTES_MIN..._MAX) unless it is
 * the first. head is the log's last seq as leader_feed_check read it;
 * "leaderSeq" is the larger of it and the page's last seq, and "more" is
 * true when the log holds changes after the page. *out: a new reference
 * holding sealed secrets (send it with srv_reply_secret, or
 * json_wipe_decref it); NULL on error. AI_EINVAL for a limit or max_bytes
 * out of range; the store's and leader_outgoing's errors. */
ai_code leader_feed_page(store *st, const srv_follower *fol,
                         const char *leader_id, int64_t since, int64_t head,
                         size_t limit, size_t max_bytes, json_t **out,
                         ai_err *err);

/* A snapshot line ({"kind", "value", "name"?}) as the follower ud (a
 * const srv_follower *) may receive it: a snap_filter_fn for
 * store_snapshot_set_filter (sealed in place, or *drop). */
ai_code leader_snapshot_filter(void *ud, json_t *line, bool *drop,
                               ai_err *err);

#endif /* AI_LEADER_FEED_H */
