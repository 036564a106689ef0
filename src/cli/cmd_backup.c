/* cmd_backup.c - `agent-iam backup FILE [--force]`: a consistent copy of
 * the home's database (store_backup), safe while a leader or follower
 * runs on the home. It prints what it wrote; the copy's secrets stay
 * sealed under the home's master.key, which it does not contain. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static const char usage[] = "agent-iam backup FILE [--force] [--json]";

int cli_backup(cli_ctx *c, int argc, char **argv)
{
    bool force = false;
    const cli_opt opts[] = {{"force", NULL, &force}, {NULL, NULL, NULL}};
    char home[4096], keyfile[4200], abs[PATH_MAX], *pos[1];
    const char *path;
    int64_t seq = 0;
    struct stat sb;
    int npos, rc;
    ai_err err;

    if ((rc = cli_parse(usage, argc, argv, opts, pos, 1, &npos, false)))
        return rc;
    if (npos != 1)
        return cli_usage(usage, "give the file to write");
    /* An existing home only: a backup never creates one. */
    if (store_home_path(c->home_flag, home, sizeof home, &err) != AI_OK ||
        store_open(home, false, &c->st, &err) != AI_OK)
        return cli_fail(&err);
    if (store_backup(c->st, pos[0], force, &err) != AI_OK)
        return cli_fail(&err);
    path = realpath(pos[0], abs) != NULL ? abs : pos[0];
    if (stat(path, &sb) != 0)
        return cli_failf("backup: %s: %s", path, strerror(errno));
    if (store_backup_seq(path, &seq, &err) != AI_OK)
        return cli_fail(&err);
    snprintf(keyfile, sizeof keyfile, "%s/%s", store_home(c->st),
             STORE_KEY_FILE);
    if (c->json) {
        cli_print_json(json_pack(
            "{s:s, s:s, s:I, s:s, s:I, s:i, s:s, s:s, s:b}", "path", path,
            "home", store_home(c->st), "bytes", (json_int_t)sb.st_size,
            "mode", "0600", "changelogSeq", (json_int_t)seq, "schema",
            store_schema_version(c->st), "integrity", "ok", "masterKey",
            keyfile, "sealed", 1));
        return CLI_OK;
    }
    printf("backup written:  %s\n", path);
    printf("of the home:     %s\n", store_home(c->st));
    printf("size:            %lld bytes (mode %04o)\n", (long long)sb.st_size,
           (unsigned)(sb.st_mode & 0777));
    printf("changelog seq:   %lld\n", (long long)seq);
    printf("integrity check: ok\n");
    printf("The keys and secrets in it are sealed under %s,\n"
           "which is not in the copy: back that key up separately and "
           "safely.\nRestore: this file as agent-iam.db in a home holding "
           "the same master.key.\n",
           keyfile);
    return CLI_OK;
}
