/* quickstart.c - the README's Quick Start with the C library: a root token
 * for an orchestrator, a narrower token delegated to a code reviewer, and
 * the checks the README shows. Keys live in memory here; a broker home
 * keeps them on disk. Prints the child token on stdout, the narrative on
 * stderr, and exits 0 only if every result is the one the README states. */
#include <stdio.h>
#include <time.h>

#include <openssl/rand.h>

#include "agent_iam.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int expect(const char *what, ai_code got, ai_code want, const ai_err *e)
{
    fprintf(stderr, "  %-52s %s%s%s\n", what, got == AI_OK ? "allowed" : "refused",
            got == AI_OK ? "" : ": ", got == AI_OK ? "" : e->msg);
    return got == want ? 0 : 1;
}

int main(void)
{
    static const char *const root_scopes[] = {
        "github:repo:read", "github:repo:write", "openai:chat:*"};
    static const char *const child_scopes[] = {"github:repo:read"};
    unsigned char key[AI_KEY_BYTES];
    ai_keyring *keys = ai_keyring_new();
    ai_verifier v = {keys, NULL, NULL};
    ai_root_params rp;
    ai_delegation d;
    ai_token *root = NULL, *child = NULL, *seen = NULL;
    ai_err e = {0};
    int64_t now = now_ms();
    int bad = 0;

    if (keys == NULL || RAND_bytes(key, sizeof key) != 1 ||
        ai_keyring_add(keys, 1, key, 0, &e) != AI_OK) {
        fprintf(stderr, "quickstart: cannot set up a key: %s\n", e.msg);
        return 1;
    }

    ai_root_params_init(&rp);
    rp.agent_id = "orchestrator";
    rp.scopes = root_scopes;
    rp.nscopes = 3;
    rp.constraints_json = "{\"github:repo:*\":{\"resources\":[\"myorg/*\"]}}";
    rp.max_delegation_depth = 3;
    rp.ttl_days = 7;
    if (ai_token_create_root(keys, &rp, now, &root, &e) != AI_OK) {
        fprintf(stderr, "quickstart: create root: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "root token for \"orchestrator\" (tokenId %s)\n",
            ai_token_id(root));

    ai_delegation_init(&d);
    d.agent_id = "code-reviewer";
    d.scopes = child_scopes;
    d.nscopes = 1;
    d.constraints_json =
        "{\"github:repo:read\":{\"resources\":[\"myorg/frontend\"]}}";
    d.ttl_minutes = 60;
    if (ai_token_delegate(keys, root, &d, now, &child, &e) != AI_OK) {
        fprintf(stderr, "quickstart: delegate: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "delegated to \"code-reviewer\" (tokenId %s)\n",
            ai_token_id(child));

    ai_err e1 = {0}, e2 = {0}, e3 = {0}, e4 = {0};
    bad |= expect("verify child token", ai_token_verify(&v,
                  ai_token_serialize(child), ai_token_serialized_len(child),
                  now, &seen, &e1), AI_OK, &e1);
    if (seen != NULL) {
        bad |= expect("github:repo:read on myorg/frontend",
                      ai_token_check(seen, "github:repo:read", "myorg/frontend",
                                     now, &e2), AI_OK, &e2);
        bad |= expect("github:repo:write on myorg/frontend",
                      ai_token_check(seen, "github:repo:write",
                                     "myorg/frontend", now, &e3),
                      AI_EDENIED, &e3);
        bad |= expect("github:repo:read on myorg/backend",
                      ai_token_check(seen, "github:repo:read", "myorg/backend",
                                     now, &e4), AI_EDENIED, &e4);
    }
    printf("%s\n", ai_token_serialize(child));

    ai_token_free(seen);
    ai_token_free(child);
    ai_token_free(root);
    ai_keyring_free(keys);
    fprintf(stderr, "%s\n", bad ? "quickstart: UNEXPECTED RESULT" : "quickstart: all results as the README states");
    return bad;
}
