/* test_http.c - Suite "http": the parts of the one HTTPS client
 * (src/http) that need no server: the capped body sink (cap, growth,
 * an empty body, allocation failure), the URL rule as http_setup applies
 * it, the host named in messages, the reason text, and an abort flag
 * ending http_perform. The transfers themselves (TLS, timeouts, retries)
 * are tested through their callers against stubs (tests/providers,
 * tests/cli, tests/follower). */
#include <arpa/inet.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "../tests.h"

START_TEST(test_http_sink_takes_up_to_max)
{
    http_sink s;
    char *body;

    http_sink_init(&s, 10, malloc, free);
    ck_assert_uint_eq(http_sink_write((char *)(uintptr_t)"0123456789", 1, 10,
                                      &s),
                      10);
    ck_assert(!s.too_big);
    ck_assert_uint_eq(http_sink_write((char *)(uintptr_t)"x", 1, 1, &s), 0);
    ck_assert(s.too_big);
    ck_assert_uint_eq(s.len, 10);
    body = http_sink_take(&s);
    ck_assert_str_eq(body, "0123456789");
    ck_assert_ptr_null(s.p);
    free(body);
    http_sink_clear(&s);
}
END_TEST

START_TEST(test_http_sink_grows_and_keeps_every_byte)
{
    char chunk[1000];
    http_sink s;

    http_sink_init(&s, 1 << 20, malloc, free);
    for (int i = 0; i < 100; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        ck_assert_uint_eq(http_sink_write(chunk, 1, sizeof chunk, &s),
                          sizeof chunk);
    }
    ck_assert_uint_eq(s.len, 100000);
    ck_assert_uint_ge(s.cap, s.len + 1);
    ck_assert_int_eq(s.p[0], 'a');
    ck_assert_int_eq(s.p[99999], 'a' + 99 % 26);
    ck_assert_int_eq(s.p[100000], '\0');
    http_sink_clear(&s);
    ck_assert_ptr_null(s.p);
    ck_assert_uint_eq(s.len, 0);
}
END_TEST

START_TEST(test_http_sink_empty_body_is_empty_string)
{
    http_sink s;
    char *body;

    http_sink_init(&s, 16, malloc, free);
    body = http_sink_take(&s);
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body, "");
    free(body);
}
END_TEST

static void *no_memory(size_t n)
{
    (void)n;
    return NULL;
}

START_TEST(test_http_sink_reports_out_of_memory)
{
    http_sink s;

    http_sink_init(&s, 1024, no_memory, free);
    ck_assert_uint_eq(http_sink_write((char *)(uintptr_t)"abc", 1, 3, &s), 0);
    ck_assert(s.oom);
    ck_assert(!s.too_big);
    ck_assert_ptr_null(http_sink_take(&s));
}
END_TEST

START_TEST(test_http_setup_refuses_plain_http_to_other_hosts)
{
    char errbuf[CURL_ERROR_SIZE];
    http_sink s;
    http_opts o;
    CURL *h;

    ck_assert(http_global_ok());
    ck_assert_ptr_nonnull(h = curl_easy_init());
    http_sink_init(&s, 16, malloc, free);
    http_opts_init(&o, "GET", "http://example.invalid/x", NULL, NULL, NULL,
                   1000, &s, errbuf);
    ck_assert_str_eq(errbuf, "");
    ck_assert_int_eq(http_setup(h, &o), CURLE_UNSUPPORTED_PROTOCOL);
    o.url = "https://user@example.invalid/x";
    ck_assert_int_eq(http_setup(h, &o), CURLE_UNSUPPORTED_PROTOCOL);
    o.url = "https://example.invalid/x";
    ck_assert_int_eq(http_setup(h, &o), CURLE_OK);
    o.url = "http://127.0.0.1:1/x";
    o.method = "DELETE";
    ck_assert_int_eq(http_setup(h, &o), CURLE_OK);
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(test_http_where_names_host_and_port)
{
    char out[300];

    http_where("https://leader.example:8443/base", out, sizeof out);
    ck_assert_str_eq(out, "leader.example:8443");
    http_where("https://leader.example/base", out, sizeof out);
    ck_assert_str_eq(out, "leader.example");
    http_where("https://[::1]:9/", out, sizeof out);
    ck_assert_str_eq(out, "[::1]:9");
    http_where("not a url", out, sizeof out);
    ck_assert_str_eq(out, "(unparsed URL)");
}
END_TEST

START_TEST(test_http_reason_prefers_the_error_buffer)
{
    ck_assert_str_eq(http_reason(CURLE_COULDNT_CONNECT, "Failed to connect"),
                     "Failed to connect");
    ck_assert_str_eq(http_reason(CURLE_COULDNT_CONNECT, ""),
                     curl_easy_strerror(CURLE_COULDNT_CONNECT));
    ck_assert_str_eq(http_reason(CURLE_OPERATION_TIMEDOUT, NULL),
                     curl_easy_strerror(CURLE_OPERATION_TIMEDOUT));
}
END_TEST

/* A listener that never accepts: the connection is made (backlog) and the
 * request sent, but no answer ever comes; only the flag ends the call. */
START_TEST(test_http_perform_ends_when_abort_is_set)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    char url[64], errbuf[CURL_ERROR_SIZE];
    atomic_bool abort_now = true;
    bool aborted = false;
    http_sink s;
    http_opts o;
    CURL *h;
    int fd;

    ck_assert_int_ge(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    ck_assert(http_global_ok());
    ck_assert_ptr_nonnull(h = curl_easy_init());
    http_sink_init(&s, 1024, malloc, free);
    http_opts_init(&o, "GET", url, NULL, NULL, NULL, 30000, &s, errbuf);
    ck_assert_int_eq(http_setup(h, &o), CURLE_OK);
    ck_assert_int_eq(http_perform(h, &abort_now, &aborted),
                     CURLE_ABORTED_BY_CALLBACK);
    ck_assert(aborted);
    curl_easy_cleanup(h);
    http_sink_clear(&s);
    close(fd);
}
END_TEST

START_TEST(test_http_failover_moves_only_when_safe)
{
    http_failover f;

    /* one base: never another try */
    http_failover_init(&f, 1, 0, 10000, 0, 0);
    ck_assert(!http_failover_next(&f, true, true, 503));
    /* three voters from the second: round and round while it is safe */
    http_failover_init(&f, 3, 1, 10000, 0, 0);
    ck_assert(http_failover_next(&f, true, false, 0)); /* nothing sent */
    ck_assert_uint_eq(f.cur, 2);
    ck_assert(http_failover_next(&f, false, false, 503)); /* no leader */
    ck_assert_uint_eq(f.cur, 0);
    ck_assert(http_failover_next(&f, false, true, 0)); /* a read, unanswered */
    ck_assert_uint_eq(f.cur, 1);
    /* a write that may have arrived, and answers that are final */
    ck_assert(!http_failover_next(&f, false, false, 0));
    ck_assert(!http_failover_next(&f, false, true, 401));
    ck_assert(!http_failover_next(&f, false, true, 500));
    ck_assert_uint_eq(f.cur, 1);
}
END_TEST

START_TEST(test_http_failover_stops_at_its_limits)
{
    http_failover f;
    size_t moves = 0;

    http_failover_init(&f, 2, 0, 0, 0, 3); /* three tries, no window */
    while (http_failover_next(&f, true, false, 0))
        moves++;
    ck_assert_uint_eq(moves, 2);
    /* the window: a pause after each round, no move once it closed */
    http_failover_init(&f, 2, 0, 120, 50, 0);
    moves = 0;
    while (http_failover_next(&f, false, false, 503))
        moves++;
    ck_assert_uint_ge(moves, 2);
    ck_assert_uint_le(moves, 6);
}
END_TEST

Suite *suite_http(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");

    tcase_add_test(tc, test_http_sink_takes_up_to_max);
    tcase_add_test(tc, test_http_sink_grows_and_keeps_every_byte);
    tcase_add_test(tc, test_http_sink_empty_body_is_empty_string);
    tcase_add_test(tc, test_http_sink_reports_out_of_memory);
    tcase_add_test(tc, test_http_setup_refuses_plain_http_to_other_hosts);
    tcase_add_test(tc, test_http_where_names_host_and_port);
    tcase_add_test(tc, test_http_reason_prefers_the_error_buffer);
    tcase_add_test(tc, test_http_perform_ends_when_abort_is_set);
    tcase_add_test(tc, test_http_failover_moves_only_when_safe);
    tcase_add_test(tc, test_http_failover_stops_at_its_limits);
    suite_add_tcase(s, tc);
    return s;
}
