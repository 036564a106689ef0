/*
 * sigv4.c - AWS Signature Version 4 for requests signed in the
 * Authorization header: canonical request, string to sign, signing key
 * (the HMAC-SHA256 chain date -> region -> service -> "aws4_request") and
 * the header value. Follows AWS's "Create a signed AWS API request" and
 * reproduces its published test suite (tests/providers/test_sigv4.c).
 *
 * DESIGN: the caller passes the date and every header to sign, so this
 * file does no I/O and reads no clock. Inputs are bounded (header count,
 * lengths) and CR/LF in header values is refused. The secret key and the
 * derived keys live on the stack only and are wiped on every path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/core.h"
#include "providers/sigv4.h"

#define ALGO "AWS4-HMAC-SHA256"
#define MAX_NAME 128          /* header name */
#define MAX_VALUE (8 * 1024)  /* header value */
#define MAX_SECRET 256
#define MAX_PARAMS 128        /* query parameters */
#define MAX_PATH 2048

static const char hexl[] = "0123456789abcdef";
static const char hexu[] = "0123456789ABCDEF";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexl[p[i] >> 4];
        out[2 * i + 1] = hexl[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

void sigv4_uri_encode(struct ai_buf *b, const char *s, size_t n,
                      bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (unreserved(c) || (keep_slash && c == '/')) {
            buf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hexu[c >> 4], hexu[c & 15]};
            buf_put(b, e, 3);
        }
    }
}

void sigv4_amz_date(int64_t now_ms, char out[SIGV4_DATE_LEN + 1])
{
    char iso[AI_TIME_BUF];

    /* "YYYY-MM-DDTHH:MM:SS.mmmZ" -> "YYYYMMDDTHHMMSSZ" */
    ai_time_format(now_ms, iso);
    memcpy(out, iso, 4);
    memcpy(out + 4, iso + 5, 2);
    memcpy(out + 6, iso + 8, 2);
    out[8] = 'T';
    memcpy(out + 9, iso + 11, 2);
    memcpy(out + 11, iso + 14, 2);
    memcpy(out + 13, iso + 17, 2);
    out[15] = 'Z';
    out[16] = '\0';
}

/* ---- canonical URI ---------------------------------------------------- */

/* Remove "." and ".." segments and empty segments (RFC 3986 5.2.4 plus
 * the collapsing of "//" that the suite's normalize-path cases expect),
 * then encode each segment. A trailing slash is kept. */
static bool put_path(ai_buf *b, const char *path)
{
    size_t n = strlen(path), nseg = 0;
    size_t starts[MAX_PATH / 2 + 1], lens[MAX_PATH / 2 + 1];
    bool trailing;

    if (n > MAX_PATH)
        return false;
    if (n == 0)
        path = "/", n = 1;
    if (path[0] != '/')
        return false;
    trailing = n > 1 && path[n - 1] == '/';
    for (size_t i = 0; i < n;) {
        size_t j;

        while (i < n && path[i] == '/')
            i++;
        if (i >= n)
            break;
        for (j = i; j < n && path[j] != '/'; j++)
            ;
        if (j - i == 1 && path[i] == '.') {
            /* nothing */
        } else if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg > 0)
                nseg--;
        } else {
            starts[nseg] = i;
            lens[nseg] = j - i;
            nseg++;
        }
        i = j;
    }
    for (size_t k = 0; k < nseg; k++) {
        buf_putc(b, '/');
        sigv4_uri_encode(b, path + starts[k], lens[k], false);
    }
    if (nseg == 0 || trailing)
        buf_putc(b, '/');
    return true;
}

/* ---- canonical query string ------------------------------------------- */

typedef struct qparam {
    char *k, *v; /* encoded */
} qparam;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode %XX (a stray '%' stays literal), then encode as AWS wants. */
static char *requote(const char *s, size_t n)
{
    ai_buf raw, enc;
    char *out;

    buf_init(&raw);
    buf_init(&enc);
    buf_reserve(&raw, n);
    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] == '%' && i + 2 < n &&
            (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            buf_putc(&raw, (char)(hi << 4 | lo));
            i += 2;
        } else {
            buf_putc(&raw, s[i]);
        }
    }
    buf_reserve(&enc, raw.len);
    if (!raw.oom)
        sigv4_uri_encode(&enc, raw.p != NULL ? raw.p : "", raw.len, false);
    out = raw.oom ? NULL : buf_steal(&enc);
    buf_free(&raw);
    buf_free(&enc);
    return out;
}

static int qparam_cmp(const void *a, const void *b)
{
    const qparam *x = a, *y = b;
    int c = strcmp(x->k, y->k);

    return c != 0 ? c : strcmp(x->v, y->v);
}

static ai_code put_query(ai_buf *b, const char *q, ai_err *err)
{
    qparam *ps = NULL;
    size_t np = 0;
    ai_code rc = AI_ENOMEM;

    if (q == NULL || *q == '\0')
        return AI_OK;
    if ((ps = ai_calloc(MAX_PARAMS, sizeof *ps)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "sigv4: out of memory");
    for (const char *p = q; *p != '\0';) {
        const char *amp = strchr(p, '&'), *eq;
        size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);

        if (n > 0) {
            if (np == MAX_PARAMS) {
                rc = ai_err_set(err, AI_EINVAL,
                                "sigv4: too many query parameters");
                goto done;
            }
            eq = memchr(p, '=', n);
            ps[np].k = requote(p, eq != NULL ? (size_t)(eq - p) : n);
            ps[np].v = eq != NULL ? requote(eq + 1, n - (size_t)(eq - p) - 1)
                                  : requote("", 0);
            np++;
            if (ps[np - 1].k == NULL || ps[np - 1].v == NULL) {
                rc = ai_err_set(err, AI_ENOMEM, "sigv4: out of memory");
                goto done;
            }
        }
        p += n;
        if (*p == '&')
            p++;
    }
    qsort(ps, np, sizeof *ps, qparam_cmp);
    for (size_t i = 0; i < np; i++) {
        if (i > 0)
            buf_putc(b, '&');
        buf_puts(b, ps[i].k);
        buf_putc(b, '=');
        buf_puts(b, ps[i].v);
    }
    rc = AI_OK;
done:
    for (size_t i = 0; i < np; i++) {
        ai_free(ps[i].k);
        ai_free(ps[i].v);
    }
    ai_free(ps);
    return rc;
}

/* ---- canonical headers ------------------------------------------------ */

typedef struct hdr {
    char name[MAX_NAME + 1]; /* lowercase */
    const char *value;
    size_t idx;
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool tchar(unsigned char c)
{
    return unreserved(c) || (c != '\0' && strchr("!#$%&'*+^`|", c) != NULL);
}

/* The value with leading and trailing blanks removed and each inner run
 * of blanks made one space (the suite's get-header-value-trim). */
static bool put_value(ai_buf *b, const char *v)
{
    size_t n = strlen(v), i = 0, end = n;
    bool space = false;

    if (n > MAX_VALUE)
        return false;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    for (; i < end; i++) {
        if (v[i] == '\r' || v[i] == '\n')
            return false;
        if (v[i] == ' ' || v[i] == '\t') {
            space = true;
            continue;
        }
        if (space)
            buf_putc(b, ' ');
        space = false;
        buf_putc(b, v[i]);
    }
    return true;
}

/* Canonical headers into b, signed header names into sh. */
static ai_code put_headers(ai_buf *b, ai_buf *sh, const sigv4_req *r,
                           ai_err *err)
{
    hdr hs[SIGV4_MAX_HEADERS];
    bool host = false, date = false;

    if (r->nheaders == 0 || r->nheaders > SIGV4_MAX_HEADERS)
        return ai_err_set(err, AI_EINVAL, "sigv4: bad header count");
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *nm = r->headers[i].name;
        size_t n = nm != NULL ? strlen(nm) : 0;

        if (n == 0 || n > MAX_NAME || r->headers[i].value == NULL)
            return ai_err_set(err, AI_EINVAL, "sigv4: bad header");
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)nm[k];

            if (!tchar(c))
                return ai_err_set(err, AI_EINVAL, "sigv4: bad header name");
            hs[i].name[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        hs[i].name[n] = '\0';
        hs[i].value = r->headers[i].value;
        hs[i].idx = i;
        host |= strcmp(hs[i].name, "host") == 0;
        date |= strcmp(hs[i].name, "x-amz-date") == 0;
    }
    if (!host || !date)
        return ai_err_set(err, AI_EINVAL,
                          "sigv4: Host and X-Amz-Date must be signed");
    qsort(hs, r->nheaders, sizeof *hs, hdr_cmp);
    for (size_t i = 0; i < r->nheaders; i++) {
        bool same = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;

        if (same) {
            buf_putc(b, ','); /* repeated header: values joined in order */
        } else {
            if (i > 0) {
                buf_putc(b, '\n');
                buf_putc(sh, ';');
            }
            buf_puts(b, hs[i].name);
            buf_putc(b, ':');
            buf_puts(sh, hs[i].name);
        }
        if (!put_value(b, hs[i].value))
            return ai_err_set(err, AI_EINVAL, "sigv4: bad header value");
    }
    buf_putc(b, '\n');
    return AI_OK;
}

/* ---- signing ------------------------------------------------------------ */

static bool ident(const char *s, size_t max)
{
    size_t n = s != NULL ? strnlen(s, max + 1) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

static bool amz_date_ok(const char *d)
{
    if (d == NULL || strnlen(d, SIGV4_DATE_LEN + 1) != SIGV4_DATE_LEN ||
        d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !(d[i] >= '0' && d[i] <= '9'))
            return false;
    return true;
}

static bool key_id_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, 129) : 0;

    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static bool hmac(const unsigned char *key, size_t klen, const void *msg,
                 size_t mlen, unsigned char out[32])
{
    unsigned int olen = 0;

    return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) !=
               NULL &&
           olen == 32;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
 * service), "aws4_request"). */
static bool signing_key(const char *secret, const char *date8,
                        const char *region, const char *service,
                        unsigned char out[32])
{
    unsigned char k[4 + MAX_SECRET], t[32];
    size_t n = strlen(secret);
    bool ok;

    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, n);
    ok = hmac(k, 4 + n, date8, 8, t) &&
         hmac(t, 32, region, strlen(region), out) &&
         hmac(out, 32, service, strlen(service), t) &&
         hmac(t, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(t, sizeof t);
    if (!ok)
        OPENSSL_cleanse(out, 32);
    return ok;
}

void sigv4_out_clear(sigv4_out *out)
{
    if (out == NULL)
        return;
    if (out->canonical != NULL) {
        OPENSSL_cleanse(out->canonical, strlen(out->canonical));
        ai_free(out->canonical);
    }
    ai_free(out->string_to_sign);
    ai_free(out->authorization);
    memset(out, 0, sizeof *out);
}

ai_code sigv4_sign(const sigv4_req *r, const char *access_key_id,
                   const char *secret_key, sigv4_out *out, ai_err *err)
{
    ai_buf cr, sh, sts, auth;
    unsigned char dig[32], key[32], sig[32];
    char hex[65], date8[9], scope[160];
    ai_code rc = AI_ENOMEM;
    size_t slen;

    memset(out, 0, sizeof *out);
    buf_init(&cr);
    buf_init(&sh);
    buf_init(&sts);
    buf_init(&auth);
    slen = secret_key != NULL ? strnlen(secret_key, MAX_SECRET + 1) : 0;
    if (r == NULL || r->method == NULL || r->path == NULL ||
        (r->payload == NULL && r->payload_len != 0)) {
        rc = ai_err_set(err, AI_EINVAL, "sigv4: incomplete request");
        goto done;
    }
    if (!ident(r->region, 64) || !ident(r->service, 64)) {
        rc = ai_err_set(err, AI_EINVAL, "sigv4: bad region or service");
        goto done;
    }
    if (!amz_date_ok(r->amz_date)) {
        rc = ai_err_set(err, AI_EINVAL, "sigv4: bad X-Amz-Date");
        goto done;
    }
    if (!key_id_ok(access_key_id)) {
        rc = ai_err_set(err, AI_EINVAL, "sigv4: bad access key id");
        goto done;
    }
    if (slen == 0 || slen > MAX_SECRET) {
        rc = ai_err_set(err, AI_EINVAL, "sigv4: bad secret access key");
        goto done;
    }
    for (const char *m = r->method; *m != '\0'; m++)
        if (!(*m >= 'A' && *m <= 'Z')) {
            rc = ai_err_set(err, AI_EINVAL, "sigv4: bad method");
            goto done;
        }

    /* 1. canonical request */
    buf_puts(&cr, r->method);
    buf_putc(&cr, '\n');
    if (!put_path(&cr, r->path)) {
        rc = ai_err_set(err, AI_EINVAL, "sigv4: bad path");
        goto done;
    }
    buf_putc(&cr, '\n');
    if ((rc = put_query(&cr, r->query, err)) != AI_OK)
        goto done;
    buf_putc(&cr, '\n');
    if ((rc = put_headers(&cr, &sh, r, err)) != AI_OK)
        goto done;
    rc = AI_ENOMEM;
    buf_putc(&cr, '\n');
    buf_put(&cr, sh.p != NULL ? sh.p : "", sh.len);
    buf_putc(&cr, '\n');
    if (EVP_Digest(r->payload != NULL ? r->payload : "", r->payload_len, dig,
                   NULL, EVP_sha256(), NULL) != 1)
        goto crypto;
    to_hex(dig, 32, hex);
    buf_puts(&cr, hex);
    if (cr.oom || sh.oom)
        goto oom;

    /* 2. string to sign */
    memcpy(date8, r->amz_date, 8);
    date8[8] = '\0';
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8, r->region,
             r->service);
    if (EVP_Digest(cr.p, cr.len, dig, NULL, EVP_sha256(), NULL) != 1)
        goto crypto;
    to_hex(dig, 32, hex);
    buf_puts(&sts, ALGO "\n");
    buf_puts(&sts, r->amz_date);
    buf_putc(&sts, '\n');
    buf_puts(&sts, scope);
    buf_putc(&sts, '\n');
    buf_puts(&sts, hex);
    if (sts.oom)
        goto oom;

    /* 3. signature */
    if (!signing_key(secret_key, date8, r->region, r->service, key) ||
        !hmac(key, sizeof key, sts.p, sts.len, sig))
        goto crypto;
    to_hex(sig, 32, out->signature);

    /* 4. Authorization */
    buf_puts(&auth, ALGO " Credential=");
    buf_puts(&auth, access_key_id);
    buf_putc(&auth, '/');
    buf_puts(&auth, scope);
    buf_puts(&auth, ", SignedHeaders=");
    buf_put(&auth, sh.p, sh.len);
    buf_puts(&auth, ", Signature=");
    buf_puts(&auth, out->signature);
    if (auth.oom)
        goto oom;
    out->canonical = buf_steal(&cr);
    out->string_to_sign = buf_steal(&sts);
    out->authorization = buf_steal(&auth);
    if (out->canonical == NULL || out->string_to_sign == NULL ||
        out->authorization == NULL)
        goto oom;
    rc = AI_OK;
    goto done;
crypto:
    rc = ai_err_set(err, AI_EPROVIDER, "sigv4: OpenSSL failure");
    goto done;
oom:
    rc = ai_err_set(err, AI_ENOMEM, "sigv4: out of memory");
done:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(sig, sizeof sig);
    buf_free(&cr);
    buf_free(&sh);
    buf_free(&sts);
    buf_free(&auth);
    if (rc != AI_OK)
        sigv4_out_clear(out);
    return rc;
}
