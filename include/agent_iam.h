/*
 * agent_iam.h - public C API of agent-iam, a capability-based credential
 * broker for AI agents.
 *
 * Conventions (the same for every function below):
 *  - Every call that can fail returns an ai_code and, when the caller passes
 *    a non-NULL ai_err, fills it with the code and a one-line message a
 *    person understands (no secrets, no token text). Each call clears the
 *    ai_err first, so it need not be initialized; within a call the first
 *    (root-cause) error wins.
 *  - On failure every OUT parameter is set to NULL.
 *  - Whoever allocates frees: ai_x_new() pairs with ai_x_free(), and every
 *    *_free(NULL) does nothing. Returned `const char *` are borrowed from the
 *    object they came from and live as long as it.
 *  - Times are milliseconds since the Unix epoch (UTC). Functions that need
 *    the current time take it as `now_ms`, so callers (and tests) fix it.
 *  - Objects are not thread-safe unless stated. Tokens are immutable once
 *    made and may be read from several threads; their reference count is
 *    atomic.
 */
#ifndef AGENT_IAM_H
#define AGENT_IAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define AI_EXPORT __attribute__((visibility("default")))
#define AI_WUR __attribute__((warn_unused_result))
#else
#define AI_EXPORT
#define AI_WUR
#endif

#define AI_VERSION "0.1.0"

/* Result codes. Append only: values never change. */
typedef enum ai_code {
    AI_OK = 0,
    AI_EINVAL,     /* bad argument or request (a usage error) */
    AI_ENOMEM,     /* out of memory */
    AI_ENOBUFS,    /* caller's buffer too small */
    AI_ENOTFOUND,  /* no such object */
    AI_ESTORE,     /* storage failure */
    AI_EPROVIDER,  /* a credential provider failed */
    AI_EDENIED,    /* valid token, but the action is not allowed */
    AI_EEXPIRED,   /* token (or a time window) has expired */
    AI_ETOKEN,     /* invalid token: malformed, bad signature, unknown key */
    AI_EREVOKED,   /* token, an ancestor or its agent is revoked */
    AI_EINTERNAL,  /* a bug or an unexpected library failure */
    AI_EUNAVAILABLE, /* a service this call needs (the leader) is unreachable */
    AI_ESTORAGE_FULL /* the store cannot write: its disk (or quota) is full */
} ai_code;

#define AI_ERR_MSG_MAX 256

typedef struct ai_err {
    ai_code code;
    char msg[AI_ERR_MSG_MAX];
} ai_err;

/* Static text for a code ("ok", "invalid token", ...). Never NULL. */
AI_EXPORT const char *ai_strerror(ai_code code);

/* Replace the allocator of the library (and of jansson, which it uses):
 * call once, before any other call; NULL restores malloc / free. */
AI_EXPORT void ai_set_alloc_funcs(void *(*malloc_fn)(size_t),
                                  void (*free_fn)(void *));

/* Library version string, AI_VERSION of the build. */
AI_EXPORT const char *ai_version(void);

/* ---------------------------------------------------------------------
 * Limits of the token format (inputs beyond them are refused).
 * ------------------------------------------------------------------- */
#define AI_TOKEN_WIRE_MAX   22000  /* serialized form, base64url chars */
#define AI_TOKEN_JSON_MAX   16384  /* decoded JSON bytes */
#define AI_KEY_BYTES        32     /* HMAC-SHA256 signing secret */
#define AI_MAX_DEPTH        16     /* maxDelegationDepth upper bound */
#define AI_TOKEN_ID_CHARS   22     /* base64url of 128 random bits */
#define AI_SCOPE_MAX        128    /* bytes in one scope or constraint key */
#define AI_PATTERN_MAX      256    /* bytes in one resource pattern */
#define AI_RESOURCE_MAX     1024   /* bytes in a resource to check */
#define AI_ID_MAX           256    /* bytes in an agentId / parentId */
#define AI_LIST_MAX         64     /* scopes, constraints, resources, systems */
#define AI_BUDGETS_MAX      17     /* budgets in one constraint */
#define AI_DEFAULT_ROOT_TTL_DAYS      7
#define AI_DEFAULT_ROOT_TTL_MAX_DAYS  90
#define AI_DEFAULT_DELEGATE_TTL_MIN   60
#define AI_DEFAULT_MAX_DEPTH          3

/* ---------------------------------------------------------------------
 * Keyring: the signing keys a verifier accepts, by keyVersion.
 *
 * A table the caller fills: each version has a 32-byte secret and an
 * optional time after which it no longer verifies (its grace period end).
 * One version is the signing version. The keyring precomputes HMAC state,
 * so verification never rehashes the key. Not thread-safe for mutation;
 * concurrent readers are fine once it is built (swap whole keyrings to
 * change keys under load). Key bytes are cleansed when removed or freed.
 * ------------------------------------------------------------------- */
typedef struct ai_keyring ai_keyring;

AI_EXPORT ai_keyring *ai_keyring_new(void); /* NULL on out of memory */
AI_EXPORT void ai_keyring_free(ai_keyring *kr);

/* Add (or replace) version `version` (1..2^31). `verify_until_ms` is the
 * instant from which tokens of this version are refused ("unknown or
 * retired signing key"); 0 means no limit. The first key added becomes the
 * signing key until ai_keyring_set_signing says otherwise. */
AI_EXPORT ai_code ai_keyring_add(ai_keyring *kr, uint32_t version,
                                 const unsigned char key[AI_KEY_BYTES],
                                 int64_t verify_until_ms, ai_err *err);
AI_EXPORT ai_code ai_keyring_set_signing(ai_keyring *kr, uint32_t version,
                                         ai_err *err);
/* The signing version, 0 when the keyring is empty. */
AI_EXPORT uint32_t ai_keyring_signing_version(const ai_keyring *kr);
/* A counter bumped by every change: caches compare it to drop entries. */
AI_EXPORT uint64_t ai_keyring_generation(const ai_keyring *kr);

/* ---------------------------------------------------------------------
 * Verification context: keys plus the caller's revocation predicate.
 * ------------------------------------------------------------------- */
typedef enum ai_revoke_kind {
    AI_REVOKED_TOKEN = 0, /* id is the token's own tokenId */
    AI_REVOKED_ANCESTOR,  /* id is one of its ancestors' tokenIds */
    AI_REVOKED_AGENT,     /* id is the token's agentId */
    AI_REVOKED_ANCESTOR_AGENT /* id is one of its ancestors' agentIds */
} ai_revoke_kind;

/* Return true when `id` is revoked. Must be fast and must not call back
 * into the verifier. */
typedef bool (*ai_revoked_fn)(void *ud, ai_revoke_kind kind, const char *id);

typedef struct ai_verifier {
    const ai_keyring *keys;  /* required */
    ai_revoked_fn revoked;   /* NULL: nothing is revoked */
    void *revoked_ud;
} ai_verifier;

/* ---------------------------------------------------------------------
 * Tokens. An ai_token is immutable and reference counted.
 * ------------------------------------------------------------------- */
typedef struct ai_token ai_token;

/* Drop one reference; the last one frees. NULL is fine. */
AI_EXPORT void ai_token_free(ai_token *tok);
/* Take one more reference; returns tok. Thread-safe. */
AI_EXPORT ai_token *ai_token_ref(ai_token *tok);

/* Full verification of a serialized token, in the order of DESIGN §2:
 * wire shape, signature (constant time, before any JSON is parsed), strict
 * parse, key version agreement, expiry, revocation (tokenId, ancestors,
 * agentId, the agentIds of its ancestors: ancestorAgents, and parentId).
 * Only AI_OK means valid; *out is then a verified token (new reference).
 * Errors: AI_ETOKEN ("invalid token: ..."), AI_EEXPIRED, AI_EREVOKED,
 * AI_ENOMEM. */
AI_EXPORT AI_WUR ai_code ai_token_verify(const ai_verifier *v,
                                         const char *wire, size_t len,
                                         int64_t now_ms, ai_token **out,
                                         ai_err *err);

/* Decode and strictly parse without checking the signature, expiry or
 * revocation (for display only: `token show`). The result is marked
 * unverified and is refused by delegate, refresh and check. */
AI_EXPORT ai_code ai_token_deserialize(const char *wire, size_t len,
                                       ai_token **out, ai_err *err);

/* Serialized form (borrowed, NUL-terminated) and its length. */
AI_EXPORT const char *ai_token_serialize(const ai_token *tok);
AI_EXPORT size_t ai_token_serialized_len(const ai_token *tok);

/* The signed JSON of the token (borrowed, NUL-terminated, compact). */
AI_EXPORT const char *ai_token_json(const ai_token *tok);

/* checkPermission on a verified token: the scope must match one of the
 * token's scopes, and every constraint whose key matches the scope must
 * allow it (notBefore <= now <= notAfter, resource matching one of its
 * resource globs). Consumes nothing. AI_OK = allowed; AI_EDENIED or
 * AI_EEXPIRED (time window over) with the reason otherwise; AI_EINVAL for
 * an unverified token, a scope with a `*` segment (a check names one
 * concrete scope) or a resource longer than AI_RESOURCE_MAX. */
AI_EXPORT AI_WUR ai_code ai_token_check(const ai_token *tok,
                                        const char *scope,
                                        const char *resource,
                                        int64_t now_ms, ai_err *err);

/* Accessors. Strings are borrowed; absent optional fields give NULL. */
AI_EXPORT bool ai_token_is_verified(const ai_token *tok);
AI_EXPORT const char *ai_token_agent_id(const ai_token *tok);
AI_EXPORT const char *ai_token_parent_id(const ai_token *tok);
AI_EXPORT const char *ai_token_id(const ai_token *tok); /* NULL: Node token */
AI_EXPORT uint32_t ai_token_key_version(const ai_token *tok);
AI_EXPORT size_t ai_token_scope_count(const ai_token *tok);
AI_EXPORT const char *ai_token_scope(const ai_token *tok, size_t i);
AI_EXPORT size_t ai_token_ancestor_count(const ai_token *tok);
AI_EXPORT const char *ai_token_ancestor(const ai_token *tok, size_t i);
/* ancestorAgents: the agentIds of the token's ancestors, oldest first
 * (DESIGN §8); it lists ancestors without a tokenId too. */
AI_EXPORT size_t ai_token_ancestor_agent_count(const ai_token *tok);
AI_EXPORT const char *ai_token_ancestor_agent(const ai_token *tok, size_t i);
AI_EXPORT bool ai_token_delegatable(const ai_token *tok);
AI_EXPORT int ai_token_depth(const ai_token *tok);
AI_EXPORT int ai_token_max_depth(const ai_token *tok);
AI_EXPORT int64_t ai_token_expires_at(const ai_token *tok);     /* 0: absent */
AI_EXPORT int64_t ai_token_max_expires_at(const ai_token *tok); /* 0: absent */
/* The MAP objects as compact JSON text, NULL when absent. */
AI_EXPORT const char *ai_token_identity_json(const ai_token *tok);
AI_EXPORT const char *ai_token_federation_json(const ai_token *tok);
AI_EXPORT const char *ai_token_capabilities_json(const ai_token *tok);
/* Constraints as the compact JSON object of the token ("{}" when none). */
AI_EXPORT const char *ai_token_constraints_json(const ai_token *tok);

/* The use budgets that a credential for `scope` (concrete: no `*`
 * segment, else AI_EINVAL) counts against: the union,
 * without repeats, of the budgets of every constraint whose key matches the
 * scope. Fills up to `cap` entries and sets *n to the number that exist
 * (AI_ENOBUFS when cap is too small). ids are borrowed from tok. */
typedef struct ai_budget_ref {
    const char *id;
    uint32_t max_uses;
} ai_budget_ref;
AI_EXPORT ai_code ai_token_budgets(const ai_token *tok, const char *scope,
                                   ai_budget_ref *out, size_t cap, size_t *n,
                                   ai_err *err);

/* ---------------------------------------------------------------------
 * Minting. Parameter structs: call the *_init function first (it sets the
 * defaults), then set fields. JSON fields take the README's objects:
 * constraints {"scope": {resources, notBefore, notAfter, maxUses}},
 * identity, federation, agentCapabilities. NULL means absent.
 * ------------------------------------------------------------------- */
typedef struct ai_root_params {
    const char *agent_id;              /* required */
    const char *const *scopes;         /* required, 1..AI_LIST_MAX */
    size_t nscopes;
    const char *constraints_json;
    bool delegatable;                  /* default true */
    int max_delegation_depth;          /* default 3, 0..16 */
    int ttl_days;                      /* default 7 */
    int max_ttl_days;                  /* 0: maxExpiresAt = expiresAt */
    int ttl_limit_days;                /* configured maximum, default 90 */
    const char *identity_json;
    const char *federation_json;
    const char *capabilities_json;
} ai_root_params;

AI_EXPORT void ai_root_params_init(ai_root_params *p);

/* Mint a root token signed with the keyring's signing key. *out is a
 * verified token. AI_EINVAL names the bad field. */
AI_EXPORT ai_code ai_token_create_root(const ai_keyring *keys,
                                       const ai_root_params *p,
                                       int64_t now_ms, ai_token **out,
                                       ai_err *err);

typedef struct ai_delegation {
    const char *agent_id;              /* NULL: "agent-" + 8 random hex */
    const char *const *scopes;         /* required, 1..AI_LIST_MAX */
    size_t nscopes;
    const char *constraints_json;      /* requested (narrowing) constraints */
    bool delegatable;                  /* default true (AND parent's) */
    int ttl_minutes;                   /* default 60, capped by the parent */
    bool inherit_identity;             /* default true */
    const char *federation_json;
    const char *capabilities_json;
} ai_delegation;

AI_EXPORT void ai_delegation_init(ai_delegation *d);

/* Parse a DelegationRequest JSON object (agentId, requestedScopes,
 * requestedConstraints, delegatable, ttlMinutes, inheritIdentity,
 * federation, agentCapabilities) into *d. The strings of *d point into
 * *storage, which the caller frees with ai_delegation_storage_free. */
typedef struct ai_delegation_storage ai_delegation_storage;
AI_EXPORT ai_code ai_delegation_from_json(const char *json, size_t len,
                                          ai_delegation *d,
                                          ai_delegation_storage **storage,
                                          ai_err *err);
AI_EXPORT void ai_delegation_storage_free(ai_delegation_storage *s);

/* Delegate from a verified parent (a token that came from ai_token_verify
 * or was minted here; re-verify before calling if it may be revoked).
 * Attenuation only: any widening is refused with AI_EDENIED naming the
 * scope, pattern or field. */
AI_EXPORT ai_code ai_token_delegate(const ai_keyring *keys,
                                    const ai_token *parent,
                                    const ai_delegation *req, int64_t now_ms,
                                    ai_token **out, ai_err *err);

/* What a delegation narrowed: the fields of the request's federation and
 * agentCapabilities that the child got only as the parent's allow, named
 * as the token's JSON members, in the order they are written:
 * "federation.crossSystemAllowed", "federation.originSystem",
 * "federation.hopCount" (a requested origin and hop count are replaced by
 * the parent's), "federation.maxHops" (above the parent's),
 * "federation.allowFurtherFederation", "agentCapabilities.<flag>" (true
 * asked, the parent's false), "agentCapabilities.visibility" (less
 * restrictive than the parent's), "agentCapabilities.custom.<name>".
 * Refusals (AI_EDENIED) are not narrowing. Set on the token that
 * ai_token_delegate or ai_broker_delegate returns; 0 and NULL for any
 * other token (verified, refreshed, a root) and past the count. Strings
 * are borrowed from tok. */
AI_EXPORT size_t ai_token_narrowed_count(const ai_token *tok);
AI_EXPORT const char *ai_token_narrowed(const ai_token *tok, size_t i);

/* Refresh a verified token that holds a scope matching
 * system:token:refresh and whose constraints on it allow it now (as
 * ai_token_check; a caller that counts uses consumes one of its budgets):
 * same claims and tokenId, re-signed with the current key, expiry now +
 * ttl_minutes (0: now + max(remaining, 1 hour)), capped at maxExpiresAt. */
AI_EXPORT ai_code ai_token_refresh(const ai_keyring *keys,
                                   const ai_token *tok, int ttl_minutes,
                                   int64_t now_ms, ai_token **out,
                                   ai_err *err);

/* ---------------------------------------------------------------------
 * Verified-token cache: an agent presenting the same token again and again
 * costs a hash lookup and a byte comparison. Keyed by the exact token
 * bytes; a hit still checks expiry, key retirement and revocation; every
 * entry is dropped when the keyring's generation changes. Not thread-safe:
 * use one per thread or guard it.
 * ------------------------------------------------------------------- */
typedef struct ai_token_cache ai_token_cache;

/* What one entry of `capacity` allows for: a token counts its own memory
 * plus room for the JSON its accessors may build (about 3.6 KiB for a
 * typical 700-character token, about 80 KiB for the largest). */
#define AI_TOKEN_CACHE_ENTRY_BYTES 4096

/* A cache of at most `capacity` tokens (4 to 2^24) and at most capacity x
 * AI_TOKEN_CACHE_ENTRY_BYTES bytes of them: when a new token would pass
 * that, entries not hit lately go first (a clock sweep); a token larger than
 * whole bound is verified but not kept. NULL on out of memory. */
AI_EXPORT ai_token_cache *ai_token_cache_new(size_t capacity);
AI_EXPORT void ai_token_cache_free(ai_token_cache *c);
/* As ai_token_verify, served from the cache when possible. */
AI_EXPORT AI_WUR ai_code ai_token_cache_verify(ai_token_cache *c,
                                               const ai_verifier *v,
                                               const char *wire, size_t len,
                                               int64_t now_ms, ai_token **out,
                                               ai_err *err);
AI_EXPORT void ai_token_cache_clear(ai_token_cache *c);

/* ---------------------------------------------------------------------
 * Matching helpers (the rules of DESIGN §2).
 * ------------------------------------------------------------------- */
/* Does scope pattern `pattern` match the scope `scope`? */
AI_EXPORT bool ai_scope_matches(const char *pattern, const char *scope);
/* Is every scope matched by `inner` also matched by `outer`? */
AI_EXPORT bool ai_scope_within(const char *inner, const char *outer);
/* Does some scope match both patterns? */
AI_EXPORT bool ai_scope_overlaps(const char *a, const char *b);
/* Does resource glob `pattern` (`*`, `?`) match `s`? */
AI_EXPORT bool ai_glob_matches(const char *pattern, const char *s);
/* Is every string matched by glob `inner` also matched by `outer`? Fails
 * closed (false) if deciding would take more than a fixed budget. */
AI_EXPORT bool ai_glob_within(const char *inner, const char *outer);

/* ---------------------------------------------------------------------
 * Time: ISO 8601 UTC with milliseconds, "2026-11-28T12:00:00.000Z".
 * ------------------------------------------------------------------- */
#define AI_TIME_BUF 25
/* Write ms since the epoch into buf (at least AI_TIME_BUF bytes). */
AI_EXPORT void ai_time_format(int64_t ms, char buf[AI_TIME_BUF]);
/* Parse any RFC 3339 time (fraction optional, Z or offset). */
AI_EXPORT ai_code ai_time_parse(const char *s, size_t len, int64_t *ms,
                                ai_err *err);

/* ---------------------------------------------------------------------
 * Broker: the token operations of a broker home (DESIGN §3, §7), what the
 * CLI does on a local home. Tokens are signed with the home's current key
 * and verified against its unretired keys and its revocations, as of the
 * latest commit of any process on the home. Denials, delegations and
 * refreshes are written to the home's audit log. A broker is used by one
 * thread at a time; open one per thread.
 * ------------------------------------------------------------------- */
typedef struct ai_broker ai_broker;

/* Open (creating on first use) the home at `home`; NULL: the default
 * ($AGENT_IAM_HOME, else ~/.agent-iam). */
AI_EXPORT ai_code ai_broker_open(const char *home, ai_broker **out,
                                 ai_err *err);
AI_EXPORT void ai_broker_close(ai_broker *b);

/* Who the broker's audit rows name as the actor ("cli" unless set: a
 * server passes its own name, an embedding program its). 1 to 64 bytes. */
AI_EXPORT ai_code ai_broker_set_actor(ai_broker *b, const char *actor,
                                      ai_err *err);

AI_EXPORT ai_code ai_broker_create_root_token(ai_broker *b,
                                              const ai_root_params *p,
                                              ai_token **out, ai_err *err);
/* Verify the serialized parent, then delegate from it. */
AI_EXPORT ai_code ai_broker_delegate(ai_broker *b, const char *parent,
                                     size_t len, const ai_delegation *req,
                                     ai_token **out, ai_err *err);
AI_EXPORT AI_WUR ai_code ai_broker_verify(ai_broker *b, const char *wire,
                                          size_t len, ai_token **out,
                                          ai_err *err);
/* Verify, then check scope and resource (consumes nothing). */
AI_EXPORT AI_WUR ai_code ai_broker_check_permission(ai_broker *b,
                                                    const char *wire,
                                                    size_t len,
                                                    const char *scope,
                                                    const char *resource,
                                                    ai_err *err);
AI_EXPORT ai_code ai_broker_refresh(ai_broker *b, const char *wire,
                                    size_t len, int ttl_minutes,
                                    ai_token **out, ai_err *err);

/* getCredential: verify the serialized token, check scope and resource,
 * then consume one use of every maxUses budget of the scope (AI_EDENIED
 * "... has no uses left" once one is spent) and return the provider's
 * credential as the README's CredentialResult JSON:
 * {"credentialType":"bearer_token"|"aws_credentials"|"api_key",
 *  "credential":{...},"expiresAt":"ISO 8601"}.
 * The provider is the scope's first segment ("openai:chat:completions" ->
 * openai; a scope without one is AI_EINVAL): an API key of the home whose
 * provider (else name) it is, else the github, google or aws backend with
 * the home's config for it (AI_ENOTFOUND "provider X is not configured";
 * "unknown provider" when there is neither). An unservable request
 * consumes no use. Backend credentials are cached per broker (provider +
 * scope + resource) until 5 minutes before they expire. Provider TLS uses
 * the CA bundle named by $AGENT_IAM_PROVIDER_CA_FILE when set, else the
 * system's. Failures of the provider are AI_EPROVIDER naming it and the
 * HTTP status. Each call writes an audit row (action "credential", allow
 * or deny; never the secret).
 * *result_json (OUT: NULL on error) holds secrets: release it with
 * ai_free_string, which wipes it. */
AI_EXPORT AI_WUR ai_code ai_broker_get_credential(ai_broker *b,
                                                  const char *wire,
                                                  size_t len,
                                                  const char *scope,
                                                  const char *resource,
                                                  char **result_json,
                                                  ai_err *err);

/* Administration of the home (what `agent-iam revoke`, `unrevoke`,
 * `rotate-key`, `config init`, `apikey add|remove`, `status` and `config
 * show` do on a local home). Each change is durable when the call
 * returns and is written to the audit log under the broker's actor, with
 * ids and names only, never a secret, in the same transaction: when its
 * audit row cannot be written the call fails and nothing changed. */

/* Revoke one token (token_id: it and, through the ancestors every token
 * carries, its descendants) or one agent (agent_id: every token naming
 * it): exactly one of the two, non-empty, else AI_EINVAL. reason (NULL:
 * none) is at most 512 bytes of UTF-8. Idempotent: revoking again
 * updates the reason. An id this home never issued is accepted. Audit
 * action "revoke". */
AI_EXPORT ai_code ai_broker_revoke(ai_broker *b, const char *token_id,
                                   const char *agent_id, const char *reason,
                                   ai_err *err);
/* Undo ai_broker_revoke (same arguments rule): AI_ENOTFOUND when that
 * token or agent is not revoked. Audit action "unrevoke". */
AI_EXPORT ai_code ai_broker_unrevoke(ai_broker *b, const char *token_id,
                                     const char *agent_id, ai_err *err);

/* Make a new signing key (version N+1); every older unretired key keeps
 * verifying for grace_ms (< 0: the default, 90 days; at most 10 years),
 * so tokens already issued stay valid until then. *new_version (may be
 * NULL) is the new version. A follower's replica home refuses
 * (AI_EDENIED: rotate on the leader). Audit action "rotate-key". */
AI_EXPORT ai_code ai_broker_rotate_key(ai_broker *b, int64_t grace_ms,
                                       uint32_t *new_version, ai_err *err);

/* Set (replace) the config of provider name ("github", "google" or "aws";
 * another name is AI_EINVAL) to config_json, a JSON object as `config
 * init` builds it (github {appId, installationId, privateKey, owner?,
 * apiUrl?}; google {clientId, clientSecret, refreshToken, tokenUrl?}; aws
 * {region, roleArn, accessKeyId + secretAccessKey, externalId?,
 * sessionDuration?, stsUrl?}). The config is checked first, as the CLI and
 * the leader check it: AI_EINVAL naming the first bad member (never its
 * value), and nothing is stored. Secrets are sealed at rest. config_json
 * stays the caller's to wipe. Audit action "config-init" (the name). */
AI_EXPORT ai_code ai_broker_init_provider(ai_broker *b, const char *name,
                                          const char *config_json,
                                          ai_err *err);

/* Add (or replace) the API key `name` for `provider` (both 1 to 64 of
 * A-Z a-z 0-9 . _ -); key: 1 to 4096 bytes without control characters
 * (sealed at rest; the caller wipes its copy); base_url (NULL: none): an
 * https URL without user info (http only to localhost); ttl_minutes: the
 * lifetime of the credentials it serves, 1 to 90 days in minutes (0: the
 * default, 60). Bad arguments: AI_EINVAL, never quoting the key. Audit
 * action "apikey-add" (name and provider). */
AI_EXPORT ai_code ai_broker_add_api_key(ai_broker *b, const char *name,
                                        const char *provider,
                                        const char *key,
                                        const char *base_url,
                                        int ttl_minutes, ai_err *err);
/* Remove the API key `name`: AI_ENOTFOUND when there is none. Audit
 * action "apikey-remove". */
AI_EXPORT ai_code ai_broker_remove_api_key(ai_broker *b, const char *name,
                                           ai_err *err);

/* Register the follower `id` (1-64 of A-Z a-z 0-9 . _ -) on a leader's
 * home with a new credential of its own (DESIGN §8), granting it the
 * secrets of `providers` ("a,b", "*" for all, "" or NULL for none). *secret
 * (release with ai_free_string after wiping it) is shown once: the home
 * keeps only its SHA-256. Registering an id again replaces its credential.
 * Audit action "follower-add". */
AI_EXPORT ai_code ai_broker_add_follower(ai_broker *b, const char *id,
                                         const char *providers,
                                         char **secret, ai_err *err);
/* AI_ENOTFOUND when id is not registered. Audit "follower-remove". */
AI_EXPORT ai_code ai_broker_remove_follower(ai_broker *b, const char *id,
                                            ai_err *err);
/* The registered followers as a JSON array of {"id","providers",
 * "createdAt"} (release with ai_free_string). */
AI_EXPORT ai_code ai_broker_list_followers(ai_broker *b, char **json,
                                           ai_err *err);

/* The home's status as the JSON object of `agent-iam status --json`:
 * {"version", "mode": "standalone" (a follower's replica home: "follower",
 * with "appliedSeq"), "home", "schema", "signingKeyVersion" (a new home
 * makes its version 1 here; an unsynced replica has none: 0),
 * "verifyingKeys", "revocations", "changelogSeq"}. *json (OUT: NULL on
 * error): release with ai_free_string. */
AI_EXPORT ai_code ai_broker_status(ai_broker *b, char **json, ai_err *err);

/* The provider configs and API keys as the JSON of `agent-iam config show
 * --json`: {"providers": {"github"|"google"|"aws": {config}, "apikeys":
 * {NAME: {"providerName", "apiKey", "baseUrl"?, "ttlMinutes"?,
 * "createdAt"}}}}, every secret member (privateKey, clientSecret,
 * refreshToken, secretAccessKey, apiKey and anything named alike) shown as
 * "***REDACTED***". *json (OUT: NULL on error): ai_free_string. */
AI_EXPORT ai_code ai_broker_show_config(ai_broker *b, char **json,
                                        ai_err *err);

/* Wipe and free a string the library returned (ai_broker_get_credential's,
 * ai_broker_status's and ai_broker_show_config's results). NULL is fine. */
AI_EXPORT void ai_free_string(char *s);


/* ---------------------------------------------------------------------
 * LeaderServer (DESIGN §4, §7): `agent-iam serve` as a library call. The
 * leader serves the agent, admin and follower APIs of a home over HTTPS
 * (docs/http-api.md) from a pool of threads until ai_leader_stop.
 * ------------------------------------------------------------------- */
typedef struct ai_leader ai_leader;

typedef struct ai_leader_config {
    const char *home;          /* NULL: the default home */
    const char *host;          /* NULL: 0.0.0.0 */
    int port;                  /* default 8443; 0: any free port */
    const char *tls_cert_file; /* NULL: $AGENT_IAM_TLS_CERT, else the */
    const char *tls_key_file;  /* home's tls/, generated on first start */
    bool insecure_http;        /* plain HTTP (tests, loopback only) */
    const char *auth_token;    /* a follower secret shared by every
                                * follower (the seed's): replication only,
                                * no provider secrets; NULL: none. Followers
                                * registered in the home (followers add)
                                * have credentials of their own. */
    const char *admin_token;   /* the only admin credential; NULL: the
                                * admin API is off (404) */
    unsigned threads;          /* 0: one per core */
    int access_log_fd;         /* default 2 (stderr); -1: none */
    long changelog_retain;     /* rows kept for followers; 0: 100000 */
    unsigned max_conns;        /* open connections in all; 0: 4096 */
    unsigned max_conns_per_ip; /* from one client address; 0: 64 */
    const char *metrics_token; /* opens /metrics and /v1/status (as the
                                * admin token does); NULL: none */
    bool public_metrics;       /* /metrics and /v1/status for everyone */
    /* Writes of one agent (delegate, refresh, credentials), counted for
     * the root of its delegation chain: a token bucket of agent_rate per
     * second holding agent_burst (0: 2 x agent_rate). Default 50 and 100;
     * agent_rate 0: no limit. Over it: 429 with Retry-After. */
    double agent_rate;
    unsigned agent_burst;
    /* Audit rows older than this are deleted (the chain still verifies);
     * default 90 days; 0: kept for ever. */
    int64_t audit_retain_ms;
    /* A voter of a leader group (DESIGN §9): the cluster file and this
     * node's id in it; NULL: a single leader, no Raft. A voter needs
     * tls_cert_file and tls_key_file signed by the file's ca. */
    const char *cluster_file;
    uint64_t node_id;
    unsigned election_ms;      /* 0: 1000 */
    bool join;                 /* added to a running group: no bootstrap */
    unsigned snapshot_every;   /* entries between snapshots; 0: 10000 */
} ai_leader_config;

AI_EXPORT void ai_leader_config_init(ai_leader_config *c);
/* Open the home, load or make the TLS material, listen. */
AI_EXPORT ai_code ai_leader_start(const ai_leader_config *c, ai_leader **out,
                                  ai_err *err);
/* The port listened on. */
AI_EXPORT uint16_t ai_leader_port(const ai_leader *l);
/* The CA certificate clients should trust ("" when the operator gave the
 * certificate), and whether this start generated it. */
AI_EXPORT const char *ai_leader_ca_path(const ai_leader *l);
AI_EXPORT bool ai_leader_tls_generated(const ai_leader *l);
/* Stop accepting, finish in-flight requests (at most drain_ms), close. */
AI_EXPORT void ai_leader_stop(ai_leader *l, int drain_ms);


/* ---------------------------------------------------------------------
 * FollowerClient (DESIGN §5, §7): `agent-iam follower` as a library call.
 * A follower keeps a replica of its leader's keys, revocations, provider
 * configs and API keys in its own home (secrets sealed under its own
 * master key), follows the change feed (long-poll), and serves the agent
 * API from the replica over HTTPS. It refuses agents (503) before its
 * first sync and once it has not heard from the leader for max_staleness;
 * admin calls get 409 with the leader's URL; maxUses are counted at the
 * leader (503 when it cannot be reached).
 * ------------------------------------------------------------------- */
typedef struct ai_follower ai_follower;

/* How far a sync has come (ai_follower_config.progress). */
typedef struct ai_follower_progress {
    bool snapshot;           /* true: a snapshot streams; false: changes */
    long long entities;      /* snapshot: entity lines applied so far */
    long long revocations;   /* snapshot: of them, revocations */
    uint64_t bytes;          /* snapshot: bytes of the stream so far */
    int64_t applied_seq;     /* changes: the leader seq now applied */
    int64_t leader_seq;      /* changes: the leader's latest seq */
} ai_follower_progress;

typedef struct ai_follower_config {
    const char *home;           /* NULL: the default home */
    const char *leader_url;     /* required: https://leader:8443 */
    const char *auth_token;     /* required: the leader's --auth-token */
    const char *follower_id;    /* required: 1-64 of A-Z a-z 0-9 . _ - */
    const char *ca_cert_file;   /* CA of the leader; NULL: system CAs */
    bool serve;                 /* listen for agents (default true) */
    const char *host;           /* NULL: 0.0.0.0 */
    int port;                   /* default 8443; 0: any free port */
    const char *tls_cert_file;  /* as the leader's */
    const char *tls_key_file;
    bool insecure_http;
    unsigned threads;           /* 0: one per core */
    int access_log_fd;          /* default 2; -1: none */
    int64_t sync_interval_ms;   /* longest retry wait, default 60 s */
    int64_t max_staleness_ms;   /* refuse agents after, default 1 h */
    int64_t degraded_ms;        /* state thresholds: 5 min, 1 h, 24 h */
    int64_t limited_ms;
    int64_t offline_ms;
    int long_poll_s;            /* change feed wait, default 25 */
    unsigned max_conns;         /* as the leader's */
    unsigned max_conns_per_ip;
    const char *metrics_token;  /* as the leader's */
    bool public_metrics;
    double agent_rate;          /* as the leader's (per follower process) */
    unsigned agent_burst;
    int64_t audit_retain_ms;    /* the follower's own audit rows */
    /* Called on the thread that syncs (ai_follower_sync's caller; the
     * sync thread of ai_follower_start) while a snapshot streams, every
     * 1024 entity lines, and after each batch of changes applied; p is
     * borrowed for the call. It must return quickly and not call back into
     * the follower. NULL (the default): none. */
    void (*progress)(void *ud, const ai_follower_progress *p);
    void *progress_ud;
} ai_follower_config;

AI_EXPORT void ai_follower_config_init(ai_follower_config *c);
/* Open the home and start following (and serving, with c->serve). */
AI_EXPORT ai_code ai_follower_start(const ai_follower_config *c,
                                    ai_follower **out, ai_err *err);
/* One forced sync of the home (snapshot if empty or too far behind,
 * then every pending change), without serving. *applied: the leader seq
 * the replica now reflects. */
AI_EXPORT ai_code ai_follower_sync(const ai_follower_config *c,
                                   int64_t *applied, ai_err *err);
AI_EXPORT uint16_t ai_follower_port(const ai_follower *f);
AI_EXPORT const char *ai_follower_ca_path(const ai_follower *f);
/* "starting", "initial_sync", "connected", "degraded", "limited",
 * "offline". */
AI_EXPORT const char *ai_follower_state(ai_follower *f);
/* The status as JSON (release with ai_free_string). */
AI_EXPORT char *ai_follower_status(ai_follower *f);
AI_EXPORT void ai_follower_stop(ai_follower *f, int drain_ms);


/* ---------------------------------------------------------------------
 * AgentRuntime (DESIGN §7, the README's AgentRuntime): the token of one
 * agent process, kept fresh by a background thread, used for permission
 * checks, delegation, subprocess environments and credentials.
 *
 * Two modes. Local: the runtime opens a broker home and signs with its
 * keys (ai_broker_*). Remote: every operation is an HTTPS call to a leader
 * or follower (docs/http-api.md) with the token as the bearer, so the agent
 * process never holds a signing key; TLS is always verified (the CA file
 * given, else the system's; plain http only to 127.0.0.1/localhost).
 *
 * Thread-safety: every ai_runtime_* call may be made from any thread,
 * concurrently with each other and with the refresher, except
 * ai_runtime_free (no other call may be running). The current token is
 * swapped under a lock; readers always get one whole token (a copy).
 *
 * Callbacks run without the runtime's locks held, so they may call
 * ai_runtime_get_status, ai_runtime_get_serialized_token and the like,
 * but never ai_runtime_stop or ai_runtime_free. on_refresh runs on the
 * refresher thread, or on the thread of a successful ai_runtime_refresh;
 * new_token is borrowed for the call and wiped afterwards: copy it to keep
 * it. on_error runs on the refresher thread only (the other calls return
 * their errors); msg never holds a token.
 *
 * Secrets: tokens are wiped (explicit_bzero) when replaced or freed and
 * never logged or put in an error message.
 * ------------------------------------------------------------------- */
typedef struct ai_runtime ai_runtime;

typedef enum ai_runtime_mode {
    AI_RUNTIME_AUTO = 0, /* remote when cfg->url or $AGENT_IAM_URL, else local */
    AI_RUNTIME_LOCAL,    /* a broker home on this machine */
    AI_RUNTIME_REMOTE    /* a leader or follower over HTTPS */
} ai_runtime_mode;

typedef struct ai_runtime_config {
    const char *token;          /* serialized; NULL: $AGENT_TOKEN */
    ai_runtime_mode mode;       /* default AI_RUNTIME_AUTO */
    const char *home;           /* local: NULL: the default home */
    const char *url;            /* remote: NULL: $AGENT_IAM_URL */
    const char *ca_cert_file;   /* remote: NULL: $AGENT_IAM_CA_CERT, else
                                 * the system's CAs */
    int64_t refresh_before_ms;  /* refresh this long before expiresAt;
                                 * default 5 min (0 means the default) */
    int refresh_ttl_minutes;    /* ttl asked of each refresh; 0: the
                                 * broker's (max(remaining, 1 h)) */
    int64_t retry_min_ms;       /* first retry after a failed refresh,
                                 * doubling; default 1 s */
    int64_t retry_max_ms;       /* longest retry wait, default 60 s */
    long http_timeout_ms;       /* remote: one call, default 15 s */
    void (*on_refresh)(void *ud, const char *new_token);
    void (*on_error)(void *ud, ai_code code, const char *msg);
    void *ud;                   /* passed to both callbacks */
} ai_runtime_config;

/* The defaults above (everything NULL/0, mode AUTO). */
AI_EXPORT void ai_runtime_config_init(ai_runtime_config *c);

/* Make a runtime for cfg's token (NULL cfg: all defaults). The config's
 * strings are copied. Local mode verifies the token against the home now
 * (AI_ETOKEN, AI_EEXPIRED, AI_EREVOKED...); remote mode only decodes it
 * (it has no key) and contacts the server on the first call. No thread is
 * started: see ai_runtime_start. AI_EINVAL: no token (neither cfg->token
 * nor $AGENT_TOKEN), or remote without a usable URL.
 * *out: OUT, NULL on error; release with ai_runtime_free. */
AI_EXPORT ai_code ai_runtime_new(const ai_runtime_config *cfg,
                                 ai_runtime **out, ai_err *err);

/* fromSerialized: ai_runtime_new with cfg (NULL: defaults) whose token is
 * `token` (cfg->token is ignored). */
AI_EXPORT ai_code ai_runtime_from_serialized(const char *token,
                                             const ai_runtime_config *cfg,
                                             ai_runtime **out, ai_err *err);

/* fromEnvironment: ai_runtime_new with cfg (NULL: defaults) whose token is
 * $AGENT_TOKEN (cfg->token is ignored); AI_EINVAL when it is unset. With
 * the default mode (AUTO) a process whose parent set $AGENT_IAM_URL (and
 * $AGENT_IAM_CA_CERT) is remote, else it uses the default home. */
AI_EXPORT ai_code ai_runtime_from_environment(const ai_runtime_config *cfg,
                                              ai_runtime **out, ai_err *err);

/* Start the background refresher when the token holds a scope matching
 * system:token:refresh (else AI_OK and no thread). It sleeps until
 * expiresAt - refresh_before_ms, refreshes, swaps the token and calls
 * on_refresh; on failure it calls on_error and retries after
 * retry_min_ms, doubling up to retry_max_ms, never later than the expiry.
 * When the token cannot be extended (expiresAt has reached maxExpiresAt,
 * or it has none) or has expired, it calls on_error once and ends. A
 * second start while running does nothing; a start after stop restarts. */
AI_EXPORT ai_code ai_runtime_start(ai_runtime *rt, ai_err *err);

/* Stop the refresher and join it: returns within a second even in the
 * middle of a backoff wait or an HTTPS call (which is aborted). No
 * callback runs once it returns. NULL or not started: nothing. */
AI_EXPORT void ai_runtime_stop(ai_runtime *rt);

/* Stop, wipe the token and free. NULL is fine. */
AI_EXPORT void ai_runtime_free(ai_runtime *rt);

/* checkPermission with the current token: AI_OK allowed; AI_EDENIED (or
 * AI_EEXPIRED: a constraint's time window, local only) with the reason;
 * AI_ETOKEN, AI_EEXPIRED, AI_EREVOKED when the token itself is not valid;
 * remote: AI_EUNAVAILABLE when the server cannot be reached. */
AI_EXPORT AI_WUR ai_code ai_runtime_check_permission(ai_runtime *rt,
                                                     const char *scope,
                                                     const char *resource,
                                                     ai_err *err);

/* Delegate a narrower token from the current one (local:
 * ai_broker_delegate; remote: POST /v1/tokens/delegate with the
 * DelegationRequest JSON of req). *child_token (OUT: NULL on error) is the
 * serialized child: release it with ai_free_string (which wipes it). */
AI_EXPORT ai_code ai_runtime_delegate(ai_runtime *rt,
                                      const ai_delegation *req,
                                      char **child_token, ai_err *err);

/* createSubprocessEnv: a NULL-terminated copy of the current environ with
 * AGENT_TOKEN set to a child delegated with req (any AGENT_TOKEN present is
 * replaced, never duplicated). So that the child's
 * ai_runtime_from_environment finds the same broker, a remote runtime also
 * sets AGENT_IAM_URL (and AGENT_IAM_CA_CERT when it has one), and a local
 * runtime opened on an explicit home sets AGENT_IAM_HOME. Reading environ
 * races with setenv on another thread (as getenv does).
 * *envp (OUT: NULL on error): for execve / posix_spawn; release it with
 * ai_runtime_free_env, which wipes it. */
AI_EXPORT ai_code ai_runtime_create_subprocess_env(ai_runtime *rt,
                                                   const ai_delegation *req,
                                                   char ***envp,
                                                   ai_err *err);
AI_EXPORT void ai_runtime_free_env(char **envp);

/* A copy of the current serialized token (*out: OUT, NULL on out of
 * memory; release with ai_free_string). AI_OK or AI_ENOMEM. */
AI_EXPORT ai_code ai_runtime_get_serialized_token(ai_runtime *rt,
                                                  char **out);

/* The current token as an ai_token (*out: OUT, a new reference; release
 * with ai_token_free). Local: verified against the home now (so a revoked
 * token gives AI_EREVOKED). Remote: decoded only (ai_token_deserialize:
 * the runtime has no key), so ai_token_is_verified is false; the server
 * verifies on every call. */
AI_EXPORT AI_WUR ai_code ai_runtime_get_token(ai_runtime *rt,
                                              ai_token **out, ai_err *err);

/* getStatus as a JSON object: {"agentId","tokenId","expiresAt",
 * "maxExpiresAt"?,"refreshEnabled" (the refresher is running and will
 * refresh),"lastRefreshAt" (ISO or null),"refreshFailures" (failures since
 * the last success),"lastError" (string or null),"mode":"local"|"remote"}.
 * *json (OUT: NULL on out of memory): release with ai_free_string. */
AI_EXPORT ai_code ai_runtime_get_status(ai_runtime *rt, char **json);

/* refresh(): refresh the current token now (local: ai_broker_refresh;
 * remote: POST /v1/tokens/refresh), ttl_minutes 0 for the broker's
 * default; on success swap it in and call on_refresh. The token is
 * unchanged on error. */
AI_EXPORT ai_code ai_runtime_refresh(ai_runtime *rt, int ttl_minutes,
                                     ai_err *err);

/* getCredential with the current token (local: ai_broker_get_credential;
 * remote: POST /v1/credentials). *result_json (OUT: NULL on error) is the
 * CredentialResult and holds secrets: release it with ai_free_string. */
AI_EXPORT AI_WUR ai_code ai_runtime_get_credential(ai_runtime *rt,
                                                   const char *scope,
                                                   const char *resource,
                                                   char **result_json,
                                                   ai_err *err);

#ifdef __cplusplus
}
#endif
#endif /* AGENT_IAM_H */
