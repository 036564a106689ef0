/* test_codec.c - broker commands as Raft log entries: every field comes
 * back as it went, the entry is sealed (no secret in its bytes, another
 * master key cannot open it, a changed byte is refused) and padded to 8
 * bytes, and no malformed entry decodes. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tests.h"
#include "../store/home_fixture.h"
#include "cluster/codec.h"
#include "core/core.h"

#define SECRET "sk-test-0123456789abcdef"
#define CONFIG "{\"privateKey\":\"-----BEGIN KEY-----\"}"

static const unsigned char req[CLUSTER_REQ_ID_BYTES] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static bool has_bytes(const unsigned char *p, size_t n, const void *s,
                      size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(p + i, s, m) == 0)
            return true;
    return false;
}

static void same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        ck_assert_ptr_eq(a, b);
    else
        ck_assert_str_eq(a, b);
}

START_TEST(test_cluster_codec_every_field_comes_back)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    const ai_budget_ref budgets[] = {{"tok-1:x", 2}, {"tok-0:x", 5}};
    broker_cmd c = {.op = BROKER_APIKEY_ADD, .at_ms = T_NOW, .actor = "admin",
                    .target = REVOKE_AGENT, .id = "agent-7",
                    .reason = "a reason", .name = "openai",
                    .grace_ms = -1, .force = true, .config_json = CONFIG,
                    .provider = "openai", .secret = SECRET,
                    .base_url = NULL, .ttl_minutes = -30,
                    .providers = "", .budgets = budgets, .nbudgets = 2};
    unsigned char *bytes = NULL;
    size_t n = 0;
    cluster_entry e;
    ai_err err;

    memcpy(c.key, t_key1, AI_KEY_BYTES);
    memset(c.digest, 0xd1, sizeof c.digest);
    memcpy(c.transport, t_key2, AI_KEY_BYTES);
    ck_assert_int_eq(cluster_encode(st, req, &c, &bytes, &n, &err), AI_OK);
    ck_assert_uint_eq(n % 8, 0);
    /* sealed: neither secret nor key nor config readable in the entry */
    ck_assert(!has_bytes(bytes, n, SECRET, strlen(SECRET)));
    ck_assert(!has_bytes(bytes, n, t_key1, AI_KEY_BYTES));
    ck_assert(!has_bytes(bytes, n, t_key2, AI_KEY_BYTES));
    ck_assert(!has_bytes(bytes, n, "BEGIN KEY", 9));
    ck_assert(!has_bytes(bytes, n, "agent-7", 7));
    ck_assert_int_eq(cluster_decode(st, bytes, n, &e, &err), AI_OK);
    ck_assert_mem_eq(e.req_id, req, sizeof req);
    ck_assert_int_eq(e.cmd.op, c.op);
    ck_assert_int_eq(e.cmd.at_ms, c.at_ms);
    same_str(e.cmd.actor, c.actor);
    ck_assert_int_eq(e.cmd.target, c.target);
    same_str(e.cmd.id, c.id);
    same_str(e.cmd.reason, c.reason);
    same_str(e.cmd.name, c.name);
    ck_assert_int_eq(e.cmd.grace_ms, c.grace_ms);
    ck_assert(e.cmd.force);
    ck_assert_mem_eq(e.cmd.key, t_key1, AI_KEY_BYTES);
    same_str(e.cmd.config_json, c.config_json);
    same_str(e.cmd.provider, c.provider);
    same_str(e.cmd.secret, c.secret);
    same_str(e.cmd.base_url, NULL);
    ck_assert_int_eq(e.cmd.ttl_minutes, -30);
    same_str(e.cmd.providers, "");
    ck_assert_mem_eq(e.cmd.digest, c.digest, sizeof c.digest);
    ck_assert_mem_eq(e.cmd.transport, t_key2, AI_KEY_BYTES);
    ck_assert_uint_eq(e.cmd.nbudgets, 2);
    ck_assert_str_eq(e.cmd.budgets[1].id, "tok-0:x");
    ck_assert_uint_eq(e.cmd.budgets[1].max_uses, 5);
    cluster_entry_free(&e);
    ck_assert_ptr_null(e.plain);
    ai_free(bytes);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_cluster_codec_another_master_key_cannot_open)
{
    char *h1 = fx_home_new(), *h2 = fx_home_new();
    store *a = fx_open(h1), *b = fx_open(h2);
    broker_cmd c = {.op = BROKER_REVOKE, .at_ms = T_NOW,
                    .target = REVOKE_TOKEN, .id = "AAAAAAAAAAAAAAAAAAAAAA"};
    unsigned char *bytes = NULL;
    size_t n = 0;
    cluster_entry e;
    ai_err err;

    ck_assert_int_eq(cluster_encode(a, req, &c, &bytes, &n, &err), AI_OK);
    ck_assert_int_eq(cluster_decode(b, bytes, n, &e, &err), AI_ESTORE);
    ck_assert_msg(t_has(err.msg, "master key"), "%s", err.msg);
    ck_assert_ptr_null(e.plain);
    /* the sealed part is bound to the request id */
    bytes[8] ^= 1;
    ck_assert_int_eq(cluster_decode(a, bytes, n, &e, &err), AI_ESTORE);
    ai_free(bytes);
    store_close(a);
    store_close(b);
    fx_home_free(h1);
    fx_home_free(h2);
}
END_TEST

START_TEST(test_cluster_codec_refuses_malformed_entries)
{
    char *home = fx_home_new();
    store *st = fx_open(home);
    broker_cmd c = {.op = BROKER_ROTATE_KEY, .at_ms = T_NOW, .grace_ms = 5};
    broker_cmd bad = {.op = BROKER_REVOKE, .at_ms = T_NOW};
    char *huge = malloc(70 * 1024);
    unsigned char *bytes = NULL, *copy;
    size_t n = 0;
    cluster_entry e;
    ai_err err;

    /* a string over its limit is refused when written */
    memset(huge, 'a', 70 * 1024 - 1);
    huge[70 * 1024 - 1] = '\0';
    bad.reason = huge;
    ck_assert_int_eq(cluster_encode(st, req, &bad, &bytes, &n, &err),
                     AI_EINVAL);
    ck_assert_ptr_null(bytes);
    free(huge);
    bad.reason = NULL;
    bad.nbudgets = CLUSTER_BUDGETS_MAX + 1;
    ck_assert_int_eq(cluster_encode(st, req, &bad, &bytes, &n, &err),
                     AI_EINVAL);

    ck_assert_int_eq(cluster_encode(st, req, &c, &bytes, &n, &err), AI_OK);
    /* every truncation, every flipped byte, and junk: refused, and the
     * entry returned holds nothing */
    for (size_t cut = 0; cut < n; cut++) {
        ck_assert_int_ne(cluster_decode(st, bytes, cut, &e, &err), AI_OK);
        ck_assert_ptr_null(e.plain);
    }
    copy = malloc(n + 8);
    for (size_t i = 0; i < n; i++) {
        memcpy(copy, bytes, n);
        copy[i] ^= 0x40;
        ck_assert_int_ne(cluster_decode(st, copy, n, &e, &err), AI_OK);
        ck_assert_ptr_null(e.plain);
    }
    memcpy(copy, bytes, n);
    memset(copy + n, 0, 8);
    ck_assert_int_eq(cluster_decode(st, copy, n + 8, &e, &err), AI_EINVAL);
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < n; i++)
            copy[i] = (unsigned char)(rand() & 0xff);
        if (round % 2)
            memcpy(copy, bytes, 8);
        ck_assert_int_ne(cluster_decode(st, copy, n, &e, &err), AI_OK);
    }
    ck_assert_int_eq(cluster_decode(st, NULL, 0, &e, &err), AI_EINVAL);
    free(copy);
    ck_assert_int_eq(cluster_decode(st, bytes, n, &e, &err), AI_OK);
    ck_assert_int_eq(e.cmd.op, BROKER_ROTATE_KEY);
    ck_assert_int_eq(e.cmd.grace_ms, 5);
    ck_assert_ptr_null(e.cmd.actor);
    ck_assert_ptr_null(e.cmd.budgets);
    cluster_entry_free(&e);
    ai_free(bytes);
    store_close(st);
    fx_home_free(home);
}
END_TEST

START_TEST(test_cluster_codec_applies_like_the_command)
{
    /* an entry decoded on another voter's home (same master key) applies
     * to the same state as the command on the first */
    char *h1 = fx_home_new(), *h2 = fx_home_new(), p1[4096], p2[4096];
    unsigned char *bytes = NULL, k[AI_KEY_BYTES];
    size_t n = 0, mlen = 0;
    unsigned char *master = NULL;
    ai_broker *a = NULL, *b = NULL;
    broker_cmd rot = {.op = BROKER_ROTATE_KEY, .at_ms = T_NOW,
                      .actor = "admin", .grace_ms = -1};
    cluster_entry e;
    int64_t ha = 0, hb = 0;
    ai_err err;

    store_close(fx_open(h1));
    master = fx_read(fx_path(p1, sizeof p1, h1, STORE_KEY_FILE), &mlen);
    ck_assert_ptr_nonnull(master);
    /* the operator copies master.key into the new voter's home */
    ck_assert_int_eq(mkdir(h2, 0700), 0);
    fx_write(fx_path(p2, sizeof p2, h2, STORE_KEY_FILE), master, mlen, 0600);
    free(master);
    ck_assert_int_eq(ai_broker_open(h1, &a, &err), AI_OK);
    ck_assert_int_eq(ai_broker_open(h2, &b, &err), AI_OK);
    memcpy(rot.key, t_key2, AI_KEY_BYTES);
    ck_assert_int_eq(cluster_encode(broker_store(a), req, &rot, &bytes, &n,
                                    &err),
                     AI_OK);
    ck_assert_int_eq(broker_exec(a, &rot, NULL, &err), AI_OK);
    ck_assert_int_eq(cluster_decode(broker_store(b), bytes, n, &e, &err),
                     AI_OK);
    ck_assert_int_eq(broker_exec(b, &e.cmd, NULL, &err), AI_OK);
    cluster_entry_free(&e);
    ck_assert_int_eq(store_export_key(broker_store(b), 1, k, &err), AI_OK);
    ck_assert_mem_eq(k, t_key2, AI_KEY_BYTES);
    ck_assert_int_eq(store_changelog_head(broker_store(a), &ha, &err), AI_OK);
    ck_assert_int_eq(store_changelog_head(broker_store(b), &hb, &err), AI_OK);
    ck_assert_int_eq(ha, hb);
    ai_free(bytes);
    ai_broker_close(a);
    ai_broker_close(b);
    fx_home_free(h1);
    fx_home_free(h2);
}
END_TEST

Suite *suite_cluster_codec(void)
{
    Suite *s = suite_create("cluster_codec");
    TCase *tc = tcase_create("codec");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cluster_codec_every_field_comes_back);
    tcase_add_test(tc, test_cluster_codec_another_master_key_cannot_open);
    tcase_add_test(tc, test_cluster_codec_refuses_malformed_entries);
    tcase_add_test(tc, test_cluster_codec_applies_like_the_command);
    suite_add_tcase(s, tc);
    return s;
}
