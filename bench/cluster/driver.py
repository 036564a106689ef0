#!/usr/bin/env python3
"""bench/cluster/driver.py BIN TMPDIR: the leader group's figures (see
run.sh). Voters are `agent-iam serve --cluster` with a 1 s election
timeout; writes are POST /v1/admin/revoke of distinct agent ids, each with
an Idempotency-Key, following 307 and retrying 503 and lost connections
with the same key (so a retry is never a second write)."""
import http.client
import os
import ssl
import statistics
import sys
import threading
import time

import service as S
import voters as V

S.init(sys.argv[1], sys.argv[2])
PKI = os.path.join(S.TMP, "pki")
S.CA = os.path.join(PKI, "ca.pem")
CERT = os.path.join(PKI, "voter-bench.pem")
KEY = os.path.join(PKI, "voter-bench.key")
ADMIN = "bench-admin-" + os.urandom(12).hex()
ADMIN_FILE = S.secret_file("admin.token", ADMIN)
KILLS = int(os.environ.get("KILLS", "20"))
RATE = int(os.environ.get("RATE", "500"))
RATE_S = int(os.environ.get("RATE_S", "20"))
CATCHUP = int(os.environ.get("CATCHUP", "100000"))
PARTS = os.environ.get("PARTS", "failover,latency,catchup").split(",")
N = 3


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Group(V.Voters):
    def __init__(self):
        V.Voters.__init__(self, "b", CERT, KEY, ADMIN, ADMIN_FILE, N)
        self.ctx = ssl.create_default_context(cafile=S.CA)


class Writer:
    """One keep-alive connection per voter; write() revokes an agent id,
    following 307 and retrying with the same key until acknowledged."""

    def __init__(self, g):
        self.g = g
        self.conns = {}
        self.cur = 0

    def _conn(self, i):
        c = self.conns.get(i)
        if c is None:
            c = http.client.HTTPSConnection("127.0.0.1", self.g.http[i],
                                            timeout=15, context=self.g.ctx)
            self.conns[i] = c
        return c

    def write(self, agent, deadline_s=30):
        body, h = S.request_parts({"agentId": agent}, ADMIN,
                                  {"Idempotency-Key": "k-" + agent})
        t_end = time.time() + deadline_s
        while time.time() < t_end:
            i = self.cur
            try:
                c = self._conn(i)
                c.request("POST", "/v1/admin/revoke", body, h)
                r = c.getresponse()
                data = r.read()
                if r.status == 200:
                    return True
                if r.status == 307:
                    self.cur = self.g.index_of(r.getheader("Location"))
                    continue
                if r.status != 503:
                    raise RuntimeError("%d %s" % (r.status, data[:200]))
            except (OSError, http.client.HTTPException):
                c = self.conns.pop(i, None)
                if c is not None:
                    c.close()
            self.cur = (self.cur + 1) % N
            time.sleep(0.01)
        return False


def failover(g):
    print("1. failover: SIGKILL of the leader under a write load, %d times"
          % KILLS, flush=True)
    acked, lock, stop = [], threading.Lock(), threading.Event()
    gaps = []

    def load():
        w, n = Writer(g), 0
        while not stop.is_set():
            agent = "fo-%d" % n
            if w.write(agent):
                with lock:
                    acked.append((time.time(), agent))
            n += 1
    t = threading.Thread(target=load)
    t.start()
    for k in range(KILLS):
        time.sleep(1.0)
        l = g.leader(timeout=15)
        if l is None:
            print("   no leader before kill %d" % (k + 1))
            break
        g.procs[l].kill9()
        t0 = time.time()
        while True:
            with lock:
                after = [a for a in acked if a[0] > t0]
            if after:
                break
            if time.time() - t0 > 30:
                break
            time.sleep(0.005)
        gap = (after[0][0] - t0) if after else float("inf")
        gaps.append(gap)
        print("   kill %2d of voter %d: a new leader acknowledged a write "
              "%.2f s later" % (k + 1, l + 1, gap), flush=True)
        g.start(l)
    stop.set()
    t.join(60)
    want = set(a for _, a in acked)
    time.sleep(2)
    lost = [len(want - g.revoked(i)) for i in range(N)]
    twice = [g.doubled(i) for i in range(N)]
    print("   failover to a write acknowledged: median %.2f s, max %.2f s "
          "(n=%d)" % (statistics.median(gaps), max(gaps), len(gaps)))
    print("   %d writes acknowledged over the kills; lost on voters: %r; "
          "applied twice: %r%s" % (len(want), lost, twice,
                                   "" if not any(lost) and not any(twice)
                                   else "   <<<<< LOSS OR DOUBLE"))


def latency(g):
    print("2. write latency at %d revocations/s for %d s, then the "
          "ceiling" % (RATE, RATE_S), flush=True)
    lats, lock = [], threading.Lock()
    nthreads = 16
    per = RATE / float(nthreads)
    t_end = time.time() + RATE_S

    def paced(tid):
        w, n = Writer(g), 0
        nxt = time.time()
        while time.time() < t_end:
            nxt += 1.0 / per
            delay = nxt - time.time()
            if delay > 0:
                time.sleep(delay)
            t0 = time.time()
            if w.write("lat-%d-%d" % (tid, n)):
                with lock:
                    lats.append(time.time() - t0)
            n += 1
    ts = [threading.Thread(target=paced, args=(i,)) for i in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ms = [x * 1000 for x in lats]
    print("   %d writes in %d s (%.0f/s): p50 %.2f ms, p99 %.2f ms, max "
          "%.2f ms" % (len(ms), RATE_S, len(ms) / float(RATE_S),
                       pct(ms, 50), pct(ms, 99), max(ms)))
    done, lock2 = [0], threading.Lock()
    t_end = time.time() + 10

    def closed(tid):
        w, n = Writer(g), 0
        while time.time() < t_end:
            if w.write("max-%d-%d" % (tid, n)):
                with lock2:
                    done[0] += 1
            n += 1
    ts = [threading.Thread(target=closed, args=(i,)) for i in range(32)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("   ceiling: %d writes in 10 s with 32 writers (%.0f/s)" %
          (done[0], done[0] / 10.0))


def catchup(g):
    print("3. a voter restarted after %d writes" % CATCHUP, flush=True)
    l = g.leader()
    if l is None:
        print("   no leader")
        return
    v = (l + 1) % N
    g.procs[v].stop()
    n, lock = [0], threading.Lock()

    def bulk(tid, count):
        w = Writer(g)
        for k in range(count):
            if w.write("cu-%d-%d" % (tid, k)):
                with lock:
                    n[0] += 1
    t0 = time.time()
    ts = [threading.Thread(target=bulk, args=(i, CATCHUP // 32))
          for i in range(32)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("   %d writes in %.1f s while voter %d was down" %
          (n[0], time.time() - t0, v + 1), flush=True)
    head_l = g.head(l)
    t0 = time.time()
    g.start(v)
    while time.time() - t0 < 120:
        if g.head(v) >= head_l:
            break
        time.sleep(0.1)
    print("   voter %d caught up in %.1f s (%d revocations)" %
          (v + 1, time.time() - t0, len(g.revoked(v))))


def main():
    g = Group()
    try:
        if g.leader() is None:
            print("no leader")
            sys.exit(1)
        for part in (failover, latency, catchup):
            if part.__name__ in PARTS:
                part(g)
    finally:
        for p in g.procs:
            if p is not None and p.alive():
                p.stop()


main()
