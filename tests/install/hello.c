/* hello.c - the smallest program against an installed libagentiam: built
 * by tests/install/run.sh with `pkg-config --cflags --libs agent-iam`. */
#include <stdio.h>

#include <agent_iam.h>

int main(void)
{
    unsigned char key[AI_KEY_BYTES] = {1};
    ai_keyring *kr = ai_keyring_new();
    ai_err err;

    if (kr == NULL || ai_keyring_add(kr, 1, key, 0, &err) != AI_OK)
        return 1;
    printf("agent-iam %s, signing key v%u\n", ai_version(),
           ai_keyring_signing_version(kr));
    ai_keyring_free(kr);
    return 0;
}
