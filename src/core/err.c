/* err.c - the one error type: a code and a one-line message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

const char *ai_strerror(ai_code code)
{
    switch (code) {
    case AI_OK: return "ok";
    case AI_EINVAL: return "invalid argument";
    case AI_ENOMEM: return "out of memory";
    case AI_ENOBUFS: return "buffer too small";
    case AI_ENOTFOUND: return "not found";
    case AI_ESTORE: return "storage error";
    case AI_EPROVIDER: return "provider error";
    case AI_EDENIED: return "permission denied";
    case AI_EEXPIRED: return "expired";
    case AI_ETOKEN: return "invalid token";
    case AI_EREVOKED: return "revoked";
    case AI_EINTERNAL: return "internal error";
    case AI_EUNAVAILABLE: return "unavailable";
    case AI_ESTORAGE_FULL: return "storage full";
    }
    return "unknown error";
}

const char *err_code_name(ai_code code)
{
    switch (code) {
    case AI_EINVAL: return "bad_request";
    case AI_ETOKEN: return "invalid_token";
    case AI_EEXPIRED: return "token_expired";
    case AI_EREVOKED: return "token_revoked";
    case AI_EDENIED: return "forbidden";
    case AI_ENOTFOUND: return "not_found";
    case AI_EPROVIDER: return "provider_error";
    case AI_EUNAVAILABLE: return "unavailable";
    case AI_ESTORAGE_FULL: return "storage_full";
    case AI_OK:
    case AI_ENOMEM:
    case AI_ENOBUFS:
    case AI_ESTORE:
    case AI_EINTERNAL: break;
    }
    return "internal_error";
}

bool err_code_parse(const char *name, ai_code *out)
{
    /* internal_error names several codes: it reads as AI_EINTERNAL */
    for (int c = AI_EINVAL; name != NULL && c <= AI_ESTORAGE_FULL; c++)
        if ((c == AI_EINTERNAL || strcmp(err_code_name((ai_code)c),
                                         "internal_error") != 0) &&
            strcmp(name, err_code_name((ai_code)c)) == 0) {
            *out = (ai_code)c;
            return true;
        }
    return false;
}

const char *ai_version(void)
{
    return AI_VERSION;
}

void ai_err_clear(ai_err *err)
{
    if (err != NULL) {
        err->code = AI_OK;
        err->msg[0] = '\0';
    }
}

ai_code ai_err_set2(ai_err *err, ai_code code, const char *a, const char *b)
{
    size_t n = 0;

    if (err == NULL || err->code != AI_OK)
        return code;
    err->code = code;
    for (const char *s = a; *s != '\0' && n + 1 < sizeof err->msg; s++)
        err->msg[n++] = *s;
    for (const char *s = b; *s != '\0' && n + 1 < sizeof err->msg; s++)
        err->msg[n++] = *s;
    err->msg[n] = '\0';
    return code;
}

ai_code ai_err_set(ai_err *err, ai_code code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err->code != AI_OK)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* One line, printable: a message can end up in a log or an HTTP body. */
    for (char *p = err->msg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return code;
}
