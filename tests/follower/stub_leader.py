#!/usr/bin/env python3
"""stub_leader.py - a stand-in for a leader's follower API, for
tests/follower/test_sync.c. Standard library only; plain HTTP on
127.0.0.1 (the follower speaks http to loopback only).

    stub_leader.py DIR TOKEN

Prints "PORT <n>" once it accepts connections. The answers are the test's
to write, made by the leader's own code (so sealed as a leader seals):

  GET /v1/replication/snapshot  answers DIR/snapshot
  GET /v1/replication/changes   answers DIR/changes

Each file is read anew at every request: its first line is the status
(e.g. 200, 410), the rest the body; a first line "hang" answers nothing
and holds the connection (the timeout test); no file is a 404. A request
without "Authorization: Bearer TOKEN" is 401. Every request's path, query
included, is appended to DIR/requests, one per line, before it is
answered.
"""
import http.server
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "providers"))
from stub_github import Quiet  # noqa: E402


def handler(d, token):
    class H(Quiet):
        def do_GET(self):
            with open(os.path.join(d, "requests"), "a") as f:
                f.write(self.path + "\n")
            if self.headers.get("Authorization") != "Bearer " + token:
                self.reply(401, b'{"error":"bad follower token"}')
                return
            route = self.path.split("?", 1)[0]
            name = {"/v1/replication/snapshot": "snapshot",
                    "/v1/replication/changes": "changes"}.get(route)
            try:
                with open(os.path.join(d, name or "-"), "rb") as f:
                    status, _, body = f.read().partition(b"\n")
            except OSError:
                self.reply(404, b'{"error":"no such route"}')
                return
            if status == b"hang":
                time.sleep(60)  # SIGTERM ends it sooner
                return
            self.reply(int(status), body,
                       "application/x-ndjson" if name == "snapshot"
                       else "application/json")

    return H


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: stub_leader.py DIR TOKEN")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                          handler(sys.argv[1], sys.argv[2]))
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
