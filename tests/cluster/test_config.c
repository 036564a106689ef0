/* test_config.c - the cluster file: a good one is read whole, and every
 * kind of mistake is refused with the node and member named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests.h"
#include "cluster/config.h"

#define NODE(i) "{\"id\":" #i ",\"raft\":\"127.0.0.1:944" #i "\"," \
                "\"url\":\"https://127.0.0.1:844" #i "\"}"
#define GOOD "{\"ca\":\"/etc/agent-iam/cluster-ca.pem\",\"nodes\":[" \
             NODE(1) "," NODE(2) "," NODE(3) "]}"

static ai_code parse(const char *text, cluster_config *c, ai_err *err)
{
    return cluster_config_parse(text, strlen(text), c, err);
}

START_TEST(test_config_reads_a_good_file)
{
    cluster_config c;
    ai_err err;

    ck_assert_int_eq(parse(GOOD, &c, &err), AI_OK);
    ck_assert_uint_eq(c.n, 3);
    ck_assert_str_eq(c.ca, "/etc/agent-iam/cluster-ca.pem");
    ck_assert_uint_eq(c.nodes[2].id, 3);
    ck_assert_str_eq(c.nodes[1].raft, "127.0.0.1:9442");
    ck_assert_str_eq(c.nodes[0].url, "https://127.0.0.1:8441");
    ck_assert_ptr_eq(cluster_config_node(&c, 2), &c.nodes[1]);
    ck_assert_ptr_null(cluster_config_node(&c, 4));
    /* names and IPv6 addresses, a single voter */
    ck_assert_int_eq(parse("{\"ca\":\"ca.pem\",\"nodes\":[{\"id\":7,"
                           "\"raft\":\"[::1]:9441\",\"url\":"
                           "\"https://voter-1.example\"}]}",
                           &c, &err),
                     AI_OK);
    ck_assert_uint_eq(c.n, 1);
}
END_TEST

START_TEST(test_config_refuses_mistakes)
{
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"", "not JSON"},
        {"[]", "not a JSON object"},
        {"{\"ca\":\"x\",\"nodes\":[" NODE(1) "],\"extra\":1}",
         "unknown member \"extra\""},
        {"{\"nodes\":[" NODE(1) "]}", "\"ca\" must be a string"},
        {"{\"ca\":\"\",\"nodes\":[" NODE(1) "]}", "\"ca\" is empty"},
        {"{\"ca\":\"x\",\"ca\":\"y\",\"nodes\":[" NODE(1) "]}", "not JSON"},
        {"{\"ca\":\"x\",\"nodes\":[]}", "1 to 7 nodes"},
        {"{\"ca\":\"x\",\"nodes\":[" NODE(1) "," NODE(2) "," NODE(3) ","
         NODE(4) "," NODE(5) "," NODE(6) "," NODE(7) ",{\"id\":8,\"raft\":"
         "\"127.0.0.1:9448\",\"url\":\"https://127.0.0.1:8448\"}]}",
         "1 to 7 nodes"},
        {"{\"ca\":\"x\",\"nodes\":[" NODE(1) "," NODE(2) "," NODE(1) "]}",
         "nodes[0] and nodes[2] share"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":0,\"raft\":\"10.0.0.1:1\",\"url\":"
         "\"https://a\"}]}",
         "nodes[0]: \"id\" must be an integer"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":\"1\",\"raft\":\"10.0.0.1:1\",\"url\":"
         "\"https://a\"}]}",
         "nodes[0]: \"id\" must be an integer"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"a\",\"url\":"
         "\"https://a\"}]}",
         "nodes[0]: \"raft\" must be IPv4:PORT"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"a:70000\",\"url\":"
         "\"https://a\"}]}",
         "\"raft\" must be IPv4:PORT"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"a b:1\",\"url\":"
         "\"https://a\"}]}",
         "\"raft\" must be IPv4:PORT"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"voter-1:9441\","
         "\"url\":\"https://a\"}]}",
         "\"raft\" must be IPv4:PORT"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"10.0.0.1:1\",\"url\":"
         "\"ftp://a\"}]}",
         "\"url\" must be"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"10.0.0.1:1\",\"url\":"
         "\"https://a/path\"}]}",
         "\"url\" must be"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"10.0.0.1:1\",\"url\":"
         "\"https://u@a\"}]}",
         "\"url\" must be"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"10.0.0.1:1\"}]}",
         "\"url\" must be a string"},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"10.0.0.1:1\",\"url\":"
         "\"https://a\",\"role\":\"voter\"}]}",
         "nodes[0]: unknown member \"role\""},
        {"{\"ca\":\"x\",\"nodes\":[{\"id\":1,\"raft\":\"a\\u0000:1\","
         "\"url\":\"https://a\"}]}",
         "not JSON"},
    };
    cluster_config c;
    ai_err err;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&c, 0x55, sizeof c);
        ck_assert_msg(parse(bad[i].text, &c, &err) == AI_EINVAL, "%s",
                      bad[i].text);
        ck_assert_msg(t_has(err.msg, bad[i].says), "%s: %s", bad[i].text,
                      err.msg);
        ck_assert_uint_eq(c.n, 0);
    }
}
END_TEST

START_TEST(test_config_loads_a_file)
{
    char path[] = "/tmp/agent-iam-cluster-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    cluster_config c;
    ai_err err;

    ck_assert_ptr_nonnull(f);
    fputs(GOOD, f);
    fclose(f);
    ck_assert_int_eq(cluster_config_load(path, &c, &err), AI_OK);
    ck_assert_uint_eq(c.n, 3);
    /* over 64 KiB */
    f = fopen(path, "w");
    for (int i = 0; i < 70000; i++)
        fputc(' ', f);
    fputs(GOOD, f);
    fclose(f);
    ck_assert_int_eq(cluster_config_load(path, &c, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "64 KiB"), "%s", err.msg);
    unlink(path);
    ck_assert_int_eq(cluster_config_load(path, &c, &err), AI_EINVAL);
    ck_assert_msg(t_has(err.msg, "cannot read"), "%s", err.msg);
}
END_TEST

Suite *suite_cluster_config(void)
{
    Suite *s = suite_create("cluster_config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, test_config_reads_a_good_file);
    tcase_add_test(tc, test_config_refuses_mistakes);
    tcase_add_test(tc, test_config_loads_a_file);
    suite_add_tcase(s, tc);
    return s;
}
