/* test_http.c - Suite "providers_http": the requests of the providers
 * (src/providers/fetch.c, on src/http) against a Python stub on 127.0.0.1
 * with a certificate made by openssl for the test (the CA file). A 500
 * then 200 is retried to success; 401 comes back with its status; a
 * persistent 503 is tried 3 times and then reported; a stub slower than
 * the (shortened, AGENT_IAM_HTTP_TIMEOUT_MS) timeout is a timeout; a body
 * over 1 MiB is refused; the stub's certificate without the CA file is
 * refused (verification on); plain http to a non-local host is refused
 * without any network use. The stub is started once for the suite
 * (fork/exec python3) and killed at the end. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "http/http.h"
#include "providers/providers.h"
#include "../tests.h"

static const char stub_py[] =
    "import http.server, os, ssl, sys, time\n"
    "count = {}\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def reply(self, code, b):\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(b)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(b)\n"
    "    def do_POST(self):\n"
    "        n = int(self.headers.get('Content-Length', '0'))\n"
    "        body = self.rfile.read(n).decode()\n"
    "        p = self.path\n"
    "        count[p] = count.get(p, 0) + 1\n"
    "        c = count[p]\n"
    "        if p == '/flaky':\n"
    "            if c == 1: return self.reply(500, b'{\"error\":\"boom\"}')\n"
    "            return self.reply(200, b'{\"ok\":true,\"attempt\":%d}' % c)\n"
    "        if p == '/unauth':\n"
    "            return self.reply(401, b'{\"message\":\"Bad credentials\"}')\n"
    "        if p == '/down': return self.reply(503, b'{}')\n"
    "        if p == '/count':\n"
    "            return self.reply(200, str(count.get(body, 0)).encode())\n"
    "        if p == '/slow':\n"
    "            time.sleep(3)\n"
    "            return self.reply(200, b'{}')\n"
    "        if p == '/big': return self.reply(200, b'x' * (2 << 20))\n"
    "        if p == '/echo':\n"
    "            a = self.headers.get('Authorization', '')\n"
    "            return self.reply(200, ('%s|%s' % (a, body)).encode())\n"
    "        self.reply(404, b'{}')\n"
    "    def do_GET(self):\n"
    "        if self.path == '/get':\n"
    "            a = self.headers.get('Authorization', '')\n"
    "            n = self.headers.get('Content-Length', '-')\n"
    "            return self.reply(200, ('GET|%s|%s' % (a, n)).encode())\n"
    "        self.reply(404, b'{}')\n"
    "class S(http.server.ThreadingHTTPServer):\n"
    "    def handle_error(self, *a): pass\n"
    "srv = S(('127.0.0.1', 0), H)\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
    "srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
    "open(sys.argv[3] + '.tmp', 'w').write(str(srv.server_address[1]))\n"
    "os.rename(sys.argv[3] + '.tmp', sys.argv[3])\n"
    "srv.serve_forever()\n";

static char dir[64];
static char cert[128], key[128], portfile[128], script[128];
static pid_t stub_pid = -1;
static int port;

static void stub_start(void)
{
    char cmd[1024];
    FILE *f;

    snprintf(dir, sizeof dir, "/tmp/agent-iam-http-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(portfile, sizeof portfile, "%s/port", dir);
    snprintf(script, sizeof script, "%s/stub.py", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s "
             "-days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost "
             ">/dev/null 2>&1",
             key, cert);
    ck_assert_msg(system(cmd) == 0, "openssl could not make a certificate");
    ck_assert_ptr_nonnull(f = fopen(script, "w"));
    fputs(stub_py, f);
    fclose(f);
    stub_pid = fork();
    ck_assert_int_ge(stub_pid, 0);
    if (stub_pid == 0) {
        execlp("python3", "python3", script, cert, key, portfile,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) { /* up to 10 s */
        struct timespec ts = {0, 50000000};
        if ((f = fopen(portfile, "r")) != NULL) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
            break;
        }
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(port > 0, "the python3 stub did not start");
}

static void stub_stop(void)
{
    char cmd[160];

    if (stub_pid > 0) {
        kill(stub_pid, SIGTERM);
        waitpid(stub_pid, NULL, 0);
        stub_pid = -1;
    }
    if (dir[0] != '\0') {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_http: could not remove %s\n", dir);
    }
}

static void url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "https://127.0.0.1:%d%s", port, path);
}

START_TEST(test_http_500_then_200_is_retried)
{
    char u[128];
    prov_resp r;
    ai_err err;

    url(u, sizeof u, "/flaky");
    ck_assert_int_eq(prov_post("stub", u, NULL, "{}", 2, cert, &r, &err),
                     AI_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert(t_has(r.body, "\"attempt\":2"));
    prov_resp_clear(&r);
}
END_TEST

START_TEST(test_http_401_reported_with_status)
{
    char u[128];
    prov_resp r;
    ai_err err;

    url(u, sizeof u, "/unauth");
    ck_assert_int_eq(prov_post("stub", u, NULL, "{}", 2, cert, &r, &err),
                     AI_OK);
    ck_assert_int_eq(r.status, 401);
    ck_assert(t_has(r.body, "Bad credentials"));
    prov_resp_clear(&r);
}
END_TEST

START_TEST(test_http_503_tried_three_times)
{
    char u[128];
    prov_resp r;
    ai_err err;
    int64_t t0 = time_mono_ns() / 1000000;

    url(u, sizeof u, "/down");
    ck_assert_int_eq(prov_post("stub", u, NULL, "", 0, cert, &r, &err),
                     AI_OK);
    ck_assert_int_eq(r.status, 503);
    /* backoff 200 + 800 ms */
    ck_assert_int_ge(time_mono_ns() / 1000000 - t0, 1000);
    prov_resp_clear(&r);
    url(u, sizeof u, "/count");
    ck_assert_int_eq(prov_post("stub", u, NULL, "/down", 5, cert, &r, &err),
                     AI_OK);
    ck_assert_str_eq(r.body, "3");
    prov_resp_clear(&r);
}
END_TEST

START_TEST(test_http_headers_and_body_sent)
{
    const char *const hdrs[] = {"Authorization: Bearer abc", NULL};
    char u[128];
    prov_resp r;
    ai_err err;

    url(u, sizeof u, "/echo");
    ck_assert_int_eq(prov_post("stub", u, hdrs, "a=1&b=2", 7, cert, &r,
                               &err),
                     AI_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "Bearer abc|a=1&b=2");
    ck_assert_uint_eq(r.len, strlen("Bearer abc|a=1&b=2"));
    prov_resp_clear(&r);
}
END_TEST

START_TEST(test_http_timeout_reported)
{
    char u[128];
    prov_resp r;
    ai_err err;
    int64_t t0 = time_mono_ns() / 1000000;
    ai_code rc;

    url(u, sizeof u, "/slow");
    setenv("AGENT_IAM_HTTP_TIMEOUT_MS", "500", 1);
    rc = prov_post("stub", u, NULL, "{}", 2, cert, &r, &err);
    unsetenv("AGENT_IAM_HTTP_TIMEOUT_MS");
    ck_assert_int_eq(rc, AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "stub: ") && t_has(err.msg, "timed out"),
                  "%s", err.msg);
    ck_assert_int_lt(time_mono_ns() / 1000000 - t0, 2500);
    ck_assert_ptr_null(r.body);
}
END_TEST

START_TEST(test_http_big_body_refused)
{
    char u[128];
    prov_resp r;
    ai_err err;

    url(u, sizeof u, "/big");
    ck_assert_int_eq(prov_post("stub", u, NULL, "", 0, cert, &r, &err),
                     AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "1 MiB"), "%s", err.msg);
    ck_assert_ptr_null(r.body);
}
END_TEST

START_TEST(test_http_unknown_ca_refused)
{
    char u[128], cmd[512], empty[160];
    prov_resp r;
    ai_err err;
    FILE *f;

    /* A CA file that does not hold the stub's certificate. */
    snprintf(empty, sizeof empty, "%s/other.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/k2 -out "
             "%s -days 1 -subj /CN=other >/dev/null 2>&1",
             dir, empty);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_ptr_nonnull(f = fopen(empty, "r"));
    fclose(f);
    url(u, sizeof u, "/unauth");
    ck_assert_int_eq(prov_post("stub", u, NULL, "", 0, empty, &r, &err),
                     AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "stub: "), "%s", err.msg);
    ck_assert_ptr_null(r.body);
}
END_TEST

START_TEST(test_http_plain_http_only_to_localhost)
{
    prov_resp r;
    ai_err err;

    ck_assert_int_eq(prov_post("github", "http://example.com/x", NULL, "", 0,
                               NULL, &r, &err),
                     AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "github: ") && t_has(err.msg, "https"),
                  "%s", err.msg);
    ck_assert_int_eq(prov_post("github", "http://127.0.0.1.evil.com/x", NULL,
                               "", 0, NULL, &r, &err),
                     AI_EPROVIDER);
    ck_assert_int_eq(prov_post("github", "ftp://127.0.0.1/x", NULL, "", 0,
                               NULL, &r, &err),
                     AI_EPROVIDER);
}
END_TEST

/* The URL is judged on the host libcurl's parser finds, not on how the
 * string starts: "http://localhost:1@evil.invalid" is user "localhost",
 * password "1", host evil.invalid. User info is refused everywhere. */
START_TEST(test_http_user_info_refused)
{
    static const char *const bad[] = {
        "http://localhost:1@evil.invalid",
        "http://localhost:1@evil.invalid/token",
        "http://127.0.0.1@evil.invalid/x",
        "http://localhost@127.0.0.1/x",
        "https://user:pw@127.0.0.1/x",
        "https://@example.com/x",
        "http://[::1]:80@evil.invalid/",
        "http://localhost.evil.invalid/",
        "http://127.0.0.1.evil.invalid/",
        "http://localhost%2f@evil.invalid/",
        "gopher://127.0.0.1/",
        "not a url",
    };
    static const char *const good[] = {
        "https://api.github.com",
        "https://127.0.0.1:8443/x?a=b@c",
        "http://127.0.0.1:1/token",
        "http://localhost/x",
        "http://LOCALHOST:8080",
        "http://[::1]:9/x",
    };
    prov_resp r;
    ai_err err;
    bool plain;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(!http_url_ok(bad[i], &plain), "accepted %s", bad[i]);
        ck_assert_int_eq(prov_post("github", bad[i], NULL, "", 0, NULL, &r,
                                   &err),
                         AI_EPROVIDER);
        ck_assert_msg(t_has(err.msg, "github: refusing a URL") &&
                          t_has(err.msg, "user info"),
                      "%s: %s", bad[i], err.msg);
        ck_assert_ptr_null(r.body);
        ck_assert_int_eq(prov_get("github", bad[i], NULL, NULL, &r, &err),
                         AI_EPROVIDER);
        ck_assert(t_has(err.msg, "github: refusing a URL"));
    }
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(http_url_ok(good[i], NULL), "refused %s", good[i]);
    ck_assert(http_url_ok("http://localhost/x", &plain) && plain);
    ck_assert(http_url_ok("https://api.github.com/", &plain) && !plain);
    /* Plain http to localhost is still allowed: it gets as far as
     * connecting (nothing listens on port 1). */
    ck_assert_int_eq(prov_post("google", "http://localhost:1/token", NULL, "",
                               0, NULL, &r, &err),
                     AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "google: ") && !t_has(err.msg, "refusing"),
                  "%s", err.msg);
}
END_TEST

START_TEST(test_http_get_sends_headers_and_no_body)
{
    const char *const hdrs[] = {"Authorization: Bearer xyz", NULL};
    char u[128];
    prov_resp r;
    ai_err err;

    url(u, sizeof u, "/get");
    ck_assert_int_eq(prov_get("stub", u, hdrs, cert, &r, &err), AI_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "GET|Bearer xyz|-");
    prov_resp_clear(&r);
}
END_TEST

START_TEST(test_http_connection_refused_reported)
{
    prov_resp r;
    ai_err err;

    /* Port 1 on loopback: nothing listens (plain http is allowed here). */
    ck_assert_int_eq(prov_post("google", "http://127.0.0.1:1/token", NULL,
                               "", 0, NULL, &r, &err),
                     AI_EPROVIDER);
    ck_assert_msg(t_has(err.msg, "google: "), "%s", err.msg);
}
END_TEST

/* The HTTPS client's suite. */
Suite *suite_providers_http(void)
{
    Suite *s = suite_create("providers_http");
    TCase *tc = tcase_create("http");

    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, stub_start, stub_stop);
    tcase_add_test(tc, test_http_500_then_200_is_retried);
    tcase_add_test(tc, test_http_401_reported_with_status);
    tcase_add_test(tc, test_http_503_tried_three_times);
    tcase_add_test(tc, test_http_headers_and_body_sent);
    tcase_add_test(tc, test_http_timeout_reported);
    tcase_add_test(tc, test_http_big_body_refused);
    tcase_add_test(tc, test_http_unknown_ca_refused);
    tcase_add_test(tc, test_http_plain_http_only_to_localhost);
    tcase_add_test(tc, test_http_user_info_refused);
    tcase_add_test(tc, test_http_get_sends_headers_and_no_body);
    tcase_add_test(tc, test_http_connection_refused_reported);
    suite_add_tcase(s, tc);
    return s;
}
