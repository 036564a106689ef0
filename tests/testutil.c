/* testutil.c - fixtures shared by the unit-test suites (see tests.h). */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "store/store.h"
#include "tests.h"

const unsigned char t_key1[AI_KEY_BYTES] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
const unsigned char t_key2[AI_KEY_BYTES] = {
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
    0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
    0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

ai_keyring *t_keyring(void)
{
    ai_keyring *kr = ai_keyring_new();
    ai_err err = {0};

    ck_assert_ptr_nonnull(kr);
    ck_assert_int_eq(ai_keyring_add(kr, 1, t_key1, 0, &err), AI_OK);
    return kr;
}

ai_token *t_root(const ai_keyring *kr, const char *const *scopes, size_t n,
                 const char *constraints_json)
{
    ai_root_params p;
    ai_token *t = NULL;
    ai_err err = {0};

    ai_root_params_init(&p);
    p.agent_id = "orchestrator";
    p.scopes = scopes;
    p.nscopes = n;
    p.constraints_json = constraints_json;
    ck_assert_msg(ai_token_create_root(kr, &p, T_NOW, &t, &err) == AI_OK,
                  "create root: %s", err.msg);
    return t;
}

ai_token *t_child(const ai_keyring *kr, const ai_token *parent,
                  const char *agent_id, const char *const *scopes, size_t n,
                  const char *constraints_json)
{
    ai_delegation d;
    ai_token *t = NULL;
    ai_err err = {0};

    ai_delegation_init(&d);
    d.agent_id = agent_id;
    d.scopes = scopes;
    d.nscopes = n;
    d.constraints_json = constraints_json;
    ck_assert_msg(ai_token_delegate(kr, parent, &d, T_NOW, &t, &err) == AI_OK,
                  "delegate: %s", err.msg);
    return t;
}

ai_code t_delegate_err(const ai_keyring *kr, const ai_token *parent,
                       const ai_delegation *d, ai_err *err)
{
    ai_token *t = (ai_token *)1;
    ai_code rc;

    memset(err, 0, sizeof *err);
    rc = ai_token_delegate(kr, parent, d, T_NOW, &t, err);
    if (rc != AI_OK)
        ck_assert_ptr_null(t);
    ai_token_free(t);
    return rc;
}

char *t_b64url(const void *p, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = p;
    char *out = malloc(n / 3 * 4 + 5), *o = out;
    size_t i;

    ck_assert_ptr_nonnull(out);
    for (i = 0; i + 2 < n; i += 3) {
        *o++ = a[s[i] >> 2];
        *o++ = a[(s[i] & 3) << 4 | s[i + 1] >> 4];
        *o++ = a[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
        *o++ = a[s[i + 2] & 63];
    }
    if (n - i == 1) {
        *o++ = a[s[i] >> 2];
        *o++ = a[(s[i] & 3) << 4];
    } else if (n - i == 2) {
        *o++ = a[s[i] >> 2];
        *o++ = a[(s[i] & 3) << 4 | s[i + 1] >> 4];
        *o++ = a[(s[i + 1] & 15) << 2];
    }
    *o = '\0';
    return out;
}

char *t_sign(const unsigned char key[AI_KEY_BYTES], const char *json)
{
    unsigned char mac[32];
    unsigned int maclen = 0;
    size_t n = strlen(json), total;
    char *sig, *full, *wire;

    ck_assert(n >= 2 && json[n - 1] == '}');
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, AI_KEY_BYTES,
                               (const unsigned char *)json, n, mac, &maclen));
    ck_assert_uint_eq(maclen, 32);
    sig = t_b64url(mac, sizeof mac);
    total = n + 64;
    full = malloc(total);
    ck_assert_ptr_nonnull(full);
    memcpy(full, json, n - 1);
    snprintf(full + n - 1, total - (n - 1), ",\"signature\":\"%s\"}", sig);
    wire = t_b64url(full, strlen(full));
    free(sig);
    free(full);
    return wire;
}

char *t_node_child(void)
{
    return t_sign(t_key1,
                  "{\"agentId\":\"node-child\",\"parentId\":\"node-root\","
                  "\"scopes\":[\"a:b\"],\"constraints\":{},"
                  "\"delegatable\":true,\"maxDelegationDepth\":3,"
                  "\"currentDepth\":1,"
                  "\"expiresAt\":\"2026-12-01T00:00:00.000Z\"}");
}

ai_code t_verify(const ai_keyring *kr, const char *wire, ai_token **out,
                 ai_err *err)
{
    ai_verifier v = {kr, NULL, NULL};

    memset(err, 0, sizeof *err);
    return ai_token_verify(&v, wire, strlen(wire), T_NOW, out, err);
}

bool t_has(const char *hay, const char *needle)
{
    return hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
}

bool t_revoked_fn(void *ud, ai_revoke_kind kind, const char *id)
{
    t_revoked *r = ud;
    const char *want = kind == AI_REVOKED_TOKEN      ? r->token
                       : kind == AI_REVOKED_ANCESTOR ? r->ancestor
                                                     : r->agent;

    r->calls++;
    return want != NULL && strcmp(want, id) == 0;
}

void t_home_make(t_home *h, const char *tag)
{
    snprintf(h->dir, sizeof h->dir, "/tmp/agent-iam-%.16s-XXXXXX", tag);
    ck_assert_ptr_nonnull(mkdtemp(h->dir));
    snprintf(h->path, sizeof h->path, "%s/home", h->dir);
}

void t_home_remove(const t_home *h)
{
    static const char *const files[] = {
        STORE_DB_FILE, STORE_DB_FILE "-wal", STORE_DB_FILE "-shm",
        STORE_DB_FILE "-journal", STORE_KEY_FILE};
    char p[160];

    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", h->path, files[i]);
        (void)unlink(p);
    }
    ck_assert_int_eq(rmdir(h->path), 0);
    ck_assert_int_eq(rmdir(h->dir), 0);
}

struct store *t_home_open(const t_home *h)
{
    store *st = NULL;
    ai_err err = {0};

    ck_assert_msg(store_open(h->path, true, &st, &err) == AI_OK,
                  "store_open: %s", err.msg);
    return st;
}

/* See tests.h. */
int t_free_port(void)
{
    static int given[256];
    static size_t ngiven;
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

    if (f != NULL) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    if (low - 12000 < 1024)
        low = 13024;
    for (int attempt = 0; attempt < 1000; attempt++) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        int port = low - 12000 + (int)(random() % 12000), fd, taken;
        bool seen = false;

        for (size_t i = 0; i < ngiven; i++)
            seen = seen || given[i] == port;
        if (seen)
            continue;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        taken = bind(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (taken != 0)
            continue;
        if (ngiven < sizeof given / sizeof *given)
            given[ngiven++] = port;
        return port;
    }
    ck_abort_msg("no free port below the ephemeral range");
    return -1;
}
