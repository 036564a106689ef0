/* tls_test.c - Suite "tls": the HTTPS server's TLS material
 * (src/server/tls.c). Generation into an empty home (files, modes, a
 * chain that verifies with the right names), reuse on the next start,
 * refusal of readable, mismatched, garbage, encrypted and expired
 * material, the order cert/key arguments > environment > home, issuing
 * with clientAuth, and a TLS handshake over memory BIOs with the result.
 * Each test makes its own directory under a fresh mkdtemp. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "server/tls.h"
#include "../tests.h"

#define SECRET_MARK "SECRETKEYBYTESMUSTNOTLEAK"

/* ---- helpers ---------------------------------------------------------- */

static char *tmp_new(void)
{
    char base[] = "/tmp/agent-iam-tls-XXXXXX";
    char *dir;

    ck_assert_ptr_nonnull(mkdtemp(base));
    dir = strdup(base);
    ck_assert_ptr_nonnull(dir);
    return dir;
}

/* Remove dir and everything under it (the tests make two levels). */
static void rm_tree(const char *dir)
{
    struct dirent *e;
    struct stat sb;
    char path[4096];
    DIR *d;

    (void)chmod(dir, 0700);
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
                rm_tree(path);
            else
                (void)unlink(path);
        }
        closedir(d);
    }
    (void)rmdir(dir);
}

static void tmp_free(char *dir)
{
    rm_tree(dir);
    free(dir);
}

static const char *path_of(char *buf, const char *dir, const char *file)
{
    int n = snprintf(buf, 4096, "%s/%s", dir, file);

    ck_assert(n > 0 && n < 4096);
    return buf;
}

static unsigned mode_of(const char *path)
{
    struct stat sb;

    ck_assert_msg(stat(path, &sb) == 0, "%s missing", path);
    return (unsigned)(sb.st_mode & 07777);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    p = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    return p;
}

static void write_data(const char *path, const char *data, size_t n,
                       unsigned mode)
{
    int fd;

    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    ck_assert_int_eq(fchmod(fd, (mode_t)mode), 0);
    close(fd);
}

static void write_text(const char *path, const char *text, unsigned mode)
{
    write_data(path, text, strlen(text), mode);
}

static X509 *x509_from(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x;

    ck_assert_ptr_nonnull(b);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    ck_assert_ptr_nonnull(x);
    return x;
}

static X509 *x509_file(const char *path)
{
    char *pem = read_text(path);
    X509 *x = x509_from(pem);

    free(pem);
    return x;
}

static EVP_PKEY *key_from(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k;

    ck_assert_ptr_nonnull(b);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    ck_assert_ptr_nonnull(k);
    return k;
}

/* Does leaf verify against the CA in ca_path for purpose (X509_PURPOSE_*)? */
static bool verifies(X509 *leaf, const char *ca_path, int purpose)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *ca = x509_file(ca_path);
    int ok;

    ck_assert_ptr_nonnull(st);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(X509_STORE_add_cert(st, ca), 1);
    ck_assert_int_eq(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
    ck_assert_int_eq(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    X509_free(ca);
    ERR_clear_error();
    return ok == 1;
}

/* srv_tls_load must refuse with code, leave out zeroed, and name w1 (and
 * w2): one line, and never the SECRET_MARK text of a key file. */
static void load_refused(const char *home, const char *cert,
                         const char *key, ai_code code, const char *w1,
                         const char *w2)
{
    srv_tls t;
    ai_err err = {0};

    memset(&t, 0x5a, sizeof t);
    ck_assert_int_eq(srv_tls_load(home, cert, key, &t, &err), code);
    ck_assert_int_eq(err.code, code);
    ck_assert_ptr_null(t.cert_pem);
    ck_assert_ptr_null(t.key_pem);
    ck_assert(!t.generated);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    ck_assert_msg(!t_has(err.msg, SECRET_MARK), "key text leaked: %s",
                  err.msg);
    ck_assert_msg(!t_has(err.msg, "BEGIN"), "PEM text leaked: %s", err.msg);
    ck_assert_msg(t_has(err.msg, w1), "\"%s\" lacks \"%s\"", err.msg, w1);
    if (w2 != NULL)
        ck_assert_msg(t_has(err.msg, w2), "\"%s\" lacks \"%s\"", err.msg,
                      w2);
}

static void load_ok(const char *home, const char *cert, const char *key,
                    srv_tls *t)
{
    ai_err err = {0};

    ck_assert_msg(srv_tls_load(home, cert, key, t, &err) == AI_OK,
                  "srv_tls_load: %s", err.msg);
    ck_assert_ptr_nonnull(t->cert_pem);
    ck_assert_ptr_nonnull(t->key_pem);
}

static void issue_ok(const char *dir, const char *name, bool client)
{
    ai_err err = {0};

    ck_assert_msg(srv_tls_issue(dir, name,
                                T_LIST("DNS:localhost", "IP:127.0.0.1"),
                                client, &err) == AI_OK,
                  "srv_tls_issue: %s", err.msg);
}

/* A self-signed certificate whose validity ended yesterday, in
 * dir/old.pem and dir/old.key (0600). */
static void write_expired(const char *dir)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    BIO *b;
    char path[4096], *data;
    long n;

    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
    ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(
                         X509_get_subject_name(x), "CN", MBSTRING_ASC,
                         (const unsigned char *)"old", -1, -1, 0),
                     1);
    ck_assert_int_eq(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -172800));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), -86400));
    ck_assert_int_eq(X509_set_pubkey(x, k), 1);
    ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);

    b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
    n = BIO_get_mem_data(b, &data);
    write_data(path_of(path, dir, "old.pem"), data, (size_t)n, 0644);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &data);
    write_data(path_of(path, dir, "old.key"), data, (size_t)n, 0600);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void setup(void)
{
    unsetenv("AGENT_IAM_TLS_CERT");
    unsetenv("AGENT_IAM_TLS_KEY");
}

/* ---- generation and reuse --------------------------------------------- */

START_TEST(test_tls_generates_into_empty_home)
{
    char *home = tmp_new(), p[4096], tls[4096];
    srv_tls t;

    load_ok(home, NULL, NULL, &t);
    ck_assert(t.generated);
    path_of(tls, home, "tls");
    ck_assert_uint_eq(mode_of(tls), 0700);
    ck_assert_uint_eq(mode_of(path_of(p, tls, "ca.key")), 0600);
    ck_assert_uint_eq(mode_of(path_of(p, tls, "server.key")), 0600);
    ck_assert_uint_eq(mode_of(path_of(p, tls, "ca.pem")) & 077022, 0);
    ck_assert_uint_eq(mode_of(path_of(p, tls, "server.pem")) & 077022, 0);
    ck_assert_str_eq(t.cert_path, path_of(p, tls, "server.pem"));
    ck_assert_str_eq(t.ca_path, path_of(p, tls, "ca.pem"));
    ck_assert(strncmp(t.cert_pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    ck_assert(strncmp(t.key_pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
    /* the strings are what the files hold */
    {
        char *c = read_text(path_of(p, tls, "server.pem"));
        char *k = read_text(path_of(p, tls, "server.key"));

        ck_assert_str_eq(t.cert_pem, c);
        ck_assert_str_eq(t.key_pem, k);
        free(c);
        free(k);
    }
    srv_tls_clear(&t);
    ck_assert_ptr_null(t.cert_pem);
    ck_assert_ptr_null(t.key_pem);
    tmp_free(home);
}
END_TEST

START_TEST(test_tls_second_load_reuses_material)
{
    char *home = tmp_new(), p[4096];
    srv_tls a, b;

    load_ok(home, NULL, NULL, &a);
    ck_assert(a.generated);
    load_ok(home, NULL, NULL, &b);
    ck_assert(!b.generated);
    ck_assert_str_eq(a.cert_pem, b.cert_pem);
    ck_assert_str_eq(a.key_pem, b.key_pem);
    ck_assert_str_eq(a.cert_path, b.cert_path);
    ck_assert_str_eq(b.ca_path, path_of(p, home, "tls/ca.pem"));
    srv_tls_clear(&a);
    srv_tls_clear(&b);
    tmp_free(home);
}
END_TEST

START_TEST(test_tls_generated_cert_verifies_with_local_names)
{
    char *home = tmp_new();
    srv_tls t;
    X509 *x;
    EVP_PKEY *k;
    char group[32];
    int days = 0, secs = 0;

    load_ok(home, NULL, NULL, &t);
    x = x509_from(t.cert_pem);
    ck_assert(verifies(x, t.ca_path, X509_PURPOSE_SSL_SERVER));
    ck_assert_int_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    ck_assert_int_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    ck_assert_int_eq(X509_check_ip_asc(x, "::1", 0), 1);
    ck_assert_int_eq(X509_check_host(x, "example.com", 0, 0, NULL), 0);
    ck_assert_int_eq(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
    ck_assert(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    ck_assert(!(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT));
    ck_assert_int_eq(X509_check_ca(x), 0);
    /* EC P-256, 825 days */
    k = key_from(t.key_pem);
    ck_assert(EVP_PKEY_is_a(k, "EC"));
    ck_assert_int_eq(EVP_PKEY_get_group_name(k, group, sizeof group, NULL),
                     1);
    ck_assert_str_eq(group, "prime256v1");
    ck_assert_int_eq(X509_check_private_key(x, k), 1);
    ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                                    X509_get0_notAfter(x)),
                     1);
    ck_assert_int_ge(days, 825);
    ck_assert_int_le(days, 826);
    EVP_PKEY_free(k);
    X509_free(x);
    /* the CA: CA:TRUE, 10 years */
    x = x509_file(t.ca_path);
    ck_assert_int_eq(X509_check_ca(x), 1);
    ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                                    X509_get0_notAfter(x)),
                     1);
    ck_assert_int_ge(days, 3650);
    ck_assert_int_le(days, 3651);
    X509_free(x);
    srv_tls_clear(&t);
    tmp_free(home);
}
END_TEST

/* ---- refusals --------------------------------------------------------- */

START_TEST(test_tls_refuses_group_readable_key)
{
    char *home = tmp_new(), key[4096];
    srv_tls t;

    load_ok(home, NULL, NULL, &t);
    srv_tls_clear(&t);
    path_of(key, home, "tls/server.key");
    ck_assert_int_eq(chmod(key, 0644), 0);
    load_refused(home, NULL, NULL, AI_EINVAL, "chmod 600", key);
    ck_assert_int_eq(chmod(key, 0640), 0);
    load_refused(home, NULL, NULL, AI_EINVAL, "chmod 600", key);
    tmp_free(home);
}
END_TEST

START_TEST(test_tls_refuses_mismatched_key)
{
    char *dir = tmp_new(), c[4096], k[4096];

    issue_ok(dir, "a", false);
    issue_ok(dir, "b", false);
    load_refused(NULL, path_of(c, dir, "a.pem"), path_of(k, dir, "b.key"),
                 AI_EINVAL, "does not match", k);
    tmp_free(dir);
}
END_TEST

START_TEST(test_tls_refuses_garbage_pem)
{
    char *dir = tmp_new(), c[4096], k[4096], g[4096], e[4096];

    issue_ok(dir, "a", false);
    path_of(c, dir, "a.pem");
    path_of(k, dir, "a.key");
    path_of(g, dir, "garbage");
    path_of(e, dir, "empty");
    /* the certificate */
    write_text(g, "this is not a certificate\n", 0644);
    load_refused(NULL, g, k, AI_EINVAL, "certificate", g);
    write_text(g,
               "-----BEGIN CERTIFICATE-----\nnot base64 !!\n"
               "-----END CERTIFICATE-----\n",
               0644);
    load_refused(NULL, g, k, AI_EINVAL, "certificate", g);
    write_text(e, "", 0644);
    load_refused(NULL, e, k, AI_EINVAL, "empty", e);
    /* the key: the message names the file, never its text */
    write_text(g,
               "-----BEGIN PRIVATE KEY-----\n" SECRET_MARK "\n"
               "-----END PRIVATE KEY-----\n",
               0600);
    load_refused(NULL, c, g, AI_EINVAL, "private key", g);
    write_text(g, SECRET_MARK "\n", 0600);
    load_refused(NULL, c, g, AI_EINVAL, "private key", g);
    /* a key given as the certificate, and a missing file */
    load_refused(NULL, k, k, AI_EINVAL, "certificate", k);
    load_refused(NULL, path_of(g, dir, "nope.pem"), k, AI_EINVAL,
                 "cannot read", g);
    tmp_free(dir);
}
END_TEST

START_TEST(test_tls_refuses_encrypted_key)
{
    char *dir = tmp_new(), c[4096], k[4096];
    EVP_PKEY *key;
    BIO *b;
    char *text, *data;
    long n;

    issue_ok(dir, "a", false);
    path_of(c, dir, "a.pem");
    text = read_text(path_of(k, dir, "a.key"));
    key = key_from(text);
    free(text);
    b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(
                         b, key, EVP_aes_256_cbc(),
                         (const unsigned char *)"pass", 4, NULL, NULL),
                     1);
    n = BIO_get_mem_data(b, &data);
    write_data(k, data, (size_t)n, 0600);
    BIO_free(b);
    EVP_PKEY_free(key);
    /* refused without asking for a passphrase on the terminal */
    load_refused(NULL, c, k, AI_EINVAL, "encrypted", k);
    tmp_free(dir);
}
END_TEST

START_TEST(test_tls_refuses_expired_cert)
{
    char *dir = tmp_new(), c[4096], k[4096];

    write_expired(dir);
    load_refused(NULL, path_of(c, dir, "old.pem"), path_of(k, dir, "old.key"),
                 AI_EINVAL, "expired", c);
    tmp_free(dir);
}
END_TEST

START_TEST(test_tls_refuses_only_one_path)
{
    char *dir = tmp_new(), c[4096], k[4096];

    issue_ok(dir, "a", false);
    path_of(c, dir, "a.pem");
    path_of(k, dir, "a.key");
    load_refused(dir, c, NULL, AI_EINVAL, "both", NULL);
    load_refused(dir, NULL, k, AI_EINVAL, "both", NULL);
    load_refused(dir, c, "", AI_EINVAL, "both", NULL);
    setenv("AGENT_IAM_TLS_CERT", c, 1);
    load_refused(dir, NULL, NULL, AI_EINVAL, "AGENT_IAM_TLS_KEY", NULL);
    unsetenv("AGENT_IAM_TLS_CERT");
    setenv("AGENT_IAM_TLS_KEY", k, 1);
    load_refused(dir, NULL, NULL, AI_EINVAL, "AGENT_IAM_TLS_CERT", NULL);
    unsetenv("AGENT_IAM_TLS_KEY");
    tmp_free(dir);
}
END_TEST

START_TEST(test_tls_refuses_key_without_cert_in_home)
{
    char *home = tmp_new(), p[4096], key[4096];
    srv_tls t;

    load_ok(home, NULL, NULL, &t);
    srv_tls_clear(&t);
    ck_assert_int_eq(unlink(path_of(p, home, "tls/server.pem")), 0);
    path_of(key, home, "tls/server.key");
    load_refused(home, NULL, NULL, AI_EINVAL, key, "server.pem");
    tmp_free(home);
}
END_TEST

/* ---- where the material comes from ------------------------------------ */

START_TEST(test_tls_env_paths_honoured)
{
    char *dir = tmp_new(), *home = tmp_new(), c[4096], k[4096], p[4096];
    char *want;
    srv_tls t;

    issue_ok(dir, "a", false);
    issue_ok(dir, "b", false);
    setenv("AGENT_IAM_TLS_CERT", path_of(c, dir, "a.pem"), 1);
    setenv("AGENT_IAM_TLS_KEY", path_of(k, dir, "a.key"), 1);
    load_ok(home, NULL, NULL, &t);
    want = read_text(c);
    ck_assert_str_eq(t.cert_pem, want);
    free(want);
    ck_assert_str_eq(t.cert_path, c);
    ck_assert_str_eq(t.ca_path, ""); /* operator material */
    ck_assert(!t.generated);
    ck_assert_int_eq(access(path_of(p, home, "tls"), F_OK), -1);
    srv_tls_clear(&t);
    /* explicit paths win over the environment */
    load_ok(home, path_of(c, dir, "b.pem"), path_of(k, dir, "b.key"), &t);
    ck_assert_str_eq(t.cert_path, c);
    want = read_text(c);
    ck_assert_str_eq(t.cert_pem, want);
    free(want);
    srv_tls_clear(&t);
    unsetenv("AGENT_IAM_TLS_CERT");
    unsetenv("AGENT_IAM_TLS_KEY");
    /* empty variables count as unset: the home is used */
    setenv("AGENT_IAM_TLS_CERT", "", 1);
    load_ok(home, NULL, NULL, &t);
    ck_assert(t.generated);
    srv_tls_clear(&t);
    unsetenv("AGENT_IAM_TLS_CERT");
    tmp_free(dir);
    tmp_free(home);
}
END_TEST

/* ---- srv_tls_issue ---------------------------------------------------- */

START_TEST(test_tls_issue_client_has_client_auth)
{
    char *dir = tmp_new(), p[4096], ca[4096];
    X509 *x;

    issue_ok(dir, "agent", true);
    path_of(ca, dir, "ca.pem");
    x = x509_file(path_of(p, dir, "agent.pem"));
    ck_assert(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    ck_assert(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    ck_assert(verifies(x, ca, X509_PURPOSE_SSL_CLIENT));
    ck_assert(verifies(x, ca, X509_PURPOSE_SSL_SERVER));
    X509_free(x);
    ck_assert_uint_eq(mode_of(path_of(p, dir, "agent.key")), 0600);
    ck_assert_uint_eq(mode_of(dir), 0700);
    tmp_free(dir);
}
END_TEST

START_TEST(test_tls_issue_reuses_ca)
{
    char *dir = tmp_new(), p[4096], ca[4096], *before, *after;
    X509 *x;

    issue_ok(dir, "one", false);
    before = read_text(path_of(ca, dir, "ca.pem"));
    issue_ok(dir, "two", false);
    after = read_text(ca);
    ck_assert_str_eq(before, after);
    x = x509_file(path_of(p, dir, "one.pem"));
    ck_assert(verifies(x, ca, X509_PURPOSE_SSL_SERVER));
    ck_assert(!verifies(x, ca, X509_PURPOSE_SSL_CLIENT));
    X509_free(x);
    x = x509_file(path_of(p, dir, "two.pem"));
    ck_assert(verifies(x, ca, X509_PURPOSE_SSL_SERVER));
    X509_free(x);
    free(before);
    free(after);
    tmp_free(dir);
}
END_TEST

START_TEST(test_tls_issue_refuses_bad_arguments)
{
    char *dir = tmp_new(), p[4096];
    ai_err err = {0};

    ck_assert_int_eq(srv_tls_issue(dir, "x", T_LIST("DNS:a,IP:1.2.3.4"),
                                   false, &err),
                     AI_EINVAL);
    err = (ai_err){0};
    ck_assert_int_eq(srv_tls_issue(dir, "x", T_LIST("URI:http://a"), false,
                                   &err),
                     AI_EINVAL);
    err = (ai_err){0};
    ck_assert_int_eq(srv_tls_issue(dir, "x", T_LIST("IP:300.1.1.1"), false,
                                   &err),
                     AI_EINVAL);
    err = (ai_err){0};
    ck_assert_int_eq(srv_tls_issue(dir, "x", T_LIST("DNS:-bad.example"),
                                   false, &err),
                     AI_EINVAL);
    err = (ai_err){0};
    ck_assert_int_eq(srv_tls_issue(dir, "x", NULL, 0, false, &err),
                     AI_EINVAL);
    err = (ai_err){0};
    ck_assert_int_eq(srv_tls_issue(dir, "../x", T_LIST("DNS:localhost"),
                                   false, &err),
                     AI_EINVAL);
    err = (ai_err){0};
    ck_assert_int_eq(srv_tls_issue(dir, "ca", T_LIST("DNS:localhost"),
                                   false, &err),
                     AI_EINVAL);
    /* nothing was written */
    ck_assert_int_eq(access(path_of(p, dir, "ca.pem"), F_OK), -1);
    tmp_free(dir);
}
END_TEST

/* ---- a real handshake ------------------------------------------------- */

/* Handshake over a BIO pair: a server with t's material, a client that
 * trusts only t.ca_path and checks host. Returns whether it succeeded. */
static bool handshake(const srv_tls *t, const char *host)
{
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    X509 *x = x509_from(t->cert_pem);
    EVP_PKEY *k = key_from(t->key_pem);
    SSL *s, *c;
    BIO *bs = NULL, *bc = NULL;
    bool done = false, failed = false;

    ck_assert_ptr_nonnull(sctx);
    ck_assert_ptr_nonnull(cctx);
    ck_assert_int_eq(SSL_CTX_use_certificate(sctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(sctx, k), 1);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(cctx, t->ca_path, NULL),
                     1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    s = SSL_new(sctx);
    c = SSL_new(cctx);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(SSL_set1_host(c, host), 1);
    ck_assert_int_eq(BIO_new_bio_pair(&bs, 0, &bc, 0), 1);
    SSL_set_bio(s, bs, bs);
    SSL_set_bio(c, bc, bc);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    for (int i = 0; i < 100 && !done && !failed; i++) {
        int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);
        int ec = SSL_get_error(c, rc), es = SSL_get_error(s, rs);

        done = rc == 1 && rs == 1;
        failed = (rc != 1 && ec != SSL_ERROR_WANT_READ &&
                  ec != SSL_ERROR_WANT_WRITE) ||
                 (rs != 1 && es != SSL_ERROR_WANT_READ &&
                  es != SSL_ERROR_WANT_WRITE);
    }
    if (done)
        ck_assert_int_eq(SSL_get_verify_result(c), X509_V_OK);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return done && !failed;
}

START_TEST(test_tls_handshake_with_generated_material)
{
    char *home = tmp_new();
    srv_tls t;

    load_ok(home, NULL, NULL, &t);
    ck_assert(handshake(&t, "localhost"));
    ck_assert(handshake(&t, "127.0.0.1"));
    ck_assert(!handshake(&t, "evil.example"));
    srv_tls_clear(&t);
    tmp_free(home);
}
END_TEST

Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_tls_generates_into_empty_home);
    tcase_add_test(tc, test_tls_second_load_reuses_material);
    tcase_add_test(tc, test_tls_generated_cert_verifies_with_local_names);
    tcase_add_test(tc, test_tls_refuses_group_readable_key);
    tcase_add_test(tc, test_tls_refuses_mismatched_key);
    tcase_add_test(tc, test_tls_refuses_garbage_pem);
    tcase_add_test(tc, test_tls_refuses_encrypted_key);
    tcase_add_test(tc, test_tls_refuses_expired_cert);
    tcase_add_test(tc, test_tls_refuses_only_one_path);
    tcase_add_test(tc, test_tls_refuses_key_without_cert_in_home);
    tcase_add_test(tc, test_tls_env_paths_honoured);
    tcase_add_test(tc, test_tls_issue_client_has_client_auth);
    tcase_add_test(tc, test_tls_issue_reuses_ca);
    tcase_add_test(tc, test_tls_issue_refuses_bad_arguments);
    tcase_add_test(tc, test_tls_handshake_with_generated_material);
    suite_add_tcase(s, tc);
    return s;
}
