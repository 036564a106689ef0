#!/usr/bin/env python3
"""tests/clients/fixture.py BIN TMPDIR SUITE...: the real service the
client suites (Python, Node, OpenAPI) run against, DESIGN §10. It starts
on 127.0.0.1 over TLS (tests/lib/tls_env.sh's CA):

- a leader (`agent-iam serve --admin-token-file`) whose home has an API
  key `openai` (provider openai, secret sk-client-test-0123456789) and a
  follower credential for every provider;
- a follower of it (`agent-iam follower`), ready before any suite starts;

then runs every SUITE (a shell command) with the environment below:
first, one after the other, those written "alone:COMMAND" (a suite that
changes what the others rely on, e.g. a key rotation), then all the others
at once. It prints each one's output when it ends, stops the servers and
exits 1 when any suite failed or a server died during them (0 else).

  AGENT_IAM_BIN                the agent-iam binary
  AGENT_IAM_TEST_LEADER        https://127.0.0.1:PORT of the leader
  AGENT_IAM_TEST_FOLLOWER      https://127.0.0.1:PORT of the follower
  AGENT_IAM_TEST_DEAD          an https URL on a port nobody listens on
  AGENT_IAM_TEST_CA            the CA file both servers chain to
  AGENT_IAM_TEST_ADMIN_TOKEN   the leader's admin token (POST
                               /v1/admin/tokens makes root tokens)
  AGENT_IAM_TEST_METRICS_TOKEN the --metrics-token of both servers
                               (GET /metrics and /v1/status)
  AGENT_IAM_TEST_APIKEY        the API key's name ("openai")
  AGENT_IAM_TEST_APIKEY_SECRET its secret, to compare a credential with
  AGENT_IAM_TEST_HOME          the leader's home (for `agent-iam --home`)
  AGENT_IAM_TEST_TMP           a scratch directory of the run

A suite run at once with others must not change the servers for them
(no key rotation, no removal of the API key); what it revokes it names
with agent ids of its own."""
import os
import subprocess
import sys
import threading
import time

import service as S
from free_port import free_port

APIKEY, APIKEY_SECRET = "openai", "sk-client-test-0123456789"
SUITE_TIMEOUT_S = 600


def run_suite(cmd, env, results, i):
    t0 = time.time()
    try:
        p = subprocess.run(["sh", "-c", cmd], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=SUITE_TIMEOUT_S * S.SLOW)
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        rc, out = 124, (e.stdout or b"") + b"\n(timed out)\n"
    results[i] = (rc, out.decode("utf-8", "replace"), time.time() - t0)


def main():
    if len(sys.argv) < 4:
        print("usage: fixture.py BIN TMPDIR SUITE...", file=sys.stderr)
        return 2
    S.init(sys.argv[1], sys.argv[2])
    suites = sys.argv[3:]
    home = S.home("leader")
    admin = "client-admin-" + os.urandom(16).hex()
    admin_file = S.secret_file("admin.token", admin)
    metrics = "client-metrics-" + os.urandom(16).hex()
    metrics_file = S.secret_file("metrics.token", metrics)
    rc, out, err = S.cli("--home", home, "apikey", "add", "--name", APIKEY,
                         "--provider", "openai", "--key", APIKEY_SECRET)
    if rc != 0:
        print("fixture: apikey add failed: " + err, file=sys.stderr)
        return 1
    rc, out, err = S.cli("--home", home, "followers", "add", "eu-1",
                         "--providers", "*")
    if rc != 0:
        print("fixture: followers add failed: " + err, file=sys.stderr)
        return 1
    fcred = S.secret_file("follower.cred", out.strip())
    leader = S.leader("leader", home, "--admin-token-file", admin_file,
                      "--metrics-token-file", metrics_file)
    follower = S.follower("follower", S.home("follower"), leader,
                          "--auth-token-file", fcred, "--follower-id",
                          "eu-1", "--metrics-token-file", metrics_file)
    if not S.wait_for(lambda: S.call(follower, "GET", "/readyz").status ==
                      200, 30 * S.SLOW):
        print("fixture: the follower is not ready:\n" + follower.log()[-2000:],
              file=sys.stderr)
        return 1
    scratch = os.path.join(S.TMP, "scratch")
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    env = S.clean_env({
        "AGENT_IAM_BIN": S.BIN,
        "AGENT_IAM_TEST_LEADER": leader.url,
        "AGENT_IAM_TEST_FOLLOWER": follower.url,
        "AGENT_IAM_TEST_DEAD": "https://127.0.0.1:%d" % free_port(),
        "AGENT_IAM_TEST_CA": S.CA,
        "AGENT_IAM_TEST_ADMIN_TOKEN": admin,
        "AGENT_IAM_TEST_METRICS_TOKEN": metrics,
        "AGENT_IAM_TEST_APIKEY": APIKEY,
        "AGENT_IAM_TEST_APIKEY_SECRET": APIKEY_SECRET,
        "AGENT_IAM_TEST_HOME": home,
        "AGENT_IAM_TEST_TMP": scratch,
    })
    env.pop("AGENT_TOKEN", None)
    alone = [c[len("alone:"):] for c in suites if c.startswith("alone:")]
    together = [c for c in suites if not c.startswith("alone:")]
    failed = 0
    for batch in [[c] for c in alone] + [together]:
        results = [None] * len(batch)
        threads = [threading.Thread(target=run_suite,
                                    args=(c, env, results, i))
                   for i, c in enumerate(batch)]
        for t in threads:
            t.start()
        for i, t in enumerate(threads):
            t.join()
            rc, out, took = results[i]
            print("==== %s (exit %d, %.1f s)" % (batch[i], rc, took))
            print(out, end="" if out.endswith("\n") else "\n")
            failed += rc != 0
    died = 0
    for p, name in ((follower, "follower"), (leader, "leader")):
        if not p.alive():
            print("fixture: the %s died during the suites:\n%s" %
                  (name, p.log()[-2000:]))
            died += 1
        p.stop_checked()
    print("client suites: %d of %d passed" % (len(suites) - failed,
                                              len(suites)))
    if died:
        print("client suites: %d server(s) died during the suites" % died)
    return 1 if failed or died else 0


sys.exit(main())
