/* cmd_status.c - `agent-iam status`: the home, its keys and revocations. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_status(cli_ctx *c, int argc, char **argv)
{
    static const char usage[] = "agent-iam status [--json]";
    const ai_keyring *kr;
    key_info *keys = NULL;
    size_t nkeys = 0, verifying = 0;
    int64_t head = 0, now = cli_now();
    char *pos[1];
    int npos, rc;
    ai_err err;
    store *st;

    if ((rc = cli_parse(usage, argc, argv, NULL, pos, 0, &npos, false)))
        return rc;
    if ((st = cli_store(c)) == NULL)
        return CLI_FAIL;
    if (store_sync(st, &err) != AI_OK ||
        store_keyring(st, now, &kr, &err) != AI_OK ||
        store_list_keys(st, now, &keys, &nkeys, &err) != AI_OK ||
        store_changelog_head(st, &head, &err) != AI_OK)
        return cli_fail(&err);
    for (size_t i = 0; i < nkeys; i++)
        verifying += keys[i].state != KEY_RETIRED;
    store_free(keys);
    if (c->json) {
        cli_print_json(json_pack(
            "{s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I}", "version", ai_version(),
            "mode", "standalone", "home", store_home(st), "schema",
            store_schema_version(st), "signingKeyVersion",
            (json_int_t)ai_keyring_signing_version(kr), "verifyingKeys",
            (json_int_t)verifying, "revocations",
            (json_int_t)store_revocation_count(st), "changelogSeq",
            (json_int_t)head));
    } else {
        printf("agent-iam %s (standalone)\n", ai_version());
        printf("home:                %s\n", store_home(st));
        printf("signing key version: %u (%zu verifying)\n",
               (unsigned)ai_keyring_signing_version(kr), verifying);
        printf("revocations:         %zu\n", store_revocation_count(st));
        printf("changelog seq:       %lld\n", (long long)head);
    }
    return CLI_OK;
}
