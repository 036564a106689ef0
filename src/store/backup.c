/* backup.c - a consistent copy of a home's database while other handles
 * and processes (a running leader) keep writing, with SQLite's online
 * backup API.
 *
 * DESIGN: the copy is made in one sqlite3_backup_step(-1), that is in one
 * read transaction on the source: under WAL it does not block writers,
 * and it is never restarted by their commits (a step-by-step copy restarts
 * whenever another connection writes, and may never finish under a steady
 * stream of revocations). It goes to a temporary file 0600 next to the
 * target, is switched out of WAL mode (one self-contained file), checked
 * with PRAGMA integrity_check, fsynced, and only then renamed to its name:
 * a failed backup leaves nothing half-written under the target's name and
 * never destroys an earlier backup. Without force, the name is reserved
 * first with O_EXCL, so two backups to one path cannot both win.
 *
 * The copy keeps its secrets sealed under the home's master.key, which is
 * not copied: a restore needs both files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db.h"

#define BACKUP_BUSY_TRIES 100 /* x 100 ms: a source lock held that long */

/* The directory part of path ("." when it has none) into out. */
static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* AI_ESTORE with "<what>: <sqlite message>" for a connection that is not
 * a store's. */
static ai_code sql_fail(sqlite3 *db, const char *what, ai_err *err)
{
    if (db != NULL && sqlite3_errcode(db) == SQLITE_NOMEM)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    return ai_err_set(err, AI_ESTORE, "%s: %s", what,
                      db ? sqlite3_errmsg(db) : "cannot open");
}

/* The first column of the first row of sql as text into out ("" for
 * NULL). */
static ai_code sql_text(sqlite3 *db, const char *sql, char *out, size_t cap,
                        const char *what, ai_err *err)
{
    sqlite3_stmt *q = NULL;
    ai_code rc = AI_OK;

    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return sql_fail(db, what, err);
    if (sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(q, 0);
        snprintf(out, cap, "%s", v ? (const char *)v : "");
    } else {
        rc = sql_fail(db, what, err);
    }
    sqlite3_finalize(q);
    return rc;
}

/* See db.h. */
ai_code db_copy_all(store *st, sqlite3 *dst, const char *what, ai_err *err)
{
    sqlite3_backup *b;
    int step, tries = 0;

    if ((b = sqlite3_backup_init(dst, "main", st->db, "main")) == NULL)
        return sql_fail(dst, what, err);
    /* All pages in one step: one read transaction on the source. BUSY or
     * LOCKED only while another connection holds a lock a reader needs
     * (WAL recovery, a checkpoint truncating): wait and retry. */
    while ((step = sqlite3_backup_step(b, -1)) == SQLITE_BUSY ||
           step == SQLITE_LOCKED) {
        if (++tries > BACKUP_BUSY_TRIES)
            break;
        sqlite3_sleep(100);
    }
    if (sqlite3_backup_finish(b) != SQLITE_OK || step != SQLITE_DONE) {
        if (step == SQLITE_BUSY || step == SQLITE_LOCKED)
            return ai_err_set(err, AI_ESTORE,
                              "%s: the database stayed locked for %d s",
                              what, BACKUP_BUSY_TRIES / 10);
        return sql_fail(dst, what, err);
    }
    return AI_OK;
}

/* Copy st's database into the (empty) file tmp and check the copy. */
static ai_code copy_and_check(store *st, const char *tmp, ai_err *err)
{
    sqlite3 *dst = NULL;
    char res[256];
    ai_code rc = AI_OK;

    if (sqlite3_open_v2(tmp, &dst,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                            SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK) {
        rc = sql_fail(dst, "backup: cannot open the copy", err);
        goto done;
    }
    if ((rc = db_copy_all(st, dst, "backup", err)) != AI_OK)
        goto done;
    /* The source is in WAL mode and so is the copied header: make the copy
     * one self-contained file (store_open turns WAL on again). */
    if ((rc = sql_text(dst, "PRAGMA journal_mode = DELETE", res, sizeof res,
                       "backup: journal mode", err)) != AI_OK)
        goto done;
    /* A home restored from this copy is not the leader followers knew
     * (its changelog goes back to this seq, and the seqs after it will be
     * handed out again for other changes): without the leader id, it
     * makes a new one on first use, and every follower reloads the
     * snapshot instead of skipping those seqs. */
    if (sqlite3_exec(dst, "DELETE FROM meta WHERE key = 'leader_id'", NULL,
                     NULL, NULL) != SQLITE_OK) {
        rc = sql_fail(dst, "backup: leader id", err);
        goto done;
    }
    if ((rc = sql_text(dst, "PRAGMA integrity_check", res, sizeof res,
                       "backup: integrity check", err)) != AI_OK)
        goto done;
    if (strcmp(res, "ok") != 0) {
        rc = ai_err_set(err, AI_ESTORE,
                        "backup: the copy fails its integrity check: %s", res);
        goto done;
    }
    if ((rc = sql_text(dst,
                       "SELECT count(*) FROM sqlite_master WHERE name = "
                       "'schema_version'",
                       res, sizeof res, "backup: check", err)) != AI_OK)
        goto done;
    if (strcmp(res, "1") != 0)
        rc = ai_err_set(err, AI_ESTORE,
                        "backup: the copy is not an agent-iam database");
done:
    if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == AI_OK)
        rc = ai_err_set(err, AI_ESTORE, "backup: cannot close the copy");
    return rc;
}

static ai_code fsync_path(const char *path, int flags, ai_err *err)
{
    int fd = open(path, flags | O_CLOEXEC);
    ai_code rc = AI_OK;

    if (fd < 0 || fsync(fd) != 0)
        rc = ai_err_set(err, AI_ESTORE, "backup: cannot sync %s: %s", path,
                        strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

ai_code store_backup(store *st, const char *path, bool force, ai_err *err)
{
    char dir[STORE_PATH_MAX], tmp[STORE_PATH_MAX + 16],
        journal[STORE_PATH_MAX + 32];
    struct stat sb, hb;
    bool reserved = false, made_tmp = false;
    ai_code rc;
    int fd;

    ai_err_clear(err);
    if (path == NULL || *path == '\0')
        return ai_err_set(err, AI_EINVAL, "backup: no file given");
    if (strlen(path) >= STORE_PATH_MAX)
        return ai_err_set(err, AI_EINVAL, "backup: path too long");
    dir_of(path, dir, sizeof dir);
    if (stat(dir, &sb) != 0)
        return ai_err_set(err, AI_ESTORE, "backup: cannot write %s: %s: %s",
                          path, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return ai_err_set(err, AI_ESTORE, "backup: %s is not a directory",
                          dir);
    /* A copy in the home is lost with it, and --force there could
     * replace the live database or master.key. */
    if (stat(st->home, &hb) == 0 && hb.st_dev == sb.st_dev &&
        hb.st_ino == sb.st_ino)
        return ai_err_set(err, AI_EINVAL,
                          "backup: %s is in the home %s: write it elsewhere",
                          path, st->home);
    if (lstat(path, &sb) == 0) {
        if (!force)
            return ai_err_set(err, AI_EINVAL,
                              "backup: %s exists (--force replaces it)", path);
        if (!S_ISREG(sb.st_mode))
            return ai_err_set(err, AI_EINVAL,
                              "backup: %s exists and is not a regular file",
                              path);
    } else if (errno != ENOENT) {
        return ai_err_set(err, AI_ESTORE, "backup: %s: %s", path,
                          strerror(errno));
    }
    if (!force) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
        if (fd < 0)
            return ai_err_set(err, errno == EEXIST ? AI_EINVAL : AI_ESTORE,
                              errno == EEXIST
                                  ? "backup: %s exists (--force replaces it)"
                                  : "backup: cannot create %s: %s",
                              path, strerror(errno));
        close(fd);
        reserved = true;
    }
    snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) { /* 0600 */
        rc = ai_err_set(err, AI_ESTORE, "backup: cannot create %s: %s", tmp,
                        strerror(errno));
        goto fail;
    }
    made_tmp = true;
    if (fchmod(fd, 0600) != 0) {
        rc = ai_err_set(err, AI_ESTORE, "backup: chmod %s: %s", tmp,
                        strerror(errno));
        close(fd);
        goto fail;
    }
    close(fd);
    if ((rc = copy_and_check(st, tmp, err)) != AI_OK ||
        (rc = fsync_path(tmp, O_RDONLY, err)) != AI_OK)
        goto fail;
    /* Over the reservation (or, with force, the old backup) at once. */
    if (rename(tmp, path) != 0) {
        rc = ai_err_set(err, AI_ESTORE, "backup: cannot rename %s to %s: %s",
                        tmp, path, strerror(errno));
        goto fail;
    }
    made_tmp = reserved = false;
    if ((rc = fsync_path(dir, O_RDONLY | O_DIRECTORY, err)) != AI_OK)
        return rc; /* written, but its name may not survive a crash */
    return AI_OK;
fail:
    if (made_tmp) {
        unlink(tmp);
        snprintf(journal, sizeof journal, "%s-journal", tmp);
        unlink(journal);
    }
    if (reserved)
        unlink(path);
    return rc;
}

ai_code store_backup_seq(const char *path, int64_t *seq, ai_err *err)
{
    sqlite3 *db = NULL;
    char v[64];
    ai_code rc;

    ai_err_clear(err);
    *seq = 0;
    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX |
                            SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK) {
        rc = sql_fail(db, path, err);
        sqlite3_close(db);
        return rc;
    }
    if ((rc = sql_text(db, "SELECT coalesce(max(seq), 0) FROM changelog", v,
                       sizeof v, path, err)) == AI_OK)
        *seq = strtoll(v, NULL, 10);
    sqlite3_close(db);
    return rc;
}
