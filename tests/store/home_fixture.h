/*
 * home_fixture.h - temporary broker homes for the store suites: each test
 * makes its own under a fresh mkdtemp directory and removes it at the end,
 * plus small helpers to read, write and compare the home's files and to
 * look into its database with SQLite directly.
 */
#ifndef AI_TESTS_HOME_FIXTURE_H
#define AI_TESTS_HOME_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"

/* A path "<mkdtemp dir>/home" that does not exist yet (store_open with
 * create makes it). malloc'd; release with fx_home_free. */
char *fx_home_new(void);

/* Remove the home's files, the home and the directory around it, then
 * free the path. NULL is fine. */
void fx_home_free(char *home);

/* "<home>/<file>" into buf (asserts it fits). */
const char *fx_path(char *buf, size_t cap, const char *home, const char *file);

/* A whole file, malloc'd (*n its length); NULL when it cannot be read. */
unsigned char *fx_read(const char *path, size_t *n);

/* Replace a file with n bytes and the given mode (asserts success). */
void fx_write(const char *path, const void *data, size_t n, unsigned mode);

/* Open a home with store_open (create) and assert success. */
store *fx_open(const char *home);

/* The store's keyring, with a first key (random, version 1, no audit row)
 * made by store_first_key if it has none (asserts success: not for a
 * replica before its first sync). */
const ai_keyring *fx_keyring(store *st, int64_t now_ms);

/* A plain SQLite connection to the home's database (asserts success);
 * close with sqlite3_close. */
sqlite3 *fx_sqlite(const char *home);

/* The one integer a query returns (asserts there is one). */
long long fx_int(sqlite3 *db, const char *sql);

#endif /* AI_TESTS_HOME_FIXTURE_H */
