/*
 * config.c - what a provider config object may hold: the checks of its
 * members, shared by the CLI (`config init` flags, local or sent to a
 * leader) and the server (PUT /v1/admin/providers/{name} bodies), so both
 * accept exactly the same configs.
 *
 * A config is the object `config init` stores: github {appId,
 * installationId, privateKey, owner?, apiUrl?}, google {clientId,
 * clientSecret, refreshToken, tokenUrl?}, aws {region, roleArn,
 * accessKeyId? + secretAccessKey?, externalId?, sessionDuration?,
 * stsUrl?}. Unknown members are refused (a misspelt "apiURL" would
 * otherwise be ignored and the default URL used).
 *
 * Messages name the provider and the member, never a value: values hold
 * secrets. Stateless and thread-safe.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/core.h"
#include "http/http.h"
#include "providers/providers.h"

/* See providers.h. */
bool prov_text_ok(const char *s, size_t max)
{
    size_t n = s != NULL ? strnlen(s, max + 1) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* See providers.h. */
bool prov_secret_ok(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > PROV_SECRET_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* See providers.h. */
bool prov_url_ok(const char *url)
{
    return prov_text_ok(url, PROV_URL_MAX) && http_url_ok(url, NULL);
}

/* See providers.h. */
bool prov_login_ok(const char *s)
{
    return s != NULL && prov_login_ok_n(s, strnlen(s, PROV_LOGIN_MAX + 1));
}

/* See providers.h. */
bool prov_login_ok_n(const char *s, size_t n)
{
    if (n == 0 || n > PROV_LOGIN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') &&
            !(ch >= '0' && ch <= '9') && ch != '-' && ch != '_' && ch != '.')
            return false;
    }
    return true;
}

/* See providers.h. */
bool prov_aws_region_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, 33) : 0;

    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-'))
            return false;
    return true;
}

/* See providers.h. */
bool prov_aws_key_id_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, 129) : 0;

    if (n < 16 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

/* See providers.h. */
bool prov_aws_role_arn_ok(const char *s)
{
    return s != NULL && strncmp(s, "arn:", 4) == 0 &&
           prov_text_ok(s, PROV_URL_MAX);
}

/* See providers.h. */
bool prov_aws_external_id_ok(const char *s)
{
    return s != NULL && strlen(s) >= 2 &&
           prov_text_ok(s, PROV_EXTERNAL_ID_MAX);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* never prompt on the terminal */
}

/* See providers.h. */
const char *prov_rsa_pem_why(const char *pem, size_t n)
{
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    const char *why = NULL;

    if (pem == NULL || n == 0)
        why = "is not a PEM private key";
    else if (n > PROV_PEM_MAX)
        why = "is too large to be a PEM private key";
    else if (strnlen(pem, n) != n)
        why = "is not a PEM private key (binary data)";
    else if ((bio = BIO_new_mem_buf(pem, (int)n)) == NULL)
        why = "cannot be read (out of memory)";
    else if ((key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase,
                                            NULL)) == NULL)
        why = strstr(pem, "ENCRYPTED") != NULL
                  ? "is an encrypted private key: decrypt it first "
                    "(openssl pkey -in KEY -out PLAIN)"
                  : "is not a PEM private key";
    else if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA)
        why = "is not an RSA private key (GitHub Apps sign with RS256)";
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return why;
}

/* ---- config objects --------------------------------------------------- */

typedef enum kind { K_TEXT, K_SECRET, K_URL, K_ID, K_PEM, K_LOGIN,
                    K_REGION, K_ARN, K_KEY_ID, K_EXTERNAL_ID, K_DURATION
} kind;

typedef struct member {
    const char *name;
    kind kind;
    bool required;
    const char *what; /* for messages: what the value must be */
} member;

static const member github_members[] = {
    {"appId", K_ID, true, "a positive whole number"},
    {"installationId", K_ID, true, "a positive whole number"},
    {"privateKey", K_PEM, true, "an unencrypted RSA private key in PEM"},
    {"owner", K_LOGIN, false, "1 to 100 of A-Z a-z 0-9 . _ -"},
    {"apiUrl", K_URL, false, NULL},
    {NULL, K_TEXT, false, NULL}};

static const member google_members[] = {
    {"clientId", K_TEXT, true, "1 to 1024 printable characters"},
    {"clientSecret", K_SECRET, true, NULL},
    {"refreshToken", K_SECRET, true, NULL},
    {"tokenUrl", K_URL, false, NULL},
    {NULL, K_TEXT, false, NULL}};

static const member aws_members[] = {
    {"region", K_REGION, true, "an AWS region such as us-east-1"},
    {"roleArn", K_ARN, true, "an ARN (arn:aws:iam::ACCOUNT:role/NAME)"},
    {"accessKeyId", K_KEY_ID, false, "16 to 128 of A-Z 0-9"},
    {"secretAccessKey", K_SECRET, false, NULL},
    {"externalId", K_EXTERNAL_ID, false, "2 to 1224 printable characters"},
    {"sessionDuration", K_DURATION, false,
     "a whole number from 900 to 43200"},
    {"stsUrl", K_URL, false, NULL},
    {NULL, K_TEXT, false, NULL}};

/* A positive id: a JSON integer >= 1, or its canonical decimal text
 * (what the CLI stores) up to INT64_MAX. */
static bool id_ok(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n;

    if (json_is_integer(v))
        return json_integer_value(v) >= 1;
    if (s == NULL || (n = json_string_length(v)) == 0 || n > 19 ||
        s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n < 19 || strcmp(s, "9223372036854775807") <= 0;
}

/* Does v fit member m? Strings must hold no NUL (jansson allows one). */
static bool value_ok(const member *m, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);

    if (m->kind == K_ID)
        return id_ok(v);
    if (m->kind == K_DURATION)
        return json_is_integer(v) && json_integer_value(v) >= 900 &&
               json_integer_value(v) <= 43200;
    if (s == NULL || strlen(s) != n)
        return false;
    switch (m->kind) {
    case K_TEXT: return prov_text_ok(s, PROV_TEXT_MAX);
    case K_SECRET: return prov_secret_ok(s, n);
    case K_URL: return prov_url_ok(s);
    case K_PEM: return prov_rsa_pem_why(s, n) == NULL;
    case K_LOGIN: return prov_login_ok(s);
    case K_REGION: return prov_aws_region_ok(s);
    case K_ARN: return prov_aws_role_arn_ok(s);
    case K_KEY_ID: return prov_aws_key_id_ok(s);
    case K_EXTERNAL_ID: return prov_aws_external_id_ok(s);
    default: return false;
    }
}

static const char *must_be(const member *m)
{
    if (m->what != NULL)
        return m->what;
    if (m->kind == K_URL)
        return "an https:// URL without user info (http:// only to "
               "localhost, 127.0.0.1 or [::1]), at most 2048 characters";
    return "1 to 4096 bytes without control characters"; /* K_SECRET */
}

static ai_code check_members(const char *name, const member *members,
                             json_t *cfg, ai_err *err)
{
    const char *k;
    json_t *v;

    json_object_foreach(cfg, k, v) {
        const member *m = members;
        while (m->name != NULL && strcmp(m->name, k) != 0)
            m++;
        if (m->name == NULL)
            return ai_err_set(err, AI_EINVAL,
                              "%s: unknown member \"%s\" in the config",
                              name, k);
        if (!value_ok(m, v))
            return ai_err_set(err, AI_EINVAL, "%s: %s must be %s", name,
                              m->name, must_be(m));
    }
    for (const member *m = members; m->name != NULL; m++)
        if (m->required && json_object_get(cfg, m->name) == NULL)
            return ai_err_set(err, AI_EINVAL, "%s: the config needs %s (%s)",
                              name, m->name, must_be(m));
    return AI_OK;
}

/* See providers.h. */
ai_code prov_config_check(const char *name, const char *json, ai_err *err)
{
    const member *members;
    json_error_t jerr;
    json_t *cfg = NULL;
    ai_code rc;

    ai_err_clear(err);
    if (name != NULL && strcmp(name, "github") == 0)
        members = github_members;
    else if (name != NULL && strcmp(name, "google") == 0)
        members = google_members;
    else if (name != NULL && strcmp(name, "aws") == 0)
        members = aws_members;
    else
        return ai_err_set(err, AI_ENOTFOUND,
                          "unknown provider: github, google or aws");
    if (json == NULL || strnlen(json, PROV_CONFIG_MAX + 1) > PROV_CONFIG_MAX)
        return ai_err_set(err, AI_EINVAL, "%s: the config is missing or "
                                          "larger than %d bytes",
                          name, PROV_CONFIG_MAX);
    /* XXX jansson's lexer frees its copy of each string unwiped. */
    cfg = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (cfg == NULL || !json_is_object(cfg)) {
        rc = ai_err_set(err, AI_EINVAL, "%s: the config is not a JSON "
                                        "object", name);
        goto done;
    }
    if ((rc = check_members(name, members, cfg, err)) != AI_OK)
        goto done;
    if (members == aws_members &&
        (json_object_get(cfg, "accessKeyId") == NULL) !=
            (json_object_get(cfg, "secretAccessKey") == NULL))
        rc = ai_err_set(err, AI_EINVAL, "aws: accessKeyId and "
                                        "secretAccessKey go together");
done:
    json_wipe_decref(cfg); /* secrets */
    return rc;
}
