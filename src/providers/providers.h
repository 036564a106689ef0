/*
 * providers.h - credential providers (GitHub App, Google OAuth, AWS STS,
 * API keys) for the modules above them (broker, server): a table of
 * backends, one file each, the HTTPS client they share and the credential
 * cache.
 *
 * Every backend: base URL configurable, TLS verification always on (CA
 * file configurable), connect timeout 5 s, total 15 s, bounded retries with
 * backoff on 429 and 5xx; errors are AI_EPROVIDER naming the provider and
 * the HTTP status, never containing a secret.
 */
#ifndef AI_PROVIDERS_H
#define AI_PROVIDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_iam.h"
#include "core/core.h"

/* A credential as the README's CredentialResult. */
typedef struct cred_result {
    char type[24];     /* "bearer_token", "aws_credentials", "api_key" */
    char *credential;  /* JSON object text (ai_malloc'd; holds secrets) */
    int64_t expires_at; /* ms; 0: none */
} cred_result;

/* Wipe and free the credential text. */
void cred_result_clear(cred_result *r);

typedef struct prov_request {
    const char *scope;       /* "github:repo:read" */
    const char *resource;    /* "myorg/repo" (may be "") */
    const char *agent_id;    /* who asks (AWS RoleSessionName) */
    const char *config_json; /* the provider's config, secrets in clear */
    const char *ca_file;     /* CA bundle for TLS; NULL: the system's */
    int64_t now_ms;
} prov_request;

typedef struct prov_ops {
    const char *name; /* the scope's first segment it serves */
    ai_code (*fetch)(const prov_request *req, cred_result *out, ai_err *err);
} prov_ops;

extern const prov_ops prov_github;
extern const prov_ops prov_google;
extern const prov_ops prov_aws;

/* The backend for a provider name, or NULL. */
const prov_ops *prov_find(const char *name);

/* ---- API keys (apikey.c) ---------------------------------------------- */

/* The "api_key" credential of a stored key: {"apiKey", "providerName",
 * "baseUrl" (when set), "headers": {"Authorization": "Bearer <key>"}},
 * expiring now + ttl_minutes (<= 0: 60). *out is cleared on error. */
ai_code prov_apikey_build(const char *provider, const char *secret,
                          const char *base_url, int ttl_minutes,
                          int64_t now_ms, cred_result *out, ai_err *err);

/* ---- provider requests (fetch.c, on src/http) ---------------------- */

typedef struct prov_resp {
    long status;
    char *body; /* NUL-terminated, ai_malloc'd; wipe (it may hold secrets) */
    size_t len;
} prov_resp;

/* POST body to url with the given header lines ("Name: value", NULL
 * ended). Retries 429 and 5xx (and connection failures) up to 3 times with
 * backoff; a final non-2xx status is still AI_OK with resp->status set, so
 * the caller names it. Transport failures: AI_EPROVIDER "<provider>: ...".
 * Bodies over 1 MiB are refused. */
ai_code prov_post(const char *provider, const char *url,
                  const char *const *headers, const char *body, size_t len,
                  const char *ca_file, prov_resp *resp, ai_err *err);
/* GET url with the given header lines; otherwise exactly as prov_post
 * (same URL rules, TLS, timeouts, retries, body limit, errors). */
ai_code prov_get(const char *provider, const char *url,
                 const char *const *headers, const char *ca_file,
                 prov_resp *resp, ai_err *err);
/* Wipe and free the body; r zeroed. NULL does nothing. */
void prov_resp_clear(prov_resp *r);

/* ---- the backends' answers, read from their bytes ------------------- */

/* What each backend makes of a 2xx answer (resp->body NUL-terminated,
 * resp->len bytes; borrowed, the caller wipes it). On success out holds
 * the credential (cred_result_clear it); on error out->credential is
 * NULL and err is AI_EPROVIDER naming what is missing, never quoting the
 * answer (AI_ENOMEM for memory). Thread-safe. */
/* The body as a JSON object (*root: new, json_wipe_decref it), or
 * AI_EPROVIDER "<provider>: HTTP <status> with a body that is not a JSON
 * object" and *root NULL (fetch.c). */
ai_code prov_resp_object(const char *provider, const prov_resp *resp,
                         struct json_t **root, ai_err *err);
/* out: a "bearer_token" {"token", "tokenType"} (the two texts of n and
 * tn bytes, JSON-escaped) expiring at expires_at (ms); AI_ENOMEM
 * "<provider>: out of memory" (fetch.c). */
ai_code prov_bearer_set(const char *provider, const char *token, size_t n,
                        const char *type, size_t tn, int64_t expires_at,
                        cred_result *out, ai_err *err);
/* GitHub's {"token", "expires_at" (RFC 3339)} (github.c). */
ai_code github_token_parse(const prov_resp *resp, cred_result *out,
                           ai_err *err);
/* GitHub's installation {"account": {"login"}} into login (cap bytes;
 * a login longer than cap - 1 is refused). */
ai_code github_account_parse(const prov_resp *resp, char *login, size_t cap,
                             ai_err *err);
/* Google's {"access_token", "expires_in" (1..86400 s), "token_type"?}:
 * expiring at now_ms + expires_in (google.c). */
ai_code google_token_parse(const prov_resp *resp, int64_t now_ms,
                           cred_result *out, ai_err *err);
/* STS's AssumeRoleResponse XML: Credentials/AccessKeyId, SecretAccessKey,
 * SessionToken, Expiration (aws.c). */
ai_code aws_answer_parse(const prov_resp *resp, cred_result *out,
                         ai_err *err);
/* The STS error code of an error answer (ErrorResponse/Error/Code) when
 * it is a plain word of [A-Za-z0-9.], else "" (code: cap bytes). */
void aws_error_code(const prov_resp *resp, char *code, size_t cap);

/* ---- credential cache (cache.c) --------------------------------------- */

/* Per provider + scope + resource, reused until 5 minutes before expiry.
 * Thread-safe. */
typedef struct cred_cache cred_cache;
cred_cache *cred_cache_new(void);
void cred_cache_free(cred_cache *c);
/* A copy of a live entry into *out, or false. */
bool cred_cache_get(cred_cache *c, const char *provider, const char *scope,
                    const char *resource, int64_t now_ms, cred_result *out);
void cred_cache_put(cred_cache *c, const char *provider, const char *scope,
                    const char *resource, const cred_result *r);

/* ---- GitHub App JWT (jwt.c) ------------------------------------------- */

/* An RS256 JWT for a GitHub App: header {"alg":"RS256","typ":"JWT"},
 * claims {"iat": now_s - 60, "exp": now_s + 540, "iss": app_id} (app_id
 * as a number when it is all digits, else a string of [A-Za-z0-9._-]),
 * signed with the PEM private key pem (pem_len bytes; RSA). *out (OUT:
 * ai_malloc'd, NUL-terminated; NULL on error) is a bearer secret: wipe it
 * and ai_free it. Errors: AI_EPROVIDER "github: ..." naming what is wrong
 * with the key or app id, never quoting the key; AI_ENOMEM. Thread-safe. */
ai_code jwt_github_app(const char *pem, size_t pem_len, const char *app_id,
                       int64_t now_s, char **out, ai_err *err);

/* ---- provider configs (config.c) -------------------------------------- */

/* Limits of a provider config's members: the CLI's `config init` flags
 * and the server's PUT /v1/admin/providers/{name} bodies. */
#define PROV_CONFIG_MAX 65536      /* the whole object's JSON text */
#define PROV_PEM_MAX 16384         /* an 8192-bit RSA key is ~6.5 KB PEM */
#define PROV_SECRET_MAX 4096       /* OAuth secrets, refresh tokens, keys */
#define PROV_TEXT_MAX 1024         /* ids, client ids */
#define PROV_URL_MAX 2048
#define PROV_LOGIN_MAX 100         /* a GitHub account login */
#define PROV_EXTERNAL_ID_MAX 1224  /* an STS ExternalId */

/* Check a provider config object (JSON text) as `config init` builds it:
 * github {appId, installationId, privateKey, owner?, apiUrl?}, google
 * {clientId, clientSecret, refreshToken, tokenUrl?}, aws {region, roleArn,
 * accessKeyId + secretAccessKey (together or neither), externalId?,
 * sessionDuration?, stsUrl?}: required members, types, sizes, URLs
 * (prov_url_ok) and the GitHub key (prov_rsa_pem_why); unknown members
 * refused. AI_OK; AI_EINVAL "<provider>: <member> must be ..." naming the
 * first problem, never a value; AI_ENOTFOUND for a name other than
 * github, google or aws. Parsed copies are wiped. Thread-safe. */
ai_code prov_config_check(const char *name, const char *json, ai_err *err);

/* The member checks prov_config_check applies, for callers that check
 * one value at a time (the CLI's flags). No allocation; NULL is false. */
/* 1..max bytes of printable ASCII without spaces. */
bool prov_text_ok(const char *s, size_t max);
/* s[0..n): 1..PROV_SECRET_MAX bytes without control characters. */
bool prov_secret_ok(const char *s, size_t n);
/* prov_text_ok(url, PROV_URL_MAX) and http_url_ok(url) (src/http). */
bool prov_url_ok(const char *url);
/* 1..PROV_LOGIN_MAX of A-Z a-z 0-9 . _ - (as github.c takes an owner or
 * a repository name); _n: the n bytes at s. */
bool prov_login_ok(const char *s);
bool prov_login_ok_n(const char *s, size_t n);
/* 1..32 of a-z 0-9 -. */
bool prov_aws_region_ok(const char *s);
/* 16..128 of A-Z 0-9. */
bool prov_aws_key_id_ok(const char *s);
/* "arn:..." of 4..PROV_URL_MAX printable characters. */
bool prov_aws_role_arn_ok(const char *s);
/* 2..PROV_EXTERNAL_ID_MAX printable characters. */
bool prov_aws_external_id_ok(const char *s);
/* NULL when pem[0..n) is an unencrypted RSA private key in PEM (PKCS#1 or
 * PKCS#8; never prompts for a passphrase), else why not, as static text
 * to follow the key's name: "is not a PEM private key", "is an encrypted
 * private key: ...", "is not an RSA private key ...", "is too large ...",
 * "... (binary data)". Clears OpenSSL's error queue. */
const char *prov_rsa_pem_why(const char *pem, size_t n);

#endif /* AI_PROVIDERS_H */
