/* bench/verify.c - token throughput on one core: (a) verify + check of
 * many distinct tokens, (b) one token presented again and again (the
 * verified-token cache), (c) forged tokens rejected, (d) delegate.
 * Prints operations per second next to the targets of the design. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_iam.h"

#define DISTINCT 2000

/* BENCH_ONCE=1: one pass of each loop, for instruction counting under
 * valgrind --tool=callgrind, which is repeatable on a busy machine. */
static bool once;
#define MIN_SECONDS 1.0

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

static bool never_revoked(void *ud, ai_revoke_kind kind, const char *id)
{
    (void)ud, (void)kind, (void)id;
    return false;
}

static void die(const char *what, const ai_err *e)
{
    fprintf(stderr, "bench: %s: %s\n", what, e->msg);
    exit(1);
}

static void report(const char *name, double ops, double target)
{
    printf("%-44s %12.0f ops/s  (target %9.0f)  %s\n", name, ops, target,
           ops >= target ? "ok" : "BELOW TARGET");
}

int main(int argc, char **argv)
{
    static const char *const root_scopes[] = {
        "github:repo:read", "github:repo:write", "openai:chat:*",
        "system:token:refresh"};
    static const char *const child_scopes[] = {"github:repo:read",
                                               "openai:chat:completions"};
    unsigned char key[AI_KEY_BYTES];
    ai_keyring *kr = ai_keyring_new();
    ai_verifier v = {kr, never_revoked, NULL};
    ai_root_params rp;
    ai_delegation d;
    ai_token *root = NULL, *tok;
    ai_err e = {0};
    char **wires, **forged;
    size_t *lens;
    int64_t now = wall_ms();
    double t0, el;
    long n;
    cpu_set_t set;
    const char *only = argc > 1 ? argv[1] : "abcd";

    once = getenv("BENCH_ONCE") != NULL;

    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set); /* one core; best effort */

    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(i * 7 + 3);
    if (ai_keyring_add(kr, 1, key, 0, &e) != AI_OK)
        die("keyring", &e);

    ai_root_params_init(&rp);
    rp.agent_id = "orchestrator";
    rp.scopes = root_scopes;
    rp.nscopes = 4;
    rp.constraints_json = "{\"github:repo:*\":{\"resources\":[\"myorg/*\"]}}";
    if (ai_token_create_root(kr, &rp, now, &root, &e) != AI_OK)
        die("create root", &e);

    ai_delegation_init(&d);
    d.agent_id = "code-reviewer";
    d.scopes = child_scopes;
    d.nscopes = 2;
    d.constraints_json =
        "{\"github:repo:read\":{\"resources\":[\"myorg/frontend\"]}}";
    d.ttl_minutes = 60;

    wires = calloc(DISTINCT, sizeof *wires);
    forged = calloc(DISTINCT, sizeof *forged);
    lens = calloc(DISTINCT, sizeof *lens);
    for (int i = 0; i < DISTINCT; i++) {
        if (ai_token_delegate(kr, root, &d, now, &tok, &e) != AI_OK)
            die("delegate", &e);
        wires[i] = strdup(ai_token_serialize(tok));
        lens[i] = ai_token_serialized_len(tok);
        forged[i] = strdup(wires[i]);
        /* Change one claim byte: same shape, wrong signature. */
        forged[i][lens[i] / 3] = forged[i][lens[i] / 3] == 'A' ? 'B' : 'A';
        ai_token_free(tok);
    }
    printf("token: %zu characters serialized\n", lens[0]);

    if (strchr(only, 'a') != NULL) {
    /* (a) distinct tokens: full verification and a permission check */
    n = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < DISTINCT; i++, n++) {
            if (ai_token_verify(&v, wires[i], lens[i], now, &tok, &e) != AI_OK ||
                ai_token_check(tok, "github:repo:read", "myorg/frontend", now,
                               &e) != AI_OK)
                die("verify", &e);
            ai_token_free(tok);
        }
    } while ((el = now_s() - t0) < MIN_SECONDS && !once);
    report("(a) verify + check, distinct tokens", n / el, 600000);
    }

    if (strchr(only, 'b') != NULL) {
    /* (b) one token again and again, through the cache */
    ai_token_cache *cache = ai_token_cache_new(4096);
    n = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < 100000; i++, n++) {
            if (ai_token_cache_verify(cache, &v, wires[0], lens[0], now, &tok,
                                      &e) != AI_OK ||
                ai_token_check(tok, "github:repo:read", "myorg/frontend", now,
                               &e) != AI_OK)
                die("cached verify", &e);
            ai_token_free(tok);
        }
    } while ((el = now_s() - t0) < MIN_SECONDS && !once);
    report("(b) verify + check, same token (cache)", n / el, 4000000);
    ai_token_cache_free(cache);
    }

    if (strchr(only, 'c') != NULL) {
    /* (c) forged tokens */
    n = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < DISTINCT; i++, n++) {
            ai_err fe = {0};
            if (ai_token_verify(&v, forged[i], lens[i], now, &tok, &fe) !=
                AI_ETOKEN)
                die("forged token accepted", &fe);
        }
    } while ((el = now_s() - t0) < MIN_SECONDS && !once);
    report("(c) forged tokens rejected", n / el, 1000000);
    }

    if (strchr(only, 'd') != NULL) {
    /* (d) delegate from a verified parent */
    n = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < 10000; i++, n++) {
            if (ai_token_delegate(kr, root, &d, now, &tok, &e) != AI_OK)
                die("delegate", &e);
            ai_token_free(tok);
        }
    } while ((el = now_s() - t0) < MIN_SECONDS && !once);
    report("(d) delegate", n / el, 250000);
    }

    for (int i = 0; i < DISTINCT; i++) {
        free(wires[i]);
        free(forged[i]);
    }
    free(wires);
    free(forged);
    free(lens);
    ai_token_free(root);
    ai_keyring_free(kr);
    return 0;
}
