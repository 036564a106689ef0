/* codec.h - a broker command as the bytes of one Raft log entry (DESIGN
 * §9), private to src/cluster.
 *
 * An entry is what every voter applies: the command value of
 * broker/command.h (its time, its random parts, its secrets) and the
 * request id that makes a retry apply once. The command is sealed under
 * the group's shared master.key (AES-256-GCM, bound to the format and the
 * request id), so the Raft log and its snapshots on disk hold no secret in
 * clear, and a voter with another master.key cannot read the group's log
 * (its decode fails with AI_ESTORE: it must not apply anything).
 *
 *   "AIRC" | format 1 | 3 zero bytes | request id (16) |
 *   sealed length (u32 LE) | sealed command | zero padding to 8 bytes
 *
 * libraft wants payloads in multiples of 8 bytes; the length field says
 * where the sealed part ends. The command inside is a fixed sequence of
 * fields (integers little-endian, strings as a u32 length, 0xffffffff for
 * none, then the bytes, never a NUL), read back strictly: any length past
 * the end, a NUL inside a string, a byte left over or an unknown op is
 * AI_EINVAL, and nothing is returned. */
#ifndef AI_CLUSTER_CODEC_H
#define AI_CLUSTER_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"

/* An entry at most (a provider config is the largest command: 64 KiB of
 * JSON at most through the admin API). */
#define CLUSTER_ENTRY_MAX (1u << 20)

/* A decoded entry: cmd's strings and budgets point into this value. */
typedef struct cluster_entry {
    unsigned char req_id[CLUSTER_REQ_ID_BYTES];
    broker_cmd cmd;
    ai_budget_ref budgets[CLUSTER_BUDGETS_MAX];
    unsigned char *plain; /* the opened command (SECRET), owned */
    size_t plain_len;
} cluster_entry;

/* c with req_id as an entry sealed under st's master key: *out is
 * ai_malloc'd, *len a multiple of 8 (free it with ai_free; it holds no
 * secret in clear). AI_EINVAL for a command too large, a string with a
 * NUL or over 64 KiB (a config: 1 MiB), or more than CLUSTER_BUDGETS_MAX
 * budgets. */
ai_code cluster_encode(const store *st,
                       const unsigned char req_id[CLUSTER_REQ_ID_BYTES],
                       const broker_cmd *c, unsigned char **out, size_t *len,
                       ai_err *err);

/* The entry of n bytes at p, opened with st's master key, into *e
 * (cluster_entry_free it, on success only). AI_EINVAL: not an entry of
 * this format; AI_ESTORE: sealed under another master key, or changed. */
ai_code cluster_decode(const store *st, const void *p, size_t n,
                       cluster_entry *e, ai_err *err);

/* Wipe the secrets of e and free what it owns. */
void cluster_entry_free(cluster_entry *e);

#endif /* AI_CLUSTER_CODEC_H */
