/* input.c - reading token arguments from argv (then zeroed there), stdin
 * or a file. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_iam.h"
#include "cli/cli.h"

/* Room for the longest token plus a newline, and one byte to notice more. */
#define TOKEN_READ_MAX (AI_TOKEN_WIRE_MAX + 3)

static char *read_stream(FILE *f, const char *what, size_t *len)
{
    char *buf = malloc(TOKEN_READ_MAX + 1);
    size_t n;

    if (buf == NULL) {
        cli_failf("out of memory");
        return NULL;
    }
    n = fread(buf, 1, TOKEN_READ_MAX, f);
    if (ferror(f)) {
        cli_failf("cannot read %s: %s", what,
                strerror(errno));
        free(buf);
        return NULL;
    }
    if (n == TOKEN_READ_MAX) {
        cli_failf("invalid token: longer than %d characters",
                AI_TOKEN_WIRE_MAX);
        free(buf);
        return NULL;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *len = n;
    return buf;
}

char *cli_read_token(const char *arg, size_t *len)
{
    FILE *f;
    char *tok;

    if (strcmp(arg, "-") == 0)
        return read_stream(stdin, "stdin", len);
    if (arg[0] == '@') {
        if ((f = fopen(arg + 1, "rb")) == NULL) {
            cli_failf("cannot open %s: %s", arg + 1,
                    strerror(errno));
            return NULL;
        }
        tok = read_stream(f, arg + 1, len);
        fclose(f);
        return tok;
    }
    *len = strlen(arg);
    if ((tok = strdup(arg)) == NULL)
        cli_failf("out of memory");
    /* argv or cli_parse's copy: writable, lent as const */
    explicit_bzero((char *)(uintptr_t)arg, *len);
    return tok;
}
