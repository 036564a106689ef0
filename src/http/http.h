/*
 * http.h - the one outbound HTTPS client of the project (libcurl): global
 * init once, the URL rule, the options every transfer gets (TLS always
 * verified, CA file, timeouts, no redirects, protocols), a capped body
 * sink, header lists that are wiped, and the reason text of a failure.
 * Providers, the follower's upstream, the runtime's remote mode and the
 * CLI's leader client build their requests on it; they go round a leader
 * group's voters by one rule (http_failover), and each keeps its own
 * policy otherwise (keep-alive, redirects, error codes and wording).
 *
 * Depends on nothing of ours but include/agent_iam.h (DESIGN §1): it fills
 * no ai_err and allocates the body through the allocator its caller
 * names, so the callers wrap its results once, at their edge.
 *
 * THREADS: every function is thread-safe; a CURL handle and a sink belong
 * to one thread at a time (libcurl: "never share the same handle in
 * multiple threads"). Never CURLOPT_VERBOSE: it prints the headers, and
 * they hold bearer secrets.
 */
#ifndef AI_HTTP_H
#define AI_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "agent_iam.h"

#define HTTP_CONNECT_MS 5000L /* connect timeout, unless a caller says */
#define HTTP_BODY_MAX (1024 * 1024)

/* curl_global_init, exactly once per process (pthread_once; it is not
 * thread-safe itself): every client calls this before its first handle.
 * false when libcurl could not initialize. */
bool http_global_ok(void);

/* Is url one secrets may be sent to, as parsed by libcurl's URL parser
 * (the host checked is the host connected to): no user info
 * ("user[:password]@"), and https, or plain http only when the host is
 * exactly 127.0.0.1, localhost or [::1]. *plain_ok (may be NULL) tells
 * whether plain http is allowed (the host is loopback). No network use. */
bool http_url_ok(const char *url, bool *plain_ok);

/* A list of base URLs, "URL[,URL...]" (a leader group's voters): at most
 * max of them (HTTP_URL_LIST_MAX for every client here), each http_url_ok
 * and under 2048 bytes. */
#define HTTP_URL_LIST_MAX 8
bool http_url_list_ok(const char *list, size_t max);
/* How many URLs the list names (its commas plus one; 0 for ""). */
size_t http_url_list_len(const char *list);
/* The i-th URL of a list (from 0) into out (cap bytes), its trailing
 * slashes dropped; false past the end or when it does not fit. */
bool http_url_list_at(const char *list, size_t i, char *out, size_t cap);

/* Going round a list of bases (a leader group's voters) after a try on
 * bases[cur] failed. Not thread-safe: one per request. */
typedef struct http_failover {
    size_t n;         /* bases in the list */
    size_t cur;       /* the one to try now */
    size_t tries;     /* failed tries so far */
    size_t max_tries; /* a limit (0: only the window limits) */
    int64_t until_ms; /* monotonic: no move after (0: no window) */
    long pause_ms;    /* a pause after each full round (0: none) */
} http_failover;
/* n bases, the first try on start; moves for window_ms (0: no window)
 * and fewer than max_tries failed tries (0: no limit). */
void http_failover_init(http_failover *f, size_t n, size_t start,
                        long window_ms, long pause_ms, size_t max_tries);
/* After a failed try on f->cur: true, f->cur the next base, when another
 * try is worth it: more than one base, the window open, and the request
 * reached no server (not_sent), or it may be sent again (resend_ok: a
 * read) and got no answer (status 0), or the answer was 503 (an
 * election, or what only the leader can do). A request that may have
 * arrived and is not safe to repeat is never sent twice. Sleeps pause_ms
 * after each full round. */
bool http_failover_next(http_failover *f, bool not_sent, bool resend_ok,
                        long status);
/* Did a transfer that ended with cc reach no server (no connection was
 * made)? Then it is safe to send elsewhere. */
bool http_not_sent(CURLcode cc);

/* "host:port" (or "host" when the URL names no port) of url into out (cap
 * bytes), for messages; "(unparsed URL)" when libcurl cannot parse it.
 * Only for URLs that passed http_url_ok (no user info to leak). */
void http_where(const char *url, char *out, size_t cap);

/* An answer body collected for libcurl (CURLOPT_WRITEFUNCTION
 * http_sink_write, CURLOPT_WRITEDATA the sink). Memory comes from the
 * caller's allocator; a buffer outgrown is wiped before it is released
 * (bodies hold tokens and credentials). More than max bytes sets too_big
 * and ends the transfer (CURLE_WRITE_ERROR); an allocation failure sets
 * oom and ends it too. p is NUL-terminated whenever it is not NULL. */
typedef struct http_sink {
    char *p;
    size_t len, cap, max;
    bool too_big, oom;
    void *(*alloc)(size_t);
    void (*release)(void *);
} http_sink;
void http_sink_init(http_sink *s, size_t max, void *(*alloc)(size_t),
                    void (*release)(void *));
size_t http_sink_write(char *p, size_t size, size_t n, void *ud);
/* The body (OUT: owned by the caller, from the sink's allocator,
 * NUL-terminated, "" when nothing came), the sink left empty; NULL when
 * out of memory. */
char *http_sink_take(http_sink *s);
/* Wipe and release what the sink holds; the sink stays usable. */
void http_sink_clear(http_sink *s);

/* Append the header line "Name: value" to *list; false when out of memory
 * (*list unchanged). libcurl copies the line. */
bool http_header_add(struct curl_slist **list, const char *line);
/* Wipe every line (one may hold Authorization), then free the list. NULL
 * does nothing. */
void http_headers_free(struct curl_slist *list);

/* What one transfer is. Every pointer is borrowed and must outlive the
 * transfer. */
typedef struct http_opts {
    const char *url;      /* the whole URL; its scheme and host decide the
                             protocols (http only where http_url_ok says) */
    const char *method;   /* "GET" (NULL too), "POST", "PUT", "DELETE"... */
    const char *body;     /* NULL: none (a POST or PUT sends an empty one) */
    size_t body_len;
    const struct curl_slist *headers;
    const char *ca_file;  /* PEM CA bundle; NULL or "": the system's CAs */
    long connect_ms;      /* 0: HTTP_CONNECT_MS; never above total_ms */
    long total_ms;        /* the whole transfer; > 0 */
    long stall_s;         /* > 0: abort a transfer moving no byte so long */
    curl_off_t max_size;  /* > 0: refuse an announced body larger */
    const char *user_agent; /* NULL: none */
    bool path_as_is;      /* send the path as built: no ".." folding */
    curl_write_callback write_fn; /* NULL: http_sink_write */
    void *write_data;     /* the sink, or write_fn's argument */
    const atomic_bool *stop; /* non-NULL: the transfer ends (with
                                CURLE_ABORTED_BY_CALLBACK) once it is true,
                                checked about once a second */
    char *errbuf;         /* CURL_ERROR_SIZE bytes: libcurl's reason */
} http_opts;

/* Clear *o and set what every transfer names: the method, the whole URL,
 * the body (NUL-terminated, or NULL; set o->body_len after for binary
 * bytes), the header list, the CA file, the total timeout, the sink (for
 * http_sink_write, or write_fn's argument) and the error buffer. */
void http_opts_init(http_opts *o, const char *method, const char *url,
                    const char *body, const struct curl_slist *headers,
                    const char *ca_file, long total_ms, void *sink,
                    char *errbuf);

/* Reset h (its connection is kept for the next transfer) and set every
 * option of o, TLS peer and host verification on, redirects never
 * followed, no signals. CURLE_OK, else the code of the option libcurl
 * refused (libcurl too old?), or CURLE_UNSUPPORTED_PROTOCOL when o->url
 * does not pass http_url_ok. */
CURLcode http_setup(CURL *h, const http_opts *o);

/* curl_easy_perform, or when abort is not NULL, the same through a multi
 * handle polled every 100 ms so that the transfer ends promptly once
 * *abort is true (*aborted then set; CURLE_ABORTED_BY_CALLBACK). A multi
 * handle of its own: the connection is not kept. */
CURLcode http_perform(CURL *h, const atomic_bool *abort, bool *aborted);

/* Why a transfer failed, one line: libcurl's error buffer (it names hosts,
 * ports and TLS failures, never a header or a body) when it says
 * anything, else curl_easy_strerror(cc). Borrowed. */
const char *http_reason(CURLcode cc, const char *errbuf);

#endif /* AI_HTTP_H */
