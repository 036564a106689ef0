/*
 * aws.c - the AWS backend: temporary credentials from STS AssumeRole over
 * the Query API (a form POST signed with Signature Version 4, sigv4.c),
 * narrowed by a session policy where the scope maps to one, and the XML
 * answer read by xml.c into an "aws_credentials" CredentialResult.
 *
 * Config (JSON, from the store): region, roleArn (required);
 * accessKeyId + secretAccessKey (else AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment);
 * externalId; sessionDuration (900..43200 s, default 3600); stsUrl
 * (default https://sts.<region>.amazonaws.com/).
 *
 * Session policies (the role's own policy still applies: a session
 * policy can only narrow it):
 *   aws:s3:read  + "bucket/prefix/STAR" -> s3:GetObject on
 *                  arn:aws:s3:::bucket/prefix/STAR, and s3:ListBucket on
 *                  arn:aws:s3:::bucket with s3:prefix "prefix/STAR"
 *   aws:s3:write + "bucket/prefix/STAR" -> s3:PutObject, s3:DeleteObject
 *                  on arn:aws:s3:::bucket/prefix/STAR
 *   (STAR is "*"; a resource "bucket" alone means "bucket/STAR")
 *   (resource "" or "*": the same actions on every resource)
 *   any other aws:* scope is refused: without a policy the agent would
 *   get the role's whole permissions. '$' and '?' in a resource are
 *   refused (IAM variables, wildcards).
 *
 * Thread-safe: no shared state (getenv aside; nothing here calls setenv).
 * Secrets (the secret key, the session tokens, the answer) are wiped.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "providers/providers.h"
#include "providers/sigv4.h"

#define REGION_MAX 32
#define ARN_MAX 2048
#define KEY_ID_MAX 128
#define SECRET_MAX 256
#define TOKEN_MAX 8192
#define EXTID_MAX 1224
#define URL_MAX 2048
#define POLICY_MAX 2048
#define SESSION_NAME_MAX 64
#define DEFAULT_DURATION 3600

typedef struct aws_cfg {
    char region[REGION_MAX + 1];
    char role_arn[ARN_MAX + 1];
    char key_id[KEY_ID_MAX + 1];
    char secret[SECRET_MAX + 1];
    char token[TOKEN_MAX + 1]; /* "" when none */
    char external_id[EXTID_MAX + 1];
    char url[URL_MAX + 1];
    long duration;
} aws_cfg;

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Copy an optional string member; false if it is not a string or too
 * long or holds control characters. */
static bool get_str(const json_t *root, const char *key, char *out,
                    size_t cap)
{
    const json_t *v = json_object_get(root, key);
    size_t n;

    out[0] = '\0';
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return false;
    n = json_string_length(v);
    if (n >= cap || !printable(json_string_value(v), n))
        return false;
    memcpy(out, json_string_value(v), n);
    out[n] = '\0';
    return true;
}

static bool region_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > REGION_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
              s[i] == '-'))
            return false;
    return true;
}

static bool env_copy(const char *name, char *out, size_t cap)
{
    const char *v = getenv(name);
    size_t n = v != NULL ? strlen(v) : 0;

    out[0] = '\0';
    if (n == 0)
        return true;
    if (n >= cap || !printable(v, n))
        return false;
    memcpy(out, v, n + 1);
    return true;
}

static ai_code read_config(const char *json, aws_cfg *c, ai_err *err)
{
    json_error_t jerr;
    json_t *root = NULL, *dur;
    ai_code rc = AI_EINVAL;

    if (json == NULL ||
        (root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
        !json_is_object(root)) {
        rc = ai_err_set(err, AI_EINVAL, "aws: provider config is not a JSON "
                                        "object");
        goto done;
    }
    if (!get_str(root, "region", c->region, sizeof c->region) ||
        !region_ok(c->region)) {
        rc = ai_err_set(err, AI_EINVAL, "aws: config needs a region such as "
                                        "us-east-1");
        goto done;
    }
    if (!get_str(root, "roleArn", c->role_arn, sizeof c->role_arn) ||
        strncmp(c->role_arn, "arn:", 4) != 0) {
        rc = ai_err_set(err, AI_EINVAL, "aws: config needs a roleArn "
                                        "(arn:aws:iam::ACCOUNT:role/NAME)");
        goto done;
    }
    if (!get_str(root, "accessKeyId", c->key_id, sizeof c->key_id) ||
        !get_str(root, "secretAccessKey", c->secret, sizeof c->secret)) {
        rc = ai_err_set(err, AI_EINVAL, "aws: bad accessKeyId or "
                                        "secretAccessKey in the config");
        goto done;
    }
    if ((c->key_id[0] == '\0') != (c->secret[0] == '\0')) {
        rc = ai_err_set(err, AI_EINVAL, "aws: accessKeyId and "
                                        "secretAccessKey go together");
        goto done;
    }
    if (c->key_id[0] == '\0' &&
        (!env_copy("AWS_ACCESS_KEY_ID", c->key_id, sizeof c->key_id) ||
         !env_copy("AWS_SECRET_ACCESS_KEY", c->secret, sizeof c->secret) ||
         !env_copy("AWS_SESSION_TOKEN", c->token, sizeof c->token) ||
         c->key_id[0] == '\0' || c->secret[0] == '\0')) {
        rc = ai_err_set(err, AI_EINVAL,
                        "aws: no credentials: set accessKeyId and "
                        "secretAccessKey in the config or AWS_ACCESS_KEY_ID "
                        "and AWS_SECRET_ACCESS_KEY");
        goto done;
    }
    if (!get_str(root, "externalId", c->external_id, sizeof c->external_id)) {
        rc = ai_err_set(err, AI_EINVAL, "aws: bad externalId in the config");
        goto done;
    }
    dur = json_object_get(root, "sessionDuration");
    c->duration = DEFAULT_DURATION;
    if (dur != NULL && !json_is_null(dur)) {
        if (!json_is_integer(dur) || json_integer_value(dur) < 900 ||
            json_integer_value(dur) > 43200) {
            rc = ai_err_set(err, AI_EINVAL, "aws: sessionDuration must be "
                                            "900 to 43200 seconds");
            goto done;
        }
        c->duration = (long)json_integer_value(dur);
    }
    if (!get_str(root, "stsUrl", c->url, sizeof c->url)) {
        rc = ai_err_set(err, AI_EINVAL, "aws: bad stsUrl in the config");
        goto done;
    }
    if (c->url[0] == '\0')
        snprintf(c->url, sizeof c->url, "https://sts.%s.amazonaws.com/",
                 c->region);
    rc = AI_OK;
done:
    json_wipe_decref(root); /* it may hold secrets */
    return rc;
}

/* Host (with any port) and path of an https URL without query, fragment
 * or user info. */
static bool split_url(const char *url, char *host, size_t hcap, char *path,
                      size_t pcap)
{
    const char *h, *slash;
    size_t hn;

    if (strncmp(url, "https://", 8) != 0 || strpbrk(url, "?#@ ") != NULL)
        return false;
    h = url + 8;
    slash = strchr(h, '/');
    hn = slash != NULL ? (size_t)(slash - h) : strlen(h);
    if (hn == 0 || hn >= hcap)
        return false;
    for (size_t i = 0; i < hn; i++)
        if (!(isalnum((unsigned char)h[i]) || strchr(".-:[]", h[i]) != NULL))
            return false;
    memcpy(host, h, hn);
    host[hn] = '\0';
    snprintf(path, pcap, "%s", slash != NULL ? slash : "/");
    return true;
}

/* RoleSessionName: STS allows [\w+=,.@-]{2,64}. Other bytes become '-';
 * a name shorter than 2 gets the prefix "agent-". */
static void session_name(const char *agent, char out[SESSION_NAME_MAX + 1])
{
    size_t n = 0;

    if (agent == NULL)
        agent = "";
    if (strlen(agent) < 2) {
        memcpy(out, "agent-", 6);
        n = 6;
    }
    for (size_t i = 0; agent[i] != '\0' && n < SESSION_NAME_MAX; i++) {
        unsigned char c = (unsigned char)agent[i];

        out[n++] = (char)(isalnum(c) || strchr("_+=,.@-", c) != NULL ? c
                                                                    : '-');
    }
    if (n == 6 && agent[0] == '\0')
        out[n++] = 'x';
    out[n] = '\0';
}

static bool bucket_ok(const char *s, size_t n)
{
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
              s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static void put_arn(ai_buf *b, const char *s, size_t n)
{
    ai_buf t;

    buf_init(&t);
    buf_puts(&t, "arn:aws:s3:::");
    buf_put(&t, s, n);
    if (t.oom)
        b->oom = true;
    else
        jw_str(b, t.p, t.len);
    buf_free(&t);
}

/* The session policy for scope + resource into *b. Only scopes that map
 * to one are served: without a policy the agent would get the role's
 * whole permissions, whatever its token allows. */
static ai_code build_policy(const char *scope, const char *resource,
                            ai_buf *b, ai_err *err)
{
    bool read = strcmp(scope, "aws:s3:read") == 0;
    bool write = strcmp(scope, "aws:s3:write") == 0;
    const char *slash;
    size_t bn, rn = strlen(resource);

    if (!read && !write)
        return ai_err_set(err, AI_EINVAL,
                          "aws: scope %.64s has no session policy to narrow "
                          "the role (aws:s3:read and aws:s3:write do)",
                          scope);
    /* `$` would be an IAM policy variable, `?` a wildcard: refuse both. */
    if (strpbrk(resource, "$?") != NULL)
        return ai_err_set(err, AI_EINVAL,
                          "aws: an s3 resource may not contain '$' or '?'");
    buf_puts(b, "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                "\"Allow\",\"Action\":[");
    buf_puts(b, read ? "\"s3:GetObject\"" : "\"s3:PutObject\",\"s3:DeleteObject\"");
    buf_puts(b, "],\"Resource\":");
    if (rn == 0 || strcmp(resource, "*") == 0) {
        buf_puts(b, "\"*\"}");
        if (read)
            buf_puts(b, ",{\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],"
                        "\"Resource\":\"*\"}");
        buf_puts(b, "]}");
    } else {
        slash = strchr(resource, '/');
        bn = slash != NULL ? (size_t)(slash - resource) : rn;
        if (!bucket_ok(resource, bn) || !printable(resource, rn) ||
            rn > 1024 || (slash != NULL && slash[1] == '\0'))
            return ai_err_set(err, AI_EINVAL,
                              "aws: an s3 resource is BUCKET or "
                              "BUCKET/KEY-PATTERN");
        buf_putc(b, '[');
        if (slash != NULL) {
            put_arn(b, resource, rn);
        } else {
            ai_buf t;

            buf_init(&t);
            buf_put(&t, resource, bn);
            buf_puts(&t, "/*");
            if (t.oom)
                b->oom = true;
            else
                put_arn(b, t.p, t.len);
            buf_free(&t);
        }
        buf_puts(b, "]}");
        if (read) {
            /* Listing: the bucket, limited to the keys the pattern covers
             * (no condition when the whole bucket is granted). */
            buf_puts(b, ",{\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],"
                        "\"Resource\":[");
            put_arn(b, resource, bn);
            buf_putc(b, ']');
            if (slash != NULL) {
                buf_puts(b, ",\"Condition\":{\"StringLike\":{\"s3:prefix\":[");
                jw_str(b, slash + 1, strlen(slash + 1));
                buf_puts(b, "]}}");
            }
            buf_putc(b, '}');
        }
        buf_puts(b, "]}");
    }
    if (b->oom)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    if (b->len > POLICY_MAX)
        return ai_err_set(err, AI_EINVAL, "aws: session policy too long");
    return AI_OK;
}

static void form_param(ai_buf *b, const char *name, const char *value)
{
    if (b->len > 0)
        buf_putc(b, '&');
    buf_puts(b, name);
    buf_putc(b, '=');
    sigv4_uri_encode(b, value, strlen(value), false);
}

/* A header line "Name: value" into a fresh buffer. */
static char *header_line(const char *name, const char *value)
{
    ai_buf b;

    buf_init(&b);
    buf_puts(&b, name);
    buf_puts(&b, ": ");
    buf_puts(&b, value);
    return buf_steal(&b);
}

static void free_line(char *p)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, strlen(p));
        ai_free(p);
    }
}

void aws_error_code(const prov_resp *resp, char *code, size_t cap)
{
    static const char *const path[] = {"ErrorResponse", "Error", "Code"};
    const char *why;
    size_t n;

    if (xml_text(resp->body, resp->len, path, 3, code, cap, &why) != AI_OK) {
        code[0] = '\0';
        return;
    }
    n = strlen(code);
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)code[i]) || code[i] == '.')) {
            code[0] = '\0';
            return;
        }
}

ai_code aws_answer_parse(const prov_resp *resp, cred_result *out,
                         ai_err *err)
{
    static const char *const names[] = {"AccessKeyId", "SecretAccessKey",
                                        "SessionToken", "Expiration"};
    static const size_t caps[] = {KEY_ID_MAX + 1, SECRET_MAX + 1,
                                  TOKEN_MAX + 1, 64};
    char *vals[4] = {NULL, NULL, NULL, NULL};
    const char *path[4] = {"AssumeRoleResponse", "AssumeRoleResult",
                           "Credentials", NULL};
    const char *why = NULL;
    int64_t exp_ms = 0;
    ai_buf b;
    ai_code rc = AI_EPROVIDER;

    buf_init(&b);
    for (int i = 0; i < 4; i++) {
        ai_code xc;

        if ((vals[i] = ai_malloc(caps[i])) == NULL) {
            rc = ai_err_set(err, AI_ENOMEM, "out of memory");
            goto done;
        }
        path[3] = names[i];
        xc = xml_text(resp->body, resp->len, path, 4, vals[i], caps[i], &why);
        if (xc == AI_EINVAL) {
            rc = ai_err_set(err, AI_EPROVIDER,
                            "aws: malformed STS response (%s)", why);
            goto done;
        }
        /* The text is the answer's bytes: it must be UTF-8 to be put in
         * the credential's JSON. */
        if (xc != AI_OK || vals[i][0] == '\0' ||
            !printable(vals[i], strlen(vals[i])) ||
            !utf8_valid(vals[i], strlen(vals[i]))) {
            rc = ai_err_set(err, AI_EPROVIDER,
                            "aws: STS response has no usable "
                            "Credentials/%s",
                            names[i]);
            goto done;
        }
    }
    if (!time_parse(vals[3], strlen(vals[3]), &exp_ms)) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "aws: STS response has a bad Expiration");
        goto done;
    }
    buf_puts(&b, "{\"accessKeyId\":");
    jw_str(&b, vals[0], strlen(vals[0]));
    buf_puts(&b, ",\"secretAccessKey\":");
    jw_str(&b, vals[1], strlen(vals[1]));
    buf_puts(&b, ",\"sessionToken\":");
    jw_str(&b, vals[2], strlen(vals[2]));
    buf_puts(&b, ",\"expiration\":");
    jw_str(&b, vals[3], strlen(vals[3]));
    buf_putc(&b, '}');
    if (b.oom || (out->credential = buf_steal(&b)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(out->type, sizeof out->type, "aws_credentials");
    out->expires_at = exp_ms;
    rc = AI_OK;
done:
    for (int i = 0; i < 4; i++)
        if (vals[i] != NULL) {
            OPENSSL_cleanse(vals[i], caps[i]);
            ai_free(vals[i]);
        }
    buf_free(&b);
    return rc;
}

static ai_code aws_fetch(const prov_request *req, cred_result *out,
                         ai_err *err)
{
    aws_cfg *c = NULL;
    ai_buf policy, body;
    sigv4_out sig = {0};
    prov_resp resp = {0};
    char host[256], path[URL_MAX + 1], date[SIGV4_DATE_LEN + 1];
    char name[SESSION_NAME_MAX + 1], dur[16], code[80];
    char *lines[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    static const char ctype[] =
        "application/x-www-form-urlencoded; charset=utf-8";
    ai_code rc = AI_ENOMEM;

    buf_init(&policy);
    buf_init(&body);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (req == NULL || out == NULL)
        return ai_err_set(err, AI_EINVAL, "aws: no request");
    if ((c = ai_calloc(1, sizeof *c)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = read_config(req->config_json, c, err)) != AI_OK)
        goto done;
    if (!split_url(c->url, host, sizeof host, path, sizeof path)) {
        rc = ai_err_set(err, AI_EINVAL, "aws: stsUrl must be an https URL "
                                        "without query or user info");
        goto done;
    }
    if ((rc = build_policy(req->scope != NULL ? req->scope : "",
                           req->resource != NULL ? req->resource : "",
                           &policy, err)) != AI_OK)
        goto done;

    session_name(req->agent_id, name);
    snprintf(dur, sizeof dur, "%ld", c->duration);
    form_param(&body, "Action", "AssumeRole");
    form_param(&body, "Version", "2011-06-15");
    form_param(&body, "RoleArn", c->role_arn);
    form_param(&body, "RoleSessionName", name);
    form_param(&body, "DurationSeconds", dur);
    if (c->external_id[0] != '\0')
        form_param(&body, "ExternalId", c->external_id);
    if (policy.len > 0)
        form_param(&body, "Policy", policy.p);
    if (body.oom) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }

    sigv4_amz_date(req->now_ms, date);
    {
        sigv4_header hs[4] = {{"Content-Type", ctype},
                              {"Host", host},
                              {"X-Amz-Date", date},
                              {"X-Amz-Security-Token", c->token}};
        sigv4_req sr = {.method = "POST",
                        .path = path,
                        .query = NULL,
                        .headers = hs,
                        .nheaders = c->token[0] != '\0' ? 4 : 3,
                        .payload = body.p,
                        .payload_len = body.len,
                        .region = c->region,
                        .service = "sts",
                        .amz_date = date};

        if ((rc = sigv4_sign(&sr, c->key_id, c->secret, &sig, err)) !=
            AI_OK) {
            /* sigv4's message names the bad part, never its value */
            goto done;
        }
    }
    rc = AI_ENOMEM;
    if ((lines[0] = header_line("Content-Type", ctype)) == NULL ||
        (lines[1] = header_line("Host", host)) == NULL ||
        (lines[2] = header_line("X-Amz-Date", date)) == NULL ||
        (lines[3] = header_line("Authorization", sig.authorization)) ==
            NULL ||
        (c->token[0] != '\0' &&
         (lines[4] = header_line("X-Amz-Security-Token", c->token)) ==
             NULL)) {
        rc = ai_err_set(err, AI_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = prov_post("aws", c->url, (const char *const *)lines, body.p,
                        body.len, req->ca_file, &resp, err)) != AI_OK)
        goto done;
    if (resp.status < 200 || resp.status > 299) {
        aws_error_code(&resp, code, sizeof code);
        rc = ai_err_set(err, AI_EPROVIDER, "aws: HTTP %ld%s%s", resp.status,
                        code[0] != '\0' ? " " : "", code);
        goto done;
    }
    rc = aws_answer_parse(&resp, out, err);
done:
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        free_line(lines[i]);
    prov_resp_clear(&resp);
    sigv4_out_clear(&sig);
    buf_free(&policy);
    buf_free(&body);
    if (c != NULL) {
        OPENSSL_cleanse(c, sizeof *c);
        ai_free(c);
    }
    if (rc != AI_OK && out != NULL)
        cred_result_clear(out);
    return rc;
}

/* The AWS backend (STS AssumeRole); see the top of this file. */
const prov_ops prov_aws = {"aws", aws_fetch};
