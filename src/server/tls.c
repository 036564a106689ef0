/* tls.c - TLS material for the HTTPS server: load the operator's
 * certificate and key, or make (once) a local CA and a server certificate
 * in <home>/tls, with OpenSSL 3.
 *
 * DESIGN: everything handed out is re-encoded by OpenSSL after parsing, so
 * what libmicrohttpd/GnuTLS gets is exactly what was checked (no stray
 * text, no encrypted key, no second key hidden in the chain file). Files
 * are written as a temp file in the same directory (created 0600 with
 * O_EXCL, so a key is never readable by anyone else, even for a moment),
 * fsync'd, then renamed over the name. Writers of a directory hold an
 * flock on it, and re-check what exists once they have it, so concurrent
 * first starts in one home share one CA. Keys go first and certificates
 * last: a crash leaves at worst a key without its certificate, which the
 * next start reports by name rather than silently replacing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/core.h"
#include "server/tls.h"

#define TLS_PATH_MAX 4096
#define CHAIN_MAX (1u << 20) /* bytes of a certificate chain file */
#define KEY_MAX (64u << 10)  /* bytes of a private key file */
#define CA_DAYS 3650
#define LEAF_DAYS 825
#define BACKDATE_SECS 300 /* notBefore slack for clocks a little behind */
#define ISSUE_NAME_MAX 64
#define ISSUE_SANS_MAX 32
#define CN_MAX 64 /* ub-common-name */

/* The certificate chain (leaf first) and private key of one pair. */
typedef struct pair {
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
} pair;

static void pair_free(pair *p)
{
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    p->chain = NULL;
    p->key = NULL;
}

/* OpenSSL's reason for the last failure, static text (never key bytes). */
static const char *ossl_why(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());

    return r != NULL ? r : "unknown OpenSSL error";
}

static ai_code join(char *out, const char *dir, const char *file, ai_err *err)
{
    int n = snprintf(out, TLS_PATH_MAX, "%s/%s", dir, file);

    if (n < 0 || n >= TLS_PATH_MAX)
        return ai_err_set(err, AI_EINVAL, "path too long: %s", dir);
    return AI_OK;
}

static ai_code copy_path(char *out, const char *path, ai_err *err)
{
    int n = snprintf(out, TLS_PATH_MAX, "%s", path);

    if (n < 0 || n >= TLS_PATH_MAX)
        return ai_err_set(err, AI_EINVAL, "path too long: %.64s...", path);
    return AI_OK;
}

static bool given(const char *s)
{
    return s != NULL && *s != '\0';
}

/* Does path exist? An error other than ENOENT counts as yes, so that the
 * reader reports it. */
static bool exists(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 || errno != ENOENT;
}

static void free_secret(char *p, size_t n)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
        ai_free(p);
    }
}

/* Read a whole regular file (at most max bytes) into *out (ai_malloc'd,
 * NUL-terminated). A secret must be private to its owner. */
static ai_code read_file(const char *path, bool secret, size_t max,
                         char **out, size_t *outlen, ai_err *err)
{
    struct stat sb;
    char *p = NULL;
    size_t n = 0, cap = 0;
    ssize_t got;
    int fd;
    ai_code rc = AI_EINVAL;

    *out = NULL;
    /* O_NONBLOCK: a FIFO given by mistake must not hang the start. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return ai_err_set(err, AI_EINVAL, "cannot read %s: %s", path,
                          strerror(errno));
    if (fstat(fd, &sb) != 0) {
        rc = ai_err_set(err, AI_EINVAL, "cannot read %s: %s", path,
                        strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = ai_err_set(err, AI_EINVAL, "%s is not a regular file", path);
        goto done;
    }
    if (secret && (sb.st_mode & 077) != 0) {
        rc = ai_err_set(err, AI_EINVAL,
                        "private key %s is readable by group or others "
                        "(mode %03o): run chmod 600 %s",
                        path, (unsigned)(sb.st_mode & 0777), path);
        goto done;
    }
    if (sb.st_size <= 0 || (uintmax_t)sb.st_size > max) {
        rc = ai_err_set(err, AI_EINVAL,
                        sb.st_size <= 0 ? "%s is empty"
                                        : "%s is too large for a PEM file",
                        path);
        goto done;
    }
    cap = (size_t)sb.st_size;
    if ((p = ai_malloc(cap + 1)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    while (n < cap) {
        got = read(fd, p + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = ai_err_set(err, AI_EINVAL, "cannot read %s: %s", path,
                            strerror(errno));
            goto done;
        }
        if (got == 0)
            break; /* shrank meanwhile: parse what is there */
        n += (size_t)got;
    }
    p[n] = '\0';
    *out = p;
    *outlen = n;
    p = NULL;
    rc = AI_OK;
done:
    if (p != NULL)
        free_secret(p, cap + 1);
    close(fd);
    return rc;
}

/* A copy of a memory BIO's contents (ai_malloc'd, NUL-terminated), or
 * NULL. A secret is wiped from the BIO too. */
static char *bio_take(BIO *b, bool secret)
{
    char *data = NULL, *s;
    long n = BIO_get_mem_data(b, &data);

    if (n <= 0 || data == NULL)
        return NULL;
    if ((s = ai_malloc((size_t)n + 1)) != NULL) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    if (secret)
        OPENSSL_cleanse(data, (size_t)n);
    return s;
}

static char *chain_pem(STACK_OF(X509) *chain)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    bool ok = b != NULL;

    for (int i = 0; ok && i < sk_X509_num(chain); i++)
        ok = PEM_write_bio_X509(b, sk_X509_value(chain, i)) == 1;
    if (ok)
        s = bio_take(b, false);
    BIO_free(b);
    return s;
}

/* Unencrypted PKCS#8, which GnuTLS reads for every key type. */
static char *key_pem(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;

    if (b != NULL &&
        PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
        s = bio_take(b, true);
    else if (b != NULL) {
        char *data = NULL;
        long n = BIO_get_mem_data(b, &data);

        if (n > 0 && data != NULL)
            OPENSSL_cleanse(data, (size_t)n);
    }
    BIO_free(b);
    return s;
}

/* Every CERTIFICATE block of the text, in order; at least one. */
static ai_code parse_chain(const char *path, const char *text, size_t n,
                           STACK_OF(X509) **out, ai_err *err)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *b = BIO_new_mem_buf(text, (int)n);
    X509 *x;
    ai_code rc = AI_OK;

    if (chain == NULL || b == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    for (;;) {
        ERR_clear_error();
        if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
            unsigned long e = ERR_peek_last_error();

            if (sk_X509_num(chain) > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                break; /* the end */
            rc = ai_err_set(err, AI_EINVAL,
                            sk_X509_num(chain) == 0
                                ? "no PEM certificate in %s (%s)"
                                : "damaged PEM certificate in %s (%s)",
                            path, ossl_why());
            goto done;
        }
        if (sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto done;
        }
        if (sk_X509_num(chain) > 32) {
            rc = ai_err_set(err, AI_EINVAL,
                            "%s holds more than 32 certificates", path);
            goto done;
        }
    }
    *out = chain;
    chain = NULL;
done:
    sk_X509_pop_free(chain, X509_free);
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

static ai_code parse_key(const char *path, const char *text, size_t n,
                         EVP_PKEY **out, ai_err *err)
{
    BIO *b = BIO_new_mem_buf(text, (int)n);
    ai_code rc = AI_OK;

    ERR_clear_error();
    if (b == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    *out = PEM_read_bio_PrivateKey(b, NULL, key_no_passphrase, NULL);
    if (*out == NULL) {
        /* Only static text and the path: the file may be the key. */
        if (strstr(text, "ENCRYPTED") != NULL)
            rc = ai_err_set(err, AI_EINVAL,
                            "private key %s is encrypted: give an "
                            "unencrypted key (mode 0600)",
                            path);
        else
            rc = ai_err_set(err, AI_EINVAL,
                            "no usable PEM private key in %s (%s)", path,
                            ossl_why());
    }
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

static void fmt_time(const ASN1_TIME *t, char *buf, size_t cap)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "an unreadable date");
}

/* Is the certificate valid now? fix: what the operator should do. */
static ai_code check_dates(const char *path, const X509 *x, const char *fix,
                           ai_err *err)
{
    char when[64];
    int after = X509_cmp_current_time(X509_get0_notAfter(x));
    int before = X509_cmp_current_time(X509_get0_notBefore(x));

    if (after == 0 || before == 0)
        return ai_err_set(err, AI_EINVAL,
                          "certificate %s has a malformed validity period",
                          path);
    if (after < 0) {
        fmt_time(X509_get0_notAfter(x), when, sizeof when);
        return ai_err_set(err, AI_EINVAL, "certificate %s expired on %s: %s",
                          path, when, fix);
    }
    if (before > 0) {
        fmt_time(X509_get0_notBefore(x), when, sizeof when);
        return ai_err_set(err, AI_EINVAL,
                          "certificate %s is not valid before %s: check the "
                          "clock",
                          path, when);
    }
    return AI_OK;
}

/* Read and check a certificate file and its key file. */
static ai_code pair_read(const char *cert_path, const char *key_path,
                         const char *fix, pair *p, ai_err *err)
{
    char *ctext = NULL, *ktext = NULL;
    size_t cn = 0, kn = 0;
    ai_code rc;

    p->chain = NULL;
    p->key = NULL;
    if ((rc = read_file(key_path, true, KEY_MAX, &ktext, &kn, err)) !=
            AI_OK ||
        (rc = read_file(cert_path, false, CHAIN_MAX, &ctext, &cn, err)) !=
            AI_OK ||
        (rc = parse_chain(cert_path, ctext, cn, &p->chain, err)) != AI_OK ||
        (rc = parse_key(key_path, ktext, kn, &p->key, err)) != AI_OK)
        goto done;
    if (X509_check_private_key(sk_X509_value(p->chain, 0), p->key) != 1) {
        rc = ai_err_set(err, AI_EINVAL,
                        "private key %s does not match the certificate %s",
                        key_path, cert_path);
        goto done;
    }
    rc = check_dates(cert_path, sk_X509_value(p->chain, 0), fix, err);
done:
    free_secret(ktext, kn);
    ai_free(ctext);
    if (rc != AI_OK)
        pair_free(p);
    ERR_clear_error();
    return rc;
}

/* ---- writing ---------------------------------------------------------- */

/* mkdir 0700 unless it exists; it must be a directory. */
static ai_code make_dir(const char *dir, ai_err *err)
{
    struct stat sb;

    if (mkdir(dir, 0700) == 0) {
        /* mkdir's mode went through the umask: set it exactly. */
        if (chmod(dir, 0700) != 0)
            return ai_err_set(err, AI_ESTORE, "cannot chmod %s: %s", dir,
                              strerror(errno));
        return AI_OK;
    }
    if (errno != EEXIST)
        return ai_err_set(err, AI_ESTORE, "cannot create %s: %s", dir,
                          strerror(errno));
    if (stat(dir, &sb) != 0)
        return ai_err_set(err, AI_ESTORE, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return ai_err_set(err, AI_ESTORE, "%s is not a directory", dir);
    return AI_OK;
}

/* Take the directory's writer lock; *fd is closed to release it. */
static ai_code lock_dir(const char *dir, int *fd, ai_err *err)
{
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
        return ai_err_set(err, AI_ESTORE, "cannot open %s: %s", dir,
                          strerror(errno));
    while (flock(*fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            ai_code rc = ai_err_set(err, AI_ESTORE, "cannot lock %s: %s",
                                    dir, strerror(errno));
            close(*fd);
            *fd = -1;
            return rc;
        }
    }
    return AI_OK;
}

/* Write data to a new temp file next to dir/file (0600 from its creation,
 * then mode), fsync'd. tmp: OUT, its path. */
static ai_code write_tmp(const char *dir, const char *file, const char *data,
                         size_t n, mode_t mode, char *tmp, ai_err *err)
{
    unsigned char r[8];
    char hex[sizeof r * 2 + 1];
    size_t off = 0;
    ssize_t put;
    int fd, len;
    ai_code rc = AI_OK;

    tmp[0] = '\0';
    if (RAND_bytes(r, sizeof r) != 1)
        return ai_err_set(err, AI_EINTERNAL, "random generator failed");
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(hex + 2 * i, 3, "%02x", r[i]);
    len = snprintf(tmp, TLS_PATH_MAX, "%s/.%s.%s.tmp", dir, file, hex);
    if (len < 0 || len >= TLS_PATH_MAX) {
        tmp[0] = '\0';
        return ai_err_set(err, AI_EINVAL, "path too long: %s", dir);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd < 0) {
        rc = ai_err_set(err, AI_ESTORE, "cannot create %s: %s", tmp,
                        strerror(errno));
        tmp[0] = '\0';
        return rc;
    }
    while (off < n) {
        put = write(fd, data + off, n - off);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0) {
            rc = ai_err_set(err, AI_ESTORE, "cannot write %s: %s", tmp,
                            put < 0 ? strerror(errno) : "short write");
            break;
        }
        off += (size_t)put;
    }
    if (rc == AI_OK && mode != 0600 && fchmod(fd, mode) != 0)
        rc = ai_err_set(err, AI_ESTORE, "cannot chmod %s: %s", tmp,
                        strerror(errno));
    if (rc == AI_OK && fsync(fd) != 0)
        rc = ai_err_set(err, AI_ESTORE, "cannot write %s: %s", tmp,
                        strerror(errno));
    if (close(fd) != 0 && rc == AI_OK)
        rc = ai_err_set(err, AI_ESTORE, "cannot write %s: %s", tmp,
                        strerror(errno));
    if (rc != AI_OK) {
        unlink(tmp);
        tmp[0] = '\0';
    }
    return rc;
}

/* dir/<base>.key (0600) then dir/<base>.pem (0644), each atomically. */
static ai_code write_pair(const char *dir, const char *base, X509 *cert,
                          EVP_PKEY *key, ai_err *err)
{
    char kfile[ISSUE_NAME_MAX + 8], cfile[ISSUE_NAME_MAX + 8];
    char ktmp[TLS_PATH_MAX], ctmp[TLS_PATH_MAX];
    char kpath[TLS_PATH_MAX], cpath[TLS_PATH_MAX];
    char *ktext = key_pem(key), *ctext = NULL;
    STACK_OF(X509) *one = sk_X509_new_null();
    size_t kn = ktext != NULL ? strlen(ktext) : 0;
    ai_code rc;

    ktmp[0] = ctmp[0] = '\0';
    if (ktext == NULL || one == NULL || sk_X509_push(one, cert) <= 0 ||
        (ctext = chain_pem(one)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "cannot encode PEM: %s", ossl_why());
        goto done;
    }
    snprintf(kfile, sizeof kfile, "%s.key", base);
    snprintf(cfile, sizeof cfile, "%s.pem", base);
    if ((rc = join(kpath, dir, kfile, err)) != AI_OK ||
        (rc = join(cpath, dir, cfile, err)) != AI_OK ||
        (rc = write_tmp(dir, kfile, ktext, kn, 0600, ktmp, err)) != AI_OK ||
        (rc = write_tmp(dir, cfile, ctext, strlen(ctext), 0644, ctmp,
                        err)) != AI_OK)
        goto done;
    if (rename(ktmp, kpath) != 0) {
        rc = ai_err_set(err, AI_ESTORE, "cannot rename %s to %s: %s", ktmp,
                        kpath, strerror(errno));
        goto done;
    }
    ktmp[0] = '\0';
    if (rename(ctmp, cpath) != 0) {
        rc = ai_err_set(err, AI_ESTORE, "cannot rename %s to %s: %s", ctmp,
                        cpath, strerror(errno));
        goto done;
    }
    ctmp[0] = '\0';
done:
    if (ktmp[0] != '\0')
        unlink(ktmp);
    if (ctmp[0] != '\0')
        unlink(ctmp);
    free_secret(ktext, kn);
    ai_free(ctext);
    sk_X509_free(one); /* borrowed cert: not popped and freed */
    return rc;
}

/* ---- making certificates ---------------------------------------------- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* Host name for a DNS SAN: labels of 1..63 letters, digits and '-' (not
 * first or last), 253 bytes at most, and a last label that is not all
 * digits (so an IPv4 address is not mistaken for a name). No wildcards. */
static bool dns_name_valid(const char *s)
{
    size_t n = strlen(s), label = 0;
    bool alpha = false;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            alpha = false;
            continue;
        }
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
        if ((s[i] == '-' && label == 0) || ++label > 63)
            return false;
        if (s[i] < '0' || s[i] > '9')
            alpha = true;
    }
    return label > 0 && s[n - 1] != '-' && alpha;
}

/* Parse "IP:x" text into 4 or 16 bytes; 0 when it is not an address. */
static size_t ip_parse(const char *s, unsigned char out[16])
{
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, out) == 1)
        return 16;
    return 0;
}

static bool san_valid(const char *s)
{
    unsigned char ip[16];

    if (strncmp(s, "DNS:", 4) == 0)
        return dns_name_valid(s + 4);
    if (strncmp(s, "IP:", 3) == 0)
        return ip_parse(s + 3, ip) != 0;
    return false;
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > ISSUE_NAME_MAX || s[0] == '.' || strcmp(s, "ca") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* The subjectAltName extension, built from parsed values rather than
 * config text, so no entry can smuggle in another (sans are valid). */
static bool add_sans(X509 *x, const char *const *sans, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    bool ok = gens != NULL;

    for (size_t i = 0; ok && i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_STRING *v = NULL;
        unsigned char ip[16];
        size_t len;
        int type;

        if (strncmp(sans[i], "DNS:", 4) == 0) {
            type = GEN_DNS;
            v = ASN1_IA5STRING_new();
            ok = v != NULL && ASN1_STRING_set(v, sans[i] + 4, -1) == 1;
        } else {
            type = GEN_IPADD;
            len = ip_parse(sans[i] + 3, ip);
            v = ASN1_OCTET_STRING_new();
            ok = len != 0 && v != NULL &&
                 ASN1_OCTET_STRING_set(v, ip, (int)len) == 1;
        }
        if (!ok || g == NULL) {
            ASN1_STRING_free(v);
            GENERAL_NAME_free(g);
            ok = false;
            break;
        }
        GENERAL_NAME_set0_value(g, type, v);
        if (sk_GENERAL_NAME_push(gens, g) <= 0) {
            GENERAL_NAME_free(g);
            ok = false;
        }
    }
    ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                                 X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(gens);
    return ok;
}

static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    bool ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok;
}

/* 128 random bits: positive, and unique in practice without a counter. */
static bool set_serial(X509 *x)
{
    unsigned char r[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    bool ok;

    ok = RAND_bytes(r, sizeof r) == 1 &&
         (bn = BN_bin2bn(r, sizeof r, NULL)) != NULL &&
         (!BN_is_zero(bn) || BN_one(bn) == 1) &&
         (ai = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
         X509_set_serialNumber(x, ai) == 1;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok;
}

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A certificate for key, signed by issuer/issuer_key, or self-signed
 * when issuer is NULL (a CA). NULL on failure (OpenSSL's queue says why). */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *cn, long days, const char *eku,
                       const char *const *sans, size_t nsans)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    bool ca = issuer == NULL, ok;

    ok = x != NULL && name != NULL &&
         X509_set_version(x, X509_VERSION_3) == 1 && set_serial(x) &&
         X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                    (const unsigned char *)"agent-iam", -1,
                                    -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *)cn, -1, -1,
                                    0) == 1 &&
         X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, ca ? name
                                    : X509_get_subject_name(issuer)) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECS) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) !=
             NULL &&
         X509_set_pubkey(x, key) == 1;
    /* Nothing it signs may outlive the CA. */
    if (ok && !ca &&
        ASN1_TIME_compare(X509_get0_notAfter(x),
                          X509_get0_notAfter(issuer)) > 0)
        ok = X509_set1_notAfter(x, X509_get0_notAfter(issuer)) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, ca ? x : issuer, x, NULL, NULL, 0);
        if (ca)
            ok = add_ext(x, &ctx, NID_basic_constraints,
                         "critical,CA:TRUE,pathlen:0") &&
                 add_ext(x, &ctx, NID_key_usage,
                         "critical,keyCertSign,cRLSign") &&
                 add_ext(x, &ctx, NID_subject_key_identifier, "hash");
        else
            ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
                 add_ext(x, &ctx, NID_key_usage,
                         "critical,digitalSignature") &&
                 add_ext(x, &ctx, NID_ext_key_usage, eku) &&
                 add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
                 add_ext(x, &ctx, NID_authority_key_identifier,
                         "keyid:always") &&
                 add_sans(x, sans, nsans);
    }
    ok = ok && X509_sign(x, ca ? key : issuer_key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Load dir/ca.pem + ca.key, or make and write them when neither exists. */
static ai_code ca_get(const char *dir, pair *ca, ai_err *err)
{
    char cpath[TLS_PATH_MAX], kpath[TLS_PATH_MAX], cn[CN_MAX];
    unsigned char r[4];
    X509 *x = NULL;
    bool have_c, have_k;
    ai_code rc;

    if ((rc = join(cpath, dir, "ca.pem", err)) != AI_OK ||
        (rc = join(kpath, dir, "ca.key", err)) != AI_OK)
        return rc;
    have_c = exists(cpath);
    have_k = exists(kpath);
    if (have_c != have_k)
        return ai_err_set(err, AI_EINVAL,
                          "%s exists without %s: restore it, or remove "
                          "both to make a new CA",
                          have_c ? cpath : kpath, have_c ? kpath : cpath);
    if (have_c) {
        rc = pair_read(cpath, kpath,
                       "remove ca.pem and ca.key to make a new CA (clients "
                       "must then trust the new ca.pem)",
                       ca, err);
        if (rc == AI_OK && X509_check_ca(sk_X509_value(ca->chain, 0)) == 0) {
            pair_free(ca);
            rc = ai_err_set(err, AI_EINVAL,
                            "%s is not a CA certificate (no CA:TRUE)", cpath);
        }
        return rc;
    }
    /* A random suffix keeps the CAs of different homes apart in a trust
     * store that looks certificates up by name. */
    if (RAND_bytes(r, sizeof r) != 1)
        return ai_err_set(err, AI_EINTERNAL, "random generator failed");
    snprintf(cn, sizeof cn, "agent-iam local CA %02x%02x%02x%02x", r[0],
             r[1], r[2], r[3]);
    if ((ca->chain = sk_X509_new_null()) == NULL ||
        (ca->key = new_key()) == NULL ||
        (x = make_cert(ca->key, NULL, NULL, cn, CA_DAYS, NULL, NULL, 0)) ==
            NULL ||
        sk_X509_push(ca->chain, x) <= 0) {
        X509_free(x);
        pair_free(ca);
        rc = ai_err_set(err, AI_EINTERNAL, "cannot make a CA: %s",
                        ossl_why());
        ERR_clear_error();
        return rc;
    }
    if ((rc = write_pair(dir, "ca", x, ca->key, err)) != AI_OK)
        pair_free(ca);
    return rc;
}

/* srv_tls_issue with the arguments checked and dir locked (fd). */
static ai_code issue_locked(int fd, const char *dir, const char *name,
                            const char *const *sans, size_t nsans,
                            bool client, ai_err *err)
{
    pair ca = {0};
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    const char *cn = name;
    ai_code rc;

    if ((rc = ca_get(dir, &ca, err)) != AI_OK)
        return rc;
    /* CN: the first DNS name when it fits (clients match the SANs). */
    for (size_t i = 0; i < nsans; i++)
        if (strncmp(sans[i], "DNS:", 4) == 0 && strlen(sans[i] + 4) <= CN_MAX) {
            cn = sans[i] + 4;
            break;
        }
    if ((key = new_key()) == NULL ||
        (x = make_cert(key, sk_X509_value(ca.chain, 0), ca.key, cn,
                       LEAF_DAYS,
                       client ? "serverAuth,clientAuth" : "serverAuth", sans,
                       nsans)) == NULL) {
        rc = ai_err_set(err, AI_EINTERNAL, "cannot make a certificate: %s",
                        ossl_why());
        goto done;
    }
    if ((rc = write_pair(dir, name, x, key, err)) != AI_OK)
        goto done;
    if (fsync(fd) != 0 && errno != EINVAL) /* the renames, durably */
        rc = ai_err_set(err, AI_ESTORE, "cannot sync %s: %s", dir,
                        strerror(errno));
done:
    X509_free(x);
    EVP_PKEY_free(key);
    pair_free(&ca);
    ERR_clear_error();
    return rc;
}

ai_code srv_tls_issue(const char *dir, const char *name,
                      const char *const *sans, size_t nsans, bool client,
                      ai_err *err)
{
    ai_code rc;
    int fd = -1;

    if (!given(dir) || name == NULL || !name_valid(name))
        return ai_err_set(err, AI_EINVAL,
                          "certificate name must be 1..%d of A-Z a-z 0-9 . "
                          "_ - (not starting with '.', not \"ca\")",
                          ISSUE_NAME_MAX);
    if (sans == NULL || nsans == 0 || nsans > ISSUE_SANS_MAX)
        return ai_err_set(err, AI_EINVAL,
                          "a certificate needs 1..%d subject names",
                          ISSUE_SANS_MAX);
    for (size_t i = 0; i < nsans; i++)
        if (sans[i] == NULL || !san_valid(sans[i]))
            return ai_err_set(err, AI_EINVAL,
                              "bad subject name \"%.300s\": want DNS:<host "
                              "name> or IP:<address>",
                              sans[i] != NULL ? sans[i] : "(null)");
    if ((rc = make_dir(dir, err)) != AI_OK ||
        (rc = lock_dir(dir, &fd, err)) != AI_OK)
        return rc;
    rc = issue_locked(fd, dir, name, sans, nsans, client, err);
    close(fd); /* releases the lock */
    return rc;
}

/* ---- loading ---------------------------------------------------------- */

/* The default SANs of a generated server certificate. host: room for
 * "DNS:" and a host name. Returns how many entries of out are set. */
static size_t default_sans(const char *out[4], char *host, size_t cap)
{
    char name[256];
    size_t n = 0;

    out[n++] = "DNS:localhost";
    out[n++] = "IP:127.0.0.1";
    out[n++] = "IP:::1";
    if (gethostname(name, sizeof name) != 0)
        return n;
    name[sizeof name - 1] = '\0';
    for (char *p = name; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (dns_name_valid(name) && strcmp(name, "localhost") != 0 &&
        (size_t)snprintf(host, cap, "DNS:%s", name) < cap)
        out[n++] = host;
    return n;
}

/* Make <home>/tls/server.{pem,key} unless both exist. */
static ai_code home_material(const char *dir, const char *cpath,
                             const char *kpath, bool *generated, ai_err *err)
{
    const char *sans[4];
    char host[4 + 256];
    bool have_c = exists(cpath), have_k = exists(kpath);
    size_t n;
    ai_code rc;
    int fd;

    *generated = false;
    if (have_c && have_k)
        return AI_OK;
    if ((rc = make_dir(dir, err)) != AI_OK ||
        (rc = lock_dir(dir, &fd, err)) != AI_OK)
        return rc;
    /* Another process may have made them while we waited. */
    have_c = exists(cpath);
    have_k = exists(kpath);
    if (have_c != have_k) {
        rc = ai_err_set(err, AI_EINVAL,
                        "%s exists without %s: restore it, or remove it to "
                        "generate new TLS material",
                        have_c ? cpath : kpath, have_c ? kpath : cpath);
    } else if (!have_c) {
        n = default_sans(sans, host, sizeof host);
        rc = issue_locked(fd, dir, "server", sans, n, false, err);
        *generated = rc == AI_OK;
    }
    close(fd);
    return rc;
}

/* Was leaf issued (and signed) by the certificate in ca_path? */
static bool issued_by(const char *ca_path, X509 *leaf)
{
    STACK_OF(X509) *chain = NULL;
    char *text = NULL;
    size_t n = 0;
    ai_err e = {0};
    bool ok = false;

    if (read_file(ca_path, false, CHAIN_MAX, &text, &n, &e) == AI_OK &&
        parse_chain(ca_path, text, n, &chain, &e) == AI_OK) {
        X509 *ca = sk_X509_value(chain, 0);

        ok = X509_check_issued(ca, leaf) == X509_V_OK &&
             X509_verify(leaf, X509_get0_pubkey(ca)) == 1;
    }
    sk_X509_pop_free(chain, X509_free);
    ai_free(text);
    ERR_clear_error();
    return ok;
}

ai_code srv_tls_load(const char *home, const char *cert_path,
                     const char *key_path, srv_tls *out, ai_err *err)
{
    const char *ec = getenv("AGENT_IAM_TLS_CERT");
    const char *ek = getenv("AGENT_IAM_TLS_KEY");
    char dir[TLS_PATH_MAX], cpath[TLS_PATH_MAX], kpath[TLS_PATH_MAX];
    char capath[TLS_PATH_MAX];
    const char *fix = "replace it";
    pair p = {0};
    bool ours = false, generated = false;
    ai_code rc;

    memset(out, 0, sizeof *out);
    if (given(cert_path) != given(key_path))
        return ai_err_set(err, AI_EINVAL,
                          "TLS: give both a certificate and a key, or "
                          "neither");
    capath[0] = '\0';
    if (given(cert_path)) {
        if ((rc = copy_path(cpath, cert_path, err)) != AI_OK ||
            (rc = copy_path(kpath, key_path, err)) != AI_OK)
            return rc;
    } else if (given(ec) || given(ek)) {
        if (given(ec) != given(ek))
            return ai_err_set(err, AI_EINVAL,
                              "TLS: set both AGENT_IAM_TLS_CERT and "
                              "AGENT_IAM_TLS_KEY, or neither");
        if ((rc = copy_path(cpath, ec, err)) != AI_OK ||
            (rc = copy_path(kpath, ek, err)) != AI_OK)
            return rc;
    } else {
        if (!given(home))
            return ai_err_set(err, AI_EINVAL,
                              "TLS: no home to keep TLS material in");
        if ((rc = join(dir, home, "tls", err)) != AI_OK ||
            (rc = join(cpath, dir, "server.pem", err)) != AI_OK ||
            (rc = join(kpath, dir, "server.key", err)) != AI_OK ||
            (rc = join(capath, dir, "ca.pem", err)) != AI_OK ||
            (rc = home_material(dir, cpath, kpath, &generated, err)) !=
                AI_OK)
            return rc;
        ours = true;
        fix = "remove it and server.key to generate new ones";
    }
    if ((rc = pair_read(cpath, kpath, fix, &p, err)) != AI_OK)
        goto done;
    out->cert_pem = chain_pem(p.chain);
    out->key_pem = key_pem(p.key);
    if (out->cert_pem == NULL || out->key_pem == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "cannot encode PEM: out of memory");
        goto done;
    }
    memcpy(out->cert_path, cpath, sizeof out->cert_path);
    if (ours && issued_by(capath, sk_X509_value(p.chain, 0)))
        memcpy(out->ca_path, capath, sizeof out->ca_path);
    out->generated = generated;
done:
    pair_free(&p);
    if (rc != AI_OK)
        srv_tls_clear(out);
    ERR_clear_error();
    return rc;
}

void srv_tls_clear(srv_tls *t)
{
    if (t == NULL)
        return;
    if (t->key_pem != NULL)
        free_secret(t->key_pem, strlen(t->key_pem));
    ai_free(t->cert_pem);
    memset(t, 0, sizeof *t);
}
