/*
 * core.h - internals of src/core shared by its files and by the modules
 * built on it. Pure token logic: no I/O, no globals, no SQLite, no sockets.
 */
#ifndef AI_CORE_H
#define AI_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "agent_iam.h"

/* ---- allocation (alloc.c): every allocation of the library ---------- */

void *ai_malloc(size_t n);
void *ai_calloc(size_t count, size_t size);
void ai_free(void *p);
/* A copy of s in ai_malloc'd memory (ai_free it); NULL for NULL or out of
 * memory. */
char *ai_strdup(const char *s);
/* Did a jansson allocation fail on this thread since the last clear?
 * (Only known once ai_set_alloc_funcs has installed the hook.) */
void alloc_json_oom_clear(void);
bool alloc_json_oom(void);

/* ---- errors (err.c) --------------------------------------------------- */

/* Fill err (first error wins: a filled err is left alone) and return code.
 * The message is one line: control characters are replaced. */
ai_code ai_err_set(ai_err *err, ai_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ai_err_clear(ai_err *err);
/* The error an entry point fills: err, or local when the caller gave none
 * (its message is needed even then), cleared. */
static inline ai_err *ai_err_start(ai_err *err, ai_err *local)
{
    if (err == NULL)
        err = local;
    ai_err_clear(err);
    return err;
}
/* The machine name of a code, as the HTTP API and `--json` errors give it
 * ("token_revoked"; "internal_error" for the codes a caller cannot act on). */
const char *err_code_name(ai_code code);
/* The code a machine name names (the inverse of err_code_name;
 * "internal_error" is AI_EINTERNAL); false for any other name or NULL. */
bool err_code_parse(const char *name, ai_code *out);
/* The same for a message made of two constant strings (no formatting:
 * the path that rejects forged tokens stays cheap). */
ai_code ai_err_set2(ai_err *err, ai_code code, const char *a, const char *b);

/* ---- growable byte buffer (buf.c) ------------------------------------- */

typedef struct ai_buf {
    char *p;
    size_t len, cap;
    bool oom; /* sticky: a failed grow makes every later append a no-op */
} ai_buf;

void buf_init(ai_buf *b);
void buf_free(ai_buf *b);       /* cleanses: buffers may hold secrets */
bool buf_reserve(ai_buf *b, size_t extra);
void buf_put_u64(ai_buf *b, uint64_t v);

/* Appends (inline: the token writer calls them for every byte it writes).
 * The buffer stays NUL-terminated. */
static inline void buf_put(ai_buf *b, const void *p, size_t n)
{
    if (b->cap - b->len <= n && !buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void buf_putc(ai_buf *b, char c)
{
    if (b->cap - b->len <= 1 && !buf_reserve(b, 1))
        return;
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

static inline void buf_puts(ai_buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}
/* Detach a NUL-terminated copy (malloc'd) or NULL on OOM. */
char *buf_steal(ai_buf *b);

/* ---- base64url (b64.c) ------------------------------------------------ */

size_t b64url_encoded_len(size_t n);
/* Are all n bytes of s in the base64url alphabet? */
bool b64url_valid(const char *s, size_t n);
/* Writes b64url_encoded_len(n) chars plus a NUL. */
void b64url_encode(const unsigned char *in, size_t n, char *out);
/* Strict: alphabet A-Z a-z 0-9 - _, no padding, canonical trailing bits.
 * out needs (len / 4) * 3 + 2 bytes. Returns false on any bad input. */
bool b64url_decode(const char *in, size_t len, unsigned char *out,
                   size_t *outlen);

/* ---- time (time.c) ---------------------------------------------------- */

bool time_parse(const char *s, size_t len, int64_t *ms);

/* ---- the clocks (clock.c) --------------------------------------------- */

/* The one reader of each clock, for the modules above core; no function
 * of core calls them (its logic takes `now_ms` from the caller, so tests
 * fix it). Thread-safe. */

/* Wall-clock ms since 1970 (CLOCK_REALTIME): timestamps, expiry, the time
 * a command carries. */
int64_t time_now_ms(void);
/* Monotonic ns from an arbitrary origin (CLOCK_MONOTONIC): durations and
 * deadlines that a step of the wall clock must not stretch. */
int64_t time_mono_ns(void);
/* OUT *ts: the moment ms from now on `clock`, as pthread_cond_timedwait
 * takes it (clk: the clock the condition variable was made with). */
void time_deadline(clockid_t clk, int64_t ms, struct timespec *ts);

/* ---- wiping parsed JSON (json_wipe.c) ---------------------------------- */

/* Zero every string in j, recursively (j must not be shared with a holder
 * that still needs it). */
struct json_t;
void json_wipe(struct json_t *j);
/* json_wipe then json_decref, when this is the last reference (else only
 * the decref). NULL is fine. */
void json_wipe_decref(struct json_t *j);

/* ---- JSON writing, JavaScript JSON.stringify style (json_write.c) ----- */

void jw_str(ai_buf *b, const char *s, size_t n);
void jw_key(ai_buf *b, const char *k, bool first); /* ,"k": */
void jw_time(ai_buf *b, int64_t ms);
/* Is k an array index ("0" .. "4294967294" in canonical form)? JavaScript
 * writes such keys first, ascending, then the rest in insertion order. */
bool jw_array_index(const char *k, size_t n, uint32_t *idx);
/* Members in that order: the element after `prev` (start with prev >= n) of
 * n structs of `stride` bytes whose name (a char *) is at `name_off`; n at
 * the end. */
size_t jw_js_next(const void *base, size_t n, size_t stride, size_t name_off,
                  size_t prev);

/* ---- strict JSON reader (json_read.c) --------------------------------- */

typedef struct jr {
    char *p;       /* mutable: strings are unescaped in place */
    char *end;
    int depth;
    const char *why; /* first error, static text */
    bool input;      /* user input: unknown fields refused, budgets ignored */
    bool esc;        /* set by jr_string when a string was not plain ASCII */
} jr;

bool jr_fail(jr *r, const char *why);

/* Skip whitespace (inline: called between every two tokens). */
static inline void jr_ws(jr *r)
{
    if (r->p < r->end && (unsigned char)*r->p > ' ')
        return; /* compact JSON: the common case */
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* Skip whitespace, then expect c. */
static inline bool jr_lit(jr *r, char c)
{
    jr_ws(r);
    if (r->p >= r->end || *r->p != c)
        return jr_fail(r, "malformed JSON");
    r->p++;
    return true;
}

/* Skip whitespace: is the next byte c? (Does not consume it.) */
static inline bool jr_peek(jr *r, char c)
{
    jr_ws(r);
    return r->p < r->end && *r->p == c;
}
/* The rest of jr_string from p, the first byte of the string at start
 * that is not plain ASCII (or where the fast scan stopped). */
bool jr_string_rest(jr *r, char *start, char *p, char **s, size_t *n);

#ifdef __SSE2__
/* Bit i set when p[i] (of 16) is '"', '\\' or, as a signed byte, below
 * 0x20: so bytes of 0x80 and above count too. */
static inline unsigned jr_special16(const char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                     _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
        _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* Read a string in place: *s points into the buffer, NUL-terminated.
 * Inline fast path: a plain ASCII string is found with 16-byte compares,
 * 32 bytes a step so most strings take one step and one well-predicted
 * branch, and is terminated in place; anything else (escapes, non-ASCII,
 * no SSE2) goes to jr_string_rest. */
static inline bool jr_string(jr *r, char **s, size_t *n)
{
    char *p;

    if (!jr_lit(r, '"'))
        return false;
    p = r->p;
#ifdef __SSE2__
    unsigned bits = 0;
    while (r->end - p >= 32 &&
           (bits = jr_special16(p) | jr_special16(p + 16) << 16) == 0)
        p += 32;
    if (bits == 0) /* the tail of the buffer: 16 bytes a step */
        while (r->end - p >= 16 && (bits = jr_special16(p)) == 0)
            p += 16;
    if (bits != 0) {
        p += __builtin_ctz(bits);
        if (*p == '"') {
            *p = '\0';
            *s = r->p;
            *n = (size_t)(p - r->p);
            r->p = p + 1;
            return true;
        }
    }
#endif
    return jr_string_rest(r, r->p, p, s, n);
}
bool jr_bool(jr *r, bool *v);
/* Plain JSON integer within [lo, hi]: no fraction, no exponent. */
bool jr_int(jr *r, int64_t lo, int64_t hi, int64_t *v);
/* Validate and skip any value (duplicate keys refused at every level). */
bool jr_skip(jr *r);
/* Validate any value and write it compactly, JS style, to out. */
bool jr_canon(jr *r, ai_buf *out);

/* ---- keyring (keyring.c) ---------------------------------------------- */

typedef struct key_entry {
    uint32_t version;
    int64_t verify_until; /* 0: no limit */
    /* SHA-256 states after absorbing key ^ ipad and key ^ opad: HMAC
     * without rehashing the key (an OpenSSL SHA256_CTX, kept opaque). */
    _Alignas(16) unsigned char ipad_state[128];
    _Alignas(16) unsigned char opad_state[128];
} key_entry;

/* The entry for `version` usable at `now`, or NULL. */
const key_entry *keyring_find(const ai_keyring *kr, uint32_t version,
                              int64_t now_ms);
/* The signing key if it is usable at now_ms, else NULL. */
const key_entry *keyring_signing(const ai_keyring *kr, int64_t now_ms);
/* HMAC-SHA256 over the concatenation of two byte runs. */
void key_hmac2(const key_entry *k, const void *a, size_t an, const void *b,
               size_t bn, unsigned char mac[32]);
/* An OpenSSL pem_password_cb that never prompts on the terminal for a
 * passphrase: an encrypted PEM key is refused instead. */
int key_no_passphrase(char *buf, int size, int rwflag, void *u);

/* ---- token model (token.c) -------------------------------------------- */

typedef struct tk_budget {
    char *id;
    uint32_t max_uses;
} tk_budget;

typedef struct tk_constraint {
    char *key;
    char **resources;
    size_t nres;
    bool has_res;
    bool has_nb, has_na, has_max;
    int64_t nb, na;
    uint32_t max_uses;
    tk_budget *budgets;
    size_t nbudgets;
    bool has_budgets;
} tk_constraint;

/* Tri-state boolean of the MAP objects. */
enum { TB_UNSET = 0, TB_FALSE = 1, TB_TRUE = 2 };

typedef struct tk_federation {
    uint8_t cross, further; /* TB_* */
    char **systems;
    size_t nsystems;
    bool has_systems;
    char *origin;
    bool has_hop, has_max_hops;
    int hop, max_hops;
} tk_federation;

#define TK_CAP_BOOLS 6
extern const char *const tk_cap_names[TK_CAP_BOOLS];
extern const char *const tk_visibility_names[4];

typedef struct tk_custom {
    char *name;
    bool value;
} tk_custom;

typedef struct tk_caps {
    uint8_t b[TK_CAP_BOOLS]; /* TB_* in the order of tk_cap_names */
    int visibility;          /* -1 unset, else index of tk_visibility_names */
    tk_custom *custom;
    size_t ncustom;
    bool has_custom;
} tk_caps;

typedef struct arena_chunk arena_chunk;

struct tk_views {
    _Atomic(char *) cons, fed, caps, json;
};

struct ai_token {
    atomic_int refs;
    bool verified;
    char *agent_id, *parent_id;
    char **scopes;
    size_t nscopes;
    tk_constraint *cons;
    size_t ncons;
    bool delegatable;
    int max_depth, depth;
    int64_t expires_at, max_expires_at; /* 0: absent */
    char *identity;                     /* canonical JSON text or NULL */
    bool has_fed, has_caps;
    tk_federation fed;
    tk_caps caps;
    char *token_id;
    char **ancestors;
    size_t nanc;
    char **ancestor_agents; /* agentIds of the ancestors, oldest first */
    size_t nanc_agents;
    uint32_t key_version;
    bool has_key_version;
    char sig[44];
    char *wire;       /* serialized form */
    size_t wire_len;
    char *json;       /* the signed JSON J' when minted here, else NULL */
    size_t json_len;
    /* Set by ai_token_delegate only, never signed: the requested MAP
     * fields that the parent's narrowed ("federation.maxHops", ...). */
    char **narrowed;
    size_t nnarrowed;
    struct tk_views *views; /* lazily built JSON text for accessors */
    arena_chunk *arena;
};

ai_token *token_alloc(size_t arena_hint);
void *tk_alloc(ai_token *t, size_t n);      /* zeroed, aligned; NULL OOM */
char *tk_strdup(ai_token *t, const char *s, size_t n);
/* The bytes t's own allocation holds (its head and arena chunks), not the
 * JSON views its accessors build later. */
size_t token_footprint(const ai_token *t);

/* Strictly parse J' (mutated in place) into t. On failure returns false
 * and sets *why to static text. */
bool token_parse(ai_token *t, char *json, size_t len, const char **why);

/* Serialize t's fields (in DESIGN order) to J, sign with k, and set
 * t->sig, t->json, t->wire. */
ai_code token_sign(ai_token *t, const key_entry *k, ai_err *err);

/* Write fields of the token to a buffer, as in the signed JSON. */
void token_write_constraints(ai_buf *b, const ai_token *t);
void token_write_federation(ai_buf *b, const tk_federation *f);
void token_write_caps(ai_buf *b, const tk_caps *c);

/* Readers of the token's objects (codec.c), shared with input.c. */
bool codec_read_constraints(jr *r, ai_token *t, tk_constraint **out,
                            size_t *nout);
bool codec_read_federation(jr *r, ai_token *t, tk_federation *f);
bool codec_read_caps(jr *r, ai_token *t, tk_caps *c);
bool codec_read_identity(jr *r, ai_token *t, char **out);

/* Is s[0..n) valid UTF-8 without NUL (json_read.c)? */
bool utf8_valid(const char *s, size_t n);

/* Parse user-supplied constraint and MAP JSON into token fields
 * (input.c). Everything is copied into t's arena. */
ai_code input_constraints(ai_token *t, const char *json, tk_constraint **out,
                          size_t *n, ai_err *err);
ai_code input_identity(ai_token *t, const char *json, char **out,
                       ai_err *err);
ai_code input_federation(ai_token *t, const char *json, tk_federation *out,
                         ai_err *err);
ai_code input_caps(ai_token *t, const char *json, tk_caps *out, ai_err *err);
/* Copy validated scopes (1..AI_LIST_MAX) into t->scopes. */
ai_code input_scopes(ai_token *t, const char *const *scopes, size_t n,
                     ai_err *err);
/* Copy a validated id string (agentId): 1..AI_ID_MAX bytes of UTF-8. */
ai_code input_id(ai_token *t, const char *s, const char *what, char **out,
                 ai_err *err);

/* 1..max characters of [A-Za-z0-9._-]: names of API keys and providers,
 * follower ids. */
bool word_valid(const char *s, size_t max);

/* Validity of a scope string (non-empty, at most AI_SCOPE_MAX bytes, no
 * control characters). */
bool scope_valid(const char *s, size_t n);

/* n random bytes (rand.c); false if the generator fails. Thread-safe. */
bool rand_fill(void *out, size_t n);

/* Glob matching by sets of pattern positions, O(|s| * |p| / 64): what
 * ai_glob_matches uses for long inputs (glob.c). pn <= AI_PATTERN_MAX. */
bool glob_match_sets(const char *p, size_t pn, const char *s);

/* Glob containment (glob.c) charging each step of the walk to *budget:
 * 1 contained, 0 not, -1 undecided (the budget or the state bound ran
 * out), -2 out of memory; callers treat both as "not contained". One delegation shares one
 * budget across all its resource patterns, so its cost is bounded
 * whatever the patterns. */
#define GLOB_STEP_BUDGET 20000
#define GLOB_DELEGATION_BUDGET 100000
int glob_within_budget(const char *inner, const char *outer,
                       uint64_t *budget);

/* Does scope name one concrete scope (no segment that is `*`)? */
bool scope_concrete(const char *s);

/* Fresh random tokenId into t (arena). */
ai_code token_new_id(ai_token *t, ai_err *err);

/* Token-level checks shared by verify and the cache. */
ai_code token_check_live(const ai_verifier *v, const ai_token *t,
                         int64_t now_ms, ai_err *err);

#endif /* AI_CORE_H */
