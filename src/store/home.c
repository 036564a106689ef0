/* home.c - the broker home: where it is, creating it 0700, and the master
 * key file (32 random bytes, 0600). Refuses anything group- or
 * world-readable, naming the file and the fix. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "store/db.h"

ai_code store_home_path(const char *flag, char *out, size_t cap, ai_err *err)
{
    const char *env = getenv("AGENT_IAM_HOME"), *home = getenv("HOME");
    int n;

    if (flag != NULL && *flag != '\0')
        n = snprintf(out, cap, "%s", flag);
    else if (env != NULL && *env != '\0')
        n = snprintf(out, cap, "%s", env);
    else if (home != NULL && *home != '\0')
        n = snprintf(out, cap, "%s/.agent-iam", home);
    else
        return ai_err_set(err, AI_EINVAL,
                          "no home: set AGENT_IAM_HOME or HOME, or pass "
                          "--home DIR");
    if (n < 0 || (size_t)n >= cap)
        return ai_err_set(err, AI_EINVAL, "home path too long");
    /* "dir/" and "dir" are the same home */
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return AI_OK;
}

/* The directory exists (or is made, when create) and only its owner can
 * enter or read it. */
static ai_code check_dir(const char *home, bool create, ai_err *err)
{
    struct stat sb;

    if (stat(home, &sb) != 0) {
        if (errno != ENOENT || !create)
            return ai_err_set(err, AI_ESTORE, "home %s: %s", home,
                              strerror(errno));
        if (mkdir(home, 0700) != 0)
            return ai_err_set(err, AI_ESTORE, "cannot create home %s: %s",
                              home, strerror(errno));
        if (stat(home, &sb) != 0)
            return ai_err_set(err, AI_ESTORE, "home %s: %s", home,
                              strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode))
        return ai_err_set(err, AI_ESTORE, "home %s is not a directory", home);
    if (sb.st_mode & 077)
        return ai_err_set(err, AI_ESTORE,
                          "home %s is open to group or others (mode %03o): "
                          "run chmod 700 %s",
                          home, (unsigned)(sb.st_mode & 0777), home);
    return AI_OK;
}

static ai_code private_file(const char *path, const struct stat *sb,
                            ai_err *err)
{
    if (!S_ISREG(sb->st_mode))
        return ai_err_set(err, AI_ESTORE, "%s is not a regular file", path);
    if (sb->st_mode & 077)
        return ai_err_set(err, AI_ESTORE,
                          "%s is readable by group or others (mode %03o): "
                          "run chmod 600 %s",
                          path, (unsigned)(sb->st_mode & 0777), path);
    return AI_OK;
}

/* Read master.key, or make it when the home is new (no database yet). */
static ai_code master_key(const char *home, bool may_create,
                          unsigned char key[AI_KEY_BYTES], ai_err *err)
{
    char path[STORE_PATH_MAX];
    struct stat sb;
    ssize_t got;
    int fd;
    ai_code rc = AI_OK;

    snprintf(path, sizeof path, "%s/%s", home, STORE_KEY_FILE);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && may_create) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
        if (fd < 0)
            return ai_err_set(err, AI_ESTORE, "cannot create %s: %s", path,
                              strerror(errno));
        if (RAND_bytes(key, AI_KEY_BYTES) != 1) {
            close(fd);
            unlink(path);
            return ai_err_set(err, AI_EINTERNAL, "random generator failed");
        }
        if (write(fd, key, AI_KEY_BYTES) != AI_KEY_BYTES || fsync(fd) != 0) {
            rc = ai_err_set(err, AI_ESTORE, "cannot write %s: %s", path,
                            strerror(errno));
            close(fd);
            unlink(path);
            explicit_bzero(key, AI_KEY_BYTES);
            return rc;
        }
        close(fd);
        return AI_OK;
    }
    if (fd < 0)
        return ai_err_set(err, AI_ESTORE,
                          errno == ENOENT
                              ? "%s is missing: the database cannot be "
                                "decrypted without it (restore it from "
                                "backup)"
                              : "cannot open %s",
                          path);
    if (fstat(fd, &sb) != 0) {
        rc = ai_err_set(err, AI_ESTORE, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if ((rc = private_file(path, &sb, err)) != AI_OK) {
        close(fd);
        return rc;
    }
    if (sb.st_size != AI_KEY_BYTES) {
        close(fd);
        return ai_err_set(err, AI_ESTORE,
                          "%s must hold exactly %d bytes (it has %lld)", path,
                          AI_KEY_BYTES, (long long)sb.st_size);
    }
    got = read(fd, key, AI_KEY_BYTES);
    close(fd);
    if (got != AI_KEY_BYTES) {
        explicit_bzero(key, AI_KEY_BYTES);
        return ai_err_set(err, AI_ESTORE, "cannot read %s", path);
    }
    return AI_OK;
}

/* Open the home's files: check modes, load or make the master key, and
 * make sure the database file exists with mode 0600 before SQLite opens
 * it (its -wal and -shm files then inherit that mode). Called by
 * store_open. *fresh is true when the database did not exist. */
ai_code home_prepare(const char *home, bool create,
                     unsigned char key[AI_KEY_BYTES], char *dbpath,
                     size_t cap, bool *fresh, ai_err *err);

ai_code home_prepare(const char *home, bool create,
                     unsigned char key[AI_KEY_BYTES], char *dbpath,
                     size_t cap, bool *fresh, ai_err *err)
{
    struct stat sb;
    ai_code rc;
    int fd;

    if ((rc = check_dir(home, create, err)) != AI_OK)
        return rc;
    if ((size_t)snprintf(dbpath, cap, "%s/%s", home, STORE_DB_FILE) >= cap)
        return ai_err_set(err, AI_EINVAL, "home path too long");
    *fresh = stat(dbpath, &sb) != 0;
    if (!*fresh && (rc = private_file(dbpath, &sb, err)) != AI_OK)
        return rc;
    if (*fresh && !create)
        return ai_err_set(err, AI_ENOTFOUND,
                          "no agent-iam home at %s (agent-iam.db missing)",
                          home);
    if ((rc = master_key(home, *fresh, key, err)) != AI_OK)
        return rc;
    if (*fresh) {
        fd = open(dbpath, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            explicit_bzero(key, AI_KEY_BYTES);
            return ai_err_set(err, AI_ESTORE, "cannot create %s: %s", dbpath,
                              strerror(errno));
        }
        close(fd);
    }
    return AI_OK;
}
