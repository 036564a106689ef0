/* fuzz_feed.c - libFuzzer target for the follower's apply of a change
 * feed answer: the input is the body of GET /v1/replication/changes as a
 * leader would send it; it is read by fl_feed_parse, the secrets sealed
 * for this follower are opened (fl_open_changes, under the transport key
 * of the credential the seeds were sealed for: home.h), the batch's hash
 * chain is checked (fl_feed_chain, from no known hash) and it is applied
 * by store_apply_changes to a real replica (a temporary home opened once
 * per process, reset before each input: home.c), as fl_sync_once does.
 * Beyond crashes, leaks, hangs and UB, a finding is a refused batch that
 * wrote anything, an accepted one that did not move the applied seq to
 * its last change, or a replica left unreadable. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "follower/follower.h"
#include "fuzz/home.h"

#define NOW INT64_C(1796040000000)

static store *st;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    st = fuzz_home_open();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size + 1);
    fl_feed feed;
    int64_t seq = -1;
    ai_err err;
    ai_code rc;

    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    fuzz_home_reset(st);
    ai_err_clear(&err);
    if (fl_feed_parse(body, size, &feed, &err) == AI_OK) {
        if (json_array_size(feed.changes) > 0) {
            rc = fl_feed_chain(&feed, 0, "", &err) ? AI_OK : AI_EINVAL;
            if (rc == AI_OK && feed.last_hash[0] != '\0' &&
                strlen(feed.last_hash) != STORE_HASH_HEX)
                fuzz_fail("a chain's last hash is not 64 characters");
            if (rc == AI_OK)
                rc = fl_open_changes(fuzz_transport_key, feed.changes, &err);
            if (rc == AI_OK)
                rc = store_apply_changes(st, feed.changes, feed.last_seq,
                                         feed.last_hash, NOW, &err);
            if (store_applied_seq(st, &seq, &err) != AI_OK)
                fuzz_fail(err.msg);
            if (rc == AI_OK && feed.last_seq > 0 && seq != feed.last_seq)
                fuzz_fail("batch applied, but the applied seq is not its "
                          "last change's");
            if (rc != AI_OK && (seq != 0 || fuzz_home_rows(st) != 0))
                fuzz_fail("a refused batch wrote rows");
        }
        fl_feed_free(&feed);
    } else if (feed.root != NULL) {
        fuzz_fail("a refused feed kept its JSON");
    }
    fuzz_home_check(st);
    free(body);
    return 0;
}
