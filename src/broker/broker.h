/* broker.h - the broker module for the modules above it (cli, leader,
 * follower, runtime): token operations on a home's store. */
#ifndef AI_BROKER_H
#define AI_BROKER_H

#include "agent_iam.h"
#include "broker/command.h"
#include "store/store.h"

/* A broker over an already open store (borrowed: the caller closes it
 * after ai_broker_close). */
ai_code broker_wrap(store *st, ai_broker **out, ai_err *err);

/* Server mode: the caller keeps the store's views current (store_sync
 * when another handle changed the home), verified tokens are served from
 * `cache` (borrowed; one per thread, like the broker), and failed
 * verifications and checks are left to the caller's metrics and access
 * log instead of the audit log (a flood of bad tokens must not turn into
 * a flood of durable writes). */
void broker_server_mode(ai_broker *b, ai_token_cache *cache);

/* Where uses are counted: a follower's hook asks the leader (with the
 * serialized token, so the leader derives the budgets itself) and answers
 * AI_EUNAVAILABLE when it cannot. Called only when the scope has budgets. */
typedef ai_code (*broker_consume_fn)(void *ud, const char *wire, size_t len,
                                     const ai_token *t, const char *scope,
                                     bool *granted, uint32_t *remaining,
                                     ai_err *err);
void broker_set_consume(ai_broker *b, broker_consume_fn fn, void *ud);

/* Verify without an audit row (the server's authentication step). */
ai_code broker_verify_quiet(ai_broker *b, const char *wire, size_t len,
                            int64_t now, ai_token **out, ai_err *err);

/* The store under a broker. */
store *broker_store(ai_broker *b);

/* Who the broker's audit rows name (borrowed; ai_broker_set_actor). */
const char *broker_actor(const ai_broker *b);

/* Bring the store's views up to date, except in server mode (where the
 * caller does). */
ai_code broker_sync(ai_broker *b, ai_err *err);

/* The keyring to sign or to show keys with (borrowed, as store_keyring):
 * a home with no key yet makes its version 1 first, through a
 * BROKER_KEY_FIRST command (a random key drawn here, its audit row
 * "key-create"); a replica before its first sync has none: AI_ENOTFOUND. */
ai_code broker_signing_keyring(ai_broker *b, int64_t now_ms,
                               const ai_keyring **out, ai_err *err);

/* Copy the secret of key `version` into out (the caller wipes it), with
 * an audit row "key-export" under the broker's actor: when the row cannot
 * be written, out is wiped and the error returned. */
ai_code broker_export_key(ai_broker *b, uint32_t version,
                          unsigned char out[AI_KEY_BYTES], ai_err *err);

#endif
