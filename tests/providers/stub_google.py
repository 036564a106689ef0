#!/usr/bin/env python3
"""stub_google.py - a stand-in for Google's OAuth token endpoint, for
tests/providers/test_google.c. Standard library plus the openssl CLI.

    stub_google.py DIR CLIENT_ID CLIENT_SECRET REFRESH_TOKEN

Makes the test PKI in DIR (see stub_github.make_pki), listens with TLS on
127.0.0.1 and prints "PORT <n>" once it accepts connections.

POST [/MODE]/token must be application/x-www-form-urlencoded with
grant_type=refresh_token and the given client_id, client_secret and
refresh_token (a wrong client is 401 invalid_client, a wrong refresh token
400 invalid_grant, as Google answers). Replies 200 {"access_token":
"ya29.test" (+ "." and the last path segment of `scope` when one is sent),
"expires_in": 3599, "token_type": "Bearer"}. MODE as in stub_github.py.
"""
import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stub_github import Quiet, make_pki, serve  # noqa: E402


def google_handler(cid, secret, refresh):
    class H(Quiet):
        def do_POST(self):
            body = self.body()
            mode, path = self.mode()
            if path != "/token":
                return self.fail(404, "no such path: " + path)
            ctype = self.headers.get("Content-Type", "")
            if ctype != "application/x-www-form-urlencoded":
                return self.fail(400, "content type " + ctype)
            try:
                form = urllib.parse.parse_qs(body.decode(), strict_parsing=True,
                                             keep_blank_values=True)
            except ValueError:
                return self.fail(400, "form does not parse")
            if any(len(v) != 1 for v in form.values()):
                return self.fail(400, "repeated field")
            f = {k: v[0] for k, v in form.items()}
            if f.get("grant_type") != "refresh_token":
                return self.fail(400, "grant_type")
            if f.get("client_id") != cid or f.get("client_secret") != secret:
                sys.stderr.write("stub_google.py: answered 401 "
                                 "(invalid_client)\n")
                return self.reply(401, b'{"error":"invalid_client"}')
            if f.get("refresh_token") != refresh:
                return self.fail(400, "invalid_grant")
            if self.failure(mode):
                return
            if mode == "malformed":
                return self.reply(200, b"<html>not json</html>", "text/html")
            tok = "ya29.test"
            if "scope" in f:
                tok += "." + f["scope"].rsplit("/", 1)[-1]
            self.reply(200, json.dumps({"access_token": tok,
                                        "expires_in": 3599,
                                        "token_type": "Bearer"}).encode())
    return H


def main():
    d, cid, secret, refresh = sys.argv[1:5]
    make_pki(d)
    serve(d, google_handler(cid, secret, refresh))


if __name__ == "__main__":
    main()
