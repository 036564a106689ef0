#!/usr/bin/env python3
"""bench/soak/driver.py - the soak benchmark (Python 3, standard library
only), run by bench/soak/run.sh, which made the CA and the server
certificate in TMP (tests/lib/tls_env.sh) and cleans up after it; the
servers are started with tests/lib/service.py.

  python3 driver.py BIN TMP [--minutes N] [--interval S] [--rate R]

A leader and two followers on 127.0.0.1 over TLS, each on a fresh home. f1
is granted the `openai` provider (it serves API-key credentials from its
replica); f2 is granted none (it forwards credential requests to the
leader). Worker threads, three keep-alive connections per server, drive
mixed agent traffic for N minutes (default 30): check, whoami, delegate
(a new agentId each time, some with a maxUses budget), refresh and
credentials (an API key, over many resources); an admin thread revokes a
child token every 2 s and a whole agent every 10th time, and makes a new
root token every 10 s. Every S seconds (default 60) the resident set
(VmRSS, and its anonymous and file parts) and the open descriptors of each
server are sampled from /proc. At the end: the table, the requests served,
and a verdict per process on the second half of the run.

Every process started here is written to TMP/pids (one pid a line) so that
run.sh's trap can end it even if this driver is killed; the driver ends
them itself on the way out (SIGTERM, then SIGKILL after 10 s).
"""
import argparse
import http.client
import json
import os
import random
import signal
import sys
import threading
import time

import service as S

BIN, TMP = sys.argv[1], sys.argv[2]
S.init(BIN, TMP)
ADMIN = "admin-" + os.urandom(12).hex()

ROOTS = 32             # root agents at the start (writes are rate-limited per root)
CHILDREN_MAX = 2000    # delegated tokens held by the driver at once
CONNS_PER_SERVER = 3
CRED_RESOURCES = 5000  # distinct credential resources (the cache's key)
CHECK_RESOURCES = 100000
SCOPE_CRED = "openai:chat:completions"
SCOPE_READ = "github:repo:read"
SCOPE_REFRESH = "system:token:refresh"
ROOT_SCOPES = ["openai:chat:*", SCOPE_READ, SCOPE_REFRESH]
# op: weight
MIX = [("check", 40), ("whoami", 10), ("delegate", 15), ("refresh", 10),
       ("credentials", 25)]
# second-half growth above both of these is "growing"
FLAT_KB = 1024
FLAT_SHARE = 0.03


class SoakError(Exception):
    pass


def die(msg):
    raise SoakError(msg)


# ---- processes ---------------------------------------------------------------
children = []  # S.Proc


def start(name, args):
    """A server (service.Proc) without an access log: a 30-minute run would
    write hundreds of MB of it."""
    args = list(args)
    args[args.index("--access-log") + 1] = "off"
    try:
        p = S.Proc(name, args)
    except RuntimeError as e:
        die(str(e))
    children.append(p)
    return p


def stop_all():
    """SIGTERM every server, SIGKILL after 10 s: {name: exit status}."""
    out = {}
    for p in children:
        if p.alive():
            p.p.send_signal(signal.SIGTERM)
    for p in children:
        rc, _ = p.stop(10)
        out[p.name] = rc if rc is not None else "killed after 10 s"
    del children[:]
    return out


def proc_sample(p):
    """(VmRSS, RssAnon, RssFile + RssShmem) in KiB and the open descriptors."""
    kb = {}
    with open("/proc/%d/status" % p.pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                kb[k] = int(v.split()[0])
    return (kb.get("VmRSS", 0), kb.get("RssAnon", 0),
            kb.get("RssFile", 0) + kb.get("RssShmem", 0), p.fds())


# ---- HTTP ----------------------------------------------------------------------
class Client:
    """One keep-alive TLS connection; a request that finds it closed by
    the server (idle deadline, Connection: close) is sent again once on a
    new one."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def call(self, method, path, bearer=None, body=None):
        h = {}
        if bearer is not None:
            h["Authorization"] = "Bearer " + bearer
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPSConnection(
                    "127.0.0.1", self.port, timeout=30, context=S.client_ctx())
            try:
                self.c.request(method, path, body=data, headers=h)
                r = self.c.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                try:
                    js = json.loads(raw) if raw else None
                except ValueError:
                    js = None
                return r.status, js
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt == 1:
                    return 0, {"error": repr(e)}
        return 0, None

    def close(self):
        if self.c is not None:
            try:
                self.c.close()
            except OSError:
                pass
            self.c = None

    def must(self, method, path, bearer=None, body=None, want=200):
        st, js = self.call(method, path, bearer, body)
        if st != want:
            die("%s %s on port %d answered %d: %s"
                % (method, path, self.port, st, str(js)[:300]))
        return js


# ---- shared state ------------------------------------------------------------------
class Pool:
    """The tokens the workers use: roots and delegated children."""

    def __init__(self):
        self.lock = threading.Lock()
        self.roots = []     # token strings
        self.children = []  # [token, tokenId, agentId]
        self.agent_seq = 0

    def root(self):
        with self.lock:
            return random.choice(self.roots)

    def child(self):
        with self.lock:
            return random.choice(self.children) if self.children else None

    def add_child(self, c):
        with self.lock:
            if len(self.children) < CHILDREN_MAX:
                self.children.append(c)
            else:
                self.children[random.randrange(CHILDREN_MAX)] = c

    def replace(self, old, new):
        with self.lock:
            try:
                self.children[self.children.index(old)] = new
            except ValueError:
                pass

    def take(self):
        """A child to revoke, out of the pool."""
        with self.lock:
            if len(self.children) < 100:
                return None
            return self.children.pop(random.randrange(len(self.children)))

    def new_agent(self):
        with self.lock:
            self.agent_seq += 1
            return "w-%d" % self.agent_seq


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by = {}  # (server, op, status) -> n

    def add(self, server, op, status):
        k = (server, op, status)
        with self.lock:
            self.by[k] = self.by.get(k, 0) + 1

    def total(self, server=None):
        with self.lock:
            return sum(n for (s, _, _), n in self.by.items()
                       if server is None or s == server)


def worker(name, port, pool, counts, stop, pace):
    c = Client(port)
    ops = [op for op, w in MIX for _ in range(w)]
    rnd = random.Random()
    next_t = time.monotonic()
    while not stop.is_set():
        if pace > 0:
            next_t += pace
            d = next_t - time.monotonic()
            if d > 0:
                time.sleep(d)
        op = rnd.choice(ops)
        ch = pool.child()
        if op == "check":
            tok = ch[0] if ch and rnd.random() < 0.7 else pool.root()
            st, _ = c.call("POST", "/v1/check", tok,
                           {"scope": SCOPE_READ,
                            "resource": "org/repo-%d" % rnd.randrange(CHECK_RESOURCES)})
        elif op == "whoami":
            st, _ = c.call("GET", "/v1/whoami", ch[0] if ch else pool.root())
        elif op == "delegate":
            req = {"agentId": pool.new_agent(),
                   "requestedScopes": [SCOPE_CRED, SCOPE_READ, SCOPE_REFRESH],
                   "ttlMinutes": 60}
            if rnd.random() < 0.25:
                req["requestedConstraints"] = {SCOPE_CRED: {"maxUses": 1000000}}
            st, js = c.call("POST", "/v1/tokens/delegate", pool.root(), req)
            if st == 200:
                pool.add_child([js["token"], js["tokenId"], js["agentId"]])
        elif op == "refresh":
            if ch is None:
                continue
            st, js = c.call("POST", "/v1/tokens/refresh", ch[0], {"ttlMinutes": 60})
            if st == 200:
                pool.replace(ch, [js["token"], js["tokenId"], ch[2]])
        else:
            if ch is None:
                continue
            st, _ = c.call("POST", "/v1/credentials", ch[0],
                           {"scope": SCOPE_CRED,
                            "resource": "proj-%d" % rnd.randrange(CRED_RESOURCES)})
        counts.add(name, op, st)
    c.close()


def admin_loop(port, pool, counts, stop):
    """A revocation every 2 s (a whole agent every 10th), a new root every 10 s."""
    c = Client(port)
    n = 0
    while not stop.wait(2.0):
        n += 1
        ch = pool.take()
        if ch is not None:
            body = {"agentId": ch[2]} if n % 10 == 0 else {"tokenId": ch[1]}
            body["reason"] = "soak"
            st, _ = c.call("POST", "/v1/admin/revoke", ADMIN, body)
            counts.add("leader", "revoke", st)
        if n % 5 == 0:
            st, js = c.call("POST", "/v1/admin/tokens", ADMIN,
                            {"agentId": "soak-root-%d" % (ROOTS + n),
                             "scopes": ROOT_SCOPES})
            counts.add("leader", "create-root", st)
            if st == 200:
                with pool.lock:
                    pool.roots[random.randrange(len(pool.roots))] = js["token"]
    c.close()


# ---- the run ---------------------------------------------------------------------------
def wait_ready(p, timeout=60.0):
    c = Client(p.port)
    end = time.monotonic() + timeout
    while c.call("GET", "/readyz")[0] != 200:
        if time.monotonic() > end:
            die("%s not ready within %.0f s" % (p.name, timeout))
        time.sleep(0.1)
    c.close()


def setup():
    """The three servers, the API key, the roots: ({name: Proc}, Pool)."""
    admin_file = S.secret_file("admin.token", ADMIN)
    lead = start("leader", S.leader_args("leader", S.home("L"),
                                         "--admin-token-file", admin_file))
    admin = Client(lead.port)
    admin.must("PUT", "/v1/admin/apikeys/openai", ADMIN,
               {"provider": "openai", "key": "sk-soak-" + os.urandom(12).hex(),
                "ttlMinutes": 60})
    procs = {"leader": lead}
    for name, providers in (("f1", "openai"), ("f2", "")):
        js = admin.must("POST", "/v1/admin/followers", ADMIN,
                        {"id": name, "providers": providers})
        cred = S.secret_file(name + ".token", js["secret"])
        procs[name] = start(name, S.follower_args(
            name, S.home(name), lead, "--auth-token-file", cred,
            "--follower-id", name))
    pool = Pool()
    for i in range(ROOTS):
        js = admin.must("POST", "/v1/admin/tokens", ADMIN,
                        {"agentId": "soak-root-%d" % i, "scopes": ROOT_SCOPES})
        pool.roots.append(js["token"])
    admin.close()
    for p in procs.values():
        wait_ready(p)
    return procs, pool


def verdict(rows, name):
    """VmRSS over the second half of the run: (growth in KiB, KiB a
    minute, flat?, first sample, last sample)."""
    mid = rows[-1][0] / 2
    a = min(rows, key=lambda r: abs(r[0] - mid))  # the sample nearest it
    b = rows[-1]
    grow = b[2][name][0] - a[2][name][0]
    mins = (b[0] - a[0]) / 60 or 1
    limit = max(FLAT_KB, FLAT_SHARE * a[2][name][0])
    return grow, grow / mins, grow <= limit, a, b


def run(minutes, interval, rate):
    procs, pool = setup()
    names = list(procs)
    counts = Counts()
    stop = threading.Event()
    nworkers = CONNS_PER_SERVER * len(names)
    pace = nworkers / rate if rate > 0 else 0
    threads = [threading.Thread(target=worker, daemon=True,
                                args=(n, procs[n].port, pool, counts, stop, pace))
               for n in names for _ in range(CONNS_PER_SERVER)]
    threads.append(threading.Thread(target=admin_loop, daemon=True,
                                    args=(procs["leader"].port, pool, counts, stop)))
    print("soak: leader :%d, f1 :%d (granted openai), f2 :%d (forwards"
          " credentials); %d workers%s; %s minutes, a sample every %d s"
          % (procs["leader"].port, procs["f1"].port, procs["f2"].port, nworkers,
             ", %g requests/s in all" % rate if rate > 0 else ", unpaced",
             minutes, interval), flush=True)
    hdr = "%6s %10s" % ("min", "requests") + "".join(
        " | %-6s %8s %8s %8s %4s" % (n, "RSS KiB", "anon", "file", "fds") for n in names)
    print(hdr, flush=True)
    rows = []
    t0 = time.monotonic()
    for t in threads:
        t.start()
    end = t0 + minutes * 60
    next_sample = t0
    try:
        while True:
            now = time.monotonic()
            if now >= next_sample or now >= end:
                samp = {}
                for n in names:
                    p = procs[n]
                    if not p.alive():
                        die("%s exited (status %s) during the soak:\n%s"
                            % (n, p.p.returncode, p.log()[-1500:]))
                    samp[n] = proc_sample(p)
                row = (now - t0, counts.total(), samp)
                rows.append(row)
                print("%6.1f %10d" % (row[0] / 60, row[1]) + "".join(
                    " | %-6s %8d %8d %8d %4d" % ((n,) + samp[n]) for n in names),
                    flush=True)
                next_sample += interval
                if now >= end:
                    break
            time.sleep(max(0.05, min(next_sample, end) - time.monotonic()))
    finally:
        stop.set()
        for t in threads:
            t.join(35)
    cpu = {n: procs[n].cpu_ticks() / os.sysconf("SC_CLK_TCK") for n in names}
    status = stop_all()

    elapsed = rows[-1][0]
    print()
    print("requests served in %.1f minutes (driver's count, by answer):" % (elapsed / 60))
    unexpected = 0
    for n in names:
        by = {}
        for (s, op, st), k in counts.by.items():
            if s == n:
                by.setdefault(op, {})[st] = by.setdefault(op, {}).get(st, 0) + k
        tot = counts.total(n)
        print("  %-6s %9d  (%.0f/s; server CPU %.0f s)  %s" % (
            n, tot, tot / elapsed, cpu[n],
            "; ".join("%s %s" % (op, " ".join("%s:%d" % kv for kv in sorted(v.items())))
                      for op, v in sorted(by.items()))))
        unexpected += sum(k for (s, _, st), k in counts.by.items()
                          if s == n and (st == 0 or st >= 500 and st != 503))
    print()
    half = verdict(rows, names[0])[3][0]
    print("verdict (VmRSS over the second half, %.1f to %.1f min; flat: at most"
          " %d KiB or %d%% of RSS):" % (half / 60, elapsed / 60, FLAT_KB,
                                        FLAT_SHARE * 100))
    flat_all = True
    for n in names:
        grow, per_min, flat, a, b = verdict(rows, n)
        flat_all &= flat
        print("  %-6s %8d -> %8d KiB  %+7d KiB (%+.1f KiB/min)  anon %+d KiB, fds %d -> %d  %s"
              % (n, a[2][n][0], b[2][n][0], grow, per_min,
                 b[2][n][1] - a[2][n][1], a[2][n][3], b[2][n][3],
                 "flat" if flat else "GROWING"))
    print("exit at SIGTERM: %s" % ", ".join("%s %s" % kv for kv in status.items()))
    ok = flat_all and unexpected == 0 and all(v == 0 for v in status.values())
    if unexpected:
        print("soak: %d answers were transport failures or 5xx other than 503" % unexpected)
    print("soak: %s" % ("flat" if ok else "NOT FLAT, or a failure above"), flush=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(prog="bench/soak")
    ap.add_argument("bin")
    ap.add_argument("tmp")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--rate", type=float, default=0)
    a = ap.parse_args()
    if a.minutes <= 0 or a.interval <= 0:
        print("bench/soak: --minutes and --interval must be above 0", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(143))
    try:
        return run(a.minutes, a.interval, a.rate)
    except SoakError as e:
        print("bench/soak: %s" % e, file=sys.stderr)
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
