/* agent.c - an agent process with the AgentRuntime (the README's "Pass
 * Tokens to Subprocesses"): it takes its token from AGENT_TOKEN and talks
 * to a leader or follower over HTTPS (AGENT_IAM_URL, AGENT_IAM_CA_CERT),
 * so it never holds a signing key. It gets a credential for SCOPE, then
 * runs itself as a child (`--child`) with an environment whose AGENT_TOKEN
 * is delegated for SCOPE alone; the child checks that it may use SCOPE and
 * may not use OTHER, a scope its parent holds.
 *
 * usage: agent SCOPE OTHER [RESOURCE]
 * Prints what happens (never a token or a secret) and exits 0 only if
 * everything behaved as described. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "agent_iam.h"

static int report(const char *who, const char *what, ai_code got,
                  ai_code want, const ai_err *e)
{
    printf("%s: %-44s %s%s%s%s\n", who, what,
           got == AI_OK ? "allowed" : "refused", got == AI_OK ? "" : " (",
           got == AI_OK ? "" : e->msg, got == AI_OK ? "" : ")");
    if (got != want)
        printf("%s:   UNEXPECTED: wanted %s\n", who,
               want == AI_OK ? "allowed" : ai_strerror(want));
    return got == want ? 0 : 1;
}

static ai_code open_runtime(const char *who, ai_runtime **rt)
{
    ai_runtime_config cfg;
    ai_err e;
    ai_code rc;

    ai_runtime_config_init(&cfg);
    cfg.mode = AI_RUNTIME_REMOTE; /* AGENT_IAM_URL, AGENT_IAM_CA_CERT */
    if ((rc = ai_runtime_from_environment(&cfg, rt, &e)) != AI_OK)
        fprintf(stderr, "%s: cannot start the runtime: %s\n", who, e.msg);
    return rc;
}

/* The credential's type, never its secret. */
static ai_code credential(const char *who, ai_runtime *rt, const char *scope,
                          const char *resource, ai_err *e)
{
    char *cred = NULL;
    ai_code rc = ai_runtime_get_credential(rt, scope, resource, &cred, e);

    if (rc == AI_OK) {
        json_t *o = json_loads(cred, 0, NULL);
        const char *type =
            o ? json_string_value(json_object_get(o, "credentialType")) : NULL;
        printf("%s: credential for %s: %s\n", who, scope, type ? type : "?");
        json_decref(o);
    }
    ai_free_string(cred);
    return rc;
}

static int child(const char *scope, const char *other, const char *resource)
{
    ai_runtime *rt = NULL;
    ai_token *t = NULL;
    char *status = NULL;
    ai_err e;
    int bad = 0;

    if (open_runtime("child", &rt) != AI_OK)
        return 1;
    if (ai_runtime_get_token(rt, &t, &e) == AI_OK) {
        printf("child: I am %s (depth %d, %zu scope%s)\n",
               ai_token_agent_id(t), ai_token_depth(t),
               ai_token_scope_count(t),
               ai_token_scope_count(t) == 1 ? "" : "s");
        bad |= ai_token_depth(t) < 1;
        ai_token_free(t);
    } else {
        bad = 1;
    }
    bad |= report("child", scope, ai_runtime_check_permission(rt, scope,
                  resource, &e), AI_OK, &e);
    bad |= report("child", other, ai_runtime_check_permission(rt, other,
                  resource, &e), AI_EDENIED, &e);
    bad |= report("child", "credential for the narrower scope",
                  credential("child", rt, scope, resource, &e), AI_OK, &e);
    bad |= report("child", "credential for the parent's other scope",
                  credential("child", rt, other, resource, &e), AI_EDENIED,
                  &e);
    if (ai_runtime_get_status(rt, &status) == AI_OK)
        printf("child: status %s\n", status);
    ai_free_string(status);
    ai_runtime_free(rt);
    return bad;
}

static int parent(const char *self, const char *scope, const char *other,
                  const char *resource)
{
    const char *scopes[1] = {scope};
    char *argv[] = {(char *)(uintptr_t)self, (char *)(uintptr_t)"--child",
                    (char *)(uintptr_t)scope, (char *)(uintptr_t)other,
                    (char *)(uintptr_t)resource, NULL};
    ai_runtime *rt = NULL;
    ai_delegation d;
    char **envp = NULL, *status = NULL;
    ai_err e;
    pid_t pid;
    int bad = 0, ws = 0, rc;

    if (open_runtime("parent", &rt) != AI_OK)
        return 1;
    if (ai_runtime_start(rt, &e) != AI_OK) {
        fprintf(stderr, "parent: cannot start refreshing: %s\n", e.msg);
        ai_runtime_free(rt);
        return 1;
    }
    bad |= report("parent", scope, ai_runtime_check_permission(rt, scope,
                  resource, &e), AI_OK, &e);
    bad |= report("parent", other, ai_runtime_check_permission(rt, other,
                  resource, &e), AI_OK, &e);
    bad |= report("parent", "credential",
                  credential("parent", rt, scope, resource, &e), AI_OK, &e);

    ai_delegation_init(&d);
    d.agent_id = "agent-example-child";
    d.scopes = scopes;
    d.nscopes = 1;
    d.ttl_minutes = 10;
    d.delegatable = false;
    if (ai_runtime_create_subprocess_env(rt, &d, &envp, &e) != AI_OK) {
        fprintf(stderr, "parent: cannot make the child's environment: %s\n",
                e.msg);
        ai_runtime_free(rt);
        return 1;
    }
    printf("parent: spawning a child with AGENT_TOKEN for %s only\n", scope);
    fflush(stdout);
    rc = posix_spawn(&pid, self, NULL, NULL, argv, envp);
    ai_runtime_free_env(envp);
    if (rc != 0) {
        fprintf(stderr, "parent: posix_spawn %s: %s\n", self, strerror(rc));
        ai_runtime_free(rt);
        return 1;
    }
    while (waitpid(pid, &ws, 0) < 0)
        ;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        printf("parent: the child did not behave (status %d)\n", ws);
        bad = 1;
    } else {
        printf("parent: the child behaved\n");
    }
    if (ai_runtime_get_status(rt, &status) == AI_OK)
        printf("parent: status %s\n", status);
    ai_free_string(status);
    ai_runtime_free(rt);
    return bad;
}

int main(int argc, char **argv)
{
    /* /proc/self/exe: the same program even when argv[0] is a bare name */
    const char *self = "/proc/self/exe";

    if (argc >= 4 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], argv[3], argc > 4 ? argv[4] : "") ? 1 : 0;
    if (argc < 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: agent SCOPE OTHER [RESOURCE]\n"
                        "  (AGENT_TOKEN, AGENT_IAM_URL, AGENT_IAM_CA_CERT)\n");
        return 2;
    }
    return parent(self, argv[1], argv[2], argc > 3 ? argv[3] : "") ? 1 : 0;
}
