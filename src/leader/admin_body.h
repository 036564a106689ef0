/*
 * admin_body.h - the bodies of the leader's admin API (admin.c) read from
 * their bytes alone, as server/body.h reads the agent API's: the handler
 * and a test or fuzz target parse a body through the same code.
 *
 * Each parser clears err first. AI_EINVAL (a 400 "bad_request") names
 * the first problem; AI_ENOMEM is a 500. On error the output holds
 * nothing to free. Strings handed back are borrowed from the parsed
 * object the output owns (root); release it with the matching _free,
 * which is fine on a zeroed or freed output. Thread-safe.
 */
#ifndef AI_LEADER_ADMIN_BODY_H
#define AI_LEADER_ADMIN_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_iam.h"
#include "store/store.h"

#define ADMIN_ROOT_TTL_DAYS_MAX 3650
#define ADMIN_APIKEY_TTL_MAX (90 * 24 * 60)
#define ADMIN_GRACE_MS_MAX (INT64_C(10) * 365 * 86400000)

/* POST /v1/admin/tokens: {agentId, scopes: [1..AI_LIST_MAX strings],
 * delegatable?, maxDelegationDepth?, ttlDays?, maxTtlDays?, constraints?,
 * identity?, federation?, agentCapabilities? (objects, kept as compact
 * text)}. params points into the struct itself: do not copy or move it
 * while params is in use. */
typedef struct admin_root_body {
    json_t *root;
    ai_root_params params;
    const char *scopes[AI_LIST_MAX];
    char *texts[4]; /* constraints, identity, federation, capabilities */
} admin_root_body;
ai_code admin_root_parse(const char *body, size_t len, admin_root_body *out,
                         ai_err *err);
void admin_root_free(admin_root_body *b);

/* POST /v1/admin/revoke: {tokenId | agentId (one, non-empty), reason?,
 * expiresAt? (RFC 3339)}. POST /v1/admin/unrevoke (with_reason false):
 * the target alone, other members ignored. */
typedef struct admin_target_body {
    json_t *root;
    revoke_target target;
    const char *id;
    const char *reason; /* NULL when not given */
    int64_t expires_ms; /* expiresAt in ms; 0 when not given. Checked for
                         * old clients, never a prune time: see
                         * store_prune_time */
} admin_target_body;
ai_code admin_target_parse(const char *body, size_t len, bool with_reason,
                           admin_target_body *out, ai_err *err);
void admin_target_free(admin_target_body *b);

/* POST /v1/admin/rotate-key: {graceMs?} (0..10 years), or no body.
 * *grace_ms: -1 when not given. */
ai_code admin_rotate_parse(const char *body, size_t len, int64_t *grace_ms,
                           ai_err *err);

/* PUT /v1/admin/providers/{name}: a JSON object, as compact text in
 * member order (OUT: ai_malloc'd, NULL on error; it holds secrets: wipe
 * it before ai_free). The config's members are prov_config_check's to
 * judge. */
ai_code admin_provider_parse(const char *body, size_t len, char **text,
                             ai_err *err);

/* PUT /v1/admin/apikeys/{name}: {provider (a name of [A-Za-z0-9._-]),
 * key (non-empty), baseUrl? (prov_url_ok), ttlMinutes? (1..90 days)}.
 * admin_apikey_free wipes the parsed copy of the key. */
typedef struct admin_apikey_body {
    json_t *root;
    const char *provider;
    const char *key;
    const char *base_url; /* NULL when not given */
    int ttl_minutes;      /* 0 when not given */
} admin_apikey_body;
ai_code admin_apikey_parse(const char *body, size_t len,
                           admin_apikey_body *out, ai_err *err);
void admin_apikey_free(admin_apikey_body *b);

#endif /* AI_LEADER_ADMIN_BODY_H */
