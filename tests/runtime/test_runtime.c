/* test_runtime.c - Suite "runtime": the AgentRuntime on a temporary broker
 * home (local mode) and against a real leader started in-process over TLS
 * with the home's generated CA (remote mode): permission checks,
 * credentials (an API key), delegation and subprocess environments, the
 * background refresher (before expiry, at maxExpiresAt, on failure with
 * backoff, prompt stop), and concurrent readers. Timings use short
 * lifetimes: a child token of 1 minute with refresh_before 59.5 s is due
 * for refresh half a second after start. */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../store/home_fixture.h"
#include "../tests.h"
#include "core/core.h"

#define API_SECRET "sk-runtime-test-0123456789abcdef"

/* ---- helpers ---------------------------------------------------------- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Remove a directory tree (the leader adds tls/ to the home). */
static void rm_tree(const char *path)
{
    struct dirent *e;
    struct stat sb;
    char sub[4096];
    DIR *d;

    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode) && (d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* fx_home_new's home and the mkdtemp directory around it. */
static void home_free(char *home)
{
    char *slash;

    if (home == NULL)
        return;
    rm_tree(home);
    slash = strrchr(home, '/');
    *slash = '\0';
    rmdir(home);
    free(home);
}

/* What the callbacks saw. */
typedef struct seen {
    pthread_mutex_t mu;
    int refreshes, errors;
    ai_code last_code;
    int64_t last_exp;     /* expiresAt of the last token on_refresh got */
    int64_t first_ms;     /* mono time of the first refresh */
    char last_msg[AI_ERR_MSG_MAX];
} seen;

static void seen_init(seen *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
}

static void on_refresh(void *ud, const char *tok)
{
    seen *s = ud;
    ai_token *t = NULL;
    ai_err err;

    ck_assert_int_eq(ai_token_deserialize(tok, strlen(tok), &t, &err), AI_OK);
    pthread_mutex_lock(&s->mu);
    if (s->refreshes++ == 0)
        s->first_ms = time_mono_ns() / 1000000;
    s->last_exp = ai_token_expires_at(t);
    pthread_mutex_unlock(&s->mu);
    ai_token_free(t);
}

static void on_error(void *ud, ai_code code, const char *msg)
{
    seen *s = ud;

    pthread_mutex_lock(&s->mu);
    s->errors++;
    s->last_code = code;
    snprintf(s->last_msg, sizeof s->last_msg, "%s", msg);
    pthread_mutex_unlock(&s->mu);
}

static int count(seen *s, bool errors)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = errors ? s->errors : s->refreshes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Wait (at most max_ms) until the counter reaches n. */
static bool wait_count(seen *s, bool errors, int n, int64_t max_ms)
{
    int64_t end = time_mono_ns() / 1000000 + max_ms;

    while (count(s, errors) < n) {
        if (time_mono_ns() / 1000000 > end)
            return false;
        sleep_ms(10);
    }
    return true;
}

/* A root token on the home: these scopes, ttl_days, max_ttl_days.
 * malloc'd serialized form. */
static char *mk_root(const char *home, const char *const *scopes, size_t n,
                     int ttl_days, int max_ttl_days)
{
    ai_broker *b = NULL;
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err;
    char *s;

    ck_assert_msg(ai_broker_open(home, &b, &err) == AI_OK, "%s", err.msg);
    ai_root_params_init(&p);
    p.agent_id = "rt-root";
    p.scopes = scopes;
    p.nscopes = n;
    p.ttl_days = ttl_days;
    p.max_ttl_days = max_ttl_days;
    ck_assert_msg(ai_broker_create_root_token(b, &p, &t, &err) == AI_OK, "%s",
                  err.msg);
    s = strdup(ai_token_serialize(t));
    ai_token_free(t);
    ai_broker_close(b);
    return s;
}

/* A child of parent, delegated on the home with these scopes for
 * ttl_minutes. malloc'd serialized form. */
static char *mk_child(const char *home, const char *parent,
                      const char *const *scopes, size_t n, int ttl_minutes)
{
    ai_broker *b = NULL;
    ai_delegation d;
    ai_token *t = NULL;
    ai_err err;
    char *s;

    ck_assert_msg(ai_broker_open(home, &b, &err) == AI_OK, "%s", err.msg);
    ai_delegation_init(&d);
    d.agent_id = "rt-child";
    d.scopes = scopes;
    d.nscopes = n;
    d.ttl_minutes = ttl_minutes;
    ck_assert_msg(ai_broker_delegate(b, parent, strlen(parent), &d, &t,
                                     &err) == AI_OK,
                  "%s", err.msg);
    s = strdup(ai_token_serialize(t));
    ai_token_free(t);
    ai_broker_close(b);
    return s;
}

/* A refreshable token that expires in one minute. */
static char *mk_minute_token(const char *home)
{
    char *root = mk_root(home, T_LIST("system:token:refresh",
                                      "github:repo:read"),
                         1, 2);
    char *child = mk_child(home, root, T_LIST("system:token:refresh",
                                              "github:repo:read"),
                           1);

    free(root);
    return child;
}

static void add_api_key(const char *home)
{
    apikey_info info = {"openai", "openai", NULL, 0, 0};
    store *st = fx_open(home);
    ai_err err;

    ck_assert_msg(store_apikey_add(st, &info, API_SECRET, time_now_ms(), NULL,
                                   &err) ==
                      AI_OK,
                  "%s", err.msg);
    store_close(st);
}

static void revoke_token(const char *home, const char *wire)
{
    ai_token *t = NULL;
    store *st;
    ai_err err;

    ck_assert_int_eq(ai_token_deserialize(wire, strlen(wire), &t, &err), AI_OK);
    st = fx_open(home);
    /* prune time 0: the default (now + the longest root TTL); an absolute
     * time in the past would let the leader's pruning drop it at once */
    ck_assert_msg(store_revoke(st, REVOKE_TOKEN, ai_token_id(t), "test", 0,
                               time_now_ms(), NULL, &err) ==
                      AI_OK,
                  "%s", err.msg);
    store_close(st);
    ai_token_free(t);
}

/* A local runtime on home for wire with the test callbacks. */
static ai_runtime *local_rt(const char *home, const char *wire, seen *s,
                            int64_t refresh_before, int64_t retry_min,
                            int64_t retry_max)
{
    ai_runtime_config c;
    ai_runtime *rt = NULL;
    ai_err err;

    ai_runtime_config_init(&c);
    c.mode = AI_RUNTIME_LOCAL;
    c.home = home;
    c.refresh_before_ms = refresh_before;
    c.retry_min_ms = retry_min;
    c.retry_max_ms = retry_max;
    if (s != NULL) {
        c.on_refresh = on_refresh;
        c.on_error = on_error;
        c.ud = s;
    }
    ck_assert_msg(ai_runtime_from_serialized(wire, &c, &rt, &err) == AI_OK,
                  "%s", err.msg);
    return rt;
}

static char *status_of(ai_runtime *rt)
{
    char *j = NULL;

    ck_assert_int_eq(ai_runtime_get_status(rt, &j), AI_OK);
    return j;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- local mode ------------------------------------------------------- */

START_TEST(test_runtime_local_check_allows_and_denies)
{
    char *home = fx_home_new();
    char *tok = mk_root(home, T_LIST("openai:chat:*", "github:repo:read"), 1,
                        0);
    ai_runtime *rt = local_rt(home, tok, NULL, 0, 0, 0);
    ai_err err;

    ck_assert_int_eq(ai_runtime_check_permission(rt, "openai:chat:completions",
                                                 "", &err),
                     AI_OK);
    ck_assert_int_eq(ai_runtime_check_permission(rt, "github:repo:read",
                                                 "o/r", &err),
                     AI_OK);
    ck_assert_int_eq(ai_runtime_check_permission(rt, "aws:s3:read", "b",
                                                 &err),
                     AI_EDENIED);
    ck_assert(err.msg[0] != '\0');
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_local_credential_from_api_key)
{
    char *home = fx_home_new();
    char *tok, *cred = NULL;
    ai_runtime *rt;
    ai_err err;

    add_api_key(home);
    tok = mk_root(home, T_LIST("openai:chat:*", "github:repo:read"), 1, 0);
    rt = local_rt(home, tok, NULL, 0, 0, 0);
    ck_assert_msg(ai_runtime_get_credential(rt, "openai:chat:completions", "",
                                            &cred, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(cred, "\"credentialType\":\"api_key\""));
    ck_assert(t_has(cred, API_SECRET));
    ai_free_string(cred);
    ck_assert_int_eq(ai_runtime_get_credential(rt, "aws:s3:read", "", &cred,
                                               &err),
                     AI_EDENIED);
    ck_assert_ptr_null(cred);
    ck_assert(!t_has(err.msg, API_SECRET));
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_new_needs_a_token)
{
    ai_runtime *rt = (ai_runtime *)&rt;
    ai_runtime_config c;
    ai_err err;

    unsetenv("AGENT_TOKEN");
    ck_assert_int_eq(ai_runtime_from_environment(NULL, &rt, &err), AI_EINVAL);
    ck_assert_ptr_null(rt);
    ck_assert(t_has(err.msg, "AGENT_TOKEN"));
    ai_runtime_config_init(&c);
    c.mode = AI_RUNTIME_REMOTE;
    c.token = "x";
    c.url = "http://example.com";
    ck_assert_int_eq(ai_runtime_new(&c, &rt, &err), AI_EINVAL);
    ck_assert_ptr_null(rt);
    c.url = "https://u:p@example.com";
    ck_assert_int_eq(ai_runtime_new(&c, &rt, &err), AI_EINVAL);
    c.url = "https://127.0.0.1:1";
    c.token = "not a token!";
    ck_assert_int_eq(ai_runtime_new(&c, &rt, &err), AI_ETOKEN);
    ck_assert_ptr_null(rt);
}
END_TEST

START_TEST(test_runtime_local_refuses_revoked_token_at_new)
{
    char *home = fx_home_new();
    char *tok = mk_root(home, T_LIST("github:repo:read"), 1, 0);
    ai_runtime_config c;
    ai_runtime *rt = NULL;
    ai_err err;

    revoke_token(home, tok);
    ai_runtime_config_init(&c);
    c.mode = AI_RUNTIME_LOCAL;
    c.home = home;
    ck_assert_int_eq(ai_runtime_from_serialized(tok, &c, &rt, &err),
                     AI_EREVOKED);
    ck_assert_ptr_null(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_get_token_verifies_locally)
{
    char *home = fx_home_new();
    char *tok = mk_root(home, T_LIST("github:repo:read"), 1, 0);
    ai_runtime *rt = local_rt(home, tok, NULL, 0, 0, 0);
    ai_token *t = NULL;
    char *copy = NULL;
    ai_err err;

    ck_assert_int_eq(ai_runtime_get_token(rt, &t, &err), AI_OK);
    ck_assert(ai_token_is_verified(t));
    ck_assert_str_eq(ai_token_agent_id(t), "rt-root");
    ai_token_free(t);
    ck_assert_int_eq(ai_runtime_get_serialized_token(rt, &copy), AI_OK);
    ck_assert_str_eq(copy, tok);
    ai_free_string(copy);
    revoke_token(home, tok);
    ck_assert_int_eq(ai_runtime_get_token(rt, &t, &err), AI_EREVOKED);
    ck_assert_ptr_null(t);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_start_without_refresh_scope_runs_no_thread)
{
    char *home = fx_home_new();
    char *tok = mk_root(home, T_LIST("github:repo:read"), 1, 2);
    seen s;
    ai_runtime *rt;
    char *st;
    ai_err err;

    seen_init(&s);
    rt = local_rt(home, tok, &s, INT64_C(86400000) * 3, 0, 0);
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    st = status_of(rt);
    ck_assert_msg(t_has(st, "\"refreshEnabled\":false"), "%s", st);
    ck_assert(t_has(st, "\"mode\":\"local\""));
    ck_assert(t_has(st, "\"agentId\":\"rt-root\""));
    ai_free_string(st);
    sleep_ms(300);
    ck_assert_int_eq(count(&s, false), 0);
    ck_assert_int_eq(count(&s, true), 0);
    ai_runtime_stop(rt);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_refreshes_before_expiry)
{
    char *home = fx_home_new();
    char *tok = mk_minute_token(home), *st, *now_tok = NULL;
    ai_token *t0 = NULL, *t1 = NULL;
    seen s;
    ai_runtime *rt;
    int64_t t_start;
    ai_err err;

    seen_init(&s);
    ck_assert_int_eq(ai_token_deserialize(tok, strlen(tok), &t0, &err), AI_OK);
    rt = local_rt(home, tok, &s, 59500, 0, 0);
    t_start = time_mono_ns() / 1000000;
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    st = status_of(rt);
    ck_assert_msg(t_has(st, "\"refreshEnabled\":true"), "%s", st);
    ck_assert(t_has(st, "\"lastRefreshAt\":null"));
    ai_free_string(st);
    ck_assert_msg(wait_count(&s, false, 1, 2500), "no refresh within 2.5 s");
    ck_assert_int_lt(s.first_ms - t_start, 2000);
    ck_assert_int_eq(count(&s, true), 0);
    ck_assert_int_gt(s.last_exp, ai_token_expires_at(t0) + 30 * T_MIN);
    /* The runtime now serves the new token, same tokenId. */
    ck_assert_int_eq(ai_runtime_get_token(rt, &t1, &err), AI_OK);
    ck_assert_int_eq(ai_token_expires_at(t1), s.last_exp);
    ck_assert_str_eq(ai_token_id(t1), ai_token_id(t0));
    ck_assert_int_eq(ai_runtime_get_serialized_token(rt, &now_tok), AI_OK);
    ck_assert_str_ne(now_tok, tok);
    st = status_of(rt);
    ck_assert_msg(!t_has(st, "\"lastRefreshAt\":null"), "%s", st);
    ck_assert(t_has(st, "\"refreshFailures\":0"));
    ai_free_string(st);
    /* No second refresh: the next one is due in about an hour. */
    sleep_ms(500);
    ck_assert_int_eq(count(&s, false), 1);
    ai_free_string(now_tok);
    ai_token_free(t0);
    ai_token_free(t1);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_stops_refreshing_at_max_expires_at)
{
    char *home = fx_home_new();
    /* max_ttl_days 0: maxExpiresAt = expiresAt, nothing to extend */
    char *tok = mk_root(home, T_LIST("system:token:refresh"), 1, 0), *st;
    seen s;
    ai_runtime *rt;
    double cpu0;
    ai_err err;

    seen_init(&s);
    rt = local_rt(home, tok, &s, INT64_C(86400000) + T_MIN, 50, 100);
    cpu0 = cpu_seconds();
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    ck_assert(wait_count(&s, true, 1, 2000));
    sleep_ms(1000);
    ck_assert_int_eq(count(&s, true), 1); /* reported once */
    ck_assert_int_eq(count(&s, false), 0);
    ck_assert_msg(t_has(s.last_msg, "maxExpiresAt"), "%s", s.last_msg);
    ck_assert_msg(cpu_seconds() - cpu0 < 0.5, "busy loop: %.2f s of CPU",
                  cpu_seconds() - cpu0);
    st = status_of(rt);
    ck_assert_msg(t_has(st, "\"refreshEnabled\":false"), "%s", st);
    ck_assert(t_has(st, "maxExpiresAt"));
    ai_free_string(st);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_refresh_failure_reports_and_backs_off)
{
    char *home = fx_home_new();
    char *tok = mk_minute_token(home), *st;
    seen s;
    ai_runtime *rt;
    int n;
    ai_err err;

    seen_init(&s);
    rt = local_rt(home, tok, &s, 59500, 100, 400);
    revoke_token(home, tok);
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    sleep_ms(3000);
    n = count(&s, true);
    /* due at 0.5 s, then 0.1, 0.2, 0.4, 0.4... s apart: about 8 */
    ck_assert_msg(n >= 4 && n <= 15, "%d failures in 3 s", n);
    ck_assert_int_eq(count(&s, false), 0);
    ck_assert_int_eq(s.last_code, AI_EREVOKED);
    st = status_of(rt);
    ck_assert_msg(t_has(st, "\"refreshEnabled\":true"), "%s", st);
    ck_assert(!t_has(st, "\"refreshFailures\":0"));
    ck_assert(t_has(st, "revoked"));
    ai_free_string(st);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_stop_is_prompt_during_backoff)
{
    char *home = fx_home_new();
    char *tok = mk_minute_token(home);
    seen s;
    ai_runtime *rt;
    int64_t t0;
    ai_err err;

    seen_init(&s);
    rt = local_rt(home, tok, &s, 59500, 30000, 60000);
    revoke_token(home, tok);
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    ck_assert(wait_count(&s, true, 1, 2000)); /* now in a 30 s backoff */
    t0 = time_mono_ns() / 1000000;
    ai_runtime_stop(rt);
    ck_assert_int_lt(time_mono_ns() / 1000000 - t0, 1000);
    ck_assert_int_eq(count(&s, true), 1);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_stop_is_prompt_while_waiting)
{
    char *home = fx_home_new();
    char *tok = mk_root(home, T_LIST("system:token:refresh"), 1, 2);
    seen s;
    ai_runtime *rt;
    int64_t t0;
    ai_err err;

    seen_init(&s);
    rt = local_rt(home, tok, &s, 0, 0, 0); /* due in about a day */
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK); /* no-op */
    sleep_ms(100);
    t0 = time_mono_ns() / 1000000;
    ai_runtime_stop(rt);
    ck_assert_int_lt(time_mono_ns() / 1000000 - t0, 1000);
    ai_runtime_stop(rt); /* again: nothing */
    /* and it can start again */
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    t0 = time_mono_ns() / 1000000;
    ai_runtime_free(rt);
    ck_assert_int_lt(time_mono_ns() / 1000000 - t0, 1000);
    ck_assert_int_eq(count(&s, true) + count(&s, false), 0);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_manual_refresh_swaps_and_notifies)
{
    char *home = fx_home_new();
    char *tok = mk_minute_token(home);
    seen s;
    ai_runtime *rt;
    ai_token *t = NULL;
    int64_t before = time_now_ms();
    ai_err err;

    seen_init(&s);
    rt = local_rt(home, tok, &s, 0, 0, 0);
    ck_assert_msg(ai_runtime_refresh(rt, 120, &err) == AI_OK, "%s", err.msg);
    ck_assert_int_eq(count(&s, false), 1);
    ck_assert_int_eq(ai_runtime_get_token(rt, &t, &err), AI_OK);
    ck_assert_int_ge(ai_token_expires_at(t), before + 119 * T_MIN);
    ck_assert_int_eq(ai_token_expires_at(t), s.last_exp);
    ai_token_free(t);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

START_TEST(test_runtime_subprocess_env_has_narrower_token)
{
    char *home = fx_home_new();
    char *tok = mk_root(home, T_LIST("github:repo:read", "openai:chat:*"), 1,
                        0);
    ai_runtime *rt = local_rt(home, tok, NULL, 0, 0, 0);
    ai_delegation d;
    ai_broker *b = NULL;
    ai_token *child = NULL;
    char **envp = NULL, home_var[4200];
    const char *ctok = NULL;
    int ntok = 0;
    bool mark = false, home_set = false;
    ai_err err;

    setenv("AGENT_TOKEN", "the-parents-old-token", 1);
    setenv("RT_TEST_MARK", "kept", 1);
    ai_delegation_init(&d);
    d.agent_id = "subtask";
    d.scopes = T_ARR("github:repo:read");
    d.nscopes = 1;
    d.ttl_minutes = 30;
    ck_assert_msg(ai_runtime_create_subprocess_env(rt, &d, &envp, &err) ==
                      AI_OK,
                  "%s", err.msg);
    snprintf(home_var, sizeof home_var, "AGENT_IAM_HOME=%s", home);
    for (char **p = envp; *p != NULL; p++) {
        if (strncmp(*p, "AGENT_TOKEN=", 12) == 0) {
            ntok++;
            ctok = *p + 12;
        }
        mark |= strcmp(*p, "RT_TEST_MARK=kept") == 0;
        home_set |= strcmp(*p, home_var) == 0;
    }
    ck_assert_int_eq(ntok, 1);
    ck_assert(mark);
    ck_assert(home_set);
    ck_assert_str_ne(ctok, "the-parents-old-token");
    ck_assert_int_eq(ai_broker_open(home, &b, &err), AI_OK);
    ck_assert_msg(ai_broker_verify(b, ctok, strlen(ctok), &child, &err) ==
                      AI_OK,
                  "%s", err.msg);
    ck_assert_str_eq(ai_token_agent_id(child), "subtask");
    ck_assert_str_eq(ai_token_parent_id(child), "rt-root");
    ck_assert_uint_eq(ai_token_scope_count(child), 1);
    ck_assert_str_eq(ai_token_scope(child, 0), "github:repo:read");
    ck_assert_int_eq(ai_broker_check_permission(b, ctok, strlen(ctok),
                                                "openai:chat:completions", "",
                                                &err),
                     AI_EDENIED);
    ck_assert_int_eq(ai_broker_check_permission(b, ctok, strlen(ctok),
                                                "github:repo:read", "o/r",
                                                &err),
                     AI_OK);
    ai_token_free(child);
    ai_broker_close(b);
    ai_runtime_free_env(envp);
    unsetenv("AGENT_TOKEN");
    unsetenv("RT_TEST_MARK");
    /* A wider request is refused, and nothing is returned. */
    d.scopes = T_ARR("aws:s3:read");
    envp = (char **)&envp;
    ck_assert_int_eq(ai_runtime_create_subprocess_env(rt, &d, &envp, &err),
                     AI_EDENIED);
    ck_assert_ptr_null(envp);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

/* Readers on several threads always get a whole, valid token while
 * another thread keeps replacing it. */
typedef struct reader_arg {
    ai_runtime *rt;
    const char *token_id;
    int bad;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;

    for (int i = 0; i < 300; i++) {
        char *s = NULL, *st = NULL;
        ai_token *t = NULL;
        ai_err err;
        if (ai_runtime_get_serialized_token(a->rt, &s) != AI_OK ||
            ai_token_deserialize(s, strlen(s), &t, &err) != AI_OK ||
            strcmp(ai_token_id(t), a->token_id) != 0 ||
            ai_runtime_get_status(a->rt, &st) != AI_OK)
            a->bad++;
        ai_token_free(t);
        ai_free_string(s);
        ai_free_string(st);
    }
    return NULL;
}

START_TEST(test_runtime_readers_see_whole_tokens_during_refresh)
{
    char *home = fx_home_new();
    char *tok = mk_minute_token(home);
    ai_runtime *rt = local_rt(home, tok, NULL, 0, 0, 0);
    ai_token *t0 = NULL;
    reader_arg a[2];
    pthread_t th[2];
    ai_err err;

    ck_assert_int_eq(ai_token_deserialize(tok, strlen(tok), &t0, &err), AI_OK);
    for (int i = 0; i < 2; i++) {
        a[i].rt = rt;
        a[i].token_id = ai_token_id(t0);
        a[i].bad = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &a[i]), 0);
    }
    for (int i = 0; i < 15; i++)
        ck_assert_msg(ai_runtime_refresh(rt, 60 + i, &err) == AI_OK, "%s",
                      err.msg);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(a[i].bad, 0);
    }
    ai_token_free(t0);
    ai_runtime_free(rt);
    free(tok);
    home_free(home);
}
END_TEST

/* ---- remote mode: a leader in this process over TLS ------------------- */

typedef struct remote_fx {
    char *home;
    ai_leader *leader;
    char url[64];
    char ca[4096];
} remote_fx;

static void remote_up(remote_fx *f)
{
    ai_leader_config c;
    ai_err err;

    f->home = fx_home_new();
    add_api_key(f->home);
    ai_leader_config_init(&c);
    c.home = f->home;
    c.host = "127.0.0.1";
    c.port = 0;
    c.auth_token = "runtime-test-admin-secret-0123456789";
    c.threads = 2;
    c.access_log_fd = -1;
    ck_assert_msg(ai_leader_start(&c, &f->leader, &err) == AI_OK, "%s",
                  err.msg);
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%u",
             (unsigned)ai_leader_port(f->leader));
    snprintf(f->ca, sizeof f->ca, "%s", ai_leader_ca_path(f->leader));
    ck_assert(f->ca[0] != '\0');
}

static void remote_down(remote_fx *f)
{
    ai_leader_stop(f->leader, 1000);
    home_free(f->home);
}

static ai_runtime *remote_rt(const remote_fx *f, const char *wire, seen *s,
                             int64_t refresh_before)
{
    ai_runtime_config c;
    ai_runtime *rt = NULL;
    ai_err err;

    ai_runtime_config_init(&c);
    c.mode = AI_RUNTIME_REMOTE;
    c.url = f->url;
    c.ca_cert_file = f->ca;
    c.refresh_before_ms = refresh_before;
    if (s != NULL) {
        c.on_refresh = on_refresh;
        c.on_error = on_error;
        c.ud = s;
    }
    ck_assert_msg(ai_runtime_from_serialized(wire, &c, &rt, &err) == AI_OK,
                  "%s", err.msg);
    return rt;
}

START_TEST(test_runtime_remote_check_credential_delegate_refresh)
{
    remote_fx f;
    char *tok, *cred = NULL, *child = NULL, *st;
    ai_runtime *rt;
    ai_delegation d;
    ai_broker *b = NULL;
    ai_token *t = NULL, *v = NULL;
    seen s;
    int64_t before;
    ai_err err;

    remote_up(&f);
    seen_init(&s);
    tok = mk_root(f.home, T_LIST("openai:chat:*", "github:repo:read",
                                 "system:token:refresh"),
                  1, 2);
    rt = remote_rt(&f, tok, &s, 0);

    ck_assert_msg(ai_runtime_check_permission(rt, "openai:chat:completions",
                                              "", &err) == AI_OK,
                  "%s", err.msg);
    ck_assert_int_eq(ai_runtime_check_permission(rt, "aws:s3:read", "", &err),
                     AI_EDENIED);
    ck_assert(err.msg[0] != '\0');

    ck_assert_msg(ai_runtime_get_credential(rt, "openai:chat:completions", "",
                                            &cred, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert(t_has(cred, "api_key"));
    ck_assert(t_has(cred, API_SECRET));
    ai_free_string(cred);
    ck_assert_int_eq(ai_runtime_get_credential(rt, "aws:s3:read", "", &cred,
                                               &err),
                     AI_EDENIED);
    ck_assert_ptr_null(cred);

    ai_delegation_init(&d);
    d.agent_id = "remote-child";
    d.scopes = T_ARR("github:repo:read");
    d.nscopes = 1;
    d.ttl_minutes = 15;
    d.constraints_json = "{\"github:repo:read\":{\"resources\":[\"o/*\"]}}";
    ck_assert_msg(ai_runtime_delegate(rt, &d, &child, &err) == AI_OK, "%s",
                  err.msg);
    ck_assert_int_eq(ai_broker_open(f.home, &b, &err), AI_OK);
    ck_assert_msg(ai_broker_verify(b, child, strlen(child), &v, &err) ==
                      AI_OK,
                  "%s", err.msg);
    ck_assert_str_eq(ai_token_agent_id(v), "remote-child");
    ck_assert_uint_eq(ai_token_scope_count(v), 1);
    ck_assert(t_has(ai_token_constraints_json(v), "o/*"));
    ai_token_free(v);
    ai_free_string(child);
    d.scopes = T_ARR("aws:s3:read");
    d.constraints_json = NULL;
    ck_assert_int_eq(ai_runtime_delegate(rt, &d, &child, &err), AI_EDENIED);
    ck_assert_ptr_null(child);
    d.constraints_json = "{not json";
    ck_assert_int_eq(ai_runtime_delegate(rt, &d, &child, &err), AI_EINVAL);

    before = time_now_ms();
    ck_assert_msg(ai_runtime_refresh(rt, 120, &err) == AI_OK, "%s", err.msg);
    ck_assert_int_eq(count(&s, false), 1);
    ck_assert_int_eq(ai_runtime_get_token(rt, &t, &err), AI_OK);
    ck_assert(!ai_token_is_verified(t)); /* decoded: no key here */
    ck_assert_int_ge(ai_token_expires_at(t), before + 119 * T_MIN);
    ck_assert_int_le(ai_token_expires_at(t), time_now_ms() + 121 * T_MIN);
    ai_token_free(t);
    /* The refreshed token still works against the server. */
    ck_assert_int_eq(ai_runtime_check_permission(rt, "github:repo:read", "o/r",
                                                 &err),
                     AI_OK);
    st = status_of(rt);
    ck_assert_msg(t_has(st, "\"mode\":\"remote\""), "%s", st);
    ck_assert(t_has(st, "\"agentId\":\"rt-root\""));
    ck_assert(!t_has(st, "\"lastRefreshAt\":null"));
    ai_free_string(st);

    ai_broker_close(b);
    ai_runtime_free(rt);
    free(tok);
    remote_down(&f);
}
END_TEST

START_TEST(test_runtime_remote_subprocess_env_points_at_server)
{
    remote_fx f;
    char *tok, **envp = NULL, url_var[128], ca_var[4200];
    const char *ctok = NULL;
    bool url_set = false, ca_set = false;
    ai_runtime *rt, *crt = NULL;
    ai_runtime_config c;
    ai_delegation d;
    ai_err err;

    remote_up(&f);
    tok = mk_root(f.home, T_LIST("openai:chat:*", "github:repo:read"), 1, 0);
    rt = remote_rt(&f, tok, NULL, 0);
    ai_delegation_init(&d);
    d.scopes = T_ARR("github:repo:read");
    d.nscopes = 1;
    ck_assert_msg(ai_runtime_create_subprocess_env(rt, &d, &envp, &err) ==
                      AI_OK,
                  "%s", err.msg);
    snprintf(url_var, sizeof url_var, "AGENT_IAM_URL=%s", f.url);
    snprintf(ca_var, sizeof ca_var, "AGENT_IAM_CA_CERT=%s", f.ca);
    for (char **p = envp; *p != NULL; p++) {
        if (strncmp(*p, "AGENT_TOKEN=", 12) == 0)
            ctok = *p + 12;
        url_set |= strcmp(*p, url_var) == 0;
        ca_set |= strcmp(*p, ca_var) == 0;
    }
    ck_assert(url_set && ca_set);
    ck_assert_ptr_nonnull(ctok);
    /* The child's own runtime (AUTO mode from a URL) has the narrower
     * scope only. */
    ai_runtime_config_init(&c);
    c.url = f.url;
    c.ca_cert_file = f.ca;
    ck_assert_msg(ai_runtime_from_serialized(ctok, &c, &crt, &err) == AI_OK,
                  "%s", err.msg);
    ck_assert_int_eq(ai_runtime_check_permission(crt, "github:repo:read", "x",
                                                 &err),
                     AI_OK);
    ck_assert_int_eq(ai_runtime_check_permission(crt, "openai:chat:completions",
                                                 "", &err),
                     AI_EDENIED);
    ai_runtime_free(crt);
    ai_runtime_free_env(envp);
    ai_runtime_free(rt);
    free(tok);
    remote_down(&f);
}
END_TEST

START_TEST(test_runtime_remote_background_refresh)
{
    remote_fx f;
    char *tok;
    ai_runtime *rt;
    ai_token *t0 = NULL;
    seen s;
    int64_t t_start;
    ai_err err;

    remote_up(&f);
    seen_init(&s);
    tok = mk_minute_token(f.home);
    ck_assert_int_eq(ai_token_deserialize(tok, strlen(tok), &t0, &err), AI_OK);
    rt = remote_rt(&f, tok, &s, 59500);
    t_start = time_mono_ns() / 1000000;
    ck_assert_int_eq(ai_runtime_start(rt, &err), AI_OK);
    ck_assert_msg(wait_count(&s, false, 1, 3000), "no refresh (%d errors: %s)",
                  count(&s, true), s.last_msg);
    ck_assert_int_lt(s.first_ms - t_start, 2500);
    ck_assert_int_gt(s.last_exp, ai_token_expires_at(t0) + 30 * T_MIN);
    t_start = time_mono_ns() / 1000000;
    ai_runtime_stop(rt);
    ck_assert_int_lt(time_mono_ns() / 1000000 - t_start, 1000);
    ai_token_free(t0);
    ai_runtime_free(rt);
    free(tok);
    remote_down(&f);
}
END_TEST

START_TEST(test_runtime_remote_errors_map_to_codes)
{
    remote_fx f;
    char *tok;
    ai_runtime *rt, *bad = NULL;
    ai_runtime_config c;
    ai_err err;

    remote_up(&f);
    tok = mk_root(f.home, T_LIST("github:repo:read"), 1, 0);
    rt = remote_rt(&f, tok, NULL, 0);
    revoke_token(f.home, tok);
    /* The leader's watcher picks the revocation up within its poll. */
    for (int64_t end = time_mono_ns() / 1000000 + 5000;;) {
        ai_code rc = ai_runtime_check_permission(rt, "github:repo:read", "",
                                                 &err);
        if (rc == AI_EREVOKED || time_mono_ns() / 1000000 > end) {
            ck_assert_int_eq(rc, AI_EREVOKED);
            break;
        }
        sleep_ms(50);
    }
    /* The system CAs do not trust the home's CA: TLS is verified. */
    ai_runtime_config_init(&c);
    c.mode = AI_RUNTIME_REMOTE;
    c.url = f.url;
    c.ca_cert_file = NULL;
    unsetenv("AGENT_IAM_CA_CERT");
    ck_assert_int_eq(ai_runtime_from_serialized(tok, &c, &bad, &err), AI_OK);
    ck_assert_int_eq(ai_runtime_check_permission(bad, "github:repo:read", "",
                                                 &err),
                     AI_EUNAVAILABLE);
    ai_runtime_free(bad);
    /* Nothing listening. */
    c.url = "https://127.0.0.1:1";
    ck_assert_int_eq(ai_runtime_from_serialized(tok, &c, &bad, &err), AI_OK);
    ck_assert_int_eq(ai_runtime_check_permission(bad, "github:repo:read", "",
                                                 &err),
                     AI_EUNAVAILABLE);
    ck_assert(!t_has(err.msg, tok));
    ai_runtime_free(bad);
    ai_runtime_free(rt);
    free(tok);
    remote_down(&f);
}
END_TEST

Suite *suite_runtime(void)
{
    Suite *s = suite_create("runtime");
    TCase *local = tcase_create("local");
    TCase *remote = tcase_create("remote");

    tcase_set_timeout(local, 30);
    tcase_add_test(local, test_runtime_local_check_allows_and_denies);
    tcase_add_test(local, test_runtime_local_credential_from_api_key);
    tcase_add_test(local, test_runtime_new_needs_a_token);
    tcase_add_test(local, test_runtime_local_refuses_revoked_token_at_new);
    tcase_add_test(local, test_runtime_get_token_verifies_locally);
    tcase_add_test(local,
                   test_runtime_start_without_refresh_scope_runs_no_thread);
    tcase_add_test(local, test_runtime_refreshes_before_expiry);
    tcase_add_test(local, test_runtime_stops_refreshing_at_max_expires_at);
    tcase_add_test(local, test_runtime_refresh_failure_reports_and_backs_off);
    tcase_add_test(local, test_runtime_stop_is_prompt_during_backoff);
    tcase_add_test(local, test_runtime_stop_is_prompt_while_waiting);
    tcase_add_test(local, test_runtime_manual_refresh_swaps_and_notifies);
    tcase_add_test(local, test_runtime_subprocess_env_has_narrower_token);
    tcase_add_test(local, test_runtime_readers_see_whole_tokens_during_refresh);
    suite_add_tcase(s, local);

    tcase_set_timeout(remote, 60);
    tcase_add_test(remote, test_runtime_remote_check_credential_delegate_refresh);
    tcase_add_test(remote, test_runtime_remote_subprocess_env_points_at_server);
    tcase_add_test(remote, test_runtime_remote_background_refresh);
    tcase_add_test(remote, test_runtime_remote_errors_map_to_codes);
    suite_add_tcase(s, remote);
    return s;
}
