/* github.c - the GitHub App backend: an installation access token narrowed
 * to the one repository of the resource and to the permissions of the
 * scope's action.
 *
 * DESIGN: sign a 10-minute App JWT (jwt.c), then
 * POST {apiUrl}/app/installations/{installationId}/access_tokens with
 * {"repositories":["<repo>"],"permissions":{...}}; GitHub answers 201
 * {"token":"ghs_...","expires_at":"<RFC 3339>"}.
 *
 * The token is for the installation's repositories, which all belong to
 * one account, so the resource's owner must be that account: the config's
 * "owner" (its login), or when the config has none, the account.login of
 * GET {apiUrl}/app/installations/{installationId} (App JWT; asked once per
 * fetch). Another owner is refused with AI_EDENIED (compared without
 * case, as GitHub logins are) before any token is minted: otherwise a
 * grant for "sandbox/<star>" would get a token for the installation's
 * "prod-secrets" whoever owns it, as only the repository name is sent.
 *
 * Narrowing is mandatory: the resource must be exactly "owner/repo". A
 * glob ("myorg/<star>"), an empty resource or anything else is refused, since
 * GitHub can only narrow a token to named repositories and the
 * alternative (every repository of the installation) would widen what
 * the agent was granted.
 *
 * Permissions by scope (metadata: read always, as GitHub requires):
 *   github:repo:read   -> contents: read
 *   github:repo:write  -> contents: write
 *   github:issues:read|write, github:pulls:read|write,
 *   github:actions:read|write -> issues / pull_requests / actions
 * Every other scope (github:repo:admin, wildcards such as github:repo:<star>)
 * is refused with AI_EINVAL: we decline to guess a permission set, and
 * never fall back to a broader token.
 *
 * Stateless; thread-safe as far as prov_post is. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "providers/providers.h"

#define DEFAULT_API_URL "https://api.github.com"
#define URL_MAX 2048
#define NAME_MAX_LEN PROV_LOGIN_MAX /* an owner or a repository */

static const struct {
    const char *scope, *perm, *level;
} scope_perms[] = {
    {"github:repo:read", "contents", "read"},
    {"github:repo:write", "contents", "write"},
    {"github:issues:read", "issues", "read"},
    {"github:issues:write", "issues", "write"},
    {"github:pulls:read", "pull_requests", "read"},
    {"github:pulls:write", "pull_requests", "write"},
    {"github:actions:read", "actions", "read"},
    {"github:actions:write", "actions", "write"},
};

/* A config member as text: a string, or an integer written in decimal
 * into num. NULL when absent or of another type. */
static const char *member(const json_t *cfg, const char *key, char *num,
                          size_t cap)
{
    const json_t *v = json_object_get(cfg, key);

    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(num, cap, "%lld", (long long)json_integer_value(v));
        return num;
    }
    return NULL;
}

static bool digits_ok(const char *s)
{
    size_t n = strnlen(s, 21);

    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* "owner/repo" into owner and repo (each cap > NAME_MAX_LEN). */
static ai_code parse_resource(const char *res, char *owner, char *repo,
                              size_t cap, ai_err *err)
{
    const char *slash = res ? strchr(res, '/') : NULL;
    size_t rn;

    if (slash == NULL || !prov_login_ok_n(res, (size_t)(slash - res)) ||
        (rn = strnlen(slash + 1, NAME_MAX_LEN + 1)) >= cap ||
        !prov_login_ok_n(slash + 1, rn) || strcmp(slash + 1, ".") == 0 ||
        strcmp(slash + 1, "..") == 0)
        return ai_err_set(err, AI_EINVAL,
                          "github: resource \"%.100s\" is not a single "
                          "repository \"owner/repo\" (globs cannot narrow "
                          "an installation token)",
                          res ? res : "");
    memcpy(repo, slash + 1, rn);
    repo[rn] = '\0';
    memcpy(owner, res, (size_t)(slash - res)); /* checked: <= NAME_MAX_LEN */
    owner[slash - res] = '\0';
    return AI_OK;
}

ai_code github_token_parse(const prov_resp *resp, cred_result *out,
                           ai_err *err)
{
    json_t *root;
    const json_t *tok, *exp;
    int64_t ms = 0;
    ai_code rc;

    if ((rc = prov_resp_object("github", resp, &root, err)) != AI_OK)
        return rc;
    tok = json_object_get(root, "token");
    exp = json_object_get(root, "expires_at");
    if (!json_is_string(tok) || json_string_length(tok) == 0 ||
        json_string_length(tok) > 4096) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: the response has no \"token\" string");
        goto done;
    }
    if (!json_is_string(exp) ||
        !time_parse(json_string_value(exp), json_string_length(exp), &ms)) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: the response has no RFC 3339 "
                        "\"expires_at\"");
        goto done;
    }
    rc = prov_bearer_set("github", json_string_value(tok),
                         json_string_length(tok), "bearer", 6, ms, out, err);
done:
    json_wipe_decref(root); /* it may hold secrets */
    return rc;
}

ai_code github_account_parse(const prov_resp *resp, char *login, size_t cap,
                             ai_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(resp->body ? resp->body : "", resp->len, 0,
                              &jerr);
    const json_t *lg = json_object_get(json_object_get(root, "account"),
                                       "login");
    ai_code rc = AI_OK;

    if (!json_is_string(lg) ||
        !prov_login_ok_n(json_string_value(lg), json_string_length(lg)) ||
        json_string_length(lg) >= cap)
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: the installation has no account.login "
                        "(set the config's owner: agent-iam config init "
                        "github --owner LOGIN)");
    else
        memcpy(login, json_string_value(lg), json_string_length(lg) + 1);
    json_decref(root);
    return rc;
}

/* The installation's account login, from
 * GET {api}/app/installations/{inst}, into login (cap > NAME_MAX_LEN). */
static ai_code fetch_owner(const char *api, size_t api_len, const char *inst,
                           const char *auth, const char *ca_file,
                           char *login, size_t cap, ai_err *err)
{
    const char *const headers[] = {auth,
                                   "Accept: application/vnd.github+json",
                                   "User-Agent: agent-iam",
                                   "X-GitHub-Api-Version: 2022-11-28", NULL};
    char url[URL_MAX];
    prov_resp resp = {0, NULL, 0};
    ai_code rc;
    int n;

    n = snprintf(url, sizeof url, "%.*s/app/installations/%s",
                 (int)(api_len < URL_MAX ? api_len : URL_MAX), api, inst);
    if (n < 0 || (size_t)n >= sizeof url)
        return ai_err_set(err, AI_EPROVIDER, "github: apiUrl is too long");
    if ((rc = prov_get("github", url, headers, ca_file, &resp, err)) != AI_OK)
        goto done;
    if (resp.status < 200 || resp.status > 299) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: HTTP %ld asking for the installation's "
                        "account",
                        resp.status);
        goto done;
    }
    rc = github_account_parse(&resp, login, cap, err);
done:
    prov_resp_clear(&resp);
    return rc;
}

static ai_code github_fetch(const prov_request *req, cred_result *out,
                            ai_err *err)
{
    char appbuf[32], instbuf[32], repo[NAME_MAX_LEN + 1], url[URL_MAX];
    char owner[NAME_MAX_LEN + 1], login[NAME_MAX_LEN + 1];
    char body[256];
    char *jwt = NULL, *auth = NULL;
    const char *app, *inst, *pem, *api, *cfg_owner, *perm = NULL,
               *level = NULL;
    const json_t *ov;
    json_t *cfg = NULL;
    json_error_t jerr;
    prov_resp resp = {0, NULL, 0};
    size_t alen, api_len;
    int n;
    ai_code rc;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof scope_perms / sizeof *scope_perms; i++)
        if (req->scope != NULL && strcmp(req->scope, scope_perms[i].scope) == 0) {
            perm = scope_perms[i].perm;
            level = scope_perms[i].level;
        }
    if (perm == NULL)
        return ai_err_set(err, AI_EINVAL,
                          "github: scope \"%.80s\" maps to no installation "
                          "token permission (github:repo:read|write, "
                          "github:issues|pulls|actions:read|write)",
                          req->scope ? req->scope : "");
    if ((rc = parse_resource(req->resource, owner, repo, sizeof repo, err)) !=
        AI_OK)
        return rc;

    /* XXX jansson's lexer frees its copy of each string unwiped. */
    if (req->config_json == NULL ||
        (cfg = json_loads(req->config_json, JSON_REJECT_DUPLICATES,
                          &jerr)) == NULL ||
        !json_is_object(cfg)) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: the provider config is not a JSON object");
        goto done;
    }
    app = member(cfg, "appId", appbuf, sizeof appbuf);
    inst = member(cfg, "installationId", instbuf, sizeof instbuf);
    pem = json_string_value(json_object_get(cfg, "privateKey"));
    api = json_string_value(json_object_get(cfg, "apiUrl"));
    ov = json_object_get(cfg, "owner");
    cfg_owner = json_string_value(ov);
    if (ov != NULL && (cfg_owner == NULL ||
                       !prov_login_ok_n(cfg_owner, json_string_length(ov)))) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: the provider config's owner is not a "
                        "GitHub login");
        goto done;
    }
    if (cfg_owner != NULL && strcasecmp(cfg_owner, owner) != 0) {
        rc = ai_err_set(err, AI_EDENIED,
                        "github: resource owner \"%s\" is not the "
                        "installation's account \"%s\"",
                        owner, cfg_owner);
        goto done;
    }
    if (app == NULL || inst == NULL || pem == NULL) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: the provider config needs appId, "
                        "installationId and privateKey");
        goto done;
    }
    if (!digits_ok(inst)) {
        rc = ai_err_set(err, AI_EPROVIDER,
                        "github: installationId must be a positive whole "
                        "number");
        goto done;
    }
    if (api == NULL || *api == '\0')
        api = DEFAULT_API_URL;
    api_len = strlen(api);
    while (api_len > 0 && api[api_len - 1] == '/')
        api_len--;
    n = snprintf(url, sizeof url, "%.*s/app/installations/%s/access_tokens",
                 (int)(api_len < URL_MAX ? api_len : URL_MAX), api, inst);
    if (n < 0 || (size_t)n >= sizeof url) {
        rc = ai_err_set(err, AI_EPROVIDER, "github: apiUrl is too long");
        goto done;
    }

    if ((rc = jwt_github_app(pem, strlen(pem), app, req->now_ms / 1000, &jwt,
                             err)) != AI_OK)
        goto done;
    alen = strlen("Authorization: Bearer ") + strlen(jwt) + 1;
    if ((auth = ai_malloc(alen)) == NULL) {
        rc = ai_err_set(err, AI_ENOMEM, "github: out of memory");
        goto done;
    }
    snprintf(auth, alen, "Authorization: Bearer %s", jwt);

    if (cfg_owner == NULL) {
        if ((rc = fetch_owner(api, api_len, inst, auth, req->ca_file, login,
                              sizeof login, err)) != AI_OK)
            goto done;
        if (strcasecmp(login, owner) != 0) {
            rc = ai_err_set(err, AI_EDENIED,
                            "github: resource owner \"%s\" is not the "
                            "installation's account \"%s\"",
                            owner, login);
            goto done;
        }
    }

    /* repo and the permission names are [A-Za-z0-9._-]: no escaping. */
    n = snprintf(body, sizeof body,
                 "{\"repositories\":[\"%s\"],\"permissions\":{\"%s\":\"%s\","
                 "\"metadata\":\"read\"}}",
                 repo, perm, level);
    if (n < 0 || (size_t)n >= sizeof body) {
        rc = ai_err_set(err, AI_EINTERNAL, "github: request body too long");
        goto done;
    }
    {
        const char *const headers[] = {auth,
                                       "Accept: application/vnd.github+json",
                                       "Content-Type: application/json",
                                       "User-Agent: agent-iam",
                                       "X-GitHub-Api-Version: 2022-11-28",
                                       NULL};
        rc = prov_post("github", url, headers, body, (size_t)n, req->ca_file,
                       &resp, err);
    }
    if (rc != AI_OK)
        goto done;
    if (resp.status < 200 || resp.status > 299) {
        /* GitHub's error body is not quoted: it is not ours to vouch for. */
        rc = ai_err_set(err, AI_EPROVIDER, "github: HTTP %ld", resp.status);
        goto done;
    }
    rc = github_token_parse(&resp, out, err);
done:
    prov_resp_clear(&resp);
    if (auth != NULL) {
        OPENSSL_cleanse(auth, strlen(auth));
        ai_free(auth);
    }
    if (jwt != NULL) {
        OPENSSL_cleanse(jwt, strlen(jwt));
        ai_free(jwt);
    }
    json_wipe_decref(cfg); /* secrets */
    return rc; /* on error out->credential was never set */
}

/* The GitHub App backend (see the DESIGN comment at the top). */
const prov_ops prov_github = {"github", github_fetch};
