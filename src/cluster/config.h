/* config.h - the cluster file of a leader group (DESIGN §9), private to
 * src/cluster:
 *
 *   {"ca": "/etc/agent-iam/cluster-ca.pem",
 *    "nodes": [{"id": 1, "raft": "10.0.0.1:9441",
 *               "url": "https://10.0.0.1:8443"}, ...]}
 *
 * Read strictly: an unknown member, a missing one, an id that is not an
 * integer from 1 to 2^31, a repeated id, raft address or URL, a raft
 * address that is not HOST:PORT, a URL that is not http(s)://HOST[:PORT]
 * with nothing after, or no node or more than 7 is AI_EINVAL naming the
 * node and the member. The nodes a group starts with are the ones its
 * voters list at their first start; a node added later (cluster add) is
 * listed on every voter before it is added, and started with --join. */
#ifndef AI_CLUSTER_CONFIG_H
#define AI_CLUSTER_CONFIG_H

#include <stdint.h>

#include "agent_iam.h"

#define CLUSTER_NODES_MAX 7
#define CLUSTER_FIELD_MAX 256
#define CLUSTER_PATH_MAX 4096

typedef struct cluster_node {
    uint64_t id;
    char raft[CLUSTER_FIELD_MAX]; /* IP:PORT of its Raft traffic */
    char url[CLUSTER_FIELD_MAX];  /* its HTTPS API, where a 307 points */
} cluster_node;

typedef struct cluster_config {
    char ca[CLUSTER_PATH_MAX]; /* PEM: the CA every peer chains to */
    cluster_node nodes[CLUSTER_NODES_MAX];
    size_t n;
} cluster_config;

/* Parse the cluster file's text (len bytes). */
ai_code cluster_config_parse(const char *text, size_t len,
                             cluster_config *out, ai_err *err);

/* Read and parse the file at path (at most 64 KiB). */
ai_code cluster_config_load(const char *path, cluster_config *out,
                            ai_err *err);

/* The node with this id, or NULL. */
const cluster_node *cluster_config_node(const cluster_config *c,
                                        uint64_t id);

#endif /* AI_CLUSTER_CONFIG_H */
