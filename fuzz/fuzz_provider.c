/* fuzz_provider.c - libFuzzer target for the JSON answers of the GitHub
 * and Google backends: every input is read as GitHub's installation
 * token answer (github_token_parse), GitHub's installation answer
 * (github_account_parse) and Google's token answer (google_token_parse).
 * Beyond crashes, leaks, hangs and UB, a finding is an accepted answer
 * whose credential is not a JSON object carrying the very token the
 * provider sent (the credential is written by hand, not by jansson), or a
 * login that is not the account's. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "providers/providers.h"

#define NOW INT64_C(1796040000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The credential parses back to an object whose "token" is exactly the
 * member `field` of the provider's answer. */
static void same_token(const cred_result *r, const prov_resp *resp,
                       const char *field)
{
    json_t *cred = json_loads(r->credential, 0, NULL);
    json_t *ans = json_loadb(resp->body, resp->len, 0, NULL);
    const json_t *a = json_object_get(ans, field);
    const json_t *c = json_object_get(cred, "token");

    if (!json_is_object(cred) || !json_is_string(c) || !json_is_string(a) ||
        json_string_length(a) != json_string_length(c) ||
        memcmp(json_string_value(a), json_string_value(c),
               json_string_length(a)) != 0 ||
        strcmp(r->type, "bearer_token") != 0)
        abort();
    json_decref(cred);
    json_decref(ans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    prov_resp resp = {201, NULL, size};
    cred_result r;
    char login[101];
    ai_err err;

    /* fetch.c hands the backends a NUL-terminated body of len bytes. */
    if ((resp.body = malloc(size + 1)) == NULL)
        return 0;
    memcpy(resp.body, data, size);
    resp.body[size] = '\0';

    memset(&r, 0, sizeof r);
    ai_err_clear(&err);
    if (github_token_parse(&resp, &r, &err) == AI_OK)
        same_token(&r, &resp, "token");
    else if (r.credential != NULL)
        abort();
    cred_result_clear(&r);

    ai_err_clear(&err);
    if (github_account_parse(&resp, login, sizeof login, &err) == AI_OK &&
        (strlen(login) == 0 || strlen(login) >= sizeof login))
        abort();

    memset(&r, 0, sizeof r);
    ai_err_clear(&err);
    resp.status = 200;
    if (google_token_parse(&resp, NOW, &r, &err) == AI_OK) {
        same_token(&r, &resp, "access_token");
        if (r.expires_at <= NOW || r.expires_at > NOW + 86400 * 1000LL)
            abort();
    } else if (r.credential != NULL) {
        abort();
    }
    cred_result_clear(&r);

    free(resp.body);
    return 0;
}
