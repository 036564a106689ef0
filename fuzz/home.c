/* home.c - the temporary home of the replica fuzz targets (home.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "fuzz/home.h"
#include "store/db.h"

#define NOW INT64_C(1796040000000)

unsigned char fuzz_transport_key[32];

static char dir[4096];
static char home[4200];

void fuzz_fail(const char *why)
{
    fprintf(stderr, "fuzz: %s\n", why);
    abort();
}

static void die(const char *what, const ai_err *err)
{
    fprintf(stderr, "fuzz home: %s: %s\n", what, err ? err->msg : "");
    abort();
}

/* The files store_open makes, then the directories. */
static void remove_home(void)
{
    static const char *const files[] = {STORE_DB_FILE, STORE_KEY_FILE,
                                        STORE_DB_FILE "-wal",
                                        STORE_DB_FILE "-shm"};
    char p[4300];

    if (dir[0] == '\0')
        return;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", home, files[i]);
        unlink(p);
    }
    rmdir(home);
    rmdir(dir);
}

store *fuzz_home_open(void)
{
    const char *tmp = getenv("TMPDIR");
    store *st = NULL;
    ai_err err = {0};

    store_transport_key(FUZZ_FOLLOWER_CREDENTIAL,
                        strlen(FUZZ_FOLLOWER_CREDENTIAL), fuzz_transport_key);
    snprintf(dir, sizeof dir, "%s/agent-iam-fuzz-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", NULL);
    snprintf(home, sizeof home, "%s/home", dir);
    atexit(remove_home);
    if (store_open(home, true, &st, &err) != AI_OK)
        die("store_open", &err);
    /* Durability is not what is tested here: no fsync per input. */
    if (db_exec(st, "PRAGMA synchronous = OFF", &err) != AI_OK ||
        store_mark_replica(st, &err) != AI_OK || store_sync(st, &err) != AI_OK)
        die("set-up", &err);
    return st;
}

void fuzz_home_reset(store *st)
{
    ai_err err = {0};

    if (db_exec(st,
                "BEGIN;"
                "DELETE FROM signing_keys; DELETE FROM revocations;"
                "DELETE FROM providers; DELETE FROM api_keys;"
                "DELETE FROM changelog; DELETE FROM sqlite_sequence;"
                "DELETE FROM meta WHERE key IN ('applied_seq',"
                " 'replica_leader_id');"
                "COMMIT;",
                &err) != AI_OK ||
        views_reload(st, &err) != AI_OK)
        die("reset", &err);
}

long long fuzz_home_rows(store *st)
{
    sqlite3_stmt *q = NULL;
    long long n = -1;
    ai_err err = {0};

    if (db_prepare(st,
                   "SELECT (SELECT count(*) FROM signing_keys) +"
                   " (SELECT count(*) FROM revocations) +"
                   " (SELECT count(*) FROM providers) +"
                   " (SELECT count(*) FROM api_keys) +"
                   " (SELECT count(*) FROM changelog)",
                   &q, &err) != AI_OK)
        die("count", &err);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (n < 0)
        die("count", NULL);
    return n;
}

void fuzz_home_check(store *st)
{
    const ai_keyring *kr = NULL;
    int64_t seq = -1;
    ai_err err = {0};
    ai_code rc;

    if (store_sync(st, &err) != AI_OK)
        die("sync after the input", &err);
    if (store_applied_seq(st, &seq, &err) != AI_OK || seq < 0)
        die("applied seq", &err);
    rc = store_keyring(st, NOW, &kr, &err);
    if (rc != AI_OK && rc != AI_ENOTFOUND)
        die("keyring", &err);
    (void)store_revoked(st, AI_REVOKED_AGENT, "fuzz-agent");
}
