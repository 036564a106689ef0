#!/usr/bin/env python3
"""Integration tests of the leader (`agent-iam serve`) as a real process on
127.0.0.1 over TLS, driven with the standard library only (http.client, ssl,
raw sockets). Called by tests/server/run.sh, which makes the certificates:

    server_test.py BIN TMPDIR

TMPDIR holds ca.pem, server.pem and server.key (a CA and a server
certificate for 127.0.0.1 and localhost) and receives the homes, the servers'
stderr (their access logs) and `pids` (every server started, for run.sh's
trap). Prints "ok   NAME" / "FAIL NAME (why)" per assertion and exits 1 when
anything failed.

An expired token: no command makes one (TTLs are whole minutes and up),
so the test takes the signing key from GET /v1/replication/snapshot (what
a follower receives) and re-signs a real token with its expiresAt in the
past, as README "Tokens in one paragraph" defines the signature; the same
helper re-signing an unchanged token must give it back byte for byte, and
`agent-iam token verify` must call the result expired.

SERVER_TEST_ONLY=sigterm|longpoll runs that section alone (development).

Sections (as listed in tests/server/run.sh):
  1 routes      every route with good input
  2 bad input   status and "code" of each refusal; nothing changes
  3 revocation  admin API, CLI in another process, key rotation
  4 flood       10,000 malformed requests, then a good one; RSS bounded
  5 sigterm     SIGTERM under load: complete 200s only, exit 0
  6 long-poll   16 held long-polls on 2 workers do not block checks
  7 access log  one line per request, never a secret
  8 plain http  only with --insecure-http (and a warning)
"""
import atexit
import base64
import calendar
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import checks  # noqa: E402
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

ADMIN = "admin-" + secrets.token_hex(16)
FOLLOWER = "follower-" + secrets.token_hex(16)
APIKEY = "sk-test"                      # the brief's `apikey add --key`
APIKEY2 = "sk-ant-" + secrets.token_hex(12)   # added through the admin API
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + secrets.token_hex(9)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$")
METRIC_NAMES = ["agent_iam_http_requests_total",
                "agent_iam_http_request_duration_seconds_bucket",
                "agent_iam_token_verifications_total",
                "agent_iam_credentials_total", "agent_iam_revocations",
                "agent_iam_signing_key_version", "agent_iam_follower_lag"]

SECRETS_SEEN = set()  # every token the run handled: never in a log


# ---- processes ------------------------------------------------------------

def key_bytes(home, version):
    """A signing key's 32 bytes (`agent-iam key export` on the home)."""
    p = subprocess.run([BIN, "--home", home, "key", "export", "--version",
                        str(version)], capture_output=True,
                       timeout=60 * SLOW, stdin=subprocess.DEVNULL)
    return p.stdout


def cli(home, *args, timeout=60):
    """Run the CLI on a home: (exit code, stdout, stderr)."""
    p = subprocess.run([BIN, "--home", home] + list(args), capture_output=True,
                       text=True, timeout=timeout * SLOW,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


SERVERS = []


@atexit.register
def _kill_servers():
    for srv in SERVERS:
        if srv.p.poll() is None:
            srv.p.kill()
            srv.p.wait()


class Server:
    """`agent-iam serve` on 127.0.0.1, port 0 (the kernel's choice, read
    back from the "listening on" line: no race for a free port)."""

    def __init__(self, name, home, extra=(), tls=True, admin=True):
        self.name = name
        self.home = home
        self.tls = tls
        self.log_path = os.path.join(TMP, name + ".log")
        args = [BIN, "--home", home, "serve", "--host", "127.0.0.1",
                "--port", "0", "--auth-token", FOLLOWER]
        if admin:
            args += ["--admin-token", ADMIN]
        if tls:
            args += ["--tls-cert", CERT, "--tls-key", KEY]
        args += list(extra)
        self.logf = open(self.log_path, "wb")
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=self.logf)
        SERVERS.append(self)
        with open(PIDS, "a") as f:
            f.write("%d\n" % self.p.pid)
        self.port = None
        deadline = time.time() + 20 * SLOW
        while time.time() < deadline:
            m = re.search(r"listening on (https?)://127\.0\.0\.1:(\d+)",
                          self.log())
            if m:
                self.port = int(m.group(2))
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            self.p.kill()
            raise RuntimeError("server %s did not start: %s" %
                               (name, self.log()[-2000:]))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rss_kb(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def conn(self, timeout=10):
        if self.tls:
            return http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=timeout * SLOW,
                context=client_ctx())
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout * SLOW)

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=15):
        """SIGTERM; (exit code or None on timeout, seconds taken)."""
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
        rep = sanitizer_report(self.log())
        check("%s: no sanitizer or leak report" % self.name, rep is None,
              rep or "")
        return rc, secs


_CTX = None


def client_ctx():
    global _CTX
    if _CTX is None:
        _CTX = ssl.create_default_context(cafile=CA)  # verifies 127.0.0.1
    return _CTX


# ---- HTTP -------------------------------------------------------------------

def snapshot_dict(body):
    """The snapshot stream (NDJSON: header, one line per entity, end line)
    as one dict; "complete" says the end line came and its count holds."""
    lines = [json.loads(l) for l in body.decode().split("\n") if l]
    d = {"seq": lines[0]["seq"], "keys": [], "revocations": [],
         "providers": {}, "apiKeys": [], "complete": False}
    n = 0
    for l in lines[1:]:
        if l.get("end"):
            d["complete"] = l.get("count") == n
            continue
        n += 1
        if l["kind"] == "key":
            d["keys"].append(l["value"])
        elif l["kind"] == "revocation":
            d["revocations"].append(l["value"])
        elif l["kind"] == "provider":
            d["providers"][l["name"]] = l["value"]
        elif l["kind"] == "apikey":
            d["apiKeys"].append(l["value"])
    return d


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            if (headers is not None and "ndjson" in
                    (headers.get("Content-Type") or "")):
                self.json = snapshot_dict(body)
            else:
                self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        return self.json.get("code") if isinstance(self.json, dict) else None

    def __repr__(self):
        return "%s %s" % (self.status, self.body[:300])


def call(srv, method, path, body=None, bearer=None, headers=None, conn=None,
         follower=None):
    """One request; body: dict/list (JSON), str or bytes (as is)."""
    h = dict(headers or {})
    if bearer is not None:
        h["Authorization"] = "Bearer " + bearer
    if follower is not None:
        h["X-Follower-Id"] = follower
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    own = conn is None
    c = conn or srv.conn()
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Resp(r.status, r.headers, r.read())
    finally:
        if own:
            c.close()


def expect(name, r, status, code=None, pred=None, why=""):
    """Check status, the error's "code" member and an optional predicate."""
    if r.status != status:
        return no(name, "status %d, want %d: %r" % (r.status, status, r))
    if code is not None and r.code != code:
        return no(name, "code %r, want %r: %r" % (r.code, code, r))
    if pred is not None:
        try:
            good = pred(r.json)
        except Exception as e:  # noqa: BLE001 - a shape mismatch is a failure
            good = False
            why = why or repr(e)
        if not good:
            return no(name, "%s body %r" % (why, r))
    return ok(name)


def raw_request(srv, method, path, body, bearer=None, headers=None,
                pause=0.0):
    """Send the whole request (head and body) over a fresh TLS connection,
    then read the answer: what a simple client does. A send cut short by
    the server, or no answer, is status 0 with the error as the body."""
    h = {"Host": "127.0.0.1", "Content-Type": "application/json",
         "Content-Length": str(len(body)), "Connection": "close"}
    if bearer is not None:
        h["Authorization"] = "Bearer " + bearer
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (
        method, path, "".join("%s: %s\r\n" % kv for kv in h.items()))
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10 * SLOW)
    t = None
    try:
        t = client_ctx().wrap_socket(s, server_hostname="127.0.0.1")
        if h.get("Expect") == "100-continue":
            t.sendall(head.encode())
            r = http.client.HTTPResponse(t, method=method)
            r.begin()
            if r.status != 100:
                return Resp(r.status, r.headers, r.read())
        t.sendall(head.encode())  # then the body in pieces, as clients do
        time.sleep(pause)
        for i in range(0, len(body), 16384):
            t.sendall(body[i:i + 16384])
        r = http.client.HTTPResponse(t, method=method)
        r.begin()
        return Resp(r.status, r.headers, r.read())
    except (OSError, http.client.HTTPException) as e:
        return Resp(0, {}, repr(e).encode())
    finally:
        (t or s).close()


def admin_token(srv, agent, scopes, **extra):
    body = {"agentId": agent, "scopes": scopes}
    body.update(extra)
    r = call(srv, "POST", "/v1/admin/tokens", body, bearer=ADMIN)
    if r.status != 200:
        raise RuntimeError("admin create-root failed: %r" % r)
    SECRETS_SEEN.add(r.json["token"])
    return r.json


def status_of(srv):
    return call(srv, "GET", "/v1/status", bearer=ADMIN).json


def state_of(srv):
    """What a refused request must not change."""
    s = status_of(srv)
    return (s["revocations"], s["changelogSeq"], s["signingKeyVersion"])


def metrics_of(srv):
    return call(srv, "GET", "/metrics", bearer=ADMIN).body.decode()


def check_req(srv, tok, scope="openai:chat:completions", conn=None):
    return call(srv, "POST", "/v1/check", {"scope": scope, "resource": ""},
                bearer=tok, conn=conn)


def metric(text, series):
    """The value of one series ("name{labels}") in Prometheus text, 0 when
    absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def resign(token, key, mutate=lambda j: j):
    """The token with its JSON changed by `mutate`, signed with `key` as
    README "Tokens in one paragraph" says: HMAC-SHA256 over the JSON
    without its signature member, appended as the last member."""
    j = b64d(token).decode()
    i = j.rindex(',"signature":"')
    body = mutate(j[:i] + "}")
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return b64e((body[:-1] + ',"signature":"' + b64e(mac) + '"}').encode())


def iso_s(text):
    """Seconds since the epoch of an ISO 8601 UTC time."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


# ---- 1. every route with good input ----------------------------------------

def section_routes(S, H):
    print("# 1. routes with good input", flush=True)
    A = admin_token(S, "agent-a", ["openai:chat:completions",
                                   "github:repo:read", "system:token:refresh"],
                    constraints={"github:repo:read":
                                 {"resources": ["myorg/*"]}})
    a = A["token"]

    # /v1/check
    expect("check: scope held -> valid true",
           call(S, "POST", "/v1/check",
                {"scope": "github:repo:read", "resource": "myorg/app"},
                bearer=a), 200, pred=lambda j: j == {"valid": True})
    expect("check: resource omitted is the empty string",
           call(S, "POST", "/v1/check", {"scope": "openai:chat:completions"},
                bearer=a), 200, pred=lambda j: j == {"valid": True})
    expect("check: scope not held -> valid false with the reason",
           call(S, "POST", "/v1/check",
                {"scope": "github:repo:write", "resource": "myorg/app"},
                bearer=a), 200,
           pred=lambda j: j["valid"] is False and
           "github:repo:write" in j["error"])
    expect("check: resource outside the constraint -> valid false",
           call(S, "POST", "/v1/check",
                {"scope": "github:repo:read", "resource": "other/app"},
                bearer=a), 200,
           pred=lambda j: j["valid"] is False and j["error"])

    # /v1/credentials with the API key of `apikey add` (CLI, same home)
    t0 = time.time()
    r = call(S, "POST", "/v1/credentials",
             {"scope": "openai:chat:completions", "resource": ""}, bearer=a)

    def cred_ok(j):
        exp = iso_s(j["expiresAt"])
        return (j["credentialType"] == "api_key" and
                j["credential"]["apiKey"] == APIKEY and
                ISO.match(j["expiresAt"]) and exp > t0)
    expect("credentials: CredentialResult (api_key, apiKey, expiresAt)", r,
           200, pred=cred_ok)
    check("credentials: not cached by clients",
          r.headers.get("Cache-Control") == "no-store",
          str(r.headers.get("Cache-Control")))
    expect("credentials: scope not held -> 403 forbidden",
           call(S, "POST", "/v1/credentials",
                {"scope": "anthropic:messages"}, bearer=a), 403, "forbidden")

    M = admin_token(S, "agent-m", ["openai:chat:completions"],
                    constraints={"openai:chat:completions": {"maxUses": 2}})
    codes = [call(S, "POST", "/v1/credentials",
                  {"scope": "openai:chat:completions"},
                  bearer=M["token"]) for _ in range(3)]
    check("credentials: maxUses 2 -> two credentials, then 403 forbidden",
          [c.status for c in codes] == [200, 200, 403] and
          codes[2].code == "forbidden", repr(codes))

    # /v1/tokens/delegate
    r = call(S, "POST", "/v1/tokens/delegate",
             {"agentId": "a-child", "requestedScopes": ["github:repo:read"],
              "requestedConstraints": {"github:repo:read":
                                       {"resources": ["myorg/frontend"]}},
              "ttlMinutes": 30}, bearer=a)
    expect("delegate: token, tokenId, agentId, expiresAt, narrowed []", r,
           200, pred=lambda j: j["token"] and j["tokenId"] and
           j["agentId"] == "a-child" and ISO.match(j["expiresAt"]) and
           j["narrowed"] == [])
    child = r.json["token"]
    SECRETS_SEEN.add(child)
    rc, out, err = cli(H, "token", "verify", child)
    check("delegate: the child verifies locally (token verify --home H)",
          rc == 0 and "valid" in out, "exit %d: %s" % (rc, err))
    cj = token_json(child)
    check("delegate: the child has the narrower scope and its parent",
          cj["scopes"] == ["github:repo:read"] and
          cj["parentId"] == "agent-a" and cj["currentDepth"] == 1, str(cj))
    expect("delegate: the child is refused the parent's other scope",
           check_req(S, child, "openai:chat:completions"), 200,
           pred=lambda j: j["valid"] is False)
    expect("delegate: widening the scope -> 403 forbidden",
           call(S, "POST", "/v1/tokens/delegate",
                {"requestedScopes": ["openai:chat:completions"]},
                bearer=child), 403, "forbidden")
    expect("delegate: a scope the parent lacks -> 403 forbidden",
           call(S, "POST", "/v1/tokens/delegate",
                {"requestedScopes": ["github:repo:write"]}, bearer=a),
           403, "forbidden")
    expect("delegate: widening a resource -> 403 forbidden",
           call(S, "POST", "/v1/tokens/delegate",
                {"requestedScopes": ["github:repo:read"],
                 "requestedConstraints": {"github:repo:read":
                                          {"resources": ["*"]}}},
                bearer=child), 403, "forbidden")

    # /v1/tokens/refresh
    r = call(S, "POST", "/v1/tokens/refresh", None, bearer=a)
    expect("refresh: empty body -> same tokenId, a new token", r, 200,
           pred=lambda j: j["tokenId"] == A["tokenId"] and
           j["token"] and ISO.match(j["expiresAt"]))
    if r.status == 200:
        SECRETS_SEEN.add(r.json["token"])
        expect("refresh: the refreshed token works",
               check_req(S, r.json["token"]), 200,
               pred=lambda j: j == {"valid": True})
    r = call(S, "POST", "/v1/tokens/refresh", {"ttlMinutes": 5}, bearer=a)
    if r.status == 200:
        SECRETS_SEEN.add(r.json["token"])
    expect("refresh: ttlMinutes 5 -> expires in 5 minutes", r, 200,
           pred=lambda j: abs(iso_s(j["expiresAt"]) - (time.time() + 300))
           < 30)
    expect("refresh: without system:token:refresh -> 403 forbidden",
           call(S, "POST", "/v1/tokens/refresh", {}, bearer=child), 403,
           "forbidden")

    # /v1/whoami
    expect("whoami: the claims without the signature",
           call(S, "GET", "/v1/whoami", bearer=a), 200,
           pred=lambda j: j["agentId"] == "agent-a" and
           j["tokenId"] == A["tokenId"] and "signature" not in j and
           j["scopes"][0] == "openai:chat:completions")

    # admin: tokens (checked above through admin_token), revoke, unrevoke
    r = call(S, "POST", "/v1/admin/tokens",
             {"agentId": "agent-x", "scopes": ["x:y"], "ttlDays": 2,
              "delegatable": False, "maxDelegationDepth": 0}, bearer=ADMIN)
    expect("admin tokens: token, tokenId, agentId, expiresAt", r, 200,
           pred=lambda j: j["agentId"] == "agent-x" and j["tokenId"] and
           ISO.match(j["expiresAt"]) and
           token_json(j["token"])["delegatable"] is False)
    X = r.json
    SECRETS_SEEN.add(X["token"])
    r = call(S, "POST", "/v1/admin/revoke",
             {"tokenId": X["tokenId"], "reason": "test"}, bearer=ADMIN)
    expect("admin revoke: {revoked, target token, id}", r, 200,
           pred=lambda j: j == {"revoked": True, "target": "token",
                                "id": X["tokenId"]})
    expect("admin revoke: the token is refused",
           check_req(S, X["token"], "x:y"), 401, "token_revoked")
    r = call(S, "POST", "/v1/admin/unrevoke", {"tokenId": X["tokenId"]},
             bearer=ADMIN)
    expect("admin unrevoke: {unrevoked, target token, id}", r, 200,
           pred=lambda j: j == {"unrevoked": True, "target": "token",
                                "id": X["tokenId"]})
    expect("admin unrevoke: the token works again",
           check_req(S, X["token"], "x:y"), 200,
           pred=lambda j: j == {"valid": True})
    expect("admin unrevoke: not revoked -> 404 not_found",
           call(S, "POST", "/v1/admin/unrevoke", {"tokenId": X["tokenId"]},
                bearer=ADMIN), 404, "not_found")
    expect("admin revoke: by agent",
           call(S, "POST", "/v1/admin/revoke", {"agentId": "agent-x"},
                bearer=ADMIN), 200,
           pred=lambda j: j["target"] == "agent" and j["id"] == "agent-x")
    expect("admin revoke by agent: its token is refused",
           check_req(S, X["token"], "x:y"), 401, "token_revoked")
    expect("admin unrevoke: by agent",
           call(S, "POST", "/v1/admin/unrevoke", {"agentId": "agent-x"},
                bearer=ADMIN), 200,
           pred=lambda j: j["target"] == "agent" and j["unrevoked"] is True)

    # admin: providers (the members `config init aws` stores)
    aws = {"region": "us-east-1",
           "roleArn": "arn:aws:iam::123456789012:role/agent-iam-test",
           "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
           "secretAccessKey": AWS_SECRET, "externalId": "ext-1234",
           "sessionDuration": 3600}
    expect("admin PUT providers/aws: configured",
           call(S, "PUT", "/v1/admin/providers/aws", aws, bearer=ADMIN), 200,
           pred=lambda j: j == {"provider": "aws", "configured": True})
    rc, out, err = cli(H, "config", "show", "--json")
    check("admin PUT providers/aws: `config show` on the home sees it",
          rc == 0 and "us-east-1" in out and AWS_SECRET not in out,
          "exit %d %s %s" % (rc, out[:300], err))
    expect("admin PUT providers/aws: a missing member -> 400 bad_request",
           call(S, "PUT", "/v1/admin/providers/aws", {"region": "us-east-1"},
                bearer=ADMIN), 400, "bad_request")
    expect("admin PUT providers/nope -> 404 not_found",
           call(S, "PUT", "/v1/admin/providers/nope", aws, bearer=ADMIN),
           404, "not_found")
    expect("admin DELETE providers/aws: removed",
           call(S, "DELETE", "/v1/admin/providers/aws", bearer=ADMIN), 200,
           pred=lambda j: j == {"provider": "aws", "removed": True})
    expect("admin DELETE providers/aws again -> 404 not_found",
           call(S, "DELETE", "/v1/admin/providers/aws", bearer=ADMIN), 404,
           "not_found")

    # admin: API keys
    expect("admin PUT apikeys/anthropic: added",
           call(S, "PUT", "/v1/admin/apikeys/anthropic",
                {"provider": "anthropic", "key": APIKEY2, "ttlMinutes": 30},
                bearer=ADMIN), 200,
           pred=lambda j: j == {"name": "anthropic", "added": True})
    N = admin_token(S, "agent-n", ["anthropic:messages"])
    expect("admin PUT apikeys: the key is served as a credential",
           call(S, "POST", "/v1/credentials", {"scope": "anthropic:messages"},
                bearer=N["token"]), 200,
           pred=lambda j: j["credential"]["apiKey"] == APIKEY2)
    expect("admin PUT apikeys: a bad name -> 400 bad_request",
           call(S, "PUT", "/v1/admin/apikeys/bad%20name",
                {"provider": "x", "key": "k"}, bearer=ADMIN), 400,
           "bad_request")
    expect("admin DELETE apikeys/anthropic: removed",
           call(S, "DELETE", "/v1/admin/apikeys/anthropic", bearer=ADMIN),
           200, pred=lambda j: j == {"name": "anthropic", "removed": True})
    r = call(S, "POST", "/v1/credentials", {"scope": "anthropic:messages"},
             bearer=N["token"])
    check("admin DELETE apikeys: no credential any more",
          r.status != 200 and r.code is not None, repr(r))
    expect("admin DELETE apikeys/anthropic again -> 404 not_found",
           call(S, "DELETE", "/v1/admin/apikeys/anthropic", bearer=ADMIN),
           404, "not_found")

    # follower: the change feed
    st = status_of(S)
    head = st["changelogSeq"]
    r = call(S, "GET", "/v1/replication/changes?since=0", bearer=FOLLOWER,
             follower="f-main")

    def feed_ok(j):
        seqs = [c["seq"] for c in j["changes"]]
        return (j["leaderSeq"] == head and j["more"] is False and
                seqs == sorted(set(seqs)) and seqs[-1] == head and
                all(c["kind"] in ("key", "revocation", "provider", "apikey")
                    and c["op"] in ("set", "delete") and
                    isinstance(c["key"], str) for c in j["changes"]))
    expect("changes since=0: leaderSeq, ordered changes, more false", r, 200,
           pred=feed_ok)
    ch = r.json["changes"] if r.json else []
    check("changes for the shared follower secret: the API key and the aws "
          "provider as deletes without a value (no provider is granted to "
          "it), the signing key sealed",
          any(c["kind"] == "apikey" and c["key"] == "openai" and
              c["op"] == "delete" and "value" not in c for c in ch) and
          any(c["kind"] == "provider" and c["key"] == "aws" and
              c["op"] == "delete" and "value" not in c for c in ch) and
          any(c["kind"] == "key" and "sealed" in c.get("value", {}) and
              "secret" not in c["value"] for c in ch),
          json.dumps(ch)[:600])
    check("changes: secrets travel only with no-store",
          r.headers.get("Cache-Control") == "no-store", "")
    r = call(S, "GET", "/v1/replication/changes?since=0&limit=1",
             bearer=FOLLOWER, follower="f-main")
    expect("changes limit=1: one change, more true", r, 200,
           pred=lambda j: len(j["changes"]) == 1 and j["more"] is True and
           j["leaderSeq"] == head)
    r = call(S, "GET", "/v1/replication/changes?since=%d" % head,
             bearer=FOLLOWER, follower="f-main")
    expect("changes since=head: empty, more false", r, 200,
           pred=lambda j: j["changes"] == [] and j["more"] is False)

    # long-poll: a change during the wait ends it at once
    box = {}

    def held():
        c = S.conn(timeout=30)
        try:
            box["r"] = call(S, "GET", "/v1/replication/changes?since=%d&wait=10"
                            % head, bearer=FOLLOWER, follower="f-poll",
                            conn=c)
            box["t"] = time.time()
            # asked again at once, as a follower does: the same commit
            # must not wake it a second time (one wake-up per commit)
            t1 = time.time()
            box["r2"] = call(S, "GET", "/v1/replication/changes?since=%d&"
                             "wait=1" % box["r"].json["leaderSeq"],
                             bearer=FOLLOWER, follower="f-poll", conn=c)
            box["t2"] = time.time() - t1
        except Exception as e:  # noqa: BLE001
            box.setdefault("r", e)
            box.setdefault("t", time.time())
            box["r2"] = e
        c.close()
    th = threading.Thread(target=held)
    th.start()
    time.sleep(0.4 * SLOW)
    check("long-poll: the request is held while nothing changes",
          th.is_alive(), repr(box.get("r")))
    t0 = time.time()
    r = call(S, "POST", "/v1/admin/revoke", {"tokenId": "longpoll-wakeup"},
             bearer=ADMIN)
    th.join(15 * SLOW)
    hr = box.get("r")
    took = box.get("t", time.time()) - t0
    check("long-poll: a change returns the held request within 0.5 s",
          isinstance(hr, Resp) and hr.status == 200 and
          took < 0.5 * SLOW and
          any(c["kind"] == "revocation" and c["key"].endswith(
              "longpoll-wakeup") for c in hr.json["changes"]),
          "%.3fs %r" % (took, hr))
    r2, took2 = box.get("r2"), box.get("t2", 0.0)
    check("long-poll: asked again at once, it is not woken again by the "
          "same change (held its whole wait=1, empty)",
          isinstance(r2, Resp) and r2.status == 200 and
          r2.json["changes"] == [] and 0.9 <= took2 < 1.6 * SLOW,
          "%.3fs %r" % (took2, r2))
    head = status_of(S)["changelogSeq"]
    t0 = time.time()
    r = call(S, "GET", "/v1/replication/changes?since=%d&wait=1" % head,
             bearer=FOLLOWER, follower="f-poll")
    took = time.time() - t0
    expect("long-poll: wait=1 with no change -> empty after ~1 s", r, 200,
           pred=lambda j: j["changes"] == [] and j["more"] is False and
           0.9 <= took < 1.6 * SLOW, why="%.3fs" % took)

    # snapshot
    r = call(S, "GET", "/v1/replication/snapshot", bearer=FOLLOWER,
             follower="f-main")
    expect("snapshot (NDJSON): seq, keys, revocations, providers, apiKeys, "
           "end line", r, 200,
           pred=lambda j: j["seq"] == head and j["complete"] and
           isinstance(j["keys"], list) and j["keys"][0]["version"] == 1 and
           "sealed" in j["keys"][0] and "secret" not in j["keys"][0] and
           isinstance(j["revocations"], list) and
           j["providers"] == {} and j["apiKeys"] == [],
           why="keys sealed; the shared token gets no provider or API key")

    # uses/consume: the leader counts a follower's uses
    U = admin_token(S, "agent-u", ["openai:chat:completions"],
                    constraints={"openai:chat:completions": {"maxUses": 2}})
    body = {"tokenId": U["tokenId"], "scope": "openai:chat:completions",
            "token": U["token"]}
    got = [call(S, "POST", "/v1/uses/consume", body, bearer=FOLLOWER,
                follower="f-main").json for _ in range(3)]
    check("uses/consume: allowed with remaining, then refused",
          got[0] == {"allowed": True, "remaining": 1} and
          got[1] == {"allowed": True, "remaining": 0} and
          got[2]["allowed"] is False, repr(got))
    expect("uses/consume: the budget is the one credentials use",
           call(S, "POST", "/v1/credentials",
                {"scope": "openai:chat:completions"}, bearer=U["token"]),
           403, "forbidden")
    expect("uses/consume: tokenId not the token's -> 400 bad_request",
           call(S, "POST", "/v1/uses/consume",
                dict(body, tokenId="AAAAAAAAAAAAAAAAAAAAAA"),
                bearer=FOLLOWER, follower="f-main"), 400, "bad_request")
    expect("uses/consume: no budget in the scope -> allowed, remaining -1",
           call(S, "POST", "/v1/uses/consume",
                {"tokenId": A["tokenId"], "scope": "github:repo:read",
                 "token": a}, bearer=FOLLOWER, follower="f-main"), 200,
           pred=lambda j: j == {"allowed": True, "remaining": -1})

    # admin: followers
    expect("admin followers: id, appliedSeq, lag, lastSeenMs, address",
           call(S, "GET", "/v1/admin/followers", bearer=ADMIN), 200,
           pred=lambda j: isinstance(j["leaderSeq"], int) and any(
               f["id"] == "f-main" and f["address"] == "127.0.0.1" and
               f["appliedSeq"] == head and
               f["lag"] == j["leaderSeq"] - head and
               abs(f["lastSeenMs"] / 1000 - time.time()) < 60
               for f in j["followers"]))

    # everyone
    expect("healthz", call(S, "GET", "/healthz"), 200,
           pred=lambda j: j == {"status": "ok"})
    expect("readyz", call(S, "GET", "/readyz"), 200,
           pred=lambda j: j == {"ready": True})
    expect("metrics without a token -> 401", call(S, "GET", "/metrics"),
           401, "unauthorized")
    r = call(S, "GET", "/metrics", bearer=ADMIN)
    missing = [n for n in METRIC_NAMES if n not in r.body.decode()]
    check("metrics: text format with the documented names",
          r.status == 200 and
          r.headers.get("Content-Type", "").startswith("text/plain") and
          not missing, "missing %s" % missing)
    check("metrics: a follower's lag is labelled with its id",
          'agent_iam_follower_lag{follower="f-main"}' in r.body.decode(), "")
    check("metrics: credentials counted by provider",
          re.search(r'agent_iam_credentials_total\{[^}]*openai[^}]*\} [1-9]',
                    r.body.decode()) is not None,
          "\n".join(line for line in r.body.decode().splitlines()
                    if "credentials" in line))
    series = ['agent_iam_http_requests_total{route="/v1/check",'
              'method="POST",status="200"}',
              'agent_iam_http_requests_total{route="/v1/check",'
              'method="POST",status="401"}',
              'agent_iam_token_verifications_total{result="ok"}',
              'agent_iam_token_verifications_total{result="invalid"}',
              'agent_iam_http_request_duration_seconds_count'
              '{route="/v1/check",method="POST"}']
    m0 = metrics_of(S)
    for _ in range(3):
        check_req(S, a)
    for _ in range(2):
        check_req(S, "garbage")
    m1 = metrics_of(S)
    deltas = [metric(m1, x) - metric(m0, x) for x in series]
    check("metrics: 3 good and 2 garbage checks counted by route, status "
          "and verification result", deltas == [3, 2, 3, 2, 5],
          str(list(zip(series, deltas))))
    expect("status: role, version, signing key, revocations, seq, followers",
           call(S, "GET", "/v1/status", bearer=ADMIN), 200,
           pred=lambda j: j["role"] == "leader" and j["version"] and
           j["signingKeyVersion"] == 1 and
           isinstance(j["revocations"], int) and
           isinstance(j["changelogSeq"], int) and
           any(f["id"] == "f-main" for f in j["followers"]))
    return A


# ---- 2. bad input ----------------------------------------------------------

def section_bad_input(S, H, A):
    print("# 2. bad input", flush=True)
    a = A["token"]
    before = state_of(S)
    good = {"scope": "openai:chat:completions"}

    # authentication
    expect("no Authorization -> 401 unauthorized",
           call(S, "POST", "/v1/check", good), 401, "unauthorized")
    expect("Authorization not Bearer -> 401 unauthorized",
           call(S, "POST", "/v1/check", good,
                headers={"Authorization": "Basic " + a}), 401, "unauthorized")
    expect("admin route without auth -> 401 unauthorized",
           call(S, "POST", "/v1/admin/rotate-key", {}), 401, "unauthorized")
    expect("admin route, wrong secret -> 401 unauthorized",
           call(S, "POST", "/v1/admin/rotate-key", {}, bearer=ADMIN + "x"),
           401, "unauthorized")
    expect("admin route, an agent token -> 401 unauthorized",
           call(S, "POST", "/v1/admin/rotate-key", {}, bearer=a), 401,
           "unauthorized")
    expect("admin route, the follower secret -> 401 unauthorized",
           call(S, "POST", "/v1/admin/rotate-key", {}, bearer=FOLLOWER), 401,
           "unauthorized")
    expect("admin GET followers, the follower secret -> 401 unauthorized",
           call(S, "GET", "/v1/admin/followers", bearer=FOLLOWER), 401,
           "unauthorized")
    expect("follower route, the admin secret -> 401 unauthorized",
           call(S, "GET", "/v1/replication/snapshot", bearer=ADMIN,
                follower="f1"), 401, "unauthorized")
    expect("follower route, wrong secret -> 401 unauthorized",
           call(S, "GET", "/v1/replication/changes", bearer="nope",
                follower="f1"), 401, "unauthorized")
    expect("follower route without X-Follower-Id -> 400 bad_request",
           call(S, "GET", "/v1/replication/changes", bearer=FOLLOWER), 400,
           "bad_request")
    expect("snapshot without X-Follower-Id -> 400 bad_request",
           call(S, "GET", "/v1/replication/snapshot", bearer=FOLLOWER), 400,
           "bad_request")
    expect("consume without X-Follower-Id -> 400 bad_request",
           call(S, "POST", "/v1/uses/consume", {}, bearer=FOLLOWER), 400,
           "bad_request")
    expect("X-Follower-Id with a bad character -> 400 bad_request",
           call(S, "GET", "/v1/replication/changes", bearer=FOLLOWER,
                follower="f/1"), 400, "bad_request")
    expect("X-Follower-Id of 65 characters -> 400 bad_request",
           call(S, "GET", "/v1/replication/changes", bearer=FOLLOWER,
                follower="f" * 65), 400, "bad_request")

    # bodies
    for path, tok in (("/v1/check", a), ("/v1/credentials", a),
                      ("/v1/tokens/delegate", a), ("/v1/tokens/refresh", a),
                      ("/v1/admin/tokens", ADMIN), ("/v1/admin/revoke", ADMIN),
                      ("/v1/admin/rotate-key", ADMIN)):
        expect("malformed JSON on %s -> 400 bad_request" % path,
               call(S, "POST", path, '{"scope": "openai', bearer=tok), 400,
               "bad_request")
    expect("a JSON array body -> 400 bad_request",
           call(S, "POST", "/v1/check", "[1,2]", bearer=a), 400,
           "bad_request")
    expect("duplicate members -> 400 bad_request",
           call(S, "POST", "/v1/check",
                '{"scope":"openai:chat:completions","scope":"x:y"}',
                bearer=a), 400, "bad_request")
    expect("empty body on /v1/check -> 400 bad_request",
           call(S, "POST", "/v1/check", b"", bearer=a), 400, "bad_request")
    expect("NUL inside a string -> 400 bad_request",
           call(S, "POST", "/v1/check",
                '{"scope":"openai:chat:completions\\u0000x"}', bearer=a),
           400, "bad_request")
    wrong_types = [
        ("/v1/check", a, {"scope": 5}),
        ("/v1/check", a, {"scope": "openai:chat:completions", "resource": []}),
        ("/v1/check", a, {"resource": "x"}),
        ("/v1/credentials", a, {"scope": True}),
        ("/v1/tokens/delegate", a, {"requestedScopes": "github:repo:read"}),
        ("/v1/tokens/delegate", a, {"requestedScopes": ["github:repo:read"],
                                    "ttlMinutes": "5"}),
        ("/v1/tokens/refresh", a, {"ttlMinutes": "10"}),
        ("/v1/tokens/refresh", a, {"ttlMinutes": 0}),
        ("/v1/admin/tokens", ADMIN, {"agentId": "z", "scopes": "x:y"}),
        ("/v1/admin/tokens", ADMIN, {"agentId": "z", "scopes": [1]}),
        ("/v1/admin/tokens", ADMIN, {"agentId": 1, "scopes": ["x:y"]}),
        ("/v1/admin/tokens", ADMIN, {"agentId": "z", "scopes": ["x:y"],
                                     "ttlDays": 99999}),
        ("/v1/admin/tokens", ADMIN, {"agentId": "z", "scopes": ["x:y"],
                                     "constraints": []}),
        ("/v1/admin/revoke", ADMIN, {"tokenId": 1}),
        ("/v1/admin/revoke", ADMIN, {}),
        ("/v1/admin/revoke", ADMIN, {"tokenId": "a", "agentId": "b"}),
        ("/v1/admin/revoke", ADMIN, {"tokenId": "a", "expiresAt": "soon"}),
        ("/v1/admin/unrevoke", ADMIN, {"agentId": ""}),
        ("/v1/admin/rotate-key", ADMIN, {"graceMs": "1"}),
        ("/v1/admin/rotate-key", ADMIN, {"graceMs": -1}),
    ]
    for path, tok, body in wrong_types:
        expect("wrong member on %s %s -> 400 bad_request" %
               (path, json.dumps(body)),
               call(S, "POST", path, body, bearer=tok), 400, "bad_request")
    expect("PUT apikey with a numeric key -> 400 bad_request",
           call(S, "PUT", "/v1/admin/apikeys/x",
                {"provider": "x", "key": 5}, bearer=ADMIN), 400,
           "bad_request")
    for q in ("since=abc", "since=-1", "wait=61", "limit=0", "limit=10001"):
        expect("changes?%s -> 400 bad_request" % q,
               call(S, "GET", "/v1/replication/changes?" + q,
                    bearer=FOLLOWER, follower="f-bad"), 400, "bad_request")
    # A follower ahead of the leader (restored from a backup): reload.
    expect("changes?since=999999999 (ahead of the leader) -> 410 gone",
           call(S, "GET", "/v1/replication/changes?since=999999999",
                bearer=FOLLOWER, follower="f-bad"), 410, "gone")
    expect("... and 999999999 is not shown as its applied seq",
           call(S, "GET", "/v1/admin/followers", bearer=ADMIN), 200,
           pred=lambda j: all(f["appliedSeq"] != 999999999
                              for f in j["followers"]) and
           any(f["id"] == "f-bad" for f in j["followers"]))

    # sizes
    big = b'{"scope":"' + b"a" * (70 * 1024) + b'"}'
    # The client sends the whole body before it reads (as http.client
    # does): the 413 must reach it, not a reset in the middle of its send.
    huge = b" " * (900 * 1024)  # still read and dropped (up to 1 MiB)
    got = [raw_request(S, "POST", "/v1/check", big if i < 16 else huge,
                       bearer=a, pause=0.02 if i % 2 else 0)
           for i in range(20)]
    bad = [r for r in got if r.status != 413 or r.code != "payload_too_large"]
    check("70 KiB body with Content-Length -> 413 payload_too_large "
          "(16 times, and 4 of 900 KiB)", not bad,
          "%d of 20: %r" % (len(bad), bad[:3]))
    r = raw_request(S, "POST", "/v1/check", b"", bearer=a,
                    headers={"Content-Length": str(64 << 20)})
    expect("a declared 64 MiB body -> 413 at once", r, 413,
           "payload_too_large")
    r = raw_request(S, "POST", "/v1/check", big, bearer=a,
                    headers={"Expect": "100-continue"})
    expect("70 KiB body, Expect: 100-continue -> 413 before the body", r,
           413, "payload_too_large")
    c = S.conn()
    try:
        c.request("POST", "/v1/check",
                  body=iter([big[i:i + 8192]
                             for i in range(0, len(big), 8192)]),
                  headers={"Authorization": "Bearer " + a,
                           "Content-Type": "application/json"},
                  encode_chunked=True)
        r = c.getresponse()
        r = Resp(r.status, r.headers, r.read())
    except Exception as e:  # noqa: BLE001
        r = Resp(0, {}, repr(e).encode())
    finally:
        c.close()
    expect("70 KiB chunked body -> 413 payload_too_large", r, 413,
           "payload_too_large")
    sent = 0
    s = socket.create_connection(("127.0.0.1", S.port), timeout=10 * SLOW)
    t = client_ctx().wrap_socket(s, server_hostname="127.0.0.1")
    try:
        t.sendall(("POST /v1/check HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\nAuthorization: Bearer %s"
                   "\r\n\r\n" % a).encode())
        chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
        while sent < (32 << 20):
            t.sendall(chunk)
            sent += 0x10000
    except (OSError, ssl.SSLError):
        pass
    finally:
        t.close()
    check("a chunked body that never ends is cut (after %d KiB)" %
          (sent >> 10), sent < (32 << 20), "")
    expect("admin: 70 KiB body -> 413 payload_too_large",
           call(S, "POST", "/v1/admin/tokens", big, bearer=ADMIN), 413,
           "payload_too_large")
    expect("a body of exactly 64 KiB is read (then 400 as bad JSON)",
           call(S, "POST", "/v1/check", b" " * (64 * 1024), bearer=a), 400,
           "bad_request")

    # routes and methods
    expect("unknown route -> 404 not_found",
           call(S, "GET", "/v1/nope", bearer=a), 404, "not_found")
    expect("unknown route under a prefix -> 404 not_found",
           call(S, "PUT", "/v1/admin/apikeys/a/b", {}, bearer=ADMIN), 404,
           "not_found")
    r = call(S, "GET", "/v1/check", bearer=a)
    expect("wrong method -> 405 method_not_allowed", r, 405,
           "method_not_allowed")
    check("405 has an Allow header listing POST",
          r.headers.get("Allow") == "POST", str(r.headers.get("Allow")))
    r = call(S, "POST", "/v1/admin/providers/aws", {}, bearer=ADMIN)
    check("405 on a prefix route lists PUT, DELETE",
          r.status == 405 and r.headers.get("Allow") == "PUT, DELETE",
          "%r Allow: %s" % (r, r.headers.get("Allow")))

    # tokens
    kv = token_json(a)["keyVersion"]
    keys = {kv: key_bytes(H, kv)}  # followers receive keys sealed
    check("forging helper: re-signing an unchanged token gives it back",
          resign(a, keys[kv]) == a, "")
    expired = resign(a, keys[kv], lambda j: re.sub(
        r'"(expiresAt|maxExpiresAt)":"[^"]*"',
        lambda m: '"%s":"2020-01-01T00:00:00.000Z"' % m.group(1), j))
    SECRETS_SEEN.add(expired)
    rc, out, err = cli(H, "token", "verify", expired)
    check("expired token: the CLI agrees it is signed and expired",
          rc != 0 and "expired" in (out + err).lower(),
          "exit %d %s %s" % (rc, out, err))
    expect("expired token -> 401 token_expired",
           check_req(S, expired), 401, "token_expired")
    expect("expired token on whoami -> 401 token_expired",
           call(S, "GET", "/v1/whoami", bearer=expired), 401,
           "token_expired")
    j = b64d(a).decode()
    i = j.rindex(',"signature":"') + len(',"signature":"') + 5
    forged = b64e((j[:i] + ("A" if j[i] != "A" else "B") + j[i + 1:])
                  .encode())
    SECRETS_SEEN.add(forged)
    expect("forged token (a signature byte flipped) -> 401 invalid_token",
           check_req(S, forged), 401, "invalid_token")
    widened = resign(a, b"\x00" * 32, lambda j: j.replace(
        '"github:repo:read"', '"github:repo:write"'))
    SECRETS_SEEN.add(widened)
    expect("token signed with another key -> 401 invalid_token",
           check_req(S, widened), 401, "invalid_token")
    for g in ("garbage", "not a token!", "eyJ", "A" * 30000):
        expect("garbage bearer %r -> 401" % g[:12],
               check_req(S, g), 401, "invalid_token")
    after = state_of(S)
    check("bad requests changed nothing (revocations, changelog, key)",
          after == before, "%s -> %s" % (before, after))
    R = admin_token(S, "agent-r", ["openai:chat:completions"])
    call(S, "POST", "/v1/admin/revoke", {"tokenId": R["tokenId"]},
         bearer=ADMIN)
    before = state_of(S)  # that revoke was a change on purpose
    expect("revoked token -> 401 token_revoked",
           check_req(S, R["token"]), 401, "token_revoked")
    expect("revoked token on credentials -> 401 token_revoked",
           call(S, "POST", "/v1/credentials", good, bearer=R["token"]), 401,
           "token_revoked")
    expect("revoked token cannot delegate -> 401 token_revoked",
           call(S, "POST", "/v1/tokens/delegate",
                {"requestedScopes": ["openai:chat:completions"]},
                bearer=R["token"]), 401, "token_revoked")
    expect("consume with a revoked token: not allowed",
           call(S, "POST", "/v1/uses/consume",
                {"tokenId": R["tokenId"], "scope": "openai:chat:completions",
                 "token": R["token"]}, bearer=FOLLOWER, follower="f-main"),
           200, pred=lambda j: j["allowed"] is False)
    after = state_of(S)
    check("refused revoked tokens changed nothing",
          after == before, "%s -> %s" % (before, after))
    expect("a good request still works", check_req(S, a), 200,
           pred=lambda j: j == {"valid": True})
    return keys


# ---- 3. revocation and rotation ---------------------------------------------

def section_revocation(S, H, A):
    print("# 3. revocation and key rotation", flush=True)
    c = S.conn()
    T = admin_token(S, "agent-t", ["openai:chat:completions"])
    expect("revoke: the token works (and is cached)",
           check_req(S, T["token"], conn=c), 200)
    call(S, "POST", "/v1/admin/revoke", {"tokenId": T["tokenId"]},
         bearer=ADMIN)
    expect("revoke via the admin API: refused at once",
           check_req(S, T["token"], conn=c), 401, "token_revoked")

    T2 = admin_token(S, "agent-t2", ["openai:chat:completions"])
    D = call(S, "POST", "/v1/tokens/delegate",
             {"requestedScopes": ["openai:chat:completions"]},
             bearer=T2["token"]).json
    SECRETS_SEEN.add(D["token"])
    expect("CLI revoke: the token works before",
           check_req(S, T2["token"], conn=c), 200)
    rc, out, err = cli(H, "revoke", T2["tokenId"], "--reason", "cli test")
    t0 = time.time()
    check("CLI revoke on the same home exits 0", rc == 0, err)
    r = None
    while time.time() - t0 < 3 * SLOW:
        r = check_req(S, T2["token"], conn=c)
        if r.status != 200:
            break
        time.sleep(0.01)
    took = time.time() - t0
    check("CLI revoke (another process): refused within 1 s, no restart",
          r.status == 401 and r.code == "token_revoked" and took < 1.0 * SLOW,
          "%.3fs %r" % (took, r))
    expect("CLI revoke: the child of the revoked token is refused",
           check_req(S, D["token"]), 401, "token_revoked")
    T3 = admin_token(S, "agent-t3", ["openai:chat:completions"])
    check_req(S, T3["token"], conn=c)
    rc, out, err = cli(H, "revoke", "--agent", "agent-t3")
    t0 = time.time()
    while time.time() - t0 < 3 * SLOW:
        r = check_req(S, T3["token"], conn=c)
        if r.status != 200:
            break
        time.sleep(0.01)
    check("CLI revoke --agent: refused within 1 s",
          rc == 0 and r.code == "token_revoked" and
          time.time() - t0 < 1.0 * SLOW, "%r %s" % (r, err))
    st = status_of(S)
    check("status counts the revocations", st["revocations"] >= 3, str(st))

    # rotation
    old = A["token"]
    expect("rotate-key -> version 2",
           call(S, "POST", "/v1/admin/rotate-key", {}, bearer=ADMIN), 200,
           pred=lambda j: j == {"version": 2})
    expect("rotate-key: an old token (keyVersion 1) is still valid",
           check_req(S, old, conn=c), 200,
           pred=lambda j: j == {"valid": True})
    kvs = [token_json(admin_token(S, "agent-new", ["openai:chat:completions"])
                      ["token"])["keyVersion"] for _ in range(8)]
    check("rotate-key: every worker signs new root tokens with key 2",
          kvs == [2] * 8, "keyVersions %s" % kvs)
    NT = admin_token(S, "agent-new", ["openai:chat:completions"])
    rc, out, err = cli(H, "token", "show", NT["token"])
    check("rotate-key: a new root token carries keyVersion 2 (token show)",
          rc == 0 and re.search(r'"keyVersion": 2\b', out), out + err)
    expect("rotate-key: the new token is valid", check_req(S, NT["token"]),
           200, pred=lambda j: j == {"valid": True})
    r = call(S, "POST", "/v1/tokens/delegate",
             {"requestedScopes": ["openai:chat:completions"]}, bearer=old)
    check("rotate-key: a delegation from an old token is signed with key 2",
          r.status == 200 and token_json(r.json["token"])["keyVersion"] == 2,
          repr(r))
    if r.status == 200:
        SECRETS_SEEN.add(r.json["token"])
    check("rotate-key: status and metrics show version 2",
          status_of(S)["signingKeyVersion"] == 2 and
          re.search(r"^agent_iam_signing_key_version 2$", metrics_of(S),
                    re.M), str(status_of(S)))
    # keep every worker thread busy with key version 2 first
    for _ in range(8):
        admin_token(S, "agent-warm", ["openai:chat:completions"])
        check_req(S, old)
    rc, out, err = cli(H, "rotate-key")
    check("CLI rotate-key on the home exits 0", rc == 0, err)
    kvs = [token_json(admin_token(S, "agent-new3", ["openai:chat:completions"])
                      ["token"])["keyVersion"] for _ in range(8)]
    check("CLI rotate-key: root tokens made right after carry keyVersion 3",
          kvs == [3] * 8, "keyVersions %s" % kvs)
    t0 = time.time()
    v = 0
    while time.time() - t0 < 3 * SLOW:
        v = status_of(S)["signingKeyVersion"]
        if v == 3:
            break
        time.sleep(0.01)
    check("CLI rotate-key: status shows version 3 within 1 s",
          v == 3 and time.time() - t0 < 1.0 * SLOW, "version %s" % v)
    expect("CLI rotate-key: old tokens still valid", check_req(S, old), 200)
    c.close()


# ---- 4. flood of malformed requests ----------------------------------------

GARBAGE = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"\r\nZZZ\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHeader\r\n\r\n",
    b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 99999999999999999999999\r\n\r\n",
    b"GET /" + b"a" * 80000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Content-Length: 7\r\n\r\nabcde",
]
BIG_HEADER = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 120000 +
              b"\r\n\r\n")


def raw_tls(srv, data, read_timeout):
    """Send bytes over a fresh TLS connection; the first bytes back."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10 * SLOW)
    try:
        t = client_ctx().wrap_socket(s, server_hostname="127.0.0.1")
        try:
            # the server may answer and close before it read everything
            t.sendall(data)
        except (ConnectionError, ssl.SSLError):
            pass
        t.settimeout(read_timeout)
        try:
            return t.recv(64)
        except (socket.timeout, ConnectionError, ssl.SSLError):
            return b""
        finally:
            t.close()
    finally:
        s.close()


def section_flood(S, A):
    print("# 4. 10,000 malformed requests", flush=True)
    a = A["token"]
    total = 10000
    nthreads = 8
    kinds = [
        # (method, path, body, bearer, want status)
        ("POST", "/v1/check", b'{"scope":', a, 400),
        ("POST", "/v1/check", b'{"scope": 5}', a, 400),
        ("POST", "/v1/check", b'{"scope":"x"}', "garbage." + "A" * 40, 401),
        ("POST", "/v1/check", b'{"scope":"x"}', a[:-3] + "AAA", 401),
        ("POST", "/v1/credentials", b"[]", a, 400),
        ("POST", "/v1/admin/revoke", b'{"tokenId":', ADMIN, 400),
        ("POST", "/v1/admin/tokens", b"{}", "wrong-admin", 401),
        ("GET", "/v1/replication/changes?since=x", None, FOLLOWER, 400),
        ("GET", "/v1/nothing/here", None, None, 404),
        ("DELETE", "/v1/check", None, a, 405),
    ]
    errors = []
    counts = {"http": 0, "raw": 0, "bigheader": 0}
    lock = threading.Lock()

    def worker(k, per):
        c = S.conn()
        local = {"http": 0, "raw": 0, "bigheader": 0}
        for i in range(per):
            n = k * per + i
            try:
                if n % 25 == 0:
                    back = raw_tls(S, GARBAGE[(n // 25) % len(GARBAGE)], 0.25)
                    if back and not back.startswith(b"HTTP/1.1 4") and \
                            not back.startswith(b"HTTP/1.1 5"):
                        errors.append("garbage answered %r" % back[:40])
                    local["raw"] += 1
                    continue
                if n % 50 == 1:
                    back = raw_tls(S, BIG_HEADER, 2 * SLOW)
                    if back and not back.startswith(b"HTTP/1.1 4"):
                        errors.append("big header answered %r" % back[:40])
                    local["bigheader"] += 1
                    continue
                m, p, b, tok, want = kinds[n % len(kinds)]
                h = {"X-Follower-Id": "flood"}
                if tok:
                    h["Authorization"] = "Bearer " + tok
                c.request(m, p, body=b, headers=h)
                r = c.getresponse()
                r.read()
                local["http"] += 1
                if r.status != want:
                    errors.append("%s %s: %d want %d" % (m, p, r.status, want))
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = S.conn()
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %r" % (n, e))
                c.close()
                c = S.conn()
        c.close()
        with lock:
            for key in counts:
                counts[key] += local[key]

    def run(per):
        ths = [threading.Thread(target=worker, args=(k, per))
               for k in range(nthreads)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(300)

    # a warm-up round so that threads, caches and TLS state exist
    run(50)
    errors.clear()
    for key in counts:
        counts[key] = 0
    time.sleep(0.2)
    rss0 = S.rss_kb()
    t0 = time.time()
    run(total // nthreads)
    took = time.time() - t0
    time.sleep(0.5)
    rss1 = S.rss_kb()
    n = sum(counts.values())
    check("flood: %d requests (%d keep-alive, %d garbage, %d oversized "
          "headers) in %.1fs" % (n, counts["http"], counts["raw"],
                                 counts["bigheader"], took),
          n == total, str(counts))
    check("flood: every keep-alive request got its 4xx, no error",
          not errors, "%d errors, first: %s" % (len(errors), errors[:5]))
    check("flood: the server is still running", S.alive(), S.log()[-500:])
    expect("flood: then a good request succeeds", check_req(S, a), 200,
           pred=lambda j: j == {"valid": True})
    slack = 600 * 1024 if ASAN else 48 * 1024  # KiB
    check("flood: RSS did not grow wildly (%d -> %d KiB)" % (rss0, rss1),
          rss1 - rss0 < slack, "grew %d KiB" % (rss1 - rss0))


# ---- 5. SIGTERM under load ---------------------------------------------------

def section_sigterm(home, tok):
    print("# 5. SIGTERM under load", flush=True)
    S = Server("sigterm", home, extra=["--threads", "4"])
    nthreads = 8
    stop_at = [None]
    sent_term = threading.Event()
    # ok: a complete {"valid":true}; refused: connect() failed; closed: a
    # reused connection the server had closed before the request was sent
    # (seen as urllib3 does: readable at EOF); dropped: sent, then closed
    # with no byte of an answer; bad: anything else (truncated, not 200).
    stats = {"ok": 0, "ok_after_term": 0, "refused": 0, "closed": 0,
             "dropped": 0}
    bad = []
    lock = threading.Lock()

    def closed_by_server(c):
        sock = c.sock
        if sock is None:
            return True
        if sock.pending():
            return True  # unexpected bytes: not reusable either
        r, _, _ = select.select([sock], [], [], 0)
        return bool(r)

    def worker():
        c = None
        fresh = False
        local = dict.fromkeys(stats, 0)
        while stop_at[0] is None or time.time() < stop_at[0]:
            if c is not None and not fresh and closed_by_server(c):
                local["closed"] += 1
                c.close()
                c = None
            if c is None:
                c = S.conn(timeout=10)
                try:
                    c.connect()
                    fresh = True
                except OSError:
                    local["refused"] += 1
                    c = None
                    if sent_term.is_set():
                        break  # the listener is closed: done
                    time.sleep(0.01)
                    continue
            sent = False
            try:
                c.request("POST", "/v1/check",
                          body=b'{"scope":"openai:chat:completions"}',
                          headers={"Authorization": "Bearer " + tok})
                sent = True
                fresh = False
                r = c.getresponse()
                body = r.read()
            except (http.client.RemoteDisconnected, ConnectionError,
                    ssl.SSLEOFError) as e:
                if sent:
                    local["dropped"] += 1
                    bad.append("sent, then closed without an answer: %r" % e)
                else:
                    local["closed"] += 1
                c.close()
                c = None
                continue
            except (http.client.HTTPException, OSError) as e:
                bad.append("%s: %r" % ("after sending" if sent else
                                       "sending", e))  # truncated, timeout
                c.close()
                c = None
                continue
            if r.status == 200 and body == b'{"valid":true}':
                local["ok_after_term" if sent_term.is_set() else "ok"] += 1
            else:
                bad.append("%d %r" % (r.status, body[:200]))
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                c = None
        if c is not None:
            c.close()
        with lock:
            for key in stats:
                stats[key] += local[key]

    ths = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in ths:
        t.start()
    time.sleep(1.0)
    t_term = time.time()
    sent_term.set()
    S.p.send_signal(signal.SIGTERM)
    stop_at[0] = time.time() + 3 * SLOW
    try:
        rc = S.p.wait(15 * SLOW)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.time() - t_term
    for t in ths:
        t.join(30 * SLOW)
    check("sigterm: load before the signal got answers (%d)" % stats["ok"],
          stats["ok"] > 0, str(stats))
    check("sigterm: every request sent got a complete, correct 200 "
          "(%d before, %d after the signal)" % (stats["ok"],
                                                stats["ok_after_term"]),
          not bad, "%d bad, first %s; %s" % (len(bad), bad[:3], stats))
    check("sigterm: afterwards requests fail before they are sent (%d "
          "refused at connect, %d connections closed)" %
          (stats["refused"], stats["closed"]),
          stats["refused"] >= nthreads and stats["dropped"] == 0, str(stats))
    check("sigterm: the server exits 0 within a few seconds (%.2fs)" % took,
          rc == 0 and took < 5 * SLOW, "exit %s after %.2fs" % (rc, took))
    S.stop()  # closes the log; the process is gone already
    log = S.log()
    check("sigterm: it says it finished in-flight requests and stopped",
          "finishing in-flight requests" in log and "leader stopped" in log,
          log[-400:])
    check("sigterm: no request was cut (status 499) in the access log",
          " 499 " not in log,
          "\n".join(x for x in log.splitlines() if " 499 " in x)[:400])
    rep = sanitizer_report(log)
    check("sigterm: no sanitizer or leak report", rep is None, rep or "")


# ---- 6. long-polls hold no worker ----------------------------------------------

def section_longpoll(home, tok):
    print("# 6. long-polls on a server with --threads 2", flush=True)
    for i in range(5):  # changes for the server to trim at its start
        cli(home, "revoke", "old-%d" % i + "A" * 17)  # a 22-character id
    S = Server("longpoll", home, extra=["--threads", "2",
                                        "--changelog-retain", "2"])
    r = None
    deadline = time.time() + 3 * SLOW
    while time.time() < deadline:
        r = call(S, "GET", "/v1/replication/changes?since=0",
                 bearer=FOLLOWER, follower="f-old")
        if r.status != 200:
            break
        time.sleep(0.05)
    expect("changes since a trimmed seq (--changelog-retain 2) -> 410 gone",
           r, 410, "gone")
    snap = call(S, "GET", "/v1/replication/snapshot", bearer=FOLLOWER,
                follower="f-old").json
    expect("after 410, changes since the snapshot's seq work",
           call(S, "GET", "/v1/replication/changes?since=%d" % snap["seq"],
                bearer=FOLLOWER, follower="f-old"), 200,
           pred=lambda j: j["changes"] == [])
    head = status_of(S)["changelogSeq"]
    results = {}

    def poll(i, since):
        c = S.conn(timeout=40)
        try:
            r = call(S, "GET", "/v1/replication/changes?since=%d&wait=30" %
                     since, bearer=FOLLOWER, follower="f%d" % i, conn=c)
        except Exception as e:  # noqa: BLE001
            r = e
        results[i] = (r, time.time())
        c.close()

    def open_polls(since):
        results.clear()
        start_ms = time.time() * 1000 - 50
        ths = [threading.Thread(target=poll, args=(i, since))
               for i in range(1, 17)]
        for t in ths:
            t.start()
        deadline = time.time() + 10 * SLOW
        n = 0
        while time.time() < deadline:  # held once the leader saw all 16
            fl = call(S, "GET", "/v1/admin/followers", bearer=ADMIN).json
            n = len([f for f in fl["followers"]
                     if re.match(r"^f\d+$", f["id"]) and
                     f["lastSeenMs"] >= start_ms])
            if n >= 16:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        return ths, n

    ths, n = open_polls(head)
    check("long-poll: 16 followers are held (%d seen)" % n,
          n == 16 and not results, "%d answered early" % len(results))
    t0 = time.time()
    conns = [S.conn() for _ in range(4)]
    codes = []
    for i in range(200):
        try:
            r = check_req(S, tok, conn=conns[i % 4])
            codes.append(r.status if r.json == {"valid": True} else -r.status)
        except Exception as e:  # noqa: BLE001
            codes.append(repr(e))
    took = time.time() - t0
    for c in conns:
        c.close()
    check("long-poll: 200 checks all succeed while 16 polls are held "
          "(%.2fs)" % took,
          codes == [200] * 200 and took < 5 * SLOW,
          "%.2fs, bad: %s" % (took, [c for c in codes if c != 200][:5]))
    check("long-poll: the polls are still held", not results,
          str(list(results)))
    st = status_of(S)
    check("long-poll: /v1/status lists 16 followers",
          sorted(f["id"] for f in st["followers"]
                 if f["id"] != "f-old") ==
          sorted("f%d" % i for i in range(1, 17)), str(st["followers"]))
    t0 = time.time()
    call(S, "POST", "/v1/admin/revoke", {"agentId": "wake-up"}, bearer=ADMIN)
    for t in ths:
        t.join(10 * SLOW)
    late = [i for i, (r, t) in results.items()
            if not isinstance(r, Resp) or r.status != 200 or
            len(r.json["changes"]) != 1 or t - t0 > 0.5 * SLOW]
    check("long-poll: one change answers all 16 within 0.5 s",
          len(results) == 16 and not late,
          "%d answered, late or wrong: %s" % (len(results), late))

    # SIGTERM ends held polls at once (empty answers), not after 30 s; a
    # keep-alive connection idle at that moment may still bring a request
    head = status_of(S)["changelogSeq"]
    ths, n = open_polls(head)
    idle, idle2 = S.conn(), S.conn()
    check_req(S, tok, conn=idle)
    call(S, "GET", "/healthz", conn=idle2)
    t0 = time.time()
    S.p.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    try:
        r = check_req(S, tok, conn=idle)
    except Exception as e:  # noqa: BLE001
        r = Resp(0, {}, repr(e).encode())
    try:
        r2 = call(S, "GET", "/readyz", conn=idle2)
    except Exception as e:  # noqa: BLE001
        r2 = Resp(0, {}, repr(e).encode())
    idle.close()
    idle2.close()
    check("SIGTERM: a request on a connection idle at the signal is "
          "answered, with Connection: close",
          r.status == 200 and r.json == {"valid": True} and
          r.headers.get("Connection", "").lower() == "close", repr(r))
    expect("SIGTERM: /readyz while shutting down -> 503 unavailable", r2, 503,
           "unavailable")
    rc, took = S.stop()
    took += time.time() - t0 - took  # from the signal
    for t in ths:
        t.join(10 * SLOW)
    good = [i for i, (r, t) in results.items()
            if isinstance(r, Resp) and r.status == 200 and
            r.json["changes"] == []]
    check("long-poll: SIGTERM answers the 16 held polls (%d) and exits 0 in "
          "%.2fs" % (len(good), took),
          n == 16 and len(good) == 16 and rc == 0 and took < 5 * SLOW,
          "exit %s, answers %s" % (rc, {i: repr(r)[:80] for i, (r, t) in
                                       results.items()}))
    rep = sanitizer_report(S.log())
    check("long-poll server: no sanitizer or leak report", rep is None,
          rep or "")


# ---- 7. the access log --------------------------------------------------------

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z) (\S+) (\S+) (\d{3}) "
                      r"([\d.]+)ms (.*)$")


def access_lines(text):
    return [m.groups() for m in map(LOG_LINE.match, text.splitlines()) if m]


def section_log_requests(S, A):
    """Known requests; returns what the log must show for them."""
    print("# 7. access log", flush=True)
    a = A["token"]
    time.sleep(0.3)
    start = len(access_lines(S.log()))
    c = S.conn()
    want = []

    def go(method, path, body, bearer, route, status, **kw):
        r = call(S, method, path, body, bearer=bearer, conn=c, **kw)
        want.append((method, route, str(r.status)))
        check("log sequence: %s %s -> %d" % (method, path[:40], status),
              r.status == status, repr(r))
    go("POST", "/v1/check", {"scope": "x:y"}, a, "/v1/check", 200)
    go("GET", "/v1/whoami?access_token=" + a, None, a, "/v1/whoami", 200)
    go("POST", "/v1/admin/tokens", {}, "bad-" + ADMIN, "/v1/admin/tokens",
       401)
    go("PUT", "/v1/admin/apikeys/logtest",
       {"provider": "logtest", "key": APIKEY2}, ADMIN,
       "/v1/admin/apikeys/{name}", 200)
    go("DELETE", "/v1/admin/apikeys/logtest", None, ADMIN,
       "/v1/admin/apikeys/{name}", 200)
    go("GET", "/no/such/route?secret=" + FOLLOWER, None, None,
       "/no/such/route", 404)
    go("PUT", "/v1/check", {}, a, "/v1/check", 405)
    go("GET", "/v1/replication/changes?since=0&limit=1", None, FOLLOWER,
       "/v1/replication/changes", 200, follower="f-log")
    go("POST", "/v1/credentials", {"scope": "openai:chat:completions"}, a,
       "/v1/credentials", 200)
    c.close()
    deadline = time.time() + 3 * SLOW
    while time.time() < deadline:
        lines = access_lines(S.log())[start:]
        if len(lines) >= len(want):
            break
        time.sleep(0.05)
    time.sleep(0.2)
    lines = access_lines(S.log())[start:]
    got = [(m, r, s) for (_, m, r, s, _, _) in lines]
    check("access log: one line per request with method, route and status",
          got == want, "got %s\nwant %s" % (got, want))
    subj = [x[5] for x in lines]
    check("access log: agent requests name the agent and token id",
          len(subj) > 0 and subj[0] == "agent=agent-a token=%s" %
          A["tokenId"], str(subj[:1]))
    check("access log: follower requests name the follower",
          any("follower=f-log" in x for x in subj), str(subj))


def section_log_secrets():
    log = ""
    for name in sorted(os.listdir(TMP)):
        if name.endswith(".log") and name != "openssl.log":
            with open(os.path.join(TMP, name), "rb") as f:
                log += f.read().decode("utf-8", "replace")
    leaks = [name for name, s in (("admin secret", ADMIN),
                                  ("follower secret", FOLLOWER),
                                  ("API key (CLI)", APIKEY),
                                  ("API key (admin API)", APIKEY2),
                                  ("AWS secret", AWS_SECRET)) if s in log]
    toks = [t for t in SECRETS_SEEN if t in log or t[-43:] in log]
    check("servers' stderr: no admin/follower secret, API key or AWS secret",
          not leaks, str(leaks))
    check("servers' stderr: none of the %d tokens of the run, whole or in "
          "part, nor any other" 
          % len(SECRETS_SEEN), not toks and "eyJ" not in log,
          "%d found" % len(toks))


# ---- 8. plain HTTP ------------------------------------------------------------

def section_plain(S, home, tok):
    print("# 8. plain HTTP only with --insecure-http", flush=True)
    c = http.client.HTTPConnection("127.0.0.1", S.port, timeout=5 * SLOW)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        res = "HTTP %d" % r.status
    except Exception as e:  # noqa: BLE001
        res = None
    finally:
        c.close()
    check("TLS server: a plain http:// request fails", res is None, res)
    if shutil.which("curl") is None:
        print("skip curl checks: no curl", flush=True)
    else:
        section_plain_curl(S)
    plain_server(home, tok)


def section_plain_curl(S):
    p = subprocess.run(["curl", "-sS", "-m", str(5 * SLOW),
                        "http://127.0.0.1:%d/healthz" % S.port],
                       capture_output=True, text=True)
    check("TLS server: curl http:// fails", p.returncode != 0,
          p.stdout + p.stderr)
    p = subprocess.run(["curl", "-sS", "-m", str(5 * SLOW), "--cacert", CA,
                        "https://localhost:%d/healthz" % S.port],
                       capture_output=True, text=True)
    check("TLS server: curl --cacert https://localhost (the SAN) works",
          p.returncode == 0 and '"ok"' in p.stdout, p.stderr)
    p = subprocess.run(["curl", "-sS", "-m", str(5 * SLOW),
                        "https://127.0.0.1:%d/healthz" % S.port],
                       capture_output=True, text=True,
                       env=dict(os.environ, CURL_CA_BUNDLE="/dev/null",
                                SSL_CERT_FILE="/dev/null"))
    check("TLS server: the certificate is the test CA's (untrusted without "
          "--cacert)", p.returncode != 0, p.stdout)


def plain_server(home, tok):
    p = subprocess.run([BIN, "--home", home, "serve", "--insecure-http",
                        "--tls-cert", CERT, "--tls-key", KEY],
                       capture_output=True, text=True, timeout=30 * SLOW)
    check("--insecure-http with a certificate is a usage error (exit 2)",
          p.returncode == 2, "exit %d %s" % (p.returncode, p.stderr))

    P = Server("plain", home, extra=["--insecure-http"], tls=False,
               admin=False)
    check("--insecure-http warns on stderr",
          "WARNING: plain HTTP" in P.log(), P.log()[:500])
    check("--insecure-http: the listening line says http://",
          "listening on http://127.0.0.1:%d" % P.port in P.log(), "")
    expect("--insecure-http: GET /healthz over plain HTTP",
           call(P, "GET", "/healthz"), 200,
           pred=lambda j: j == {"status": "ok"})
    expect("--insecure-http: an agent check over plain HTTP",
           check_req(P, tok), 200, pred=lambda j: j == {"valid": True})
    expect("no --admin-token: the admin API is off (404), even for the "
           "follower secret",
           call(P, "GET", "/v1/admin/followers", bearer=FOLLOWER), 404,
           "not_found")
    try:
        x = http.client.HTTPSConnection("127.0.0.1", P.port,
                                        timeout=5 * SLOW,
                                        context=client_ctx())
        x.request("GET", "/healthz")
        res = "HTTP %d" % x.getresponse().status
    except Exception:  # noqa: BLE001
        res = None
    check("--insecure-http: https:// to it fails", res is None, res)
    P.stop_checked()


# ---- main ---------------------------------------------------------------------

def new_home(name, token_scopes="openai:chat:completions"):
    h = os.path.join(TMP, name)
    rc, out, err = cli(h, "apikey", "add", "--name", "openai", "--provider",
                       "openai", "--key", APIKEY)
    if rc != 0:
        raise RuntimeError("apikey add: %s" % err)
    rc, out, err = cli(h, "token", "create-root", "--agent-id", "load",
                       "--scopes", token_scopes)
    if rc != 0:
        raise RuntimeError("create-root: %s" % err)
    tok = out.strip()
    SECRETS_SEEN.add(tok)
    return h, tok


def main():
    t_start = time.time()
    only = os.environ.get("SERVER_TEST_ONLY")  # development: one section
    if only == "sigterm":
        section_sigterm(*new_home("home-sigterm"))
        return 1 if checks.counts["fail"] else 0
    if only == "longpoll":
        section_longpoll(*new_home("home-longpoll"))
        return 1 if checks.counts["fail"] else 0
    H, _ = new_home("home")
    S = Server("main", H)
    try:
        A = section_routes(S, H)
        section_bad_input(S, H, A)
        section_revocation(S, H, A)
        section_flood(S, A)
        section_log_requests(S, A)
        section_plain(S, *new_home("home-plain"))
    finally:
        if S.alive():
            S.stop_checked()
    section_sigterm(*new_home("home-sigterm"))
    section_longpoll(*new_home("home-longpoll"))
    section_log_secrets()
    print("server tests: %d passed, %d failed in %.1fs%s" %
          (checks.counts["pass"], checks.counts["fail"], time.time() - t_start, " (ASan build)" if ASAN else ""))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    # SIGTERM (run.sh killed, a CI timeout): exit through atexit, which
    # kills the servers still running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - a crash of the driver fails
        import traceback
        traceback.print_exc()
        no("driver crashed", repr(e))
        sys.exit(1)
