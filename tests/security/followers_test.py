#!/usr/bin/env python3
"""Credentials with one job each (DESIGN.md §8), against a real leader and
a real follower over TLS:

  - `agent-iam followers add region-b --providers anthropic` prints a
    credential; a follower started with it replicates;
  - no snapshot line or change batch holds a signing key, provider secret
    or API key in plaintext (the bytes are searched), for the registered
    follower and for the shared --auth-token; the shared token gets no
    provider secret at all, and cannot reach any admin route;
  - the follower serves the granted provider from its replica (also with
    the leader down) and forwards the others to the leader (503 when the
    leader is down);
  - X-Follower-Id must agree with the credential;
  - `followers remove region-b`: its next request is 401 at once and a
    long-poll it holds is cut;
  - without --admin-token the admin API is off (404);
  - /metrics and /v1/status need the admin or metrics token unless
    --public-metrics.

    followers_test.py BIN TMPDIR
"""
import base64
import os
import sys
import subprocess
import threading
import time

import checks
from checks import check
import service as S

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()
SHARED = "shared-" + os.urandom(12).hex()
METRICS = "metrics-" + os.urandom(12).hex()
OPENAI = "sk-openai-" + os.urandom(12).hex()
ANTHROPIC = "sk-ant-" + os.urandom(12).hex()
G_SECRET = "gcs-" + os.urandom(12).hex()
G_REFRESH = "1//grt-" + os.urandom(12).hex()


def admin_cli(L, *args):
    return S.cli(*(list(args) + ["--leader-url", L.url, "--auth-token-file",
                                 S.secret_file("admin.token", ADMIN),
                                 "--ca-cert", S.CA]))


def raw_feed(L, bearer, fid=None, since=0):
    h = {"X-Follower-Id": fid} if fid else None
    snap = S.call(L, "GET", "/v1/replication/snapshot", bearer=bearer,
                  headers=h)
    feed = S.call(L, "GET", "/v1/replication/changes?since=%d&limit=1000" %
                  since, bearer=bearer, headers=h)
    return snap, feed


def plaintexts(signing_key):
    """Every secret of the run, as the bytes that would show it."""
    out = {"openai key": OPENAI.encode(), "anthropic key": ANTHROPIC.encode(),
           "google client secret": G_SECRET.encode(),
           "google refresh token": G_REFRESH.encode()}
    out["signing key (base64url)"] = base64.urlsafe_b64encode(
        signing_key).rstrip(b"=")
    out["signing key (hex)"] = signing_key.hex().encode()
    return out


def section_no_plaintext(L, secret, signing_key):
    for who, bearer, fid in (("region-b", secret, None),
                             ("the shared token", SHARED, "legacy")):
        snap, feed = raw_feed(L, bearer, fid)
        check("%s: snapshot 200" % who, snap.status == 200, snap)
        check("%s: change feed 200" % who, feed.status == 200, feed)
        for name, needle in plaintexts(signing_key).items():
            check("%s: no %s in the snapshot or the feed" % (who, name),
                  needle not in snap.body and needle not in feed.body)
        check("%s: signing keys arrive sealed" % who,
              b'"sealed"' in snap.body and b'"kind":"key"' in snap.body,
              snap.body[:300])
    snap, _ = raw_feed(L, SHARED, "legacy")
    check("the shared token gets no API key or provider line",
          b'"kind":"apikey"' not in snap.body and
          b'"kind":"provider"' not in snap.body, snap.body[:400])
    snap, _ = raw_feed(L, secret)
    check("region-b gets the anthropic key (granted), not openai's",
          b'"name":"anthropic"' in snap.body and
          b'"name":"openai"' not in snap.body and
          b'"kind":"provider"' not in snap.body, snap.body[:600])


def cred(srv, tok, scope):
    return S.call(srv, "POST", "/v1/credentials",
                  {"scope": scope, "resource": ""}, bearer=tok)


def section_admin_off(L, tok):
    for method, path, body in (("POST", "/v1/admin/tokens",
                                {"agentId": "x", "scopes": ["a:b:c"]}),
                               ("POST", "/v1/admin/revoke",
                                {"agentId": "x"}),
                               ("GET", "/v1/admin/followers", None),
                               ("POST", "/v1/admin/followers",
                                {"id": "evil"})):
        r = S.call(L, method, path, body, bearer=SHARED)
        check("the shared follower token on %s %s: 401" % (method, path),
              r.status == 401, r)
    r = S.call(L, "GET", "/v1/status", bearer=SHARED)
    check("the shared follower token on /v1/status: 401", r.status == 401, r)


def section_remove(L, secret):
    got = {}

    def poll():
        t0 = time.time()
        r = S.call(L, "GET", "/v1/replication/changes?since=%d&wait=20" %
                   head(L), bearer=secret, timeout=30)
        got["r"], got["t"] = r, time.time() - t0

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1.0)  # the poll is held
    t0 = time.time()
    rc, out, err = admin_cli(L, "followers", "remove", "region-b")
    check("followers remove region-b: exit 0", rc == 0, err)
    th.join(30)
    r = got.get("r")
    check("the long-poll it held is cut with 401 at once",
          r is not None and r.status == 401 and time.time() - t0 < 3,
          "%r after %.1fs" % (r, time.time() - t0))
    r = S.call(L, "GET", "/v1/replication/changes?since=0", bearer=secret)
    check("its next feed request: 401", r.status == 401, r)


def head(L):
    return S.call(L, "GET", "/v1/status", bearer=ADMIN).json["changelogSeq"]


def section_metrics(L):
    for path in ("/metrics", "/v1/status"):
        r = S.call(L, "GET", path)
        check("%s without a token: 401" % path, r.status == 401, r)
        r = S.call(L, "GET", path, bearer=ADMIN)
        check("%s with the admin token: 200" % path, r.status == 200, r)
        r = S.call(L, "GET", path, bearer=METRICS)
        check("%s with the metrics token: 200" % path, r.status == 200, r)
    r = S.call(L, "GET", "/v1/status", bearer=ADMIN)
    check("/v1/status says a shared follower secret is in use (weaker)",
          r.json.get("sharedFollowerSecret") is True and
          "followers add" in r.json.get("warning", ""), r)
    for path in ("/healthz", "/readyz"):
        r = S.call(L, "GET", path)
        check("%s is public" % path, r.status == 200, r)


def main():
    home = S.home("leader")
    for args in (["apikey", "add", "--name", "openai", "--provider", "openai",
                  "--key-file", S.secret_file("k1", OPENAI)],
                 ["apikey", "add", "--name", "anthropic", "--provider",
                  "anthropic", "--key-file", S.secret_file("k2", ANTHROPIC)],
                 ["config", "init", "google", "--client-id", "cid.example",
                  "--client-secret-file", S.secret_file("g1", G_SECRET),
                  "--refresh-token-file", S.secret_file("g2", G_REFRESH)]):
        rc, out, err = S.cli("--home", home, *args)
        if rc != 0:
            raise RuntimeError("%s: %s" % (args, err))
    L = S.leader("leader", home, "--admin-token-file",
                 S.secret_file("admin.token", ADMIN), "--auth-token-file",
                 S.secret_file("shared.token", SHARED),
                 "--metrics-token-file", S.secret_file("metrics.token",
                                                        METRICS))
    p = subprocess.run([S.BIN, "--home", home, "key", "export", "--version",
                        "1"], capture_output=True, env=S.clean_env(),
                       timeout=30)
    signing_key = p.stdout
    check("the signing key was exported (32 bytes)", len(signing_key) == 32,
          len(signing_key))

    rc, out, err = admin_cli(L, "followers", "add", "region-b",
                             "--providers", "anthropic")
    secret = out.strip()
    check("followers add region-b: exit 0 and a credential on stdout",
          rc == 0 and len(secret) >= 40 and "\n" not in secret, (rc, err))
    rc, out, err = admin_cli(L, "followers", "list")
    check("followers list shows region-b and its grant",
          rc == 0 and "region-b" in out and "anthropic" in out, out + err)

    F = S.follower("follower", S.home("follower"), L, "--auth-token-file",
                   S.secret_file("region-b.token", secret), "--follower-id",
                   "region-b", "--public-metrics")
    ready = S.wait_for(lambda: S.call(F, "GET", "/readyz").status == 200, 20)
    check("a follower started with that credential replicates", ready)

    r = S.call(L, "POST", "/v1/admin/tokens",
               {"agentId": "worker", "scopes": ["openai:*", "anthropic:*"]},
               bearer=ADMIN)
    tok = r.json["token"]
    section_no_plaintext(L, secret, signing_key)

    r = cred(F, tok, "anthropic:messages:create")
    check("granted provider: the follower serves it",
          r.status == 200 and ANTHROPIC in r.body.decode(), r)
    r = cred(F, tok, "openai:chat:completions")
    check("not granted: the follower forwards it to the leader",
          r.status == 200 and OPENAI in r.body.decode(), r)
    r = S.call(L, "GET", "/v1/replication/changes?since=0", bearer=secret,
               headers={"X-Follower-Id": "region-c"})
    check("X-Follower-Id that is not the credential's: 403",
          r.status == 403, r)
    r = S.call(L, "GET", "/v1/replication/changes?since=0", bearer=SHARED,
               headers={"X-Follower-Id": "region-b"})
    check("the shared secret speaking for a registered follower: 403",
          r.status == 403, r)
    r = S.call(F, "POST", "/v1/admin/followers", {"id": "x"}, bearer=ADMIN)
    check("followers add sent to a follower: 409 with the leader's URL",
          r.status == 409 and r.code == "not_leader", r)
    section_admin_off(L, tok)
    section_metrics(L)
    r = S.call(F, "GET", "/v1/status")
    check("a follower with --public-metrics: /v1/status for everyone",
          r.status == 200, r)

    section_remove(L, secret)

    L.stop_checked()
    r = cred(F, tok, "anthropic:messages:create")
    check("leader down: the granted provider is still served",
          r.status == 200 and ANTHROPIC in r.body.decode(), r)
    r = cred(F, tok, "openai:chat:completions")
    check("leader down: a forwarded provider is 503", r.status == 503, r)
    F.stop_checked()

    L2 = S.leader("leader-noadmin", S.home("leader2"), "--public-metrics")
    r = S.call(L2, "POST", "/v1/admin/tokens",
               {"agentId": "x", "scopes": ["a:b:c"]}, bearer="anything")
    check("no --admin-token: the admin API is 404", r.status == 404, r)
    r = S.call(L2, "GET", "/v1/status")
    check("--public-metrics: /v1/status for everyone", r.status == 200, r)
    L2.stop_checked()
    print("%d passed, %d failed" % (checks.counts["pass"],
                                    checks.counts["fail"]))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
