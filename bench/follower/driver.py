#!/usr/bin/env python3
"""bench/follower/driver.py - the follower benchmarks (Python 3, standard
library only), run by bench/follower/run.sh, which made the CA and the
server certificate in TMP and cleans up after it.

  python3 driver.py BIN TMP REVOCATIONS CATCHUP

1. Revocation propagation: a leader and 8 followers on 127.0.0.1 (TLS).
   REVOCATIONS root tokens are made through the admin API; once every
   follower has applied the leader's changelog seq, they are revoked one at
   a time, and after each revoke's 200 all 8 followers are polled (one
   keep-alive TLS connection each, POST /v1/check with the revoked token,
   the 8 requests sent together each round) until each answers 401
   token_revoked. The propagation time of a revocation is the time from the
   revoke's 200 to the last follower's 401.

2. Catch-up: a leader home with CATCHUP revocations written straight into
   its SQLite database, then a follower on an empty home: seconds from its
   start to GET /readyz 200, and its peak resident set (VmHWM).

Every process started here is written to TMP/pids (one pid a line) so that
run.sh's trap can end it even if this driver is killed; the driver ends
them itself on the way out.
"""
import base64
import json
import math
import os
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import time

BIN, TMP = sys.argv[1], sys.argv[2]
NREV, NCATCH = int(sys.argv[3]), int(sys.argv[4])
NFOLLOWERS = int(os.environ.get("BENCH_FOLLOWER_COUNT", "8"))
SCOPE = "github:repo:read"
CHECK_BODY = json.dumps({"scope": SCOPE, "resource": "x"})
CA = os.path.join(TMP, "ca.pem")
CERT = os.path.join(TMP, "server.pem")
KEY = os.path.join(TMP, "server.key")
AUTH_FILE = os.path.join(TMP, "auth.token")
AUTH = open(AUTH_FILE).read().strip()
# the admin API has a credential of its own (the follower one opens only
# replication)
ADMIN_FILE = os.path.join(TMP, "admin.token")
ADMIN = open(ADMIN_FILE).read().strip()
THREADS_OPT = os.environ.get("BENCH_FOLLOWER_THREADS", "")
NTHREADS = int(THREADS_OPT) if THREADS_OPT else (os.cpu_count() or 1)  # the server's default
PROPAGATION_TIMEOUT = 10.0  # seconds: a revocation not seen by then fails

CTX = ssl.create_default_context(cafile=CA)  # verifies the cert and the IP SAN


class BenchError(Exception):
    pass


def die(msg):
    raise BenchError(msg)


# ---- processes ---------------------------------------------------------------
children = []  # (name, Popen, log path)


def spawn(name, args):
    log = os.path.join(TMP, name + ".log")
    p = subprocess.Popen([BIN] + args, stdin=subprocess.DEVNULL,
                         stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    with open(os.path.join(TMP, "pids"), "a") as f:
        f.write("%d\n" % p.pid)
    children.append((name, p, log))
    return p, log


def log_tail(log, n=15):
    try:
        lines = open(log, errors="replace").read().splitlines()[-n:]
    except OSError:
        lines = []
    return "\n".join("    " + line for line in lines)


def listening_port(name, p, log, timeout=30.0):
    """The port from the server's 'listening on https://HOST:PORT' line."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            text = open(log, errors="replace").read()
        except OSError:
            text = ""
        for line in text.splitlines():
            if " listening on " in line:
                addr = line.split(" listening on ", 1)[1].split()[0]
                return int(addr.rsplit(":", 1)[1])
        if p.poll() is not None:
            die("%s exited (status %s) before it listened:\n%s"
                % (name, p.returncode, log_tail(log)))
        time.sleep(0.005)
    die("%s did not print its 'listening on' line within %.0f s:\n%s"
        % (name, timeout, log_tail(log)))


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_all():
    for _, p, _ in children:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for _, p, _ in children:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    del children[:]


def start_leader(name, home):
    p, log = spawn(name, ["serve", "--home", home, "--host", "127.0.0.1",
                          "--port", "0", "--auth-token-file", AUTH_FILE,
                          "--admin-token-file", ADMIN_FILE,
                          "--tls-cert", CERT, "--tls-key", KEY,
                          "--access-log", "off"])
    return p, log, listening_port(name, p, log)


def follower_args(home, leader_port, fid):
    return ["follower", "--home", home,
            "--leader-url", "https://127.0.0.1:%d" % leader_port,
            "--auth-token-file", AUTH_FILE, "--follower-id", fid,
            "--ca-cert", CA, "--host", "127.0.0.1", "--port", "0",
            "--tls-cert", CERT, "--tls-key", KEY, "--access-log", "off",
            "--metrics-token-file", ADMIN_FILE]


HZ = os.sysconf("SC_CLK_TCK")


def cpu_secs(pid):
    """utime + stime of a process, all threads (fields 14 and 15 of
    /proc/PID/stat, counted after the ") " that closes the name)."""
    with open("/proc/%d/stat" % pid) as f:
        w = f.read().rsplit(") ", 1)[1].split()
    return (int(w[11]) + int(w[12])) / HZ


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# ---- a small HTTP/1.1 client over one keep-alive TLS connection ---------------
class Conn:
    """One persistent TLS connection; requests can be sent on several
    connections before their answers are read (send, then recv)."""

    def __init__(self, port, timeout=10.0):
        self.port, self.timeout = port, timeout
        self.s = None
        self.reconnects = -1
        self.connect()

    def connect(self):
        if self.s is not None:
            try:
                self.s.close()
            except OSError:
                pass
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = CTX.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""
        self.reconnects += 1
        self.closing = False

    def send(self, method, path, bearer=None, body=None):
        if self.closing:
            self.connect()
        data = body.encode() if isinstance(body, str) else (body or b"")
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (method, path, self.port)
        if bearer:
            head += "Authorization: Bearer %s\r\n" % bearer
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        self.pending = head.encode() + b"\r\n" + data
        try:
            self.s.sendall(self.pending)
        except OSError:
            self.connect()
            self.s.sendall(self.pending)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _read(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdr = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdr[k.strip().lower()] = v.strip()
        if hdr.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            n = int(hdr.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        if hdr.get("connection", "").lower() == "close":
            self.closing = True
        return status, body

    def recv(self):
        try:
            return self._read()
        except (ConnectionError, ssl.SSLError, OSError):
            # the server closed the keep-alive connection: send again once
            self.connect()
            self.s.sendall(self.pending)
            return self._read()

    def call(self, method, path, bearer=None, body=None):
        self.send(method, path, bearer, body)
        return self.recv()

    def json(self, method, path, bearer=None, body=None, want=200):
        st, b = self.call(method, path, bearer,
                          None if body is None else json.dumps(body))
        if st != want:
            die("%s %s on port %d answered %d: %s"
                % (method, path, self.port, st, b[:300].decode(errors="replace")))
        return json.loads(b)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def pct(sorted_ms, q):
    """Nearest-rank percentile of a sorted list."""
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def wait_caught_up(leader, followers, timeout=60.0):
    end = time.monotonic() + timeout
    while True:
        seq = leader.json("GET", "/v1/status", ADMIN)["changelogSeq"]
        applied = [f.json("GET", "/v1/status", ADMIN).get("appliedSeq") for f in followers]
        if all(a == seq for a in applied):
            return seq
        if time.monotonic() > end:
            die("followers did not catch up with leader seq %d within %.0f s: appliedSeq %s"
                % (seq, timeout, applied))
        time.sleep(0.05)


# ---- 1. revocation propagation ------------------------------------------------
def bench_propagation(n):
    print("1. revocation propagation: a leader and %d followers, %d revocations"
          % (NFOLLOWERS, n), flush=True)
    lp, llog, lport = start_leader("leader1", os.path.join(TMP, "leader1"))
    fports = []
    for i in range(NFOLLOWERS):
        name = "f%d" % (i + 1)
        p, log = spawn(name, follower_args(os.path.join(TMP, "F%d" % (i + 1)), lport, name))
        fports.append((name, p, log))
    fports = [listening_port(name, p, log) for name, p, log in fports]
    leader = Conn(lport)

    t = time.monotonic()
    toks = []
    for i in range(n):
        r = leader.json("POST", "/v1/admin/tokens", ADMIN,
                        {"agentId": "a%d" % i, "scopes": [SCOPE]})
        toks.append((r["token"], r["tokenId"]))
    t_create = time.monotonic() - t

    # every follower ready and at the leader's seq
    fconns = []
    for port in fports:
        end = time.monotonic() + 30
        c = Conn(port)
        while c.call("GET", "/readyz")[0] != 200:
            if time.monotonic() > end:
                die("follower on port %d not ready within 30 s" % port)
            time.sleep(0.05)
        fconns.append(c)
    seq = wait_caught_up(leader, fconns)
    print("   %d root tokens made through POST /v1/admin/tokens in %.1f s;"
          " all %d followers ready at leader seq %d" % (n, t_create, NFOLLOWERS, seq), flush=True)

    last_ms, first_ms, each_ms, revoke_ms = [], [], [], []
    polls = 0
    sampled = 0
    for i, (tok, tid) in enumerate(toks):
        if i % 50 == 0:  # sanity: the token is valid everywhere before its revoke
            for c in fconns:
                c.send("POST", "/v1/check", tok, CHECK_BODY)
            for k, c in enumerate(fconns):
                st, b = c.recv()
                if st != 200 or json.loads(b) != {"valid": True}:
                    die("before revoking token %d, follower f%d answered %d %s"
                        % (i, k + 1, st, b[:200]))
            sampled += 1
        tr = time.perf_counter()
        r = leader.json("POST", "/v1/admin/revoke", ADMIN, {"tokenId": tid})
        t0 = time.perf_counter()
        revoke_ms.append((t0 - tr) * 1000)
        if not r.get("revoked"):
            die("revoke of %s answered %s" % (tid, r))
        pending = list(range(NFOLLOWERS))
        seen = [0.0] * NFOLLOWERS
        while pending:
            for k in pending:
                fconns[k].send("POST", "/v1/check", tok, CHECK_BODY)
            still = []
            for k in pending:
                st, b = fconns[k].recv()
                polls += 1
                now = time.perf_counter()
                if st == 401:
                    if b"token_revoked" not in b:
                        die("follower f%d refused token %d with %s" % (k + 1, i, b[:200]))
                    seen[k] = now - t0
                elif st == 200 and json.loads(b) == {"valid": True}:
                    still.append(k)
                else:
                    die("follower f%d answered %d %s while the revocation of token %d propagated"
                        % (k + 1, st, b[:200], i))
            pending = still
            if pending and time.perf_counter() - t0 > PROPAGATION_TIMEOUT:
                die("revocation %d not seen by followers %s after %.0f s"
                    % (i, ["f%d" % (k + 1) for k in pending], PROPAGATION_TIMEOUT))
        ms = [s * 1000 for s in seen]
        last_ms.append(max(ms))
        first_ms.append(min(ms))
        each_ms.extend(ms)
        if (i + 1) % 250 == 0 and i + 1 < n:
            print("   %d revoked, p50 so far %.2f ms" % (i + 1, statistics.median(last_ms)), flush=True)

    reconnects = sum(c.reconnects for c in fconns) + leader.reconnects
    for c in fconns + [leader]:
        c.close()
    lhwm = status_kb(lp.pid, "VmHWM")
    fhwm = max(status_kb(p.pid, "VmHWM") for _, p, _ in children if p is not lp)
    stop_all()

    s_last, s_first, s_each = sorted(last_ms), sorted(first_ms), sorted(each_ms)
    p99 = pct(s_last, 0.99)
    slow = sorted(range(n), key=lambda j: -last_ms[j])[:8]
    print()
    print("   %-52s %8s %8s %8s %8s" % ("propagation, revoke's 200 to 401 (ms)", "p50", "p90", "p99", "max"))
    for label, s in (("last of %d followers to refuse (the figure)" % NFOLLOWERS, s_last),
                     ("first follower to refuse", s_first),
                     ("each follower (%d samples)" % len(s_each), s_each)):
        print("   %-52s %8.2f %8.2f %8.2f %8.2f"
              % (label, pct(s, 0.5), pct(s, 0.9), pct(s, 0.99), s[-1]))
    print("   sanity: %d of the tokens (every 50th) answered 200 {\"valid\":true} on all %d"
          " followers just before their revoke; every revoke then answered 401 token_revoked"
          % (sampled, NFOLLOWERS))
    print("   %d check requests polled (%.1f a revocation), %d reconnections; slowest: %s"
          % (polls, polls / n, reconnects,
             ", ".join("#%d %.1f ms" % (j, last_ms[j]) for j in slow)))
    s_rev = sorted(revoke_ms)
    print("   the revoke request itself (POST /v1/admin/revoke to its 200, not counted above):"
          " p50 %.2f ms, p99 %.2f ms" % (pct(s_rev, 0.5), pct(s_rev, 0.99)))
    print("   peak memory (VmHWM): leader %.1f MB, largest follower %.1f MB"
          % (lhwm / 1024, fhwm / 1024))
    print("   target: p99 < 100 ms  (%.2f ms)  %s   [the Node package's followers poll every 60 s]"
          % (p99, "ok" if p99 < 100 else "ABOVE"))
    print(flush=True)
    return {"p50": pct(s_last, 0.5), "p99": p99, "max": s_last[-1]}


# ---- 2. catch-up ----------------------------------------------------------------
def fill_leader_home(home, n):
    r = subprocess.run([BIN, "status", "--home", home], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        die("agent-iam status --home %s failed:\n%s" % (home, r.stdout.decode(errors="replace")))
    t = time.monotonic()
    # 22-character base64url ids (16 random bytes), like real tokenIds;
    # sorted, so the B-tree is written in order.
    ids = sorted(base64.urlsafe_b64encode(os.urandom(16))[:22].decode() for _ in range(n))
    now = int(time.time() * 1000)
    prune = now + 30 * 86400 * 1000
    db = sqlite3.connect(os.path.join(home, "agent-iam.db"))
    db.execute("BEGIN")
    db.executemany("INSERT INTO revocations (target, id, reason, revoked_at, prune_after)"
                   " VALUES (0, ?, 'bench', ?, ?)", ((i, now, prune) for i in ids))
    db.execute("INSERT INTO changelog (at, kind, key, op) VALUES (?, 'revocation', ?, 'set')",
               (now, "0:" + ids[0]))
    db.commit()
    db.close()
    return time.monotonic() - t, ids


def bench_catchup(n):
    print("2. catch-up: a follower on an empty home, the leader holding %d revocations" % n,
          flush=True)
    lhome = os.path.join(TMP, "leader2")
    secs, ids = fill_leader_home(lhome, n)
    print("   %d revocations written into the leader's database in %.1f s (python3 sqlite3,"
          " one transaction)" % (n, secs), flush=True)
    lp, llog, lport = start_leader("leader2", lhome)
    leader = Conn(lport, timeout=60)
    lst = leader.json("GET", "/v1/status", ADMIN)
    end = time.monotonic() + 60
    while leader.call("GET", "/readyz")[0] != 200:
        if time.monotonic() > end:
            die("the leader is not ready within 60 s")
        time.sleep(0.05)

    # the follower: from its start to GET /readyz 200, polled every 50 ms
    lcpu0 = cpu_secs(lp.pid)
    t0 = time.monotonic()
    args = follower_args(os.path.join(TMP, "C"), lport, "catchup")
    if THREADS_OPT:
        args += ["--threads", str(NTHREADS)]
    fp, flog = spawn("catchup", args)
    fport = listening_port("the catch-up follower", fp, flog, timeout=120)
    t_listen = time.monotonic() - t0
    f = None
    deadline = t0 + 300
    while True:
        try:
            if f is None:
                f = Conn(fport, timeout=5)
            st, _ = f.call("GET", "/readyz")
            if st == 200:
                break
        except (OSError, ssl.SSLError):
            if f is not None:
                f.close()
            f = None
        if fp.poll() is not None:
            die("the follower exited (status %s):\n%s" % (fp.returncode, log_tail(flog)))
        if time.monotonic() > deadline:
            die("the follower was not ready within 300 s:\n%s" % log_tail(flog))
        time.sleep(0.05)
    t_ready = time.monotonic() - t0
    hwm_ready = status_kb(fp.pid, "VmHWM")
    fcpu, lcpu = cpu_secs(fp.pid), cpu_secs(lp.pid) - lcpu0

    t = time.perf_counter()
    fst = f.json("GET", "/v1/status", ADMIN)
    t_status = (time.perf_counter() - t) * 1000
    if fst.get("revocations") != n or fst.get("appliedSeq") != lst["changelogSeq"]:
        die("the follower is ready with %s revocations at seq %s; the leader has %d at seq %s"
            % (fst.get("revocations"), fst.get("appliedSeq"), n, lst["changelogSeq"]))

    # one agent request with a token made on the leader after the catch-up
    tok = leader.json("POST", "/v1/admin/tokens", ADMIN,
                      {"agentId": "catchup", "scopes": [SCOPE]})
    t = time.perf_counter()
    st, b = f.call("POST", "/v1/check", tok["token"], CHECK_BODY)
    t_first = (time.perf_counter() - t) * 1000
    if st != 200 or json.loads(b) != {"valid": True}:
        die("the follower answered %d %s to a valid token" % (st, b[:200]))
    hwm_one = status_kb(fp.pid, "VmHWM")
    # then the same request on 4 connections per server thread at once, so
    # that (very likely) every server thread has served an agent request:
    # each thread keeps its own store handle and revocation view
    nconn = 4 * NTHREADS
    conns = [Conn(fport, timeout=60) for _ in range(nconn)]
    t = time.perf_counter()
    for c in conns:
        c.send("POST", "/v1/check", tok["token"], CHECK_BODY)
    for c in conns:
        st, b = c.recv()
        if st != 200:
            die("the follower answered %d %s on a new connection" % (st, b[:200]))
    t_spread = (time.perf_counter() - t) * 1000
    for c in conns:
        c.close()
    # and a revocation made now reaches it
    tok2 = leader.json("POST", "/v1/admin/tokens", ADMIN,
                       {"agentId": "catchup2", "scopes": [SCOPE]})
    st, b = f.call("POST", "/v1/check", tok2["token"], CHECK_BODY)
    if st != 200:
        die("the follower answered %d %s to the second token" % (st, b[:200]))
    leader.json("POST", "/v1/admin/revoke", ADMIN, {"tokenId": tok2["tokenId"]})
    tr = time.perf_counter()
    while True:
        st, b = f.call("POST", "/v1/check", tok2["token"], CHECK_BODY)
        if st == 401 and b"token_revoked" in b:
            break
        if st != 200 or time.perf_counter() - tr > PROPAGATION_TIMEOUT:
            die("after the revoke the follower answered %d %s" % (st, b[:200]))
    t_rev = (time.perf_counter() - tr) * 1000
    hwm_after = status_kb(fp.pid, "VmHWM")
    rss_after = status_kb(fp.pid, "VmRSS")
    lhwm = status_kb(lp.pid, "VmHWM")
    dbsize = os.path.getsize(os.path.join(TMP, "C", "agent-iam.db"))
    for c in (f, leader):
        c.close()
    stop_all()

    peak = hwm_one / 1024
    peak_all = max(hwm_ready, hwm_one, hwm_after) / 1024
    print("   follower listening after %.2f s; /readyz 200 after %.2f s (%d revocations,"
          " seq %d); its database %.0f MB" % (t_listen, t_ready, n, fst["appliedSeq"], dbsize / 1e6))
    print("   CPU until ready: follower %.1f s, leader %.1f s (user + system, all threads)"
          % (fcpu, lcpu))
    print("   then GET /v1/status took %.0f ms (the first request after ready on that server"
          " thread: it loads the thread's view);" % t_status)
    print("   a new leader token answered 200 {\"valid\":true} in %.1f ms;" % t_first)
    print("   the same on %d connections at once (%d server threads) took %.0f ms;"
          " a token revoked on the leader" % (nconn, NTHREADS, t_spread))
    print("   was refused (401 token_revoked) %.1f ms after the revoke's 200" % t_rev)
    print()
    print("   %-52s %10s %12s" % ("", "figure", "target"))
    print("   %-52s %10.2f %12s  %s" % ("seconds from follower start to /readyz 200", t_ready,
                                         "< 20 s", "ok" if t_ready < 20 else "ABOVE"))
    print("   %-52s %10.1f %12s  %s" % ("follower peak memory, MB (VmHWM), after 1 request",
                                         peak, "< 300 MB", "ok" if peak < 300 else "ABOVE"))
    print("   %-52s %10.1f %12s  %s" % ("  after requests on every server thread", peak_all,
                                         "< 300 MB", "ok" if peak_all < 300 else "ABOVE"))
    print("   (VmHWM at ready %.1f MB, after one request %.1f MB, at the end %.1f MB;"
          " VmRSS then %.1f MB; leader VmHWM %.1f MB)"
          % (hwm_ready / 1024, hwm_one / 1024, hwm_after / 1024, rss_after / 1024, lhwm / 1024))
    print(flush=True)


def main():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        if NREV > 0:
            bench_propagation(NREV)
        if NCATCH > 0:
            bench_catchup(NCATCH)
    except BenchError as e:
        print("bench/follower: %s" % e, file=sys.stderr)
        return 1
    finally:
        stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
