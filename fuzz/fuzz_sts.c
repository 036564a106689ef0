/* fuzz_sts.c - libFuzzer target for AWS STS answers (XML): every input is
 * read as an AssumeRole answer (aws_answer_parse), as an error answer
 * (aws_error_code), and by the XML reader itself (xml_text) for the
 * credential's path with an output buffer of 1 to 64 bytes, so its
 * bounds are tried at every size. Beyond crashes, leaks, hangs and UB, a
 * finding is a credential that is not a JSON object of the four strings,
 * an error code that is not a plain word, or xml_text writing past its
 * buffer, leaving it unterminated, or leaving text behind on failure. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "providers/providers.h"
#include "providers/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_credential(const cred_result *r)
{
    static const char *const names[] = {"accessKeyId", "secretAccessKey",
                                        "sessionToken", "expiration"};
    json_t *c = json_loads(r->credential, 0, NULL);

    if (!json_is_object(c) || json_object_size(c) != 4 ||
        strcmp(r->type, "aws_credentials") != 0)
        abort();
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const json_t *v = json_object_get(c, names[i]);
        if (!json_is_string(v) || json_string_length(v) == 0)
            abort();
    }
    json_decref(c);
}

static void raw_xml(const char *doc, size_t len)
{
    static const char *const path[] = {"AssumeRoleResponse",
                                       "AssumeRoleResult", "Credentials",
                                       "SessionToken"};
    size_t cap = 1 + len % 64;
    /* exact size: ASan sees a write past cap */
    char *out = malloc(cap);
    const char *why = NULL;
    ai_code rc;

    if (out == NULL)
        return;
    for (size_t depth = 1; depth <= 4; depth++) {
        memset(out, 'x', cap);
        rc = xml_text(doc, len, path, depth, out, cap, &why);
        if (memchr(out, '\0', cap) == NULL)
            abort();
        if (rc != AI_OK && out[0] != '\0')
            abort();
        if (rc == AI_EINVAL && why == NULL)
            abort();
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    prov_resp resp = {200, NULL, size};
    cred_result r;
    char code[80];
    ai_err err;

    if ((resp.body = malloc(size + 1)) == NULL)
        return 0;
    memcpy(resp.body, data, size);
    resp.body[size] = '\0';

    memset(&r, 0, sizeof r);
    ai_err_clear(&err);
    if (aws_answer_parse(&resp, &r, &err) == AI_OK)
        check_credential(&r);
    else if (r.credential != NULL)
        abort();
    cred_result_clear(&r);

    resp.status = 403;
    aws_error_code(&resp, code, sizeof code);
    for (const char *p = code; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '.')
            abort();

    raw_xml(resp.body, resp.len);
    free(resp.body);
    return 0;
}
