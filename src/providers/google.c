/* google.c - the Google OAuth backend: an access token from the stored
 * refresh token (the refresh-token grant of RFC 6749, section 6).
 *
 * DESIGN: POST application/x-www-form-urlencoded
 * grant_type=refresh_token&client_id=..&client_secret=..&refresh_token=..
 * [&scope=..] to tokenUrl (default https://oauth2.googleapis.com/token);
 * Google answers {"access_token":"ya29...","expires_in":3599,...}, which
 * becomes a bearer_token expiring at now + expires_in.
 *
 * The scope's Google OAuth scopes (google:gmail:read ->
 * gmail.readonly, ...) are sent as `scope`, which asks Google for a token
 * narrowed to them. A scope outside the table is refused with AI_EINVAL:
 * sending no `scope` would give a token carrying everything the refresh
 * token was granted, wider than what the agent was granted. The resource
 * is not used: Google OAuth scopes name APIs, not objects.
 *
 * Stateless; thread-safe as far as prov_post is. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "providers/providers.h"

#define DEFAULT_TOKEN_URL "https://oauth2.googleapis.com/token"
#define G "https://www.googleapis.com/auth/"
#define TOKEN_MAX 4096
#define EXPIRES_MAX INT64_C(86400) /* Google gives 3599; a day is plenty */

static const struct {
    const char *scope, *oauth;
} scope_map[] = {
    {"google:gmail:read", G "gmail.readonly"},
    {"google:gmail:send", G "gmail.send"},
    {"google:gmail:modify", G "gmail.modify"},
    {"google:drive:read", G "drive.readonly"},
    {"google:drive:write", G "drive.file"},
    {"google:drive:full", G "drive"},
    {"google:calendar:read", G "calendar.readonly"},
    {"google:calendar:write", G "calendar"},
    {"google:sheets:read", G "spreadsheets.readonly"},
    {"google:sheets:write", G "spreadsheets"},
    {"google:docs:read", G "documents.readonly"},
    {"google:docs:write", G "documents"},
};

/* Append "&name=" (no & when first) and s percent-encoded as
 * application/x-www-form-urlencoded: unreserved characters as is, space
 * as '+', every other byte as %XX. */
static void form_put(ai_buf *b, const char *name, const char *s, bool first)
{
    static const char hex[] = "0123456789ABCDEF";

    if (!first)
        buf_putc(b, '&');
    buf_puts(b, name);
    buf_putc(b, '=');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            buf_putc(b, (char)c);
        } else if (c == ' ') {
            buf_putc(b, '+');
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_put(b, e, 3);
        }
    }
}

ai_code google_token_parse(const prov_resp *resp, int64_t now_ms,
                           cred_result *out, ai_err *err)
{
    json_t *root;
    const json_t *tok, *exp, *typ;
    ai_code rc;

    if ((rc = prov_resp_object("google", resp, &root, err)) != AI_OK)
        return rc;
    tok = json_object_get(root, "access_token");
    exp = json_object_get(root, "expires_in");
    typ = json_object_get(root, "token_type");
    if (!json_is_string(tok) || json_string_length(tok) == 0 ||
        json_string_length(tok) > TOKEN_MAX) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "google: the response has no \"access_token\" "
                        "string");
        goto done;
    }
    if (!json_is_integer(exp) || json_integer_value(exp) < 1 ||
        json_integer_value(exp) > EXPIRES_MAX) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "google: the response has no \"expires_in\" of 1 to "
                        "%lld seconds",
                        (long long)EXPIRES_MAX);
        goto done;
    }
    if (!json_is_string(typ) || json_string_length(typ) > 32)
        typ = NULL; /* absent or odd: the standard type */
    rc = prov_bearer_set("google", json_string_value(tok),
                         json_string_length(tok),
                         typ ? json_string_value(typ) : "Bearer",
                         typ ? json_string_length(typ) : 6,
                         now_ms + (int64_t)json_integer_value(exp) * 1000,
                         out, err);
done:
    json_wipe_decref(root); /* it may hold secrets */
    return rc;
}

static ai_code google_fetch(const prov_request *req, cred_result *out,
                            ai_err *err)
{
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded",
        "Accept: application/json", "User-Agent: agent-iam", NULL};
    const char *id, *secret, *refresh, *url, *oauth = NULL;
    json_t *cfg = NULL;
    json_error_t jerr;
    prov_resp resp = {0, NULL, 0};
    ai_buf form;
    ai_code rc;

    memset(out, 0, sizeof *out);
    buf_init(&form);
    for (size_t i = 0; i < sizeof scope_map / sizeof *scope_map; i++)
        if (req->scope != NULL && strcmp(req->scope, scope_map[i].scope) == 0)
            oauth = scope_map[i].oauth;
    if (oauth == NULL)
        return ai_err_set(err, AI_EINVAL,
                          "google: scope \"%.80s\" maps to no Google OAuth "
                          "scope (google:gmail:read|send|modify, "
                          "google:drive|calendar|sheets|docs:read|write, "
                          "google:drive:full)",
                          req->scope ? req->scope : "");

    /* XXX jansson's lexer frees its copy of each string unwiped. */
    if (req->config_json == NULL ||
        (cfg = json_loads(req->config_json, JSON_REJECT_DUPLICATES,
                          &jerr)) == NULL ||
        !json_is_object(cfg)) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "google: the provider config is not a JSON object");
        goto done;
    }
    id = json_string_value(json_object_get(cfg, "clientId"));
    secret = json_string_value(json_object_get(cfg, "clientSecret"));
    refresh = json_string_value(json_object_get(cfg, "refreshToken"));
    url = json_string_value(json_object_get(cfg, "tokenUrl"));
    if (id == NULL || secret == NULL || refresh == NULL || *id == '\0' ||
        *secret == '\0' || *refresh == '\0') {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "google: the provider config needs clientId, "
                        "clientSecret and refreshToken");
        goto done;
    }
    if (url == NULL || *url == '\0')
        url = DEFAULT_TOKEN_URL;

    form_put(&form, "grant_type", "refresh_token", true);
    form_put(&form, "client_id", id, false);
    form_put(&form, "client_secret", secret, false);
    form_put(&form, "refresh_token", refresh, false);
    form_put(&form, "scope", oauth, false);
    if (form.oom) {
        rc = ai_err_set(err, AI_ENOMEM, "google: out of memory");
        goto done;
    }
    if ((rc = prov_post("google", url, headers, form.p, form.len,
                        req->ca_file, &resp, err)) != AI_OK)
        goto done;
    if (resp.status < 200 || resp.status > 299) {
        /* Google's error body ("invalid_grant", ...) is not quoted: not
         * ours to vouch for. */
        rc = ai_err_set(err, AI_EPROVIDER, "google: HTTP %ld", resp.status);
        goto done;
    }
    rc = google_token_parse(&resp, req->now_ms, out, err);
done:
    prov_resp_clear(&resp);
    buf_free(&form); /* cleanses: it held the client secret */
    json_wipe_decref(cfg); /* secrets */
    return rc; /* on error out->credential was never set */
}

/* The Google OAuth backend (see the DESIGN comment at the top). */
const prov_ops prov_google = {"google", google_fetch};
