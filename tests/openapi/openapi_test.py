#!/usr/bin/env python3
"""openapi_test.py - docs/openapi.yaml against the servers (DESIGN §10):

1. the document's own checks (3.1.0, every $ref resolves, every schema
   is a valid JSON Schema 2020-12, operationIds, x-served-by);
2. the route tables of the C source (tests/openapi/routes.py) and the
   document's paths and methods are the same, per role; so are the error
   codes, and each status a code is sent with is declared with it;
3. real requests to the leader and follower of tests/clients/fixture.py
   (its environment): every route it can reach safely, with good and bad
   credentials and bodies, each answer checked for its expected status and
   against the document (status declared, content type, body schema,
   headers). What it writes is its own: agent ids, an API key and a
   follower named oapi-..., a provider only when none of that name is
   configured; it removes them at the end.

Run by tests/clients/run.sh with Debian's python3 (python3-yaml,
python3-jsonschema). One line per check; exit 1 on any failure."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import oapi  # noqa: E402
import routes  # noqa: E402

FAILED = []
DOC = oapi.Doc(os.path.join(TOP, "docs", "openapi.yaml"))
RID = "oapi-" + os.urandom(4).hex()
WAIT_S = 15  # the longest wait for the follower to see a change


def report(ok, what, why=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else ": " + why))
    if not ok:
        FAILED.append(what)
    return ok


def call(srv, method, path, expect, body=None, bearer=None, headers=None,
         code=None, note=""):
    """One request, checked: its status is expect (and its error code
    code), and the answer is what the document declares. The parsed JSON
    body (or None)."""
    what = "%s %s %s -> %d%s" % (srv.role, method, path[:70], expect,
                                 " (%s)" % note if note else "")
    try:
        status, hdrs, data = srv.request(method, path, body, bearer, headers)
    except OSError as e:
        report(False, what, "no answer: %s" % e)
        return None
    bad = [] if status == expect else ["status %d" % status]
    bad += DOC.check_answer(srv.role, method, path, status, hdrs, data)
    kind, op, _ = DOC.lookup(srv.role, method, path)
    if status == expect and status < 300 and kind == "op" and \
            isinstance(body, dict):
        bad += DOC.check_request(op, body)
    try:
        parsed = json.loads(data) if hdrs.get(
            "content-type") == "application/json" and data else None
    except ValueError:
        parsed = None
    if code is not None and (parsed or {}).get("code") != code:
        bad.append("code %r, expected %r" % ((parsed or {}).get("code"),
                                             code))
    report(not bad, what, "; ".join(bad) + " | " + data[:300].decode(
        "utf-8", "replace"))
    return parsed


def wait_until(pred, timeout=WAIT_S):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def root_token(srv, admin, agent, scopes, **extra):
    body = dict(agentId=agent, scopes=scopes, **extra)
    return call(srv, "POST", "/v1/admin/tokens", 200, body, admin,
                note="root " + agent) or {}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def expired_token(agent):
    """A token signed with the leader's key 1 (agent-iam key export) that
    expired a minute ago (DESIGN §2's wire form)."""
    p = subprocess.run([os.environ["AGENT_IAM_BIN"], "--home",
                        os.environ["AGENT_IAM_TEST_HOME"], "key", "export",
                        "--version", "1"], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0 or len(p.stdout) != 32:
        return None
    at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    j = json.dumps({"agentId": agent, "scopes": ["*"], "constraints": {},
                    "delegatable": False, "maxDelegationDepth": 0,
                    "currentDepth": 0, "expiresAt": at,
                    "tokenId": b64u(os.urandom(16)), "keyVersion": 1},
                   separators=(",", ":"))
    sig = b64u(hmac.new(p.stdout, j.encode(), hashlib.sha256).digest())
    return b64u((j[:-1] + ',"signature":"%s"}' % sig).encode())


# ---- 1 and 2: the document, the route tables and error codes --------------
def document_checks():
    bad = DOC.self_check()
    report(not bad, "the document is OpenAPI 3.1.0 with valid schemas and "
           "refs", "; ".join(bad))
    try:
        server = routes.c_routes(os.path.join(TOP, "src"))
    except ValueError as e:
        return report(False, "route tables read from src/", str(e))
    diff = routes.differences(server, routes.doc_routes(DOC.d))
    for line in diff:
        print("     " + line)
    report(not diff, "the route tables of src/ (%s) are the document's "
           "paths and methods" % ", ".join(
               "%s %d" % (r, len(s)) for r, s in sorted(server.items())),
           "%d difference(s), listed above" % len(diff))
    try:
        codes, pairs = routes.c_error_codes(os.path.join(TOP, "src"))
    except ValueError as e:
        return report(False, "error codes read from src/", str(e))
    enum, by_status = routes.doc_error_codes(DOC)
    report(codes == enum, "the error codes of src/ are the document's",
           "only in src/: %s; only in the document: %s" % (
               sorted(codes - enum), sorted(enum - codes)))
    bad = ["%s %s" % p for p in sorted(pairs)
           if p[1] not in by_status.get(p[0], set())]
    report(not bad, "each status and code src/ replies with is declared",
           "not in the document: " + ", ".join(bad))


# ---- 3: real answers -------------------------------------------------------
def health(srv, metrics, admin):
    call(srv, "GET", "/healthz", 200)
    call(srv, "GET", "/readyz", 200)
    call(srv, "GET", "/v1/status", 200, bearer=metrics, note="metrics token")
    call(srv, "GET", "/v1/status", 401, code="unauthorized", note="none")
    text = srv.request("GET", "/metrics", bearer=metrics)[2].decode()
    call(srv, "GET", "/metrics", 200, bearer=metrics, note="metrics token")
    report("# TYPE agent_iam_http_requests_total counter" in text,
           "%s /metrics is Prometheus text with the request counter" %
           srv.role, text[:200])
    call(srv, "GET", "/metrics", 401, bearer="wrong", code="unauthorized")
    if srv.role == "leader":
        call(srv, "GET", "/v1/status", 200, bearer=admin, note="admin token")
    else:
        call(srv, "GET", "/v1/status", 401, bearer=admin,
             code="unauthorized", note="a follower has no admin token")
    call(srv, "HEAD", "/healthz", 405, note="Allow: GET")
    call(srv, "GET", "/v1/" + RID, 404, code="not_found")


def agent(srv, root, narrow, expired):
    t, n = root["token"], narrow["token"]
    call(srv, "GET", "/v1/whoami", 200, bearer=t)
    call(srv, "POST", "/v1/check", 200, {"scope": "openai:chat"}, t)
    call(srv, "POST", "/v1/check", 200, {"scope": "github:repo:read",
                                         "resource": "x"}, n,
         note="valid false")
    call(srv, "POST", "/v1/credentials", 200, {"scope": "openai:chat"}, t)
    call(srv, "POST", "/v1/credentials", 403, {"scope": "github:repo:read"},
         n, code="forbidden")
    call(srv, "POST", "/v1/tokens/delegate", 200,
         {"agentId": RID + "-child", "requestedScopes": ["openai:*"],
          "ttlMinutes": 5, "delegatable": False}, t)
    call(srv, "POST", "/v1/tokens/delegate", 403,
         {"requestedScopes": ["github:*"]}, n, code="forbidden")
    call(srv, "POST", "/v1/tokens/delegate", 400,
         {"requestedScopes": ["x"], "oapi": 1}, t, code="bad_request")
    call(srv, "POST", "/v1/tokens/refresh", 200, None, t, note="no body")
    call(srv, "POST", "/v1/tokens/refresh", 200, {"ttlMinutes": 60}, t)
    call(srv, "POST", "/v1/tokens/refresh", 403, None, n, code="forbidden",
         note="no system:token:refresh")
    call(srv, "POST", "/v1/check", 400, "not json", t, code="bad_request")
    call(srv, "POST", "/v1/check", 401, {"scope": "x"}, code="unauthorized")
    call(srv, "GET", "/v1/whoami", 401, bearer="not-a-token",
         code="invalid_token")
    if expired is None:
        report(False, "%s an expired token" % srv.role,
               "agent-iam key export failed")
    else:
        call(srv, "GET", "/v1/whoami", 401, bearer=expired,
             code="token_expired")
    call(srv, "POST", "/v1/check", 413, "x" * 70000, t,
         code="payload_too_large")
    call(srv, "GET", "/v1/check", 405, bearer=t, code="method_not_allowed")
    call(srv, "PUT", "/v1/whoami", 405, bearer=t)


def rate_limit(srv, admin):
    """Refreshes of an agent of its own until the leader answers 429."""
    t = root_token(srv, admin, RID + "-rate", ["*"]).get("token")
    status, n = 0, 0
    try:
        while status != 429 and n < 1000:
            status = srv.request("POST", "/v1/tokens/refresh", "{}", t,
                                 keep=True)[0]
            n += 1
    except OSError as e:
        return report(False, "leader 429 after a burst", str(e))
    finally:
        if srv.conn is not None:
            srv.conn.close()
            srv.conn = None
    report(status == 429, "leader 429 after %d refreshes" % n,
           "never refused")
    call(srv, "POST", "/v1/tokens/refresh", 429, "{}", t,
         code="rate_limited", note="Retry-After")


def revocations(leader, follower, admin):
    r = root_token(leader, admin, RID + "-rev", ["*"])
    t = r.get("token")
    who = "/v1/whoami"
    call(leader, "POST", "/v1/admin/revoke", 200,
         {"agentId": RID + "-rev", "reason": "openapi test"}, admin)
    call(leader, "GET", who, 401, bearer=t, code="token_revoked")
    wait_until(lambda: follower.request("GET", who, bearer=t)[0] == 401)
    call(follower, "GET", who, 401, bearer=t, code="token_revoked")
    call(leader, "POST", "/v1/admin/unrevoke", 200, {"agentId": RID + "-rev"},
         admin)
    call(leader, "POST", "/v1/admin/unrevoke", 404, {"agentId": RID + "-rev"},
         admin, code="not_found", note="not revoked")
    call(leader, "POST", "/v1/admin/revoke", 200,
         {"tokenId": r.get("tokenId"), "expiresAt": "2030-01-01T00:00:00Z"},
         admin)
    call(leader, "POST", "/v1/admin/unrevoke", 200,
         {"tokenId": r.get("tokenId")}, admin)
    call(leader, "POST", "/v1/admin/revoke", 400,
         {"agentId": RID + "-rev", "expiresAt": "tomorrow"}, admin,
         code="bad_request")
    call(leader, "POST", "/v1/admin/revoke", 400,
         {"agentId": RID + "-rev", "tokenId": "x"}, admin, code="bad_request")
    call(leader, "POST", "/v1/admin/revoke", 401, {"agentId": RID + "-rev"},
         code="unauthorized")


def fetch_snapshot(leader, cred):
    """The entity lines of the snapshot of the follower cred."""
    data = leader.request("GET", "/v1/replication/snapshot", bearer=cred)[2]
    lines = [json.loads(x) for x in data.decode().splitlines()]
    return [x for x in lines if "kind" in x]


def providers(leader, admin, cred):
    """PUT and DELETE of a provider no one else configured (google or
    aws), so another suite's provider is never touched."""
    configs = {
        "google": {"clientId": RID, "clientSecret": "oapi-secret",
                   "refreshToken": "oapi-refresh",
                   "tokenUrl": os.environ["AGENT_IAM_TEST_DEAD"] + "/token"},
        "aws": {"region": "us-east-1",
                "roleArn": "arn:aws:iam::123456789012:role/oapi",
                "stsUrl": os.environ["AGENT_IAM_TEST_DEAD"]}}
    base = "/v1/admin/providers/"
    call(leader, "PUT", base + "google", 400, {"clientId": RID}, admin,
         code="bad_request", note="incomplete config")
    call(leader, "PUT", base + "oapi", 404, {}, admin, code="not_found",
         note="unknown provider")
    taken = {x.get("name") for x in fetch_snapshot(leader, cred)
             if x["kind"] == "provider"}
    free = [p for p in configs if p not in taken]
    if not report(bool(free), "leader a provider no other suite configured",
                  "google and aws are both configured"):
        return
    name = free[0]
    call(leader, "PUT", base + name, 200, configs[name], admin)
    ch = call(leader, "GET", "/v1/replication/changes?since=0&limit=10000",
              200, bearer=cred, note="with a provider") or {}
    report(any(c["kind"] == "provider" and c["key"] == name and "value" in c
               for c in ch.get("changes", [])),
           "leader the change feed holds the sealed provider", str(ch)[:300])
    call(leader, "DELETE", base + name, 200, None, admin)
    call(leader, "DELETE", base + name, 404, None, admin, code="not_found")


def apikeys(leader, follower, admin, token):
    base = "/v1/admin/apikeys/" + RID
    scope = {"scope": RID + ":chat"}
    call(leader, "PUT", base, 200,
         {"provider": RID, "key": "sk-" + RID, "baseUrl":
          "https://api.example.com", "ttlMinutes": 10}, admin)
    call(leader, "POST", "/v1/credentials", 200, scope, token,
         note="the new API key")
    wait_until(lambda: follower.request("POST", "/v1/credentials", scope,
                                        token)[0] == 200)
    call(follower, "POST", "/v1/credentials", 200, scope, token,
         note="the new API key")
    call(leader, "PUT", "/v1/admin/apikeys/bad!name", 400,
         {"provider": RID, "key": "k"}, admin, code="bad_request")
    call(leader, "PUT", base, 400, {"provider": RID}, admin,
         code="bad_request", note="no key")
    call(leader, "DELETE", base, 200, None, admin)
    call(leader, "DELETE", base, 404, None, admin, code="not_found")
    call(leader, "POST", "/v1/credentials", 404, scope, token,
         code="not_found", note="no such provider")
    wait_until(lambda: follower.request("POST", "/v1/credentials", scope,
                                        token)[0] == 404)
    call(follower, "POST", "/v1/credentials", 404, scope, token,
         code="not_found", note="forwarded to the leader")


def replication(leader, follower, cred, root):
    feed = "/v1/replication/changes"
    b = call(leader, "GET", feed + "?since=0&limit=10000", 200,
             bearer=cred) or {}
    head = b.get("leaderSeq", 0)
    call(leader, "GET", feed + "?since=0&limit=1&maxBytes=1024", 200,
         bearer=cred)
    call(leader, "GET", "%s?since=%d&wait=1" % (feed, head), 200,
         bearer=cred, note="long-poll")
    call(leader, "GET", feed + "?since=%d" % (head + 10 ** 9), 410,
         bearer=cred, code="gone")
    call(leader, "GET", feed + "?since=%d" % head, 200, bearer=cred,
         note="back at the head")
    call(leader, "GET", feed + "?wait=99", 400, bearer=cred,
         code="bad_request")
    call(leader, "GET", feed, 403, bearer=cred,
         headers={"X-Follower-Id": RID + "-other"}, code="forbidden")
    call(leader, "GET", feed, 400, bearer=cred,
         headers={"X-Follower-Id": "bad id!"}, code="bad_request")
    call(leader, "GET", feed, 200, bearer=cred,
         headers={"X-Follower-Id": RID}, note="its own X-Follower-Id")
    call(leader, "GET", feed, 401, code="unauthorized")
    call(leader, "GET", feed, 401, bearer=root["token"], code="unauthorized",
         note="an agent token")
    data = leader.request("GET", "/v1/replication/snapshot", bearer=cred)[2]
    call(leader, "GET", "/v1/replication/snapshot", 200, bearer=cred)
    lines = [json.loads(x) for x in data.decode().splitlines()]
    report(lines and lines[-1].get("end") is True and
           lines[-1].get("count") == len(lines) - 2,
           "leader the snapshot ends with the count of its entities",
           str(lines[-1:]))
    use = {"tokenId": root["tokenId"], "scope": "openai:chat",
           "token": root["token"]}
    call(leader, "POST", "/v1/uses/consume", 200, use, cred)
    call(leader, "POST", "/v1/uses/consume", 400,
         dict(use, tokenId="A" * 22), cred, code="bad_request",
         note="another tokenId")
    call(leader, "POST", "/v1/uses/consume", 400, {"scope": "x"}, cred,
         code="bad_request")
    for path in (feed, "/v1/replication/snapshot"):
        call(follower, "GET", path, 404, bearer=cred, code="not_found",
             note="leader only")
    call(follower, "POST", "/v1/uses/consume", 404, use, cred,
         code="not_found", note="leader only")


def admin_misc(leader, follower, admin):
    call(leader, "GET", "/v1/admin/followers", 200, bearer=admin)
    call(leader, "GET", "/v1/admin/followers", 401, bearer="wrong",
         code="unauthorized")
    call(leader, "PUT", "/v1/admin/followers", 405, bearer=admin,
         code="method_not_allowed", note="Allow: GET, POST")
    call(leader, "POST", "/v1/admin/tokens", 400, {"agentId": RID}, admin,
         code="bad_request", note="no scopes")
    call(leader, "POST", "/v1/admin/rotate-key", 400, {"graceMs": "x"},
         admin, code="bad_request")
    v = call(leader, "POST", "/v1/admin/rotate-key", 200, {}, admin,
             note="default grace") or {}
    ok = wait_until(lambda: json.loads(follower.request(
        "GET", "/v1/status", bearer=os.environ[
            "AGENT_IAM_TEST_METRICS_TOKEN"])[2]).get(
        "signingKeyVersion", 0) >= v.get("version", 1))
    report(ok, "follower holds the new signing key", str(v))
    for path in ("add", "remove", "transfer"):
        call(leader, "POST", "/v1/admin/cluster/" + path, 404, {"id": 2},
             admin, code="not_found", note="not in a leader group")
        call(follower, "POST", "/v1/admin/cluster/" + path, 404, {"id": 2},
             admin, code="not_found", note="leader only")
    call(leader, "POST", "/v1/admin/cluster/add", 401, {"id": 2},
         code="unauthorized")
    call(leader, "GET", "/v1/admin/cluster/transfer", 405, bearer=admin)
    # a follower answers every admin route 409, whatever the credential
    for method, path in sorted(routes.doc_routes(DOC.d)["follower"]):
        if path.startswith("/v1/admin/"):
            p = path.replace("{}", RID)
            b = call(follower, method, p, 409, None if method in (
                "GET", "DELETE") else {"agentId": RID}, None,
                code="not_leader") or {}
            if b.get("leader") != leader.url:
                report(False, "follower %s %s names the leader" % (
                    method, p), str(b))


def main():
    document_checks()
    env = os.environ
    ca, admin = env["AGENT_IAM_TEST_CA"], env["AGENT_IAM_TEST_ADMIN_TOKEN"]
    metrics = env["AGENT_IAM_TEST_METRICS_TOKEN"]
    leader = oapi.Server("leader", env["AGENT_IAM_TEST_LEADER"], ca)
    follower = oapi.Server("follower", env["AGENT_IAM_TEST_FOLLOWER"], ca)
    root = root_token(leader, admin, RID, ["*"],
                      constraints={"openai:*": {"maxUses": 1000}},
                      identity={"test": "openapi"}, ttlDays=1)
    narrow = root_token(leader, admin, RID + "-narrow", ["oapi:read"],
                        delegatable=True, maxDelegationDepth=2)
    expired = expired_token(RID + "-expired")
    fol = call(leader, "POST", "/v1/admin/followers", 200,
               {"id": RID, "providers": "*"}, admin) or {}
    cred = fol.get("secret", "none")
    try:
        for srv in (leader, follower):
            health(srv, metrics, admin)
            agent(srv, root, narrow, expired)
        rate_limit(leader, admin)
        revocations(leader, follower, admin)
        replication(leader, follower, cred, root)
        providers(leader, admin, cred)
        apikeys(leader, follower, admin, root["token"])
        admin_misc(leader, follower, admin)
    finally:
        call(leader, "DELETE", "/v1/admin/followers/" + RID, 200, None, admin)
    call(leader, "DELETE", "/v1/admin/followers/" + RID, 404, None, admin,
         code="not_found")
    call(leader, "GET", "/v1/replication/changes", 401, bearer=cred,
         code="unauthorized", note="a removed follower")
    print("openapi: %d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
