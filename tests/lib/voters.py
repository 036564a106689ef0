"""voters.py - a leader group of `agent-iam serve --cluster` voters on
127.0.0.1 for the suites and benchmarks that drive one (tests/cluster,
bench/cluster), on tests/lib/service.py: their homes (one master.key),
the cluster file, starting and stopping them, their status and leader,
and what their homes hold (read-only SQLite)."""
import json
import os
import sqlite3
from urllib.parse import urlsplit

import service as S
from free_port import free_port


def free_ports(n):
    """n distinct free ports below the ephemeral range (free_port.py), so
    that no outgoing connection takes one before its server binds it."""
    ports = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


def rows(home, sql):
    """The rows of a read-only query on a home's database ([] when it
    cannot be read yet)."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" %
                             os.path.join(home, "agent-iam.db"), uri=True,
                             timeout=10)
    except sqlite3.Error:
        return []
    try:
        return db.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()


def write_key(home, key):
    """home/master.key (0600) holding key."""
    fd = os.open(os.path.join(home, "master.key"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)


def head_of(home):
    r = rows(home, "SELECT coalesce(max(seq), 0) FROM changelog")
    return r[0][0] if r else -1


class Voters:
    """n voters named TAG-vI on homes TMP/TAG-hI, the cluster file
    TMP/TAG-cluster.json (its "ca": S.CA), each `serve --cluster` with
    cert and key, the admin token file, and extra flags."""

    def __init__(self, tag, cert, key, admin, admin_file, n=3, extra=()):
        self.tag, self.cert, self.key, self.n = tag, cert, key, n
        self.admin, self.admin_file, self.extra = admin, admin_file, extra
        self.http = free_ports(n)
        self.raft = free_ports(n)
        self.file = os.path.join(S.TMP, "%s-cluster.json" % tag)
        with open(self.file, "w") as f:
            json.dump({"ca": S.CA, "nodes": [
                {"id": i + 1, "raft": "127.0.0.1:%d" % self.raft[i],
                 "url": "https://127.0.0.1:%d" % self.http[i]}
                for i in range(n)]}, f)
        self.homes = [os.path.join(S.TMP, "%s-h%d" % (tag, i + 1))
                      for i in range(n)]
        master = os.urandom(32)
        for h in self.homes:
            os.mkdir(h, 0o700)
            write_key(h, master)
        self.procs = [None] * n
        for i in range(n):
            self.start(i)

    def args(self, node_id, home, port, *extra):
        """The `serve --cluster` arguments of node node_id."""
        return ["--home", home, "serve", "--host", "127.0.0.1", "--port",
                port, "--tls-cert", self.cert, "--tls-key", self.key,
                "--admin-token-file", self.admin_file, "--access-log", "off",
                "--cluster", self.file, "--node-id", node_id,
                "--election-timeout", 1000] + list(extra)

    def start(self, i):
        self.procs[i] = S.Proc("%s-v%d" % (self.tag, i + 1),
                               self.args(i + 1, self.homes[i], self.http[i],
                                         *self.extra))

    def index_of(self, location):
        """The voter a 307's Location names (its HTTP port)."""
        return self.http.index(urlsplit(location).port)

    def stop(self):
        for p in self.procs:
            if p is not None and p.alive():
                p.stop_checked()

    def status(self, i):
        r = S.call(self.procs[i], "GET", "/v1/status", bearer=self.admin,
                   timeout=3)
        return r.json if r.status == 200 else None

    def leader(self, timeout=10):
        """The index of the ready leader (waits), or None."""
        def find():
            for i in range(self.n):
                p = self.procs[i]
                if p is None or not p.alive():
                    continue
                s = self.status(i)
                if s and s["cluster"]["role"] == "leader" and \
                        s["cluster"]["ready"]:
                    return i + 1
            return None
        got = S.wait_for(find, timeout, step=0.1)
        return got - 1 if got else None

    def revoked(self, i):
        return set(r[0] for r in rows(
            self.homes[i], "SELECT id FROM revocations WHERE target = 1"))

    def head(self, i):
        return head_of(self.homes[i])

    def doubled(self, i):
        """Revocations with more than one changelog row (applied twice)."""
        return len(rows(self.homes[i],
                        "SELECT key FROM changelog WHERE kind = "
                        "'revocation' GROUP BY key HAVING count(*) > 1"))
