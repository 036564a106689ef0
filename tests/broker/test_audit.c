/* test_audit.c - Suite "broker_audit": the broker's audit rows (src/broker):
 * who they name (the actor, "cli" unless set) and what they record for
 * minting and denials. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests.h"
#include "../store/home_fixture.h"

typedef struct rows {
    char actor[8][72];
    char action[8][32];
    char decision[8][16];
    int n;
} rows;

static void collect(void *ud, const audit_entry *e)
{
    rows *r = ud;

    if (r->n == 8)
        return;
    snprintf(r->actor[r->n], sizeof r->actor[0], "%s", e->actor);
    snprintf(r->action[r->n], sizeof r->action[0], "%s", e->action);
    snprintf(r->decision[r->n], sizeof r->decision[0], "%s", e->decision);
    r->n++;
}

START_TEST(test_broker_audit_names_the_actor_and_denials)
{
    char *home = fx_home_new();
    ai_broker *b = NULL;
    ai_root_params p;
    ai_token *t = NULL;
    store *st;
    rows r;
    int64_t bad = 0;
    ai_err err;

    ck_assert_int_eq(ai_broker_open(home, &b, &err), AI_OK);
    ck_assert_int_eq(ai_broker_set_actor(b, "", &err), AI_EINVAL);
    ck_assert_int_eq(ai_broker_set_actor(b, "svc\n1", &err), AI_EINVAL);
    ck_assert_int_eq(ai_broker_set_actor(b, "svc-1", &err), AI_OK);
    ai_root_params_init(&p);
    p.agent_id = "a";
    p.scopes = T_ARR("x:y:z");
    p.nscopes = 1;
    ck_assert_int_eq(ai_broker_create_root_token(b, &p, &t, &err), AI_OK);
    ck_assert_int_eq(ai_broker_check_permission(b, ai_token_serialize(t),
                                                ai_token_serialized_len(t),
                                                "x:y:w", "r", &err),
                     AI_EDENIED);
    ai_broker_close(b);

    st = fx_open(home);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(store_audit_tail(st, 8, collect, &r, &err), AI_OK);
    /* the home's first key, made by the first root token, is on record */
    ck_assert_int_eq(r.n, 3);
    ck_assert_str_eq(r.actor[0], "svc-1");
    ck_assert_str_eq(r.action[0], "key-create");
    ck_assert_str_eq(r.decision[0], "ok");
    ck_assert_str_eq(r.actor[1], "svc-1");
    ck_assert_str_eq(r.action[1], "create-root");
    ck_assert_str_eq(r.decision[1], "ok");
    ck_assert_str_eq(r.action[2], "check");
    ck_assert_str_eq(r.decision[2], "deny");
    ck_assert_int_eq(store_audit_verify(st, &bad, &err), AI_OK);
    store_close(st);
    ai_token_free(t);
    fx_home_free(home);
}
END_TEST

Suite *suite_broker_audit(void)
{
    Suite *s = suite_create("broker_audit");
    TCase *tc = tcase_create("audit");

    tcase_add_test(tc, test_broker_audit_names_the_actor_and_denials);
    suite_add_tcase(s, tc);
    return s;
}
