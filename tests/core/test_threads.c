/* test_threads.c - what the header promises about threads: a token and a
 * keyring may be read from several threads at once (verification, checks,
 * the lazily built JSON views, reference counting), and minting on several
 * threads never hands out the same tokenId. `make tsan` runs this under
 * ThreadSanitizer. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../tests.h"

#define THREADS 4
#define ROUNDS 200

typedef struct shared {
    ai_keyring *kr;
    ai_token *tok;
    char ids[THREADS][ROUNDS][AI_TOKEN_ID_CHARS + 1];
    int failures[THREADS];
} shared;

typedef struct arg {
    shared *sh;
    int n;
} arg;

static void *reader(void *p)
{
    arg *a = p;
    shared *sh = a->sh;
    ai_verifier v = {sh->kr, NULL, NULL};

    for (int i = 0; i < ROUNDS; i++) {
        ai_token *mine = ai_token_ref(sh->tok), *seen = NULL, *child = NULL;
        ai_delegation d;
        ai_err err;
        const char *views[4] = {ai_token_constraints_json(mine),
                                ai_token_capabilities_json(mine),
                                ai_token_federation_json(mine),
                                ai_token_json(mine)};
        for (int k = 0; k < 4; k++)
            if (views[k] == NULL)
                sh->failures[a->n]++;
        if (ai_token_verify(&v, ai_token_serialize(mine),
                            ai_token_serialized_len(mine), T_NOW, &seen,
                            &err) != AI_OK ||
            ai_token_check(seen, "github:repo:read", "myorg/x", T_NOW,
                           &err) != AI_OK)
            sh->failures[a->n]++;
        ai_delegation_init(&d);
        d.scopes = T_ARR("github:repo:read");
        d.nscopes = 1;
        if (ai_token_delegate(sh->kr, mine, &d, T_NOW, &child, &err) != AI_OK)
            sh->failures[a->n]++;
        else
            memcpy(sh->ids[a->n][i], ai_token_id(child),
                   AI_TOKEN_ID_CHARS + 1);
        ai_token_free(child);
        ai_token_free(seen);
        ai_token_free(mine);
    }
    return NULL;
}

static int cmp_id(const void *x, const void *y)
{
    return strcmp(x, y);
}

START_TEST(test_threads_share_tokens_and_keyring)
{
    static shared sh;
    pthread_t th[THREADS];
    arg args[THREADS];
    ai_root_params p;
    ai_err err;

    memset(&sh, 0, sizeof sh);
    sh.kr = t_keyring();
    ai_root_params_init(&p);
    p.agent_id = "orchestrator";
    p.scopes = T_ARR("github:repo:*");
    p.nscopes = 1;
    p.constraints_json = "{\"github:repo:*\":{\"resources\":[\"myorg/*\"]}}";
    p.federation_json = "{\"crossSystemAllowed\":false}";
    p.capabilities_json = "{\"canSpawn\":true}";
    ck_assert_int_eq(ai_token_create_root(sh.kr, &p, T_NOW, &sh.tok, &err),
                     AI_OK);
    for (int i = 0; i < THREADS; i++) {
        args[i].sh = &sh;
        args[i].n = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(sh.failures[i], 0);
    /* every tokenId minted on any thread is distinct */
    qsort(sh.ids, THREADS * ROUNDS, AI_TOKEN_ID_CHARS + 1, cmp_id);
    for (int i = 1; i < THREADS * ROUNDS; i++)
        ck_assert_str_ne(((char(*)[AI_TOKEN_ID_CHARS + 1])sh.ids)[i - 1],
                         ((char(*)[AI_TOKEN_ID_CHARS + 1])sh.ids)[i]);
    ai_token_free(sh.tok);
    ai_keyring_free(sh.kr);
}
END_TEST

Suite *suite_core_threads(void)
{
    Suite *s = suite_create("core_threads");
    TCase *tc = tcase_create("threads");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_threads_share_tokens_and_keyring);
    suite_add_tcase(s, tc);
    return s;
}
