/* bench/revocations.c - the revocation view at 1,000,000 entries: what it
 * costs to load (open + first store_sync), the memory it takes, and
 * whether verification slows down when every verify asks it.
 *
 * On a temporary home: a handle synced while the home has no revocation
 * (its view stays empty: it never syncs again); 1,000,000 token
 * revocations written in one transaction (plain SQLite, as a bulk import
 * would; random 22-character base64url ids like real tokenIds); a second
 * handle's open + first sync, timed, with the resident set before and
 * after (/proc/self/statm). Then verify + check of distinct tokens on one
 * core through `ai_verifier {keys, store_revoked, handle}` with each
 * handle, trial by trial in turn, so both see the same machine load (these
 * machines are shared and noisy): medians and bests of TRIALS runs of
 * about 0.3 s, and the median of the per-trial ratios.
 * Usage: revocations [N]  (N revocations, default 1000000) */
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "agent_iam.h"
#include "store/store.h"

#define DISTINCT 2000
#define TRIALS 11
#define TRIAL_SECONDS 0.3

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench: %s: %s\n", what, msg);
    exit(1);
}

/* Resident set in bytes (second field of /proc/self/statm, in pages). */
static long rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

typedef struct bench {
    char *wires[DISTINCT];
    size_t lens[DISTINCT];
    int64_t now;
} bench;

/* verify + check of distinct tokens through st's view */
static void run_verify(const bench *b, store *st, long n)
{
    const ai_keyring *kr;
    ai_token *tok;
    ai_err e = {0};

    if (store_keyring(st, &kr, &e) != AI_OK)
        die("keyring", e.msg);
    ai_verifier v = {kr, store_revoked, st};
    for (long i = 0; i < n; i++) {
        int k = (int)(i % DISTINCT);
        if (ai_token_verify(&v, b->wires[k], b->lens[k], b->now, &tok, &e) !=
                AI_OK ||
            ai_token_check(tok, "github:repo:read", "myorg/frontend", b->now,
                           &e) != AI_OK)
            die("verify", e.msg);
        ai_token_free(tok);
    }
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return (a > c) - (a < c);
}

typedef struct figure {
    double median, best;
} figure;

static figure stats(double *v, int n)
{
    figure f;

    qsort(v, (size_t)n, sizeof *v, cmp_double);
    f.median = v[n / 2];
    f.best = v[n - 1];
    return f;
}

/* Verify rates (ops/s) with st0 and st1, trial by trial in turn; *ratio
 * is the median of rate1 / rate0 over the trials. */
static void measure(const bench *b, store *st0, store *st1, figure *f0,
                    figure *f1, double *ratio)
{
    double r0[TRIALS], r1[TRIALS], q[TRIALS], t0, el;
    long n = 1000;

    for (;;) {
        t0 = now_s();
        run_verify(b, st0, n);
        el = now_s() - t0;
        if (el > 0.05)
            break;
        n *= 4;
    }
    n = (long)(n * TRIAL_SECONDS / el) + 1;
    for (int t = 0; t < TRIALS; t++) {
        t0 = now_s();
        run_verify(b, st0, n);
        r0[t] = n / (now_s() - t0);
        t0 = now_s();
        run_verify(b, st1, n);
        r1[t] = n / (now_s() - t0);
        q[t] = r1[t] / r0[t];
    }
    *f0 = stats(r0, TRIALS);
    *f1 = stats(r1, TRIALS);
    *ratio = stats(q, TRIALS).median;
}

/* Mean cost of one store_revoked lookup that misses (every verify of a
 * valid token makes three: its tokenId, its ancestor, its agentId). */
#define MISSES 65536
static char misses[MISSES][24];

static double lookup_ns(store *st)
{
    long n = 4000000, hits = 0;
    double t0;

    if (misses[0][0] == '\0')
        for (long i = 0; i < MISSES; i++)
            snprintf(misses[i], sizeof misses[i], "miss%018ld", i * 7919);
    t0 = now_s();
    for (long i = 0; i < n; i++)
        hits += store_revoked(st, AI_REVOKED_TOKEN, misses[i % MISSES]);
    if (hits != 0)
        die("lookup", "a made-up id was found");
    return (now_s() - t0) * 1e9 / n;
}

static int cmp_id(const void *x, const void *y)
{
    return memcmp(x, y, 23);
}

/* n rows with random 22-character base64url ids, one transaction. The ids
 * are inserted in key order, as a bulk import can: random order costs
 * SQLite a B-tree page read per row once the table outgrows its cache. */
static void bulk_revoke(const char *home, long n, int64_t now,
                        char keep[23])
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char path[4200], (*ids)[23] = malloc((size_t)n * 23);
    unsigned char raw[16 * 1024];
    sqlite3 *db;
    sqlite3_stmt *q;

    if (ids == NULL)
        die("bulk", "out of memory");
    for (long i = 0; i < n; i++) {
        unsigned char *r = raw + (i % 1024) * 16;
        if (i % 1024 == 0 && RAND_bytes(raw, sizeof raw) != 1)
            die("random", "RAND_bytes failed");
        /* 16 bytes -> 22 characters, as token_new_id does */
        for (int k = 0; k < 22; k++) {
            int bit = k * 6, byte = bit / 8, sh = bit % 8;
            unsigned v =
                (unsigned)r[byte] << 8 | (byte + 1 < 16 ? r[byte + 1] : 0);
            ids[i][k] = a[(v >> (10 - sh)) & 63];
        }
        ids[i][22] = '\0';
    }
    memcpy(keep, ids[n / 2], 23);
    qsort(ids, (size_t)n, 23, cmp_id);
    snprintf(path, sizeof path, "%s/agent-iam.db", home);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        die("sqlite", sqlite3_errmsg(db));
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO revocations (target, id, reason, "
                           "revoked_at, prune_after) VALUES (0, ?, 'bench', "
                           "?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        die("sqlite", sqlite3_errmsg(db));
    for (long i = 0; i < n; i++) {
        sqlite3_bind_text(q, 1, ids[i], 22, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, now);
        sqlite3_bind_int64(q, 3, now + INT64_C(90) * 86400000);
        if (sqlite3_step(q) != SQLITE_DONE)
            die("insert", sqlite3_errmsg(db));
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die("commit", sqlite3_errmsg(db));
    sqlite3_close(db);
    free(ids);
}

static void rm_home(const char *base, const char *home)
{
    char path[4300];
    struct dirent *e;
    DIR *d = opendir(home);

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", home, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(home);
    rmdir(base);
}

int main(int argc, char **argv)
{
    static const char *const root_scopes[] = {
        "github:repo:read", "github:repo:write", "openai:chat:*",
        "system:token:refresh"};
    static const char *const child_scopes[] = {"github:repo:read",
                                               "openai:chat:completions"};
    static bench b;
    char base[] = "/tmp/agent-iam-bench-XXXXXX", home[64], keep[23];
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    double t0, load[3], insert_s, ns0, ns1, ratio;
    long rss0, rss1;
    const ai_keyring *kr;
    ai_root_params rp;
    ai_delegation d;
    ai_token *root, *tok;
    store *st0 = NULL, *st1 = NULL, *again;
    figure f0, f1, fl;
    cpu_set_t set;
    ai_err e = {0};

    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set); /* one core; best effort */
    if (n < 1)
        die("usage", "revocations [N]");
    if (mkdtemp(base) == NULL)
        die("mkdtemp", "failed");
    snprintf(home, sizeof home, "%s/home", base);
    b.now = wall_ms();

    /* a home, its key, and distinct child tokens (the README's shapes) */
    {
        unsigned char key[AI_KEY_BYTES];
        bool made;
        if (RAND_bytes(key, sizeof key) != 1)
            die("home", "random generator failed");
        if (store_open(home, true, &st0, &e) != AI_OK ||
            store_sync(st0, &e) != AI_OK ||
            store_first_key(st0, key, b.now, NULL, &made, &e) != AI_OK ||
            store_keyring(st0, &kr, &e) != AI_OK)
            die("home", e.msg);
        OPENSSL_cleanse(key, sizeof key);
    }
    ai_root_params_init(&rp);
    rp.agent_id = "orchestrator";
    rp.scopes = root_scopes;
    rp.nscopes = 4;
    rp.constraints_json = "{\"github:repo:*\":{\"resources\":[\"myorg/*\"]}}";
    if (ai_token_create_root(kr, &rp, b.now, &root, &e) != AI_OK)
        die("create root", e.msg);
    ai_delegation_init(&d);
    d.agent_id = "code-reviewer";
    d.scopes = child_scopes;
    d.nscopes = 2;
    d.constraints_json =
        "{\"github:repo:read\":{\"resources\":[\"myorg/frontend\"]}}";
    for (int i = 0; i < DISTINCT; i++) {
        if (ai_token_delegate(kr, root, &d, b.now, &tok, &e) != AI_OK)
            die("delegate", e.msg);
        b.wires[i] = strdup(ai_token_serialize(tok));
        b.lens[i] = ai_token_serialized_len(tok);
        ai_token_free(tok);
    }
    ai_token_free(root);

    t0 = now_s();
    bulk_revoke(home, n, b.now, keep);
    insert_s = now_s() - t0;
    printf("revocation view, %ld token revocations (inserted in one "
           "transaction in %.1f s)\n",
           n, insert_s);

    /* the first load, with the memory it takes; then two more, timed */
    rss0 = rss_bytes();
    t0 = now_s();
    if (store_open(home, false, &st1, &e) != AI_OK ||
        store_sync(st1, &e) != AI_OK)
        die("load", e.msg);
    load[0] = now_s() - t0;
    rss1 = rss_bytes();
    if (store_revocation_count(st1) != (size_t)n ||
        !store_revoked(st1, AI_REVOKED_TOKEN, keep) ||
        store_revocation_count(st0) != 0)
        die("view", "does not hold every revocation");
    for (int i = 1; i < 3; i++) {
        t0 = now_s();
        if (store_open(home, false, &again, &e) != AI_OK ||
            store_sync(again, &e) != AI_OK)
            die("load", e.msg);
        load[i] = now_s() - t0;
        store_close(again);
    }
    fl = stats(load, 3);
    printf("open + first store_sync (view load)  median %6.3f s  "
           "best %6.3f s\n",
           fl.median, load[0] < load[1] && load[0] < load[2] ? load[0]
                      : load[1] < load[2]                   ? load[1]
                                                            : load[2]);
    printf("resident set of the view             %6.1f MiB  (%.0f bytes "
           "an entry; %.1f MiB before open)\n",
           (rss1 - rss0) / 1048576.0, (double)(rss1 - rss0) / n,
           rss0 / 1048576.0);

    printf("verify + check, %d distinct tokens, one core, %d trials of "
           "%.1f s in turn:\n",
           DISTINCT, TRIALS, TRIAL_SECONDS);
    measure(&b, st0, st1, &f0, &f1, &ratio);
    ns0 = lookup_ns(st0);
    ns1 = lookup_ns(st1);
    printf("  0 revocations                      median %9.0f  best %9.0f "
           "ops/s\n",
           f0.median, f0.best);
    printf("  %-7ld revocations                median %9.0f  best %9.0f "
           "ops/s\n",
           n, f1.median, f1.best);
    printf("  ratio %ld / 0: %.3f (median of the per-trial ratios; best "
           "%.3f)\n",
           n, ratio, f1.best / f0.best);
    printf("store_revoked, an id not revoked:    %.1f ns at 0, %.1f ns at "
           "%ld\n",
           ns0, ns1, n);
    printf("json {\"load_s\":%.3f,\"view_mib\":%.1f,\"verify0\":[%.0f,%.0f],"
           "\"verify1m\":[%.0f,%.0f],\"ratio\":%.3f}\n",
           fl.median, (rss1 - rss0) / 1048576.0, f0.median, f0.best,
           f1.median, f1.best, ratio);

    store_close(st0);
    store_close(st1);
    for (int i = 0; i < DISTINCT; i++)
        free(b.wires[i]);
    rm_home(base, home);
    return 0;
}
