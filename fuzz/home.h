/* home.h - one store in a temporary home per fuzzing process, for the
 * targets that apply what a leader sends (fuzz_feed, fuzz_snapshot). */
#ifndef AI_FUZZ_HOME_H
#define AI_FUZZ_HOME_H

#include "store/store.h"

#define FUZZ_FOLLOWER_CREDENTIAL "fuzz-follower-credential"

/* The transport key of FUZZ_FOLLOWER_CREDENTIAL (store_transport_key), set
 * by fuzz_home_open: the secrets in the seeds are sealed under it, as a
 * leader seals them for a follower with that credential. */
extern unsigned char fuzz_transport_key[32];

/* Open the store (a replica, views loaded) in a new directory under
 * $TMPDIR; the directory is removed at exit. Aborts on failure: without
 * a store the target has nothing to test. Call once, from
 * LLVMFuzzerInitialize. */
store *fuzz_home_open(void);

/* Bring the store back to the state fuzz_home_open left: no replicated
 * entities, no changelog, applied seq 0, no leader id; its views
 * reloaded. Run before each input, so every input starts from the same
 * state and the database does not grow from run to run. */
void fuzz_home_reset(store *st);

/* Rows in the replicated tables and the changelog (0 after a reset). */
long long fuzz_home_rows(store *st);

/* What any replica must still be after an input, applied or refused:
 * readable, its keyring, if any, usable. Aborts otherwise. */
void fuzz_home_check(store *st);

/* Report a broken expectation of a target and abort (a crash for
 * libFuzzer, with the reason on stderr). */
void fuzz_fail(const char *why) __attribute__((noreturn));

#endif
