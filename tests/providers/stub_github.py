#!/usr/bin/env python3
"""stub_github.py - a stand-in for GitHub's installation-token endpoint,
for tests/providers/test_github.c. Standard library plus the openssl CLI.

    stub_github.py DIR APP_ID INSTALLATION_ID

Makes a test PKI in DIR (ca.pem, server cert for 127.0.0.1/localhost, the
App key app.pem and its app_pub.pem, another key other.pem), listens with
TLS on 127.0.0.1 on a free port and prints "PORT <n>" on stdout once it
accepts connections. Runs until killed.

POST [/MODE]/app/installations/INSTALLATION_ID/access_tokens is checked as
GitHub would: the Bearer JWT's RS256 signature against app_pub.pem, its
claims (iss = APP_ID, iat in the past, exp in the future and at most
10 minutes after iat), the Accept and User-Agent headers, and the body
({"repositories": [one name], "permissions": {..., "metadata": "read"}}).
Answers 201 {"token": "ghs_test.<repo>.<perm>=<level>", "expires_at": ...}.
A bad JWT is 401, a bad request 422 (the reason goes to stderr).

GET [/MODE]/app/installations/INSTALLATION_ID is checked the same way
(JWT, Accept, User-Agent) and answers 200 {"id": INSTALLATION_ID,
"account": {"login": "myorg"}}; it ignores MODE, so the failure modes
apply to the token request only.

GET /_minted/REPO (no auth, test bookkeeping) answers {"count": n}, the
number of tokens minted so far for REPO.

MODE, the first path segment, selects a failure:
    flaky-<id>  the first request for each id is 500, later ones succeed
    malformed   201 with a body that is not JSON
    slow        sleep 5 s before answering

stub_google.py reuses make_pki and serve from here.
"""
import base64
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time

_seen = set()
_seen_lock = threading.Lock()
_minted = {}
ACCOUNT_LOGIN = "myorg"


def run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d, app_keys=()):
    """A CA, a server certificate for 127.0.0.1 and localhost signed by
    it, and an RSA key pair per name in app_keys (<name>.pem and
    <name>_pub.pem)."""
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
        "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
        "/CN=agent-iam test CA", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
        "-extfile", "ext.cnf", cwd=d)
    for name in app_keys:
        run("genpkey", "-algorithm", "RSA", "-pkeyopt",
            "rsa_keygen_bits:2048", "-out", name + ".pem", cwd=d)
        run("pkey", "-in", name + ".pem", "-pubout", "-out",
            name + "_pub.pem", cwd=d)


class Quiet(http.server.BaseHTTPRequestHandler):
    """A handler with JSON replies and no access log."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def fail(self, status, why):
        sys.stderr.write("%s: answered %d (%s)\n"
                         % (os.path.basename(sys.argv[0]), status, why))
        self.reply(status, json.dumps({"message": why}).encode())

    def reply(self, status, body, ctype="application/json"):
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the timeout test)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n)

    def mode(self):
        """(mode, rest of the path): mode is '' for a plain request."""
        m = re.match(r"^/(flaky-[A-Za-z0-9]+|malformed|slow)(/.*)$",
                     self.path)
        return (m.group(1), m.group(2)) if m else ("", self.path)

    def failure(self, mode):
        """Answer for a failure mode; True when the request is done."""
        if mode.startswith("flaky-"):
            with _seen_lock:
                first = mode not in _seen
                _seen.add(mode)
            if first:
                self.reply(500, b'{"message":"try again"}')
                return True
        elif mode == "slow":
            time.sleep(5)
        return False


def serve(d, handler):
    """Serve handler with TLS on 127.0.0.1, a free port, printed."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.pem"),
                        os.path.join(d, "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_verify(jwt, pub, app_id):
    """None when jwt is a valid App JWT for app_id, else the reason."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return "not three parts"
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except ValueError:
        return "undecodable"
    if header.get("alg") != "RS256":
        return "alg is not RS256"
    with tempfile.TemporaryDirectory() as t:
        with open(os.path.join(t, "in"), "wb") as f:
            f.write((parts[0] + "." + parts[1]).encode())
        with open(os.path.join(t, "sig"), "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub,
                            "-signature", os.path.join(t, "sig"),
                            os.path.join(t, "in")],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        return "bad signature"
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if str(claims.get("iss")) != app_id:
        return "iss is not the app id"
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "iat or exp missing"
    if iat > now:
        return "iat in the future"
    if exp <= now or exp - iat > 600:
        return "exp past or more than 10 minutes after iat"
    return None


def github_handler(d, app_id, inst):
    pub = os.path.join(d, "app_pub.pem")
    path_re = re.compile(r"^/app/installations/(\d+)/access_tokens$")
    inst_re = re.compile(r"^/app/installations/(\d+)$")
    minted_re = re.compile(r"^/_minted/([A-Za-z0-9._-]+)$")

    class H(Quiet):
        def do_GET(self):
            m = minted_re.match(self.path)
            if m:
                with _seen_lock:
                    n = _minted.get(m.group(1), 0)
                return self.reply(200, json.dumps({"count": n}).encode())
            _, path = self.mode()
            m = inst_re.match(path)
            if not m or m.group(1) != inst:
                return self.fail(404, "no such installation: " + path)
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return self.fail(401, "no Bearer JWT")
            why = jwt_verify(auth[7:], pub, app_id)
            if why:
                return self.fail(401, "JWT rejected: " + why)
            if self.headers.get("Accept") != "application/vnd.github+json":
                return self.fail(422, "Accept header")
            if not self.headers.get("User-Agent"):
                return self.fail(422, "no User-Agent")
            self.reply(200, json.dumps({
                "id": int(inst), "app_id": int(app_id),
                "account": {"login": ACCOUNT_LOGIN,
                            "type": "Organization"}}).encode())

        def do_POST(self):
            body = self.body()
            mode, path = self.mode()
            m = path_re.match(path)
            if not m or m.group(1) != inst:
                return self.fail(404, "no such installation: " + path)
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return self.fail(401, "no Bearer JWT")
            why = jwt_verify(auth[7:], pub, app_id)
            if why:
                return self.fail(401, "JWT rejected: " + why)
            if self.headers.get("Accept") != "application/vnd.github+json":
                return self.fail(422, "Accept header")
            if not self.headers.get("User-Agent"):
                return self.fail(422, "no User-Agent")
            if self.failure(mode):
                return
            try:
                req = json.loads(body)
                repos, perms = req["repositories"], req["permissions"]
            except (ValueError, KeyError, TypeError):
                return self.fail(422, "body")
            if (not isinstance(repos, list) or len(repos) != 1
                    or not re.match(r"^[A-Za-z0-9._-]+$", repos[0])):
                return self.fail(422, "repositories must name one repo")
            if perms.get("metadata") != "read" or len(perms) != 2:
                return self.fail(422, "permissions: " + json.dumps(perms))
            (perm, level), = [(k, v) for k, v in perms.items()
                              if k != "metadata"]
            if level not in ("read", "write"):
                return self.fail(422, "permission level")
            if mode == "malformed":
                return self.reply(201, b'{"token": "ghs_trunc')
            exp = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                time.gmtime(time.time() + 3600))
            tok = "ghs_test.%s.%s=%s" % (repos[0], perm, level)
            with _seen_lock:
                _minted[repos[0]] = _minted.get(repos[0], 0) + 1
            self.reply(201, json.dumps({"token": tok, "expires_at": exp,
                                        "permissions": perms}).encode())
    return H


def main():
    d, app_id, inst = sys.argv[1:4]
    make_pki(d, ("app", "other"))
    serve(d, github_handler(d, app_id, inst))


if __name__ == "__main__":
    main()
