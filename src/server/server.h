/*
 * server.h - the HTTPS plumbing shared by the leader and the followers
 * (DESIGN §4): libmicrohttpd over TLS with a thread pool, routing, bearer
 * authentication, JSON bodies capped at 64 KiB, timeouts, the access log,
 * metrics, health routes, and the agent API handlers.
 *
 * THREADS: every worker thread of the pool gets its own srv_thread (a store
 * handle, a broker in server mode and a verified-token cache), made on its
 * first request. A watcher thread polls the home's SQLite data_version
 * every SRV_WATCH_MS and bumps the server's generation (and wakes the
 * long-polls) when any connection (another thread, or another process
 * such as the CLI) committed; a
 * worker re-syncs its views only when the generation moved, so a request
 * never reads SQLite to verify a token. Long-polls are suspended
 * connections: they hold no worker while they wait.
 */
#ifndef AI_SERVER_H
#define AI_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_iam.h"
#include "broker/broker.h"
#include "store/store.h"

#define SRV_BODY_MAX (64 * 1024)
/* A declared body over SRV_BODY_MAX up to this size is read and dropped
 * before the 413 (so the client sees it); a larger one is refused at once. */
#define SRV_DRAIN_MAX (1024 * 1024)
#define SRV_WATCH_MS 20
/* srv_stop: how long idle keep-alive connections may still bring a request
 * (answered, with Connection: close) before they are closed. */
#define SRV_DRAIN_QUIET_MS 250
/* Per-connection memory of libmicrohttpd (request line, headers, read
 * buffer): room for the largest token in a header. MHD clears the pool
 * between requests, so it is kept small. */
#define SRV_CONN_MEMORY (32 * 1024)
/* Connection limits (DESIGN §8): the TLS handshake and a whole request
 * header within SRV_HEADER_MS of the accept, the body within
 * SRV_BODY_MS of its header; keep-alive idle time; how
 * many connections in all and from one address. */
#define SRV_HEADER_MS 10000
#define SRV_BODY_MS 30000 /* the body (at most 64 KiB) after its header */
#define SRV_IDLE_S 30
#define SRV_MAX_CONNS 4096
#define SRV_MAX_CONNS_PER_IP 64
/* The verified-token caches of a server, all its worker threads together
 * (each thread keeps one, of SRV_TOKEN_CACHE_BYTES / threads): a token
 * verified again costs a lookup instead of an HMAC and a parse. */
#define SRV_TOKEN_CACHE_BYTES (16u * 1024 * 1024)
/* Writes of one agent (DESIGN §8): per second, with a burst of twice
 * that (ratelimit.h). */
#define SRV_AGENT_RATE 50.0
/* TLS 1.3, and TLS 1.2 with ECDHE and AEAD ciphers only. */
#define SRV_TLS_PRIORITIES                                                   \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"    \
    "+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:"    \
    "+ECDHE-RSA"

typedef struct srv srv;
typedef struct srv_metrics srv_metrics;
typedef struct srv_storage srv_storage;
struct ratelimit;

/* Who may call a route. */
typedef enum srv_auth {
    SRV_AUTH_NONE = 0,  /* everyone */
    SRV_AUTH_AGENT,     /* Bearer <agent token>, verified before the handler */
    SRV_AUTH_FOLLOWER,  /* Bearer <follower credential> (X-Follower-Id) */
    SRV_AUTH_ADMIN,     /* Bearer <admin secret>; 404 when there is none */
    SRV_AUTH_METRICS    /* admin or metrics secret, or everyone when the
                         * server was started with public_metrics */
} srv_auth;

/* Who a follower request comes from (SRV_AUTH_FOLLOWER). */
typedef struct srv_follower {
    bool shared;              /* the shared --auth-token (no secrets) */
    char providers[513];      /* granted: "a,b", "*" or "" */
    unsigned char key[32];    /* its transport key (wiped after) */
} srv_follower;

/* What a worker thread owns. */
typedef struct srv_thread {
    store *st;
    ai_broker *broker;
    ai_token_cache *cache;
    uint64_t gen; /* the server generation its views reflect */
    struct srv_thread *next;
} srv_thread;

typedef struct srv_req srv_req;

/* A route handler: fill the reply (srv_reply_json / srv_reply_error), or
 * call srv_suspend to be called again later (long-poll). */
typedef void (*srv_handler)(srv_req *rq);

typedef struct srv_route {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" */
    const char *path;    /* exact, or a prefix ending in '/' when prefix */
    bool prefix;         /* the rest of the path is rq->tail (one segment) */
    srv_auth auth;
    srv_handler fn;
    const char *name;    /* for metrics and the log ("/v1/admin/apikeys/{name}") */
} srv_route;

struct srv_req {
    srv *s;
    srv_thread *th;
    const srv_route *route;
    void *app;               /* the embedding role's state (leader, follower) */
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *tail;        /* prefix routes: the segment after the prefix */
    const char *body;        /* NUL-terminated; len bytes */
    size_t len;
    const char *bearer;      /* the Authorization bearer value (agent token) */
    size_t bearer_len;
    ai_token *token;         /* SRV_AUTH_AGENT: the verified token */
    char follower[65];       /* SRV_AUTH_FOLLOWER: its id */
    srv_follower fol;        /* SRV_AUTH_FOLLOWER: grants and key */
    char subject[160];       /* for the log: agent=... token=... */
    int64_t now;             /* ms, when the request was dispatched */
    /* the reply */
    int status;
    char *out;               /* ai_malloc'd body */
    size_t out_len;
    const char *ctype;
    bool wipe_out;           /* the body holds secrets: wipe when sent */
    unsigned retry_after;    /* > 0: a Retry-After header, seconds */
    char location[512];      /* "": none; else a Location header. Set
                              * to a leader's URL before srv_reply_ai of
                              * AI_EUNAVAILABLE: a 307 there instead */
    /* a streamed reply (srv_reply_stream) */
    long (*stream)(void *ud, char *buf, size_t max);
    void *stream_ud;
    void (*stream_free)(void *ud);
    /* long-poll */
    bool suspended;
    int64_t deadline;        /* ms; kept across resumes (0: not set) */
};

/* Hooks of the role: what /v1/status and /metrics add, and what the
 * agent API needs from it (a follower consumes uses at the leader). */
typedef struct srv_role {
    const char *name;                          /* "leader", "follower" */
    void (*status)(void *app, srv_thread *th, json_t *out);
    void (*metrics)(void *app, srv_thread *th, char **buf, size_t *len,
                    size_t *cap);
    bool (*ready)(void *app);
    /* NULL: agent requests are served; else a reason to answer 503. */
    const char *(*refuse_agents)(void *app);
    /* Called by the watcher thread after each poll (every SRV_WATCH_MS)
     * with its own store handle: upkeep such as pruning. */
    void (*tick)(void *app, srv *s, store *st, int64_t now);
    /* Called once for each worker thread's state when it is made. */
    void (*thread_init)(void *app, srv_thread *th);
    /* A follower credential registered in the home (not the shared one):
     * fill rq->follower and rq->fol. AI_ENOTFOUND: no such follower. NULL:
     * only the shared credential is known. */
    ai_code (*follower_find)(void *app, srv_req *rq, const char *secret,
                             size_t n, ai_err *err);
    /* A credential this home cannot give (its provider is not held here):
     * answer rq by asking the leader (a follower), true when it did. */
    bool (*forward_credential)(void *app, srv_req *rq);
} srv_role;

typedef struct srv_config {
    const char *home;
    const char *host;         /* NULL: 0.0.0.0 */
    int port;                 /* 0: any (srv_port tells) */
    const char *tls_cert_pem; /* NULL with insecure_http */
    const char *tls_key_pem;
    bool insecure_http;
    const char *follower_secret; /* NULL: follower routes refuse everyone */
    const char *admin_secret;    /* NULL: admin routes answer 404 */
    const char *metrics_secret;  /* also opens /metrics and /v1/status */
    bool public_metrics;         /* /metrics and /v1/status for everyone */
    unsigned threads;         /* 0: the number of cores */
    unsigned max_connections; /* 0: SRV_MAX_CONNS */
    unsigned max_conns_per_ip; /* 0: SRV_MAX_CONNS_PER_IP */
    unsigned idle_timeout_s;  /* 0: SRV_IDLE_S */
    int access_log_fd;        /* -1: none; else one line per request */
    bool replica;             /* never make a signing key (a follower) */
    double agent_rate;        /* agent writes per second per agent; 0: off */
    unsigned agent_burst;     /* 0: 2 x agent_rate */
    int64_t audit_retain_ms;  /* audit rows older are deleted; 0: kept */
    const srv_route *routes;
    size_t nroutes;
    const srv_role *role;
    void *app;
} srv_config;

/* Start serving (returns once listening). */
ai_code srv_start(const srv_config *cfg, srv **out, ai_err *err);
/* Stop accepting, let in-flight requests finish (at most drain_ms; idle
 * keep-alive connections may bring one more request for up to
 * SRV_DRAIN_QUIET_MS), end long-polls, stop the workers, close the
 * stores. NULL is fine. */
void srv_stop(srv *s, int drain_ms);
uint16_t srv_port(const srv *s);
/* The home the server serves. */
const char *srv_home(const srv *s);
/* The role the server was started with (may be NULL). */
const srv_role *srv_role_of(const srv *s);
/* Whether the shared follower secret (--auth-token) is in use. */
bool srv_shared_follower_secret(const srv *s);
/* True once srv_stop began. */
bool srv_draining(srv *s);
/* The watcher's store handle, for hooks on the watcher thread only. */
store *srv_watch_store(srv *s);

/* Something was committed in this process: bump the generation, so the
 * next request on any worker reads it. The long-polls are resumed by the
 * watcher when it sees the commit (within SRV_WATCH_MS), as for a commit
 * of another process: one wake-up per commit. Call it after the commit.
 * Any thread. */
void srv_changed(srv *s);
/* The generation (changes seen so far). */
uint64_t srv_generation(srv *s);

/* Bring the thread's views up to the current generation. */
ai_code srv_sync(srv_req *rq, ai_err *err);

/* Replies. Both take ownership of `body` (a json_t). */
void srv_reply_json(srv_req *rq, int status, json_t *body);
/* Same, and the body holds secrets (wiped after it is sent). */
void srv_reply_secret(srv_req *rq, int status, json_t *body);
void srv_reply_error(srv_req *rq, int status, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The status and code of a library error (docs/http-api.md). */
void srv_reply_ai(srv_req *rq, ai_code code, const char *msg);
/* 307 to base (a scheme and authority, "https://10.0.0.1:8443") with
 * this request's path: the same method and body go to the leader. */
void srv_reply_redirect(srv_req *rq, const char *base, const char *why);
/* A constant JSON text (the hot path's fixed answers). */
void srv_reply_static(srv_req *rq, int status, const char *json);
/* Raw text reply (metrics): takes the ai_malloc'd buffer. */
void srv_reply_text(srv_req *rq, int status, const char *ctype, char *text,
                    size_t len);

/* A reply produced piece by piece (chunked): fn fills buf with up to max
 * bytes and returns how many, 0 at the end, -1 on error (the connection
 * is then cut, so the client sees an incomplete answer); free_fn releases
 * ud once the reply is done or abandoned. Runs on the worker thread. */
void srv_reply_stream(srv_req *rq, int status, const char *ctype,
                      long (*fn)(void *ud, char *buf, size_t max), void *ud,
                      void (*free_fn)(void *ud));

/* Parse the body as a JSON object; on failure reply 400 and return NULL. */
json_t *srv_body_object(srv_req *rq, bool empty_ok);
/* Optional string / integer members: false (after a 400 reply) when the
 * member has the wrong type or is out of range. */
bool srv_str(srv_req *rq, json_t *o, const char *key, bool required,
             const char **out);
bool srv_int(srv_req *rq, json_t *o, const char *key, long long min,
             long long max, bool *present, long long *out);

/* Long-poll: hold the request until the watcher sees a change, or until
 * deadline_ms; the handler is then called again. */
void srv_suspend(srv_req *rq, int64_t deadline_ms);

/* The query parameter `key` of the request, or NULL. */
const char *srv_query(srv_req *rq, const char *key);

/* Metrics (metrics.c). */
srv_metrics *srv_get_metrics(srv *s);
/* The per-agent limiter (NULL: no limit) and the disk's state. */
struct ratelimit *srv_get_ratelimit(srv *s);
srv_storage *srv_get_storage(srv *s);
/* A write of the role's own (a follower's replication) failed with code:
 * AI_ESTORAGE_FULL marks the store full as a request's failure does (one
 * log line for the episode; /readyz, /v1/status and /metrics say it) and
 * returns true. Any other code, or s NULL: false, nothing done.
 * Any thread. */
bool srv_store_failed(srv *s, ai_code code, const char *msg);
void metrics_credential(srv_metrics *m, const char *provider, bool ok);

/* Append n routes to a role's table of cap entries (those that do not fit
 * are dropped: the tables are sized for the routes there are). */
void srv_routes_add(srv_route *dst, size_t *len, size_t cap,
                    const srv_route *src, size_t n);

/* The agent API routes (agent_api.c) and the routes every role serves
 * (health.c), for the role's table. */
extern const srv_route srv_agent_routes[];
extern const size_t srv_agent_nroutes;
extern const srv_route srv_common_routes[];
extern const size_t srv_common_nroutes;

/* Append printf text to a growing buffer (metrics and status text). */
bool srv_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- JSON bodies from their bytes (body.c) ---------------------------- */

/* Read from the bytes alone (no connection, no store), so that a handler
 * and a test or fuzz target parse a body through the same code.
 * body_object and body_int_only clear err first; body_str and body_int do
 * not (called in a row, the first error wins). AI_EINVAL (a handler's 400
 * "bad_request") names the first problem; AI_ENOMEM is a 500. Strings
 * handed back are borrowed from the parsed object. Thread-safe. */

/* The body as a JSON object (duplicate members refused). empty_ok: an
 * empty body is {}. NULL on error: AI_EINVAL "malformed JSON body: ..."
 * or "the body must be a JSON object". New reference. */
json_t *body_object(const char *body, size_t len, bool empty_ok, ai_err *err);

/* A string member without NUL bytes: *out borrowed from o; NULL when
 * absent or null, which is an error only when required. false with
 * AI_EINVAL ("\"key\" is required", "\"key\" must be a string"). */
bool body_str(const json_t *o, const char *key, bool required,
              const char **out, ai_err *err);

/* An integer member in [min, max]: *present tells whether it was given
 * (absent or null: false, *out untouched). false with AI_EINVAL "\"key\"
 * must be a whole number from min to max". */
bool body_int(const json_t *o, const char *key, long long min, long long max,
              bool *present, long long *out, ai_err *err);

/* An empty body ({}) or an object whose only member read is key, an
 * optional integer in [min, max] (as body_int). */
ai_code body_int_only(const char *body, size_t len, const char *key,
                      long long min, long long max, bool *present,
                      long long *out, ai_err *err);

/* ---- TLS material (tls.c) --------------------------------------------- */

typedef struct srv_tls {
    char *cert_pem;      /* server certificate chain, PEM (ai_malloc'd) */
    char *key_pem;       /* server private key, PEM (ai_malloc'd; wiped by srv_tls_clear) */
    char cert_path[4096];/* where the certificate came from */
    char ca_path[4096];  /* the CA certificate clients should trust ("" when not known, i.e. operator-supplied material) */
    bool generated;      /* true when this call created the material */
} srv_tls;

/* Find the server's TLS material: cert_path/key_path when given (both or neither, else AI_EINVAL);
 * else $AGENT_IAM_TLS_CERT / $AGENT_IAM_TLS_KEY when set; else <home>/tls/server.pem and <home>/tls/server.key
 * when they exist; else generate in <home>/tls (directory 0700): ca.pem, ca.key (0600), server.pem, server.key (0600):
 * a local CA (EC P-256, 10 years, CA:TRUE, keyCertSign) and a server certificate signed by it (EC P-256, 825 days,
 * serverAuth, SANs: DNS:localhost, IP:127.0.0.1, IP:::1, and DNS:<gethostname()> when it is a valid DNS name),
 * written atomically (temp file + rename, keys created 0600 with O_EXCL, never world readable at any moment).
 * A key file readable by group/others is refused (AI_EINVAL, naming the file and "chmod 600"), as is a key that
 * does not match the certificate, an unreadable/garbage PEM, or an expired certificate (clear message naming the path).
 * The key text never appears in an error message.
 *
 * An empty string counts as not given, for the paths and the variables.
 * <home> must exist; only <home>/tls is created. Both strings are
 * re-encoded by OpenSSL (certificates in file order, the key as PKCS#8),
 * so stray text around the PEM blocks is dropped and an encrypted key is
 * refused. Generation failures (files, OpenSSL) are AI_ESTORE or
 * AI_EINTERNAL. out: OUT, zeroed (NULL strings) on error; release with
 * srv_tls_clear. */
ai_code srv_tls_load(const char *home, const char *cert_path, const char *key_path, srv_tls *out, ai_err *err);

/* Wipe the key and free both strings. */
void srv_tls_clear(srv_tls *t);

#endif /* AI_SERVER_H */
