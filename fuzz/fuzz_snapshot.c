/* fuzz_snapshot.c - libFuzzer target for the follower's apply of the
 * snapshot stream: the input is the body of GET /v1/replication/snapshot
 * (NDJSON) as a leader would send it; it is cut into lines as upstream.c
 * hands them over (at each '\n'; bytes after the last one never form a
 * line) and fed to fl_snap_line (which opens the secrets sealed for this
 * follower, under the transport key of home.h) until it refuses one, then
 * fl_snap_finish commits or rolls back, on a real replica (a temporary home opened once
 * per process, reset before each input: home.c). Beyond crashes, leaks,
 * hangs and UB, a finding is a refused snapshot that left anything
 * behind, an accepted one whose applied seq is not its header's, or a
 * replica left unreadable. */
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
    const char *p = (const char *)data, *end = p + size, *nl;
    fl_snap sl;
    int64_t seq = -1;
    ai_err err;
    ai_code rc;

    fuzz_home_reset(st);
    ai_err_clear(&err);
    fl_snap_init(&sl, st, NOW, &err);
    sl.tkey = fuzz_transport_key;
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t n = (size_t)(nl - p);
        /* exact size, NUL-terminated, as upstream.c passes a line */
        char *line = malloc(n + 1);
        bool more;
        if (line == NULL)
            abort();
        memcpy(line, p, n);
        line[n] = '\0';
        more = fl_snap_line(&sl, line, n);
        free(line);
        if (!more)
            break;
        p = nl + 1;
    }
    rc = fl_snap_finish(&sl, AI_OK, &err);
    if (store_applied_seq(st, &seq, &err) != AI_OK)
        fuzz_fail(err.msg);
    if (rc == AI_OK && seq != sl.seq)
        fuzz_fail("snapshot applied, but the applied seq is not its own");
    if (rc != AI_OK && (seq != 0 || fuzz_home_rows(st) != 0))
        fuzz_fail("a refused snapshot left rows behind");
    fuzz_home_check(st);
    return 0;
}
