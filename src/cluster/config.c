/* config.c - reading the cluster file (config.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>


#include <jansson.h>

#include "cluster/config.h"
#include "core/core.h"

#define FILE_MAX (64 * 1024)

/* HOST:PORT with HOST any name or address (a URL's). */
static bool host_port_ok(const char *s)
{
    const char *colon = strrchr(s, ':'), *p;
    size_t hlen;
    long port = 0;

    if (colon == NULL || colon == s || colon[1] == '\0')
        return false;
    for (p = colon + 1; *p; p++) {
        if (!isdigit((unsigned char)*p) || port > 65535)
            return false;
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
        return false;
    hlen = (size_t)(colon - s);
    if (s[0] == '[')
        return hlen > 2 && s[hlen - 1] == ']' &&
               strspn(s + 1, "0123456789abcdefABCDEF:.") == hlen - 2;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.-") == hlen;
}

/* A raft address: numeric (the transport never waits on a resolver). */
static bool raft_addr_ok(const char *s)
{
    char host[CLUSTER_FIELD_MAX];
    unsigned char bin[16];
    const char *colon = strrchr(s, ':');
    size_t hlen;

    if (!host_port_ok(s))
        return false;
    hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        memcpy(host, s + 1, hlen - 2);
        host[hlen - 2] = '\0';
        return inet_pton(AF_INET6, host, bin) == 1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    return inet_pton(AF_INET, host, bin) == 1;
}

static bool url_ok(const char *s)
{
    if (strncmp(s, "https://", 8) == 0)
        s += 8;
    else if (strncmp(s, "http://", 7) == 0)
        s += 7;
    else
        return false;
    /* a port is optional in a URL */
    if (strchr(s, '/') != NULL || strchr(s, '?') != NULL ||
        strchr(s, '@') != NULL || *s == '\0')
        return false;
    if (host_port_ok(s))
        return true;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.-") == strlen(s);
}

static ai_code copy_str(json_t *o, const char *key, char *out, size_t cap,
                        const char *what, ai_err *err)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);

    if (s == NULL)
        return ai_err_set(err, AI_EINVAL, "%s: \"%s\" must be a string", what,
                          key);
    if (strlen(s) >= cap || *s == '\0')
        return ai_err_set(err, AI_EINVAL, "%s: \"%s\" is empty or too long",
                          what, key);
    memcpy(out, s, strlen(s) + 1);
    return AI_OK;
}

static bool only_members(json_t *o, const char *const *names, size_t n,
                         const char **bad)
{
    const char *k;
    json_t *v;

    json_object_foreach(o, k, v) {
        bool known = false;
        for (size_t i = 0; i < n; i++)
            known = known || strcmp(k, names[i]) == 0;
        if (!known) {
            *bad = k;
            return false;
        }
    }
    return true;
}

static ai_code parse_node(json_t *o, size_t i, cluster_node *n, ai_err *err)
{
    static const char *const members[] = {"id", "raft", "url"};
    char what[32];
    const char *bad = NULL;
    json_t *id = json_object_get(o, "id");
    ai_code rc;

    snprintf(what, sizeof what, "nodes[%zu]", i);
    if (!json_is_object(o))
        return ai_err_set(err, AI_EINVAL, "%s must be an object", what);
    if (!only_members(o, members, 3, &bad))
        return ai_err_set(err, AI_EINVAL, "%s: unknown member \"%.64s\"",
                          what, bad);
    if (!json_is_integer(id) || json_integer_value(id) < 1 ||
        json_integer_value(id) > INT64_C(2147483648))
        return ai_err_set(err, AI_EINVAL, "%s: \"id\" must be an integer "
                                          "from 1 to 2147483648",
                          what);
    n->id = (uint64_t)json_integer_value(id);
    if ((rc = copy_str(o, "raft", n->raft, sizeof n->raft, what, err)) !=
            AI_OK ||
        (rc = copy_str(o, "url", n->url, sizeof n->url, what, err)) != AI_OK)
        return rc;
    if (!raft_addr_ok(n->raft))
        return ai_err_set(err, AI_EINVAL, "%s: \"raft\" must be IPv4:PORT "
                                          "or [IPv6]:PORT",
                          what);
    if (!url_ok(n->url))
        return ai_err_set(err, AI_EINVAL, "%s: \"url\" must be "
                                          "http(s)://HOST[:PORT]",
                          what);
    return AI_OK;
}

ai_code cluster_config_parse(const char *text, size_t len,
                             cluster_config *out, ai_err *err)
{
    static const char *const members[] = {"ca", "nodes"};
    json_error_t jerr;
    json_t *doc, *nodes;
    const char *bad = NULL;
    ai_code rc = AI_OK;
    size_t n;

    ai_err_clear(err);
    memset(out, 0, sizeof *out);
    if ((doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return ai_err_set(err, AI_EINVAL, "cluster file: not JSON (line %d: "
                                          "%.80s)",
                          jerr.line, jerr.text);
    if (!json_is_object(doc)) {
        rc = ai_err_set(err, AI_EINVAL, "cluster file: not a JSON object");
        goto done;
    }
    if (!only_members(doc, members, 2, &bad)) {
        rc = ai_err_set(err, AI_EINVAL, "cluster file: unknown member "
                                        "\"%.64s\"",
                        bad);
        goto done;
    }
    if ((rc = copy_str(doc, "ca", out->ca, sizeof out->ca, "cluster file",
                       err)) != AI_OK)
        goto done;
    nodes = json_object_get(doc, "nodes");
    n = json_array_size(nodes);
    /* the group starts with the nodes listed (3 or 5 make sense: a
     * majority survives one or two losses); nodes added later (cluster
     * add) are listed too */
    if (!json_is_array(nodes) || n == 0 || n > CLUSTER_NODES_MAX) {
        rc = ai_err_set(err, AI_EINVAL, "cluster file: \"nodes\" must list "
                                        "1 to %d nodes",
                        CLUSTER_NODES_MAX);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = parse_node(json_array_get(nodes, i), i, &out->nodes[i],
                             err)) != AI_OK)
            goto done;
        for (size_t j = 0; j < i; j++) {
            const cluster_node *a = &out->nodes[i], *b = &out->nodes[j];
            if (a->id == b->id || strcmp(a->raft, b->raft) == 0 ||
                strcmp(a->url, b->url) == 0) {
                rc = ai_err_set(err, AI_EINVAL, "cluster file: nodes[%zu] "
                                                "and nodes[%zu] share an id, "
                                                "a raft address or a URL",
                                j, i);
                goto done;
            }
        }
    }
    out->n = n;
done:
    json_decref(doc);
    if (rc != AI_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

ai_code cluster_config_load(const char *path, cluster_config *out,
                            ai_err *err)
{
    char *text;
    size_t n;
    FILE *f;
    ai_code rc;

    ai_err_clear(err);
    memset(out, 0, sizeof *out);
    if ((f = fopen(path, "rb")) == NULL)
        return ai_err_set(err, AI_EINVAL, "cannot read the cluster file %s",
                          path);
    if ((text = ai_malloc(FILE_MAX + 1)) == NULL) {
        fclose(f);
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    }
    n = fread(text, 1, FILE_MAX + 1, f);
    if (ferror(f))
        rc = ai_err_set(err, AI_EINVAL, "cannot read the cluster file %s",
                        path);
    else if (n > FILE_MAX)
        rc = ai_err_set(err, AI_EINVAL, "the cluster file %s is over 64 KiB",
                        path);
    else
        rc = cluster_config_parse(text, n, out, err);
    fclose(f);
    ai_free(text);
    return rc;
}

const cluster_node *cluster_config_node(const cluster_config *c, uint64_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->nodes[i].id == id)
            return &c->nodes[i];
    return NULL;
}
