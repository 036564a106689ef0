#!/usr/bin/env python3
"""agent.py - an agent process with agent_iam.Runtime (the README's "Pass
Tokens to Subprocesses"), the Python twin of examples/agent.c. It takes
its token from AGENT_TOKEN and talks to a leader or follower over HTTPS
(AGENT_IAM_URL, a comma-separated list allowed, and AGENT_IAM_CA_CERT),
so it never holds a signing key. It gets a credential for SCOPE, then
runs itself as a child (`--child`) whose AGENT_TOKEN is delegated for
SCOPE alone; the child shows that it may use SCOPE and is refused OTHER,
a scope its parent holds.

usage: agent.py [SCOPE [OTHER [RESOURCE]]]
       (default: openai:chat:completions openai:chat:moderations "")
Prints what happens (never a token or a secret) and exits 0 only if
everything behaved as described."""
import os
import subprocess
import sys

try:
    from agent_iam import AgentIAMError, Forbidden, Runtime
except ImportError:  # run from the source tree, not installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(
        __file__)), "..", "..", "clients", "python"))
    from agent_iam import AgentIAMError, Forbidden, Runtime


def try_credential(who, rt, scope, resource, want_ok):
    """Ask for a credential; print the outcome (not the secret)."""
    try:
        cred = rt.credential(scope, resource)
        got = "allowed (%s)" % cred.get("credentialType")
        ok = want_ok
    except Forbidden as e:
        got = "refused (%s: %s)" % (e.code, e.message)
        ok = not want_ok
    print("%s: credential %-28s %s" % (who, scope, got))
    if not ok:
        print("%s:   UNEXPECTED: wanted %s" % (who, "allowed" if want_ok
                                              else "refused"))
    return ok


def child(scope, other, resource):
    with Runtime.from_environment() as rt:
        me = rt.whoami()
        print("child: I am %s (parent %s), scopes %s"
              % (me.get("agentId"), me.get("parentId"), me.get("scopes")))
        ok = bool(rt.check(scope, resource))
        print("child: check %-33s %s" % (scope, "allowed" if ok
                                         else "refused"))
        ok &= try_credential("child", rt, scope, resource, True)
        ok &= try_credential("child", rt, other, resource, False)
    return 0 if ok else 1


def parent(scope, other, resource):
    with Runtime.from_environment() as rt:
        print("parent: I am %s, scopes %s"
              % (rt.agent_id, rt.claims.get("scopes")))
        ok = try_credential("parent", rt, scope, resource, True)
        held = bool(rt.check(other, resource))
        print("parent: check %-32s %s" % (other, "allowed" if held
                                          else "refused"))
        ok &= held
        env = rt.subprocess_env("%s-sub" % rt.agent_id, [scope],
                                ttl_minutes=10, delegatable=False)
        print("parent: starting a sub-agent with a token for %s only" % scope)
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__),
                                "--child", scope, other, resource],
                               env={**os.environ, **env}, timeout=60)
        except subprocess.TimeoutExpired:
            print("parent: the sub-agent did not end within 60 s",
                  file=sys.stderr)
            return 1
        print("parent: the sub-agent exited %d" % p.returncode)
    return 0 if ok and p.returncode == 0 else 1


def main(argv):
    is_child = bool(argv) and argv[0] == "--child"
    args = argv[1:] if is_child else argv
    scope = args[0] if len(args) > 0 else "openai:chat:completions"
    other = args[1] if len(args) > 1 else "openai:chat:moderations"
    resource = args[2] if len(args) > 2 else ""
    try:
        return (child if is_child else parent)(scope, other, resource)
    except (AgentIAMError, ValueError) as e:
        print("%s: %s" % ("child" if is_child else "parent", e),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
