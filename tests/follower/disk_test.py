#!/usr/bin/env python3
"""disk_test.py - a full disk under a follower, and a leader's WAL on a
small disk (DESIGN.md §8: "a full disk makes writes fail with 503 and a
clear log line; reads and verification go on; nothing is corrupted and it
recovers when space returns"). Real processes over TLS, called by
tests/follower/run.sh after follower_test.py:

    disk_test.py BIN TMPDIR

  1. follower: a leader on a normal home, a follower registered with
     `agent-iam followers add` whose home is on a 4 MiB tmpfs. It
     applies 2,000 revocations as they come and stays writable (SQLite's
     default WAL alone used to fill such a disk). Then the tmpfs is
     filled (a filler file) while the leader keeps writing revocations,
     until the follower's replica stops advancing. Then, with
     a revocation made on the leader meanwhile: /readyz answers 503
     storage_full, /v1/status says the store cannot write and that the
     replica is behind, /metrics has agent_iam_storage_writable 0 (all
     before any agent write, so the replication's failure alone says it);
     delegations, refreshes and credentials answer 503 storage_full
     (never 500); check and whoami answer 200; the replica is not taken
     for fresh: past --max-staleness every agent call is 503, the revoked
     token included; the log has one line about it, not one per request
     or per retry. The filler removed, without a restart: the follower
     applies what it missed (the token revoked while it was full is
     refused), writes work, /readyz is 200, "writable again" is logged.
     Afterwards: each delegation and refresh answered 200 has its audit
     row, PRAGMA integrity_check and `audit verify` pass on the replica,
     whose revocations equal the leader's; its -wal file never grew past
     the store's limit (walLimitBytes in /v1/status) plus a margin.
  2. leader: a home on an 8 MiB tmpfs takes 5,000 revocations through
     POST /v1/admin/revoke, each answered 200, and its -wal file never
     grows past the limit plus a margin (sampled every 5 ms).

The tmpfs mounts are made in a mount namespace of this driver's own
(`unshare -m`, as root), so they vanish with it whatever happens; they
are unmounted at the end too. Where mounting is impossible (not root, no
unshare; or AGENT_IAM_DISK_NS=0 in the environment), the follower's disk
is made full with RLIMIT_FSIZE (prlimit, SIGXFSZ ignored, which SQLite
sees as EFBIG) and the leader's home is a plain directory; the driver says
which it used.
"""
import os
import re
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import smalldisk  # noqa: E402

NS_MARK = "AGENT_IAM_DISK_NS"
smalldisk.private_mounts(NS_MARK)

import checks  # noqa: E402
from checks import check  # noqa: E402
import service as S  # noqa: E402

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()
SCOPE = "openai:chat:completions"
APIKEY = "sk-disk-" + os.urandom(8).hex()
FID = "f-disk"
WAL_MARGIN = 1 << 20     # readers may hold a checkpoint back a while
STALE_S = 15 * S.SLOW     # the follower's --max-staleness


def note(text):
    print("# " + text, flush=True)


def admin_cli(L, *args):
    return S.cli(*(list(args) + ["--leader-url", L.url, "--auth-token-file",
                                 S.secret_file("admin.token", ADMIN),
                                 "--ca-cert", S.CA]))


def root_token(L, agent):
    r = S.call(L, "POST", "/v1/admin/tokens",
               {"agentId": agent, "scopes": [SCOPE, "system:token:refresh"]},
               bearer=ADMIN)
    if r.status != 200:
        raise RuntimeError("create root %s: %r" % (agent, r))
    return r.json["token"], r.json["tokenId"]


def revoke(L, token_id, conn=None, reason="disk test"):
    return S.call(L, "POST", "/v1/admin/revoke",
                  {"tokenId": token_id, "reason": reason}, bearer=ADMIN,
                  conn=conn)


def delegate(F, tok, agent, conn=None):
    return S.call(F, "POST", "/v1/tokens/delegate",
                  {"agentId": agent, "requestedScopes": [SCOPE],
                   "ttlMinutes": 5}, bearer=tok, conn=conn)


def refresh(F, tok, conn=None):
    return S.call(F, "POST", "/v1/tokens/refresh", {"ttlMinutes": 5},
                  bearer=tok, conn=conn)


def credential(F, tok, conn=None):
    return S.call(F, "POST", "/v1/credentials",
                  {"scope": SCOPE, "resource": ""}, bearer=tok, conn=conn)


def check_call(F, tok, conn=None):
    return S.call(F, "POST", "/v1/check", {"scope": SCOPE, "resource": ""},
                  bearer=tok, conn=conn)


def status_of(P, bearer=None):
    r = S.call(P, "GET", "/v1/status", bearer=bearer)
    return r.json if r.status == 200 and isinstance(r.json, dict) else {}


def metric(P, series):
    r = S.call(P, "GET", "/metrics")
    for line in r.body.decode("utf-8", "replace").splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def sql(home_dir, query):
    db = sqlite3.connect("file:%s?mode=ro" %
                         os.path.join(home_dir, "agent-iam.db"), uri=True,
                         timeout=10)
    try:
        return db.execute(query).fetchone()[0]
    finally:
        db.close()


def full_lines(P):
    """The follower's log lines about a full disk (but the reminders of a
    long episode, "storage full: still", one a minute at most)."""
    return [ln for ln in P.log().splitlines()
            if re.search(r"full|no space", ln, re.I) and
            "storage full: still" not in ln]


class WalWatch:
    """The largest size of a home's -wal file, sampled by a thread."""

    def __init__(self, home_dir, every=0.005):
        self.path = os.path.join(home_dir, "agent-iam.db-wal")
        self.every = every
        self.peak = 0
        self.samples = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.peak = max(self.peak, os.path.getsize(self.path))
            except OSError:
                pass
            self.samples += 1
            time.sleep(self.every)

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        return self.peak


def follower_argv(home_dir, L, tokfile):
    return S.follower_args(
        "follower", home_dir, L, "--auth-token-file", tokfile,
        "--follower-id", FID, "--public-metrics", "--threads", "2",
        "--agent-rate", "off", "--sync-interval", "2s", "--long-poll", "2s",
        "--max-staleness", "%ds" % STALE_S)


def small_disk(name, size_mib, filled=True):
    disk = smalldisk.SmallDisk(os.path.join(S.TMP, name), size_mib, NS_MARK)
    note("%s: %s" % (name, disk.how if disk.mounted or filled else
                     "a plain directory (no tmpfs here)"))
    return disk


def cleanup(wal, disk):
    """After a section, whatever happened: the sampler stopped, every
    process killed, the tmpfs unmounted."""
    if wal is not None:
        wal.stop()
    for p in S.PROCS:
        if p.alive():
            p.kill9()
    disk.close()


class Revoker:
    """Revocations of made-up token ids on the leader, one after the other
    on one connection, until stopped."""

    def __init__(self, L):
        self.L = L
        self.n = 0
        self.bad = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        conn = self.L.conn()
        reason = "filling the follower's disk"
        while not self.stop_ev.is_set():
            r = revoke(self.L, "fill-%d-%s" % (self.n, os.urandom(8).hex()),
                       conn, reason)
            if r.status == 200:
                self.n += 1
            elif len(self.bad) < 3:
                self.bad.append(repr(r))
                conn.close()
                conn = self.L.conn()
            time.sleep(0.02)
        conn.close()

    def stop(self):
        self.stop_ev.set()
        self.t.join()


def wait_stuck(L, F, timeout):
    """Until the follower's applied seq stays put for 3 s while the
    leader's moves on; (applied, leader seq) then, or None."""
    deadline = time.time() + timeout * S.SLOW
    while time.time() < deadline:
        a1 = status_of(F).get("appliedSeq")
        time.sleep(3)
        a2 = status_of(F).get("appliedSeq")
        head = status_of(L, ADMIN).get("changelogSeq", 0)
        if a1 is not None and a1 == a2 and head > a2:
            return a2, head
    return None


def section_follower():
    lh = S.home("leader")
    L = S.leader("leader", lh, "--admin-token-file",
                 S.secret_file("admin.token", ADMIN), "--threads", "2",
                 "--agent-rate", "off")
    rc, out, err = admin_cli(L, "followers", "add", FID, "--providers", "*")
    if rc != 0:
        raise RuntimeError("followers add: %s" % err)
    tokfile = S.secret_file("follower.token", out.strip())
    rc, out, err = admin_cli(L, "apikey", "add", "--name", "openai",
                             "--provider", "openai", "--key", APIKEY)
    if rc != 0:
        raise RuntimeError("apikey add: %s" % err)
    tok, _ = root_token(L, "disk-agent")
    victim, victim_id = root_token(L, "victim")

    disk = small_disk("fdisk", 4)
    fh = os.path.join(disk.dir, "home")
    served = {"delegate": 0, "refresh": 0}
    wal = None
    F = None
    try:
        F = disk.start("follower", follower_argv(fh, L, tokfile))
        wal = WalWatch(fh, 0.01)
        ready = S.wait_for(lambda: S.call(F, "GET", "/readyz").status == 200,
                           20)
        check("follower: replicates (readyz 200)", ready)
        r = check_call(F, victim)
        check("follower: the victim token is valid before",
              r.status == 200 and r.json == {"valid": True}, repr(r))
        r = delegate(F, tok, "before")
        served["delegate"] += r.status == 200
        rf = refresh(F, tok)
        served["refresh"] += rf.status == 200
        c = credential(F, tok)
        check("follower: delegation, refresh and credentials work before",
              r.status == 200 and rf.status == 200 and c.status == 200 and
              (c.json or {}).get("credential", {}).get("apiKey") == APIKEY,
              "%r %r %r" % (r, rf, c))
        lim = (status_of(F).get("storage") or {}).get("walLimitBytes")
        check("follower: /v1/status gives the WAL's limit (walLimitBytes)",
              isinstance(lim, int) and lim > 0,
              repr(status_of(F).get("storage")))

        # -- the case: thousands of revocations on a 4 MiB disk,
        # which SQLite's default WAL (4 MB before its first checkpoint)
        # filled alone
        conn = L.conn()
        bulk_bad = []
        for i in range(2000):
            r = revoke(L, "bulk-%d-%s" % (i, os.urandom(4).hex()), conn)
            if r.status != 200 and len(bulk_bad) < 3:
                bulk_bad.append(repr(r))
        conn.close()
        head0 = status_of(L, ADMIN).get("changelogSeq", 0)
        caught = S.wait_for(
            lambda: status_of(F).get("appliedSeq", 0) >= head0, 20)
        st = status_of(F)
        check("follower: 2,000 revocations fit on its 4 MiB disk (applied "
              "as they come, still writable)",
              caught and not bulk_bad and
              (st.get("storage") or {}).get("writable") is True,
              "%s %r" % (bulk_bad, st))
        log_mark = len(full_lines(F))

        # -- the disk fills while the leader writes
        rev = Revoker(L)
        time.sleep(0.5)
        disk.make_full(fh)
        stuck = wait_stuck(L, F, 60)
        rev.stop()
        note("follower: %d revocations written on the leader while filling"
             % rev.n)
        check("follower: the leader's revocations were all answered 200",
              not rev.bad, "; ".join(rev.bad))
        check("follower: the replica stops advancing on the full disk",
              stuck is not None, repr(status_of(F)))
        r = revoke(L, victim_id)
        if r.status != 200:
            raise RuntimeError("revoke victim: %r" % r)
        head = status_of(L, ADMIN).get("changelogSeq", 0)

        # what the follower says, before any agent write
        rz = S.call(F, "GET", "/readyz")
        check("follower full: /readyz answers 503 storage_full (the "
              "replication's failure alone)",
              rz.status == 503 and rz.code == "storage_full", repr(rz))
        st = status_of(F)
        storage = st.get("storage") or {}
        check("follower full: /v1/status says the store cannot write",
              storage.get("writable") is False and
              "full" in storage.get("error", ""), repr(st))
        st = S.wait_for(lambda: (lambda x: x if x.get("leaderSeq", 0) >=
                                 head else None)(status_of(F)), 5) or st
        check("follower full: /v1/status shows the replica behind "
              "(appliedSeq below the leader's, lag, the error)",
              st.get("appliedSeq", head) < head and st.get("lag", 0) > 0 and
              "full" in st.get("lastError", ""),
              "%r (leader %d)" % (st, head))
        check("follower full: /metrics has agent_iam_storage_writable 0",
              metric(F, "agent_iam_storage_writable") == 0,
              repr(metric(F, "agent_iam_storage_writable")))

        # agent writes: 503 storage_full, never 500 nor a token unaudited
        conn = F.conn()
        bad, n503 = [], 0
        for i in range(12):
            kind = ("delegate", "refresh", "credential")[i % 3]
            if kind == "delegate":
                r = delegate(F, tok, "full-%d" % i, conn)
            elif kind == "refresh":
                r = refresh(F, tok, conn)
            else:
                r = credential(F, tok, conn)
            if r.status == 200 and kind in served:
                served[kind] += 1
            if r.status == 503 and r.code == "storage_full":
                n503 += 1
            elif r.status != 200:
                bad.append("%s: %r" % (kind, r))
        check("follower full: delegations, refreshes and credentials answer "
              "503 storage_full", n503 >= 9 and not bad,
              "%d of 12; %s" % (n503, bad[:3]))
        reads = [check_call(F, tok, conn),
                 S.call(F, "GET", "/v1/whoami", bearer=tok, conn=conn)]
        check("follower full: check and whoami answer 200 (reads go on)",
              all(x.status == 200 for x in reads) and
              reads[0].json == {"valid": True}, repr(reads))
        conn.close()
        m = metric(F, "agent_iam_storage_full_writes_total")
        check("follower full: /metrics counts the refused writes",
              m is not None and m >= n503, repr(m))

        # past --max-staleness, nothing is answered from the stale replica
        stale = S.wait_for(lambda: check_call(F, tok).status == 503,
                           STALE_S + 10)
        r = check_call(F, victim)
        check("follower full: past --max-staleness agent calls are 503, the "
              "token revoked meanwhile is never accepted",
              stale and r.status == 503 and
              status_of(F).get("serving") is False, repr(r))
        lines = full_lines(F)[log_mark:]
        check("follower full: one log line about it, not one per request or "
              "retry", len(lines) == 1,
              "%d lines: %s" % (len(lines), lines[:4]))

        # -- space returns: no restart
        t0 = time.time()
        disk.make_room()
        back = S.wait_for(lambda: status_of(F).get("appliedSeq", 0) >= head,
                          20)
        note("follower: caught up %.1fs after space returned" %
             (time.time() - t0))
        check("follower: applies what it missed once space returns, without "
              "a restart", back, repr(status_of(F)))
        r = S.wait_for(lambda: (lambda x: x if x.status != 503 else None)(
            check_call(F, victim)), 10)
        check("follower: the token revoked while it was full is refused",
              r is not None and r.status == 401 and
              r.code == "token_revoked", repr(r))
        r = S.wait_for(lambda: (lambda x: x if x.status == 200 else None)(
            delegate(F, tok, "back")), 10)
        served["delegate"] += r is not None
        rf = refresh(F, tok)
        served["refresh"] += rf.status == 200
        c = credential(F, tok)
        check("follower: delegation, refresh and credentials work again",
              r is not None and rf.status == 200 and c.status == 200,
              "%r %r %r" % (r, rf, c))
        check("follower: /readyz is 200 again",
              S.wait_for(lambda: S.call(F, "GET", "/readyz").status == 200,
                         5))
        storage = status_of(F).get("storage") or {}
        check("follower: /v1/status and /metrics say writable again",
              storage.get("writable") is True and
              metric(F, "agent_iam_storage_writable") == 1, repr(storage))
        check("follower: the recovery is logged", "writable again" in F.log(),
              F.log()[-600:])
        rc = F.stop_checked()
        F = None
        peak = wal.stop()
        note("follower: -wal peak %d bytes (%d samples)" %
             (peak, wal.samples))
        check("follower: the -wal file stayed within its limit plus %d KiB"
              % (WAL_MARGIN // 1024),
              isinstance(lim, int) and peak <= lim + WAL_MARGIN,
              "peak %d, limit %r" % (peak, lim))
        if rc == 0:
            ic = sql(fh, "PRAGMA integrity_check")
            check("follower: PRAGMA integrity_check is ok", ic == "ok", ic)
            rc2, out, err = S.cli("--home", fh, "audit", "verify")
            check("follower: agent-iam audit verify passes on the replica",
                  rc2 == 0, "exit %d: %s %s" % (rc2, out, err))
            rows = {k: sql(fh, "SELECT count(*) FROM audit WHERE action = "
                               "'%s' AND decision = 'ok'" % k)
                    for k in served}
            check("follower: every delegation and refresh served has its "
                  "audit row", rows == served,
                  "rows %r, served %r" % (rows, served))
            check("follower: its revocations equal the leader's",
                  sql(fh, "SELECT count(*) FROM revocations") ==
                  sql(lh, "SELECT count(*) FROM revocations"),
                  "%d and %d" % (sql(fh, "SELECT count(*) FROM revocations"),
                                 sql(lh, "SELECT count(*) FROM revocations")))
        L.stop_checked()
    finally:
        cleanup(wal, disk)


def section_leader_wal():
    disk = small_disk("ldisk", 8, filled=False)
    h = os.path.join(disk.dir, "home")
    wal = None
    try:
        L = disk.start("wal-leader", S.leader_args(
            "wal-leader", h, "--admin-token-file",
            S.secret_file("admin.token", ADMIN), "--threads", "2"))
        lim = (status_of(L, ADMIN).get("storage") or {}).get("walLimitBytes")
        wal = WalWatch(h)
        conns = [L.conn() for _ in range(2)]
        bad, ok_n = [], [0]
        lock = threading.Lock()

        def writer(k):
            for i in range(k, 5000, 2):
                r = revoke(L, "wal-%d-%s" % (i, os.urandom(8).hex()),
                           conns[k], "bulk revocation for the WAL test")
                with lock:
                    if r.status == 200:
                        ok_n[0] += 1
                    elif len(bad) < 3:
                        bad.append(repr(r))
        t0 = time.time()
        ws = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        for c in conns:
            c.close()
        peak = wal.stop()
        note("leader: 5000 revocations in %.1fs, -wal peak %d bytes (%d "
             "samples)" % (time.time() - t0, peak, wal.samples))
        check("leader on a small disk: 5000 revocations through the admin "
              "API, each answered 200", ok_n[0] == 5000 and not bad,
              "%d ok; %s" % (ok_n[0], bad))
        check("leader on a small disk: the -wal file stayed within its limit "
              "plus %d KiB" % (WAL_MARGIN // 1024),
              isinstance(lim, int) and peak <= lim + WAL_MARGIN,
              "peak %d, limit %r" % (peak, lim))
        if L.stop_checked() == 0:
            ic = sql(h, "PRAGMA integrity_check")
            check("leader on a small disk: PRAGMA integrity_check is ok",
                  ic == "ok", ic)
    finally:
        cleanup(wal, disk)


def section(fn):
    """Run one section; an exception is a failure, not the end."""
    t0 = time.time()
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - report and go on
        import traceback
        traceback.print_exc()
        checks.no("%s raised" % fn.__name__, repr(e)[:600])
    note("%s: %.1fs" % (fn.__name__, time.time() - t0))


def main():
    only = os.environ.get("DISK_TEST_ONLY", "")
    for key, fn in (("follower", section_follower),
                    ("leader", section_leader_wal)):
        if not only or key in only.split(","):
            section(fn)
    print("disk tests: %d passed, %d failed%s" %
          (checks.counts["pass"], checks.counts["fail"],
           " (ASan build)" if S.ASAN else ""))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
