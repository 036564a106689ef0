/* cli.h - the subcommands of the agent-iam command and their helpers. */
#ifndef AI_CLI_H
#define AI_CLI_H

#include <stddef.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Read a token argument: the token itself, "-" for stdin or "@PATH" for a
 * file; one trailing newline (or CRLF) is dropped. Returns a malloc'd
 * string (its length in *len) or NULL after printing why to stderr. */
char *cli_read_token(const char *arg, size_t *len);

/* `agent-iam token ...`; argv starts after "token". Returns an exit code. */
int cli_token(int argc, char **argv);

#endif
