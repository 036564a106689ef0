/*
 * sigv4.h - AWS Signature Version 4 (sigv4.c) and the bounded XML reader
 * for STS answers (xml.c), for the AWS provider (aws.c) and its tests.
 *
 * Nothing here reads the clock: the caller passes the X-Amz-Date, so the
 * published test-suite vectors (20150830T123600Z) can be reproduced.
 * Thread-safe: no shared state.
 */
#ifndef AI_PROVIDERS_SIGV4_H
#define AI_PROVIDERS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_iam.h"

#define SIGV4_DATE_LEN 16 /* "YYYYMMDDTHHMMSSZ" */
#define SIGV4_MAX_HEADERS 32

/* One header to sign, as the request sends it (name in any case, value
 * untrimmed). Every header given is signed. */
typedef struct sigv4_header {
    const char *name;
    const char *value;
} sigv4_header;

typedef struct sigv4_req {
    const char *method;  /* "POST" */
    const char *path;    /* not encoded ("/", "/example space/"); "" is "/" */
    const char *query;   /* "a=b&c=d" as on the wire (may hold %XX), or NULL */
    const sigv4_header *headers; /* must include Host and X-Amz-Date */
    size_t nheaders;             /* at most SIGV4_MAX_HEADERS */
    const void *payload;
    size_t payload_len;
    const char *region;   /* "us-east-1" */
    const char *service;  /* "sts" */
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ", also the X-Amz-Date value */
} sigv4_req;

/* What signing produced; every string is ai_malloc'd. None holds the
 * secret key, but the canonical request holds every signed header value
 * (a session token, for example): do not log it. */
typedef struct sigv4_out {
    char *canonical;      /* the canonical request */
    char *string_to_sign;
    char *authorization;  /* value of the Authorization header */
    char signature[65];   /* lowercase hex */
} sigv4_out;

/* Sign r with the access key id and secret key. On success fills *out
 * (free with sigv4_out_clear); on error *out is zeroed and err says why
 * (AI_EINVAL for a malformed request, AI_ENOMEM). The secret and the
 * derived keys are wiped before return. */
ai_code sigv4_sign(const sigv4_req *r, const char *access_key_id,
                   const char *secret_key, sigv4_out *out, ai_err *err);

/* Free what sigv4_sign filled; out may be zeroed already. */
void sigv4_out_clear(sigv4_out *out);

/* The X-Amz-Date form of a time in ms since the epoch, NUL-terminated. */
void sigv4_amz_date(int64_t now_ms, char out[SIGV4_DATE_LEN + 1]);

/* Append the AWS URI encoding of n bytes of s to *buf (an ai_buf):
 * unreserved A-Z a-z 0-9 - . _ ~ as is, everything else %XX uppercase;
 * '/' kept only when keep_slash. Used for the form body of STS calls. */
struct ai_buf;
void sigv4_uri_encode(struct ai_buf *buf, const char *s, size_t n,
                      bool keep_slash);

/* ---- XML (xml.c) ------------------------------------------------------ */

#define XML_MAX_LEN (64 * 1024) /* larger documents are refused */
#define XML_MAX_DEPTH 16

/* The text of the first element at the path of element names from the
 * root (namespaces and attributes ignored; entities and character
 * references decoded), copied NUL-terminated into out. The whole
 * document is checked first: one root, properly nested, no DOCTYPE, no
 * CDATA, at most XML_MAX_DEPTH levels, at most XML_MAX_LEN bytes.
 * Returns AI_OK, AI_EINVAL (malformed; *why names the problem, static
 * text), AI_ENOTFOUND (well formed but no such element, or the element
 * has child elements) or AI_ENOBUFS (text longer than outcap - 1). out is
 * "" on any error. */
ai_code xml_text(const char *doc, size_t len, const char *const *path,
                 size_t npath, char *out, size_t outcap, const char **why);

#endif /* AI_PROVIDERS_SIGV4_H */
