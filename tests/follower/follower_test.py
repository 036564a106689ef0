#!/usr/bin/env python3
"""Integration tests of replication: a leader (`agent-iam serve`) and its
followers (`agent-iam follower`) as real processes on 127.0.0.1 over TLS,
driven with the standard library only (http.client, ssl, sqlite3). Called
by tests/follower/run.sh, which makes the certificates:

    follower_test.py BIN TMPDIR

TMPDIR holds ca.pem, server.pem and server.key (every process serves the
same certificate) and receives the homes, the processes' stderr and `pids`
(every process started, for run.sh's trap). Prints "ok   NAME" /
"FAIL NAME (why)" per assertion, "#" lines with timings, and exits 1 when
anything failed.

The leader is started as the README says, with one secret for admins and
followers (--auth-token-file); the admin CLI is the real one
(`agent-iam revoke|rotate-key|token create-root|apikey add|config init
--leader-url URL --auth-token-file F --ca-cert CA`).

FOLLOWER_TEST_ONLY=1,3 runs those scenarios alone (development).

Scenarios (as listed in tests/follower/run.sh):
  1 fleet       leader + 3 followers: revocation < 1 s everywhere, key
                rotation, API key, provider config, maxUses at the leader,
                409 not_leader, followers with lag 0 on the leader
  2 leader down followers verify, become degraded, 503 past max staleness;
                the leader restarted on its port: they catch up
  3 kill -9     a follower killed while applying 50,000 revocations: a
                consistent replica, then it converges
  4 retained    a follower behind the retained log reloads the snapshot
  5 wrong token said clearly, the replica kept and served until stale
  6 sync        `agent-iam sync` then `token verify` offline on the home
 12 sync on a terminal: the progress of a 100,000-revocation snapshot
                and of the change feed's 40 batches (fewer under ASan), rewritten in place on stderr;
                the final line as before; none without a terminal or with
                --json
"""
import atexit
import http.client
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import checks  # noqa: E402
from free_port import free_port  # noqa: E402,F401
from checks import (b64d, check, no, ok, sanitizer_report,  # noqa: E402
                    token_json)

BIN = os.path.abspath(sys.argv[1])
TMP = os.path.abspath(sys.argv[2])
CA = os.path.join(TMP, "ca.pem")
CERT = os.path.join(TMP, "server.pem")
KEY = os.path.join(TMP, "server.key")
PIDS = os.path.join(TMP, "pids")

with open(BIN, "rb") as f:
    ASAN = b"__asan_init" in f.read()
SLOW = 4 if ASAN else 1  # time budgets scale under AddressSanitizer

TOKEN = "repl-" + secrets.token_hex(16)
TOKFILE = os.path.join(TMP, "auth.token")   # the shared follower secret
ADMIN = "admin-" + secrets.token_hex(16)
ADMINFILE = os.path.join(TMP, "admin.token")
WRONGFILE = os.path.join(TMP, "wrong.token")
for path, text in ((TOKFILE, TOKEN), (ADMINFILE, ADMIN),
                   (WRONGFILE, "wrong-" + secrets.token_hex(16))):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)

SCOPE = "openai:chat:completions"



def note(text):
    print("# " + text, flush=True)


def wait_until(pred, timeout, step=0.02):
    """pred() until it is truthy or timeout seconds (scaled) pass: its last
    value."""
    deadline = time.time() + timeout * SLOW
    while True:
        try:
            v = pred()
        except (OSError, http.client.HTTPException, ValueError, KeyError,
                TypeError):
            v = None
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


# ---- processes ------------------------------------------------------------

def run(*args, home=None, timeout=60):
    """The CLI: (exit code, stdout, stderr)."""
    argv = [BIN] + (["--home", home] if home else []) + list(args)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGENT_IAM_")}
    env["HOME"] = TMP  # never the user's ~/.agent-iam
    p = subprocess.run(argv, capture_output=True, text=True, env=env,
                       timeout=timeout * SLOW, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


PROCS = []


@atexit.register
def _kill_all():
    for p in PROCS:
        if p.p.poll() is None:
            p.p.kill()
            p.p.wait()


class Proc:
    """A server process (leader or follower) on 127.0.0.1; its port read
    back from its "listening on" line."""

    def __init__(self, name, args):
        self.name = name
        self.log_path = os.path.join(TMP, name + ".log")
        self.logf = open(self.log_path, "ab")
        self.mark = self.logf.tell()  # this run's part of the log
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AGENT_IAM_")}
        env["HOME"] = TMP
        self.p = subprocess.Popen([BIN] + args, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=self.logf,
                                  env=env)
        PROCS.append(self)
        with open(PIDS, "a") as f:
            f.write("%d\n" % self.p.pid)
        self.port = None
        deadline = time.time() + 20 * SLOW
        while time.time() < deadline:
            m = re.search(r"listening on https://127\.0\.0\.1:(\d+)",
                          self.log())
            if m:
                self.port = int(m.group(1))
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            self.p.kill()
            raise RuntimeError("%s did not start: %s" %
                               (name, self.log()[-2000:]))
        self.url = "https://127.0.0.1:%d" % self.port

    def log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.mark)
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.p.poll() is None

    def conn(self, timeout=10):
        return http.client.HTTPSConnection("127.0.0.1", self.port,
                                           timeout=timeout * SLOW,
                                           context=client_ctx())

    def stop(self, timeout=15):
        t0 = time.time()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        self.logf.close()
        return rc, time.time() - t0

    def stop_checked(self, timeout=15):
        rc, secs = self.stop(timeout)
        check("%s: exits 0 at SIGTERM" % self.name, rc == 0,
              "exit %s after %.1fs; stderr tail: %s" %
              (rc, secs, self.log()[-600:]))
        # a follower's held long-poll (25 s by default) must not delay it
        check("%s: stops within 3 s" % self.name, secs < 3 * SLOW,
              "%.1fs" % secs)
        rep = sanitizer_report(self.log())
        check("%s: no sanitizer or leak report" % self.name, rep is None,
              rep or "")

    def kill9(self):
        self.p.kill()
        self.p.wait()
        self.logf.close()


def leader(name, home, port=0, extra=()):
    return Proc(name, ["--home", home, "serve", "--host", "127.0.0.1",
                       "--port", str(port), "--tls-cert", CERT,
                       "--tls-key", KEY, "--auth-token-file", TOKFILE,
                       "--admin-token-file", ADMINFILE, "--public-metrics"] +
                list(extra))


REGISTERED = {}


def registered(lead_url, fid):
    """The credential file of follower fid on the leader at lead_url,
    registered there (`agent-iam followers add ID --providers '*'`) the
    first time."""
    if (lead_url, fid) not in REGISTERED:
        rc, out, err = run("followers", "add", fid, "--providers", "*",
                           "--leader-url", lead_url, "--auth-token-file",
                           ADMINFILE, "--ca-cert", CA)
        if rc != 0:
            raise RuntimeError("followers add %s: %s" % (fid, err))
        path = os.path.join(TMP, "follower-%s-%d.token" %
                            (fid, len(REGISTERED)))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(out.strip() + "\n")
        REGISTERED[(lead_url, fid)] = path
    return REGISTERED[(lead_url, fid)]


def follower(name, home, lead_url, fid, extra=(), tokfile=None):
    """A follower with its own credential (registered on the leader), or
    with tokfile (the shared secret, or a wrong one)."""
    if tokfile is None:
        tokfile = registered(lead_url, fid)
    return Proc(name, ["--home", home, "follower", "--leader-url", lead_url,
                       "--auth-token-file", tokfile, "--follower-id", fid,
                       "--ca-cert", CA, "--host", "127.0.0.1", "--port", "0",
                       "--tls-cert", CERT, "--tls-key", KEY,
                       "--public-metrics"] + list(extra))


def admin(L, *args):
    """An admin command of the CLI on the running leader L."""
    return run(*(list(args) + ["--leader-url", L.url, "--auth-token-file",
                               ADMINFILE, "--ca-cert", CA]))


def create_root(L, agent, scopes=SCOPE, constraints=None):
    args = ["token", "create-root", "--agent-id", agent, "--scopes", scopes]
    if constraints is not None:
        args += ["--constraints", json.dumps(constraints)]
    rc, out, err = admin(L, *args)
    if rc != 0:
        raise RuntimeError("create-root --leader-url: %s" % err)
    return out.strip()


_CTX = None


def client_ctx():
    global _CTX
    if _CTX is None:
        _CTX = ssl.create_default_context(cafile=CA)
    return _CTX


# ---- HTTP -------------------------------------------------------------------

class Resp:
    def __init__(self, status, body):
        self.status = status
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        return self.json.get("code") if isinstance(self.json, dict) else None

    def __repr__(self):
        return "%s %s" % (self.status, self.body[:300])


def call(srv, method, path, body=None, bearer=None, headers=None, conn=None):
    h = dict(headers or {})
    if bearer is not None:
        h["Authorization"] = "Bearer " + bearer
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    own = conn is None
    c = conn or srv.conn()
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Resp(r.status, r.read())
    finally:
        if own:
            c.close()


def check_req(srv, tok, conn=None):
    return call(srv, "POST", "/v1/check", {"scope": SCOPE, "resource": ""},
                bearer=tok, conn=conn)


def cred_req(srv, tok):
    return call(srv, "POST", "/v1/credentials", {"scope": SCOPE,
                                                 "resource": ""}, bearer=tok)


def status_of(srv):
    return call(srv, "GET", "/v1/status").json


def is_valid(r):
    return r.status == 200 and r.json == {"valid": True}


def is_revoked(r):
    return r.status == 401 and r.code == "token_revoked"


def caught_up(L, *fs):
    """Every follower applied the leader's head (status of both)."""
    head = status_of(L)["changelogSeq"]
    return all(status_of(f)["appliedSeq"] == head for f in fs)


def db_query(home, sql, args=()):
    """A read of a home's database (another process may have it open)."""
    c = sqlite3.connect("file:%s?mode=ro" % os.path.join(home, "agent-iam.db"),
                        uri=True, timeout=10)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def metric(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


# ---- 1. leader + 3 followers -------------------------------------------------

def scenario_fleet():
    print("# 1. leader + 3 followers", flush=True)
    LH = os.path.join(TMP, "l1")
    L = leader("leader1", LH)
    old = create_root(L, "agent-old")
    victim = create_root(L, "agent-victim")
    F = [follower("f%d" % i, os.path.join(TMP, "f%d" % i), L.url, "f%d" % i)
         for i in (1, 2, 3)]
    try:
        t0 = time.time()
        up = wait_until(lambda: caught_up(L, *F) and
                        all(status_of(f)["serving"] for f in F), 10)
        check("3 followers: initial sync, caught up and serving", up,
              repr([status_of(f) for f in F]))
        note("initial sync of 3 followers: %.2fs" % (time.time() - t0))
        for f in F:
            s = status_of(f)
            check("%s: /v1/status state connected, lag 0, leaderUrl" % f.name,
                  s["state"] == "connected" and s["lag"] == 0 and
                  s["leaderUrl"] == L.url, repr(s))
            m = call(f, "GET", "/metrics").body.decode()
            check("%s: /metrics agent_iam_follower_state connected 1" % f.name,
                  metric(m, 'agent_iam_follower_state{state="connected"}') == 1
                  and metric(m, 'agent_iam_follower_state{state="degraded"}')
                  == 0, m[:400])
            check("%s: a leader token is valid" % f.name,
                  is_valid(check_req(f, victim)))

        # -- revocation: every follower refuses within 1 s
        tid = token_json(victim)["tokenId"]
        conns = [f.conn() for f in F]
        done = [None] * len(F)
        t_start = time.time()
        rc, out, err = admin(L, "revoke", tid, "--reason", "fleet test")
        t_ack = time.time()
        check("revoke --leader-url: exit 0", rc == 0, err)

        def watch(i):
            deadline = time.time() + 5 * SLOW
            while time.time() < deadline:
                try:
                    r = check_req(F[i], victim, conn=conns[i])
                except (OSError, http.client.HTTPException):
                    conns[i] = F[i].conn()
                    continue
                if is_revoked(r):
                    done[i] = time.time()
                    return
                time.sleep(0.005)
        ts = [threading.Thread(target=watch, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for c in conns:
            c.close()
        lat = [d - t_ack if d else None for d in done]
        note("revocation: CLI took %.3fs; refused by the followers %s s "
             "after the leader acknowledged it" %
             (t_ack - t_start,
              ", ".join("%.3f" % x if x is not None else "never" for x in lat)))
        check("revocation: 401 token_revoked on every follower < 1 s after "
              "the leader acknowledged it",
              all(x is not None and x < 1.0 * SLOW for x in lat), repr(lat))

        # -- unrevocation travels too
        rc, out, err = admin(L, "unrevoke", tid)
        check("unrevoke --leader-url: exit 0", rc == 0, err)
        for f in F:
            check("%s: unrevoked token valid again" % f.name,
                  wait_until(lambda: is_valid(check_req(f, victim)), 2),
                  repr(check_req(f, victim)))
        admin(L, "revoke", tid)
        for f in F:
            check("%s: revoked again" % f.name,
                  wait_until(lambda: is_revoked(check_req(f, victim)), 2),
                  repr(check_req(f, victim)))

        # -- key rotation
        rc, out, err = admin(L, "rotate-key")
        check("rotate-key --leader-url: exit 0", rc == 0, err)
        new = create_root(L, "agent-new")
        check("a root token made after rotate-key has keyVersion 2",
              token_json(new).get("keyVersion") == 2,
              repr(token_json(new).get("keyVersion")))
        for f in F:
            check("%s: the keyVersion 2 token verifies" % f.name,
                  wait_until(lambda: is_valid(check_req(f, new)), 3),
                  repr(check_req(f, new)))
            check("%s: the keyVersion 1 token still verifies" % f.name,
                  is_valid(check_req(f, old)), repr(check_req(f, old)))
            check("%s: /v1/status signingKeyVersion 2" % f.name,
                  status_of(f).get("signingKeyVersion") == 2,
                  repr(status_of(f)))

        # -- an API key added on the leader issues credentials on a follower
        apikey = "sk-repl-" + secrets.token_hex(12)
        rc, out, err = admin(L, "apikey", "add", "--name", "openai",
                             "--provider", "openai", "--key", apikey)
        check("apikey add --leader-url: exit 0", rc == 0, err)
        r = wait_until(lambda: (lambda r: r if r.status == 200 else None)(
            cred_req(F[1], new)), 3)
        check("f2: POST /v1/credentials: CredentialResult api_key with the "
              "key added on the leader",
              r is not None and r.json.get("credentialType") == "api_key" and
              r.json["credential"].get("apiKey") == apikey,
              repr(r or cred_req(F[1], new)))

        rc, out, err = admin(L, "apikey", "remove", "openai")
        check("apikey remove --leader-url: exit 0", rc == 0, err)
        r = wait_until(lambda: (lambda r: r if r.status != 200 else None)(
            cred_req(F[2], new)), 3)
        check("f3: the removed API key issues nothing any more",
              r is not None and r.status in (403, 404), repr(r))
        admin(L, "apikey", "add", "--name", "openai", "--provider", "openai",
              "--key", apikey)

        # -- a provider config added on the leader
        rc, out, err = admin(L, "config", "init", "aws", "--region",
                             "us-east-1", "--role-arn",
                             "arn:aws:iam::123456789012:role/Agent",
                             "--access-key-id", "AKIDTESTEXAMPLE01",
                             "--secret-access-key", "not-a-real-secret",
                             "--sts-url", "https://127.0.0.1:9/")
        check("config init aws --leader-url: exit 0", rc == 0, err)
        wait_until(lambda: caught_up(L, *F), 3)
        for f in F:
            rc, out, err = run("config", "show", "--json",
                               home=os.path.join(TMP, f.name))
            check("%s: the aws config is in the replica (config show on the "
                  "follower's home while it runs)" % f.name,
                  rc == 0 and "arn:aws:iam::123456789012:role/Agent" in out
                  and "not-a-real-secret" not in out,
                  "exit %d: %s %s" % (rc, out[:300], err[:300]))

        # -- maxUses counted at the leader
        tm = create_root(L, "agent-budget",
                         constraints={SCOPE: {"maxUses": 2}})
        wait_until(lambda: caught_up(L, *F), 3)
        codes = [cred_req(F[0], tm) for _ in range(3)]
        check("maxUses 2 through f1: 200, 200, then 403 forbidden",
              [c.status for c in codes] == [200, 200, 403] and
              codes[2].code == "forbidden", repr(codes))
        r = cred_req(F[1], tm)
        check("maxUses: a third use through f2 is refused too (403)",
              r.status == 403 and r.code == "forbidden", repr(r))
        used = db_query(LH, "SELECT used, max_uses FROM uses")
        check("maxUses: counted in the leader's home (used 2 of 2)",
              used == [(2, 2)], repr(used))
        used_f = db_query(os.path.join(TMP, "f1"), "SELECT count(*) FROM uses")
        check("maxUses: nothing counted in the follower's home",
              used_f == [(0,)], repr(used_f))

        # -- admin writes to a follower
        for method, path, body in (
                ("POST", "/v1/admin/revoke", {"tokenId": "x"}),
                ("POST", "/v1/admin/tokens", {"agentId": "a",
                                              "scopes": [SCOPE]}),
                ("POST", "/v1/admin/rotate-key", {}),
                ("PUT", "/v1/admin/apikeys/x", {"provider": "openai",
                                                "key": "k"})):
            r = call(F[2], method, path, body, bearer=TOKEN)
            check("f3: %s %s -> 409 not_leader with the leader's URL" %
                  (method, path),
                  r.status == 409 and r.code == "not_leader" and
                  r.json.get("leader") == L.url, repr(r))
        rc, out, err = run("revoke", "some-idAAAAAAAAAAAAAAA",
                           "--leader-url", F[2].url,
                           "--auth-token-file", TOKFILE, "--ca-cert", CA)
        check("revoke --leader-url FOLLOWER: exit 1, says not the leader",
              rc == 1 and ("leader" in err), "exit %d: %s" % (rc, err))

        # -- the leader lists its followers, lag 0 once caught up
        def listed():
            s = status_of(L)
            fl = {x["id"]: x for x in s.get("followers", [])}
            return (s if all(k in fl and fl[k]["lag"] == 0 and
                             fl[k]["appliedSeq"] == s["changelogSeq"]
                             for k in ("f1", "f2", "f3")) else None)
        s = wait_until(listed, 5)
        check("leader /v1/status: followers f1 f2 f3 with lag 0",
              s is not None, repr(status_of(L).get("followers")))
        r = call(L, "GET", "/v1/admin/followers", bearer=ADMIN)
        check("leader /v1/admin/followers lists 3",
              r.status == 200 and
              sorted(x["id"] for x in r.json["followers"]) ==
              ["f1", "f2", "f3"], repr(r))
        m = call(L, "GET", "/metrics").body.decode()
        check("leader /metrics: agent_iam_follower_lag{follower=\"f1\"} 0",
              metric(m, 'agent_iam_follower_lag{follower="f1"}') == 0,
              m[-600:])
    finally:
        for f in F:
            if f.alive():
                f.stop_checked()
        L.stop_checked()


# ---- 2. the leader stopped, then restarted -------------------------------

def scenario_leader_down():
    print("# 2. leader stopped and restarted", flush=True)
    LH = os.path.join(TMP, "l2")
    port = free_port()
    L = leader("leader2", LH, port=port)
    tok = create_root(L, "agent-down")
    later = create_root(L, "agent-later")
    budget = create_root(L, "agent-down-budget",
                         constraints={SCOPE: {"maxUses": 5}})
    admin(L, "apikey", "add", "--name", "openai", "--provider", "openai",
          "--key", "sk-down-" + secrets.token_hex(8))
    stale_s = 4
    opts = ["--max-staleness", "%ds" % (stale_s * SLOW),
            "--degraded-after", "%ds" % (2 * SLOW),
            "--limited-after", "%ds" % (3 * SLOW), "--offline-after", "60s",
            "--sync-interval", "1s", "--long-poll", "1s"]
    G = [follower("g%d" % i, os.path.join(TMP, "g%d" % i), L.url, "g%d" % i,
                  extra=opts) for i in (1, 2)]
    try:
        check("2 followers caught up", wait_until(
            lambda: caught_up(L, *G), 10))
        check("connected while the leader is up (long-poll 1s < "
              "degraded-after 2s)",
              all(status_of(g)["state"] == "connected" for g in G),
              repr([status_of(g) for g in G]))
        L.stop_checked()
        t_down = time.time()
        for g in G:
            check("%s: leader down: still verifies (valid true)" % g.name,
                  is_valid(check_req(g, tok)), repr(check_req(g, tok)))
        r = cred_req(G[1], tok)
        check("g2: leader down: credentials from the replica's API key (200)",
              r.status == 200 and r.json.get("credentialType") == "api_key",
              repr(r))
        r = cred_req(G[1], budget)
        check("g2: leader down: a maxUses token cannot be counted: 503 "
              "unavailable (fail closed)",
              r.status == 503 and r.code == "unavailable", repr(r))
        g = G[0]
        s = wait_until(lambda: (lambda s: s if s["state"] == "degraded"
                                else None)(status_of(g)), 5)
        check("g1: state degraded after --degraded-after", s is not None,
              repr(status_of(g)))
        if s:
            note("g1 degraded %.2fs after the leader stopped "
                 "(%.2fs after its last contact)" %
                 (time.time() - t_down,
                  time.time() - s["lastContactMs"] / 1000.0))
            check("g1: degraded: still serving (valid true, serving true)",
                  is_valid(check_req(g, tok)) and s["serving"] is True,
                  repr(s))
            check("g1: degraded: lastError names the unreachable leader",
                  "unreachable" in s.get("lastError", "") or
                  "leader" in s.get("lastError", ""), repr(s))
        r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(
            check_req(g, tok)), stale_s + 5)
        t503 = time.time()
        s = status_of(g)
        check("g1: past --max-staleness: 503 unavailable to agents",
              r is not None and r.code == "unavailable", repr(r))
        if r is not None:
            # counted from when it last held all the leader had (the
            # fresh poll's departure), not from the last answer
            age = t503 - s["freshMs"] / 1000.0
            note("g1 refuses agents %.2fs after it was last fresh, %.2fs "
                 "after its last contact (max staleness %ds)" %
                 (age, t503 - s["lastContactMs"] / 1000.0, stale_s * SLOW))
            check("g1: not refused before max staleness",
                  age >= stale_s * SLOW - 0.3, "%.2fs" % age)
        check("g1: stale: /v1/status serving false, state limited",
              s["serving"] is False and s["state"] == "limited", repr(s))
        r = call(g, "POST", "/v1/credentials", {"scope": SCOPE}, bearer=tok)
        check("g1: stale: credentials 503 unavailable too",
              r.status == 503 and r.code == "unavailable", repr(r))
        r = call(g, "GET", "/readyz")
        check("g1: stale: /readyz 503", r.status == 503, repr(r))
        check("g1: stale: /healthz 200", call(g, "GET", "/healthz").status ==
              200)
        m = call(g, "GET", "/metrics").body.decode()
        check("g1: /metrics agent_iam_follower_state{state=\"limited\"} 1",
              metric(m, 'agent_iam_follower_state{state="limited"}') == 1,
              m[:500])

        # the leader back on the same home and port
        t_up = time.time()
        L = leader("leader2-again", LH, port=port)
        check("leader restarted on the same port", L.port == port)
        rc, out, err = admin(L, "revoke", token_json(later)["tokenId"])
        check("revoke after the restart: exit 0", rc == 0, err)
        for g in G:
            good = wait_until(lambda: is_revoked(check_req(g, later)) and
                              is_valid(check_req(g, tok)), 5)
            check("%s: caught up: revocation refused, valid token 200" %
                  g.name, good, repr((check_req(g, later),
                                      check_req(g, tok))))
            s = status_of(g)
            check("%s: connected and serving again, lastError cleared" %
                  g.name, s["state"] == "connected" and s["serving"] and
                  "lastError" not in s, repr(s))
        note("followers serving again %.2fs after the leader restarted" %
             (time.time() - t_up))
    finally:
        for g in G:
            if g.alive():
                g.stop_checked()
        if L.alive():
            L.stop_checked()


# ---- 3. SIGKILL while applying a large batch ------------------------------

BULK = 50000


def bulk_revocations(home, n, prefix="bulk"):
    """n token revocations (ids prefix-000000...) written as store_revoke
    writes them (a row of revocations and one of the changelog, key
    "0:<id>"), straight into a stopped leader's database: the CLI would
    take minutes."""
    now = int(time.time() * 1000)
    prune = now + 7 * 86400 * 1000
    c = sqlite3.connect(os.path.join(home, "agent-iam.db"), timeout=10)
    try:
        with c:
            c.executemany("INSERT INTO revocations (target, id, reason, "
                          "revoked_at, prune_after) VALUES (0, ?, 'bulk', ?, ?)",
                          (("%s-%06d" % (prefix, i), now, prune)
                           for i in range(n)))
            c.executemany("INSERT INTO changelog (at, kind, key, op) VALUES "
                          "(?, 'revocation', ?, 'set')",
                          ((now, "0:%s-%06d" % (prefix, i)) for i in range(n)))
    finally:
        c.close()


def replica_state(home):
    """(integrity_check, applied_seq, revocation count) of a stopped
    follower's home."""
    c = sqlite3.connect(os.path.join(home, "agent-iam.db"), timeout=10)
    try:
        integ = c.execute("PRAGMA integrity_check").fetchall()
        row = c.execute("SELECT value FROM meta WHERE key = "
                        "'applied_seq'").fetchone()
        n = c.execute("SELECT count(*) FROM revocations").fetchone()[0]
    finally:
        c.close()
    return integ, int(row[0]) if row else None, n


def scenario_kill9():
    print("# 3. SIGKILL a follower applying %d revocations" % BULK,
          flush=True)
    LH = os.path.join(TMP, "l3")
    FH = os.path.join(TMP, "k3")
    port = free_port()
    L = leader("leader3", LH, port=port)
    tok = create_root(L, "agent-k3")
    admin(L, "revoke", "--agent", "agent-before")
    F = follower("k3", FH, L.url, "k3")
    try:
        check("k3: caught up", wait_until(lambda: caught_up(L, F), 10))
        F.stop_checked()
        s = status_of(L)
        seq0, rev0 = s["changelogSeq"], s["revocations"]
        L.stop_checked()
        t0 = time.time()
        bulk_revocations(LH, BULK)
        note("%d revocations written to the stopped leader in %.2fs" %
             (BULK, time.time() - t0))
        L = leader("leader3-bulk", LH, port=port)
        s = status_of(L)
        check("leader: %d more revocations, seq %d" % (BULK, seq0 + BULK),
              s["revocations"] == rev0 + BULK and
              s["changelogSeq"] == seq0 + BULK, repr(s))
        head = s["changelogSeq"]

        # kill -9 three times, each soon after the replica moved past where
        # the last kill left it: right after a batch, then 10 ms and 25 ms
        # later (whatever it is doing then: fetching, applying, committing).
        # Waiting for progress rather than a fixed delay keeps every kill in
        # the middle of the feed on a fast machine and a slow one alike.
        prev = seq0
        for k, delay in enumerate((0.0, 0.010, 0.025)):
            t0 = time.time()
            F = follower("k3-killed%d" % k, FH, L.url, "k3")
            seen = wait_until(lambda: (lambda a: a if a > prev else None)(
                status_of(F)["appliedSeq"]), 10, step=0.002)
            time.sleep(delay)
            t_kill = time.time() - t0
            F.kill9()
            integ, applied, n = replica_state(FH)
            note("k3 killed %.3fs after start; status said appliedSeq %s, "
                 "the home says %s of %d" % (t_kill, seen, applied, head))
            check("k3 kill %d: killed in the middle of the change feed" % k,
                  applied is not None and prev <= applied < head,
                  "applied %s, from %d to %d" % (applied, prev, head))
            check("k3 kill %d: PRAGMA integrity_check ok after kill -9" % k,
                  integ == [("ok",)], repr(integ))
            want = rev0 + db_query(
                LH, "SELECT count(*) FROM changelog WHERE seq > ? AND "
                "seq <= ? AND kind = 'revocation' AND op = 'set'",
                (seq0, applied))[0][0]
            check("k3 kill %d: applied_seq matches its rows (revocations as "
                  "the leader had them at that seq)" % k, n == want,
                  "%d revocations, want %d at seq %s" % (n, want, applied))
            prev = applied if applied is not None else prev

        t0 = time.time()
        F = follower("k3-again", FH, L.url, "k3")
        conv = wait_until(lambda: status_of(F)["appliedSeq"] == head, 30)
        note("k3 restarted: converged in %.2fs" % (time.time() - t0))
        check("k3: restarted: converges (appliedSeq = leader seq)", conv,
              repr(status_of(F)))
        s = status_of(F)
        check("k3: revocation count equal to the leader's",
              s["revocations"] == status_of(L)["revocations"], repr(s))
        check("k3: serves (valid token 200)", is_valid(check_req(F, tok)))
        F.stop_checked()
        integ, applied, n = replica_state(FH)
        check("k3: after SIGTERM: integrity ok, applied = head, rows equal",
              integ == [("ok",)] and applied == head and n == rev0 + BULK,
              repr((integ, applied, n)))
    finally:
        if F.alive():
            F.kill9()
        if L.alive():
            L.stop_checked()


# ---- 4-6. behind the retained log, wrong token, forced sync --------------

def scenario_retained_wrong_sync():
    print("# 4. behind the retained log", flush=True)
    LH = os.path.join(TMP, "l4")
    FH = os.path.join(TMP, "r4")
    L = leader("leader4", LH, extra=["--changelog-retain", "10"])
    tok = create_root(L, "agent-r4")
    victim = create_root(L, "agent-r4-victim")
    admin(L, "apikey", "add", "--name", "openai", "--provider", "openai",
          "--key", "sk-r4-" + secrets.token_hex(8))
    F = follower("r4", FH, L.url, "r4")
    try:
        check("r4: caught up", wait_until(lambda: caught_up(L, F), 10))
        old = status_of(F)["appliedSeq"]
        check("r4: issues credentials before", cred_req(F, tok).status == 200)
        F.stop_checked()
        admin(L, "rotate-key")
        tok2 = create_root(L, "agent-r4-key2")
        admin(L, "apikey", "remove", "openai")
        for i in range(49):
            r = call(L, "POST", "/v1/admin/revoke",
                     {"agentId": "gone-%d" % i}, bearer=ADMIN)
            if r.status != 200:
                no("admin revoke %d" % i, repr(r))
                break
        r = call(L, "POST", "/v1/admin/revoke",
                 {"tokenId": token_json(victim)["tokenId"]}, bearer=ADMIN)
        check("50 revocations on the leader", r.status == 200, repr(r))
        t0 = time.time()
        gone = wait_until(lambda: call(
            L, "GET", "/v1/replication/changes?since=%d" % old,
            bearer=TOKEN, headers={"X-Follower-Id": "probe"}).status == 410,
            12, step=0.2)
        note("the leader trimmed its log %.1fs after the changes" %
             (time.time() - t0))
        check("leader: changes since the follower's seq are gone (410)", gone)
        t0 = time.time()
        F = follower("r4-behind", FH, L.url, "r4")
        conv = wait_until(lambda: caught_up(L, F), 10)
        note("r4 reloaded and converged in %.2fs" % (time.time() - t0))
        check("r4: converges", conv, repr(status_of(F)))
        check("r4: says it reloads the snapshot (stderr)",
              "snapshot" in F.log(), F.log()[-400:])
        check("r4: revocation count equal to the leader's",
              status_of(F)["revocations"] == status_of(L)["revocations"],
              repr((status_of(F), status_of(L)["revocations"])))
        check("r4: the token revoked meanwhile is refused (401 "
              "token_revoked)", is_revoked(check_req(F, victim)),
              repr(check_req(F, victim)))
        check("r4: a valid token 200", is_valid(check_req(F, tok)))
        check("r4: the key rotated meanwhile came with the snapshot "
              "(keyVersion 2 token valid)", is_valid(check_req(F, tok2)),
              repr(check_req(F, tok2)))
        r = cred_req(F, tok)
        check("r4: the API key removed meanwhile is gone from the replica",
              r.status in (403, 404), repr(r))
        F.stop_checked()

        print("# 5. wrong follower auth token", flush=True)
        revs = replica_state(FH)[2]
        stale_s = 6 * SLOW
        F = follower("r4-wrong", FH, L.url, "r4", tokfile=WRONGFILE,
                     extra=["--max-staleness", "%ds" % stale_s,
                            "--sync-interval", "1s"])
        s = wait_until(lambda: (lambda s: s if "lastError" in s else None)(
            status_of(F)), 5)
        check("r4: /v1/status lastError names the refused auth token",
              s is not None and "auth token" in s["lastError"] and
              "401" in s["lastError"], repr(s))
        check("r4: still serving from its replica (valid token 200, "
              "revoked refused)",
              is_valid(check_req(F, tok)) and
              is_revoked(check_req(F, victim)),
              repr((check_req(F, tok), check_req(F, victim))))
        check("r4: replica kept (revocation count unchanged)",
              s is not None and s["revocations"] == revs,
              "%r, had %d" % (s, revs))
        r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(
            check_req(F, tok)), stale_s + 4, step=0.2)
        check("r4: 503 once past max staleness", r is not None and
              r.code == "unavailable", repr(r))
        lines = [l for l in F.log().splitlines() if "auth token" in l]
        check("r4: stderr says the auth token was refused, once",
              len(lines) == 1 and "401" in lines[0], repr(lines[:5]))
        check("r4: the wrong token itself is not printed",
              open(WRONGFILE).read().strip() not in F.log())
        F.stop_checked()
        check("r4: replica intact after the refusals",
              replica_state(FH)[0] == [("ok",)] and
              replica_state(FH)[2] == revs, repr(replica_state(FH)))

        W = follower("w5-fresh", os.path.join(TMP, "w5"), L.url, "w5",
                     tokfile=WRONGFILE)
        s = wait_until(lambda: (lambda s: s if "lastError" in s else None)(
            status_of(W)), 5)
        check("fresh home, wrong token: not serving, lastError names the "
              "auth token",
              s is not None and s["serving"] is False and
              "auth token" in s["lastError"] and
              s["state"] in ("starting", "initial_sync"), repr(s))
        r = check_req(W, tok)
        check("fresh home, wrong token: agents get 503 unavailable",
              r.status == 503 and r.code == "unavailable", repr(r))
        W.stop_checked()

        print("# 6. agent-iam sync", flush=True)
        SH = os.path.join(TMP, "s6")
        args = ["sync", "--leader-url", L.url, "--auth-token-file", TOKFILE,
                "--follower-id", "s6", "--ca-cert", CA]
        head = status_of(L)["changelogSeq"]
        rc, out, err = run(*args, home=SH)
        check("sync: exit 0, prints the applied seq",
              rc == 0 and re.search(r"\bseq %d\b" % head, out),
              "exit %d, head %d: %s %s" % (rc, head, out, err))
        rc, out, err = run("token", "verify", tok, home=SH)
        check("sync: the home verifies a leader token offline", rc == 0,
              "exit %d: %s %s" % (rc, out, err))
        rc, out, err = run("token", "verify", victim, home=SH)
        check("sync: the home refuses a token revoked on the leader",
              rc == 1 and "revoked" in (out + err).lower(),
              "exit %d: %s %s" % (rc, out, err))
        rc, out, err = run("--json", *args, home=SH)
        check("sync again (--json): appliedSeq the same",
              rc == 0 and json.loads(out).get("appliedSeq") == head,
              "exit %d: %s %s" % (rc, out, err))
        a = ["sync", "--leader-url", L.url, "--auth-token-file", WRONGFILE,
             "--follower-id", "s6", "--ca-cert", CA]
        rc, out, err = run(*a, home=SH)
        check("sync with a wrong token: exit 1, says the auth token",
              rc == 1 and "auth token" in err, "exit %d: %s" % (rc, err))
        check("sync with a wrong token: the home still verifies",
              run("token", "verify", tok, home=SH)[0] == 0)

        # a home with state of its own (keys that signed tokens) is not
        # wiped by a sync or a follower pointed at it by mistake
        DH = os.path.join(TMP, "standalone")
        rc, out, err = run("token", "create-root", "--agent-id", "dev",
                           "--scopes", SCOPE, home=DH)
        dev = out.strip()
        rc, out, err = run(*args, home=DH)
        check("sync on a standalone home (own keys): refused, exit 1",
              rc == 1 and "replica" in err, "exit %d: %s %s" % (rc, out, err))
        rc, out, err = run("token", "verify", dev, home=DH)
        check("standalone home: its own token still verifies", rc == 0,
              "exit %d: %s %s" % (rc, out, err))
        rc, out, err = run("rotate-key", home=DH)
        check("standalone home: not turned into a replica (rotate-key ok)",
              rc == 0, "exit %d: %s %s" % (rc, out, err))
        p = subprocess.Popen([BIN, "--home", DH, "follower", "--leader-url",
                              L.url, "--auth-token-file", TOKFILE,
                              "--follower-id", "dev", "--ca-cert", CA,
                              "--host", "127.0.0.1", "--port", "0",
                              "--tls-cert", CERT, "--tls-key", KEY],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
        with open(PIDS, "a") as f:
            f.write("%d\n" % p.pid)
        try:
            _, perr = p.communicate(timeout=10 * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            _, perr = p.communicate()
        check("follower on a standalone home: refuses to start, exit 1",
              p.returncode == 1 and "replica" in perr,
              "exit %s: %s" % (p.returncode, perr[-300:]))
        rc, out, err = run("token", "verify", dev, home=DH)
        check("standalone home: its token still verifies after that",
              rc == 0, "exit %d: %s %s" % (rc, out, err))
        rc, out, err = run("sync", "--leader-url", L.url, "--auth-token-file",
                           TOKFILE, "--follower-id", "lh", "--ca-cert", CA,
                           home=LH)
        check("sync on the leader's own home: refused, exit 1",
              rc == 1, "exit %d: %s %s" % (rc, out, err))
        check("the leader still rotates its key after that",
              admin(L, "rotate-key")[0] == 0)
    finally:
        if F.alive():
            F.stop_checked()
        if L.alive():
            L.stop_checked()


# ---- 12. `agent-iam sync` on a terminal ----------------------------------

# a snapshot long enough to be shown (the line comes after 200 ms) on a
# fast machine too, and a feed of 40 batches (a fifth of each under ASan,
# which is slower than that)
PROGRESS_SNAPSHOT = 20000 if ASAN else 100000
PROGRESS_CHANGES = 8000 if ASAN else 40000


def sync_on_tty(args, home, timeout=60):
    """`agent-iam sync` with stderr on a pseudo-terminal and stdout a pipe:
    (exit code, stdout, the bytes the terminal got as text)."""
    import pty
    import select
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGENT_IAM_")}
    env["HOME"] = TMP
    p = subprocess.Popen([BIN, "--home", home] + list(args),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=slave, env=env)
    os.close(slave)
    with open(PIDS, "a") as f:
        f.write("%d\n" % p.pid)
    got = []
    deadline = time.time() + timeout * SLOW
    try:
        while time.time() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                if p.poll() is not None:
                    break
                continue
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not b:
                break
            got.append(b)
        out = p.communicate(timeout=max(1, deadline - time.time()))[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return (p.returncode, out.decode("utf-8", "replace"),
            b"".join(got).decode("utf-8", "replace"))


def scenario_sync_progress():
    print("# 12. agent-iam sync on a terminal: progress", flush=True)
    LH = os.path.join(TMP, "l12")
    port = free_port()
    L = leader("leader12", LH, port=port)
    create_root(L, "agent-p12")
    L.stop_checked()
    bulk_revocations(LH, PROGRESS_SNAPSHOT, prefix="p12a")
    L = leader("leader12-bulk", LH, port=port)
    try:
        args = ["sync", "--leader-url", L.url, "--auth-token-file", TOKFILE,
                "--follower-id", "p12", "--ca-cert", CA]
        s = status_of(L)
        head, revs = s["changelogSeq"], s["revocations"]

        def final(seq):
            return re.compile(r"synced \S+ from %s: leader seq %d\n\Z" %
                              (re.escape(L.url), seq))

        SH = os.path.join(TMP, "p12")
        t0 = time.time()
        rc, out, tty = sync_on_tty(args, SH)
        note("sync of a %d-revocation snapshot on a terminal: %.2fs" %
             (revs, time.time() - t0))
        check("sync on a terminal: exit 0, stdout the final line alone",
              rc == 0 and final(head).match(out),
              "exit %s: %r %r" % (rc, out, tty[-300:]))
        snaps = re.findall(r"\ragent-iam: snapshot ([\d,]+) revocations, "
                           r"[\d.]+ [KM]iB *", tty)
        check("sync on a terminal: snapshot progress rewritten in place "
              "(\\r), ending at every revocation",
              len(snaps) >= 1 and snaps[-1] == "{:,}".format(revs),
              "%r ... %r" % (tty[:200], tty[-200:]))
        check("sync on a terminal: the progress line ended by a newline",
              tty.endswith("\n") and tty.count("\n") == 1, repr(tty[-200:]))

        # the change feed: batches apply with "applied seq X of Y"
        L.stop_checked()
        bulk_revocations(LH, PROGRESS_CHANGES, prefix="p12b")
        L = leader("leader12-more", LH, port=port)
        head2 = status_of(L)["changelogSeq"]
        args[2] = L.url
        rc, out, tty = sync_on_tty(args, SH)
        check("sync of changes on a terminal: exit 0, the final line alone",
              rc == 0 and final(head2).match(out),
              "exit %s: %r %r" % (rc, out, tty[-300:]))
        seqs = re.findall(r"\ragent-iam: applied seq ([\d,]+) of ([\d,]+)",
                          tty)
        want = "{:,}".format(head2)
        check("sync of changes on a terminal: applied seq X of Y in place, "
              "ending at the leader's",
              len(seqs) >= 1 and seqs[-1] == (want, want) and
              tty.endswith("\n"), "%r ... %r" % (tty[:200], tty[-200:]))

        # not on a terminal, or with --json: the one last line as before
        rc, out, err = run(*args, home=os.path.join(TMP, "p12-pipe"))
        check("sync without a terminal: stdout the final line, stderr empty",
              rc == 0 and final(head2).match(out) and err == "",
              "exit %d: %r %r" % (rc, out, err[-300:]))
        rc, out, tty = sync_on_tty(["--json"] + args,
                                   os.path.join(TMP, "p12-json"))
        check("sync --json on a terminal: no progress, the JSON alone",
              rc == 0 and tty == "" and
              json.loads(out).get("appliedSeq") == head2,
              "exit %s: %r %r" % (rc, out[-300:], tty[-300:]))
    finally:
        if L.alive():
            L.stop_checked()


def main():
    t_start = time.time()
    only = os.environ.get("FOLLOWER_TEST_ONLY", "")
    todo = [("1", scenario_fleet), ("2", scenario_leader_down),
            ("3", scenario_kill9), ("4", scenario_retained_wrong_sync),
            ("12", scenario_sync_progress)]
    for key, fn in todo:
        if only and key not in only.split(","):
            continue
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - one scenario's crash
            import traceback
            traceback.print_exc()
            no("%s crashed" % fn.__name__, repr(e))
        note("%s: %.1fs" % (fn.__name__, time.time() - t0))
    print("follower tests: %d passed, %d failed in %.1fs%s" %
          (checks.counts["pass"], checks.counts["fail"], time.time() - t_start, " (ASan build)" if ASAN else ""))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
