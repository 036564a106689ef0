/* main.c - the agent-iam command: parses arguments and calls the library.
 * No logic of its own; the only place in the project that calls exit().
 * Exit codes: 0 ok, 1 denied/invalid/failed, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_iam.h"
#include "cli/cli.h"

static void usage(FILE *f)
{
    fputs("usage: agent-iam <command> [options]\n"
          "\n"
          "commands:\n"
          "  token show TOKEN      print a token's claims as JSON (not verified)\n"
          "  version               print the version\n"
          "  help                  print this help\n"
          "\n"
          "TOKEN is the serialized token, '-' to read it from stdin, or @PATH\n"
          "to read it from a file (tokens in argv are visible to other users).\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("agent-iam %s\n", ai_version());
        return CLI_OK;
    }
    if (strcmp(argv[1], "token") == 0)
        return cli_token(argc - 2, argv + 2);
    fprintf(stderr, "agent-iam: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
