/* home_fixture.c - temporary broker homes for the store suites (see
 * home_fixture.h). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "home_fixture.h"

char *fx_home_new(void)
{
    char base[] = "/tmp/agent-iam-test-XXXXXX";
    char *home;
    size_t n;

    ck_assert_ptr_nonnull(mkdtemp(base));
    n = strlen(base) + sizeof "/home";
    home = malloc(n);
    ck_assert_ptr_nonnull(home);
    snprintf(home, n, "%s/home", base);
    return home;
}

void fx_home_free(char *home)
{
    struct dirent *e;
    char path[4096];
    DIR *d;

    if (home == NULL)
        return;
    (void)chmod(home, 0700);
    if ((d = opendir(home)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", home, e->d_name);
            (void)unlink(path);
        }
        closedir(d);
    }
    (void)rmdir(home);
    *strrchr(home, '/') = '\0';
    (void)rmdir(home);
    free(home);
}

const char *fx_path(char *buf, size_t cap, const char *home, const char *file)
{
    int n = snprintf(buf, cap, "%s/%s", home, file);

    ck_assert(n > 0 && (size_t)n < cap);
    return buf;
}

unsigned char *fx_read(const char *path, size_t *n)
{
    struct stat sb;
    unsigned char *p;
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        return NULL;
    if (fstat(fileno(f), &sb) != 0 ||
        (p = malloc((size_t)sb.st_size + 1)) == NULL) {
        fclose(f);
        return NULL;
    }
    *n = fread(p, 1, (size_t)sb.st_size, f);
    fclose(f);
    return p;
}

void fx_write(const char *path, const void *data, size_t n, unsigned mode)
{
    int fd;

    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    ck_assert_int_eq(fchmod(fd, (mode_t)mode), 0);
    close(fd);
}

store *fx_open(const char *home)
{
    store *st = NULL;
    ai_err err = {0};

    ck_assert_msg(store_open(home, true, &st, &err) == AI_OK,
                  "store_open: %s", err.msg);
    ck_assert_ptr_nonnull(st);
    return st;
}

const ai_keyring *fx_keyring(store *st, int64_t now_ms)
{
    unsigned char key[AI_KEY_BYTES];
    const ai_keyring *kr = NULL;
    ai_err err = {0};
    bool made;

    ck_assert_msg(store_keyring(st, &kr, &err) == AI_OK, "keyring: %s",
                  err.msg);
    if (ai_keyring_signing_version(kr) != 0)
        return kr;
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(rand() & 0xff);
    ck_assert_msg(store_first_key(st, key, now_ms, NULL, &made, &err) == AI_OK,
                  "first key: %s", err.msg);
    ck_assert_msg(store_keyring(st, &kr, &err) == AI_OK, "keyring: %s",
                  err.msg);
    return kr;
}

sqlite3 *fx_sqlite(const char *home)
{
    char path[4096];
    sqlite3 *db = NULL;

    fx_path(path, sizeof path, home, STORE_DB_FILE);
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

long long fx_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    long long v;

    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}
