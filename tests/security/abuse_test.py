#!/usr/bin/env python3
"""Abuse by a valid agent (DESIGN.md §8), against real processes over TLS:

  1. rate limit: 4 threads hammer POST /v1/tokens/delegate and denied
     POST /v1/credentials for 5 s with one agent's tokens (its root token
     and a sub-agent's, which share the root's bucket), on a leader and
     then on a follower: over the limit the answer is 429 rate_limited
     with Retry-After (whole seconds, >= 1); the audit log grows by at
     most rate * seconds + burst; POST /v1/check of the same agent is 200
     all along, and another agent's writes are not limited;
  2. audit retention: a leader with a retention of 0.0001 day (8.64 s)
     deletes the rows older than that, keeps the newer ones, and
     `agent-iam audit verify` passes before and after more rows come; a
     kept row deleted by hand afterwards is still found;
  3. full disk: a leader whose home is on a small filesystem that fills
     up answers writes with 503 storage_full (never 500, never a token
     without its audit row), logs it once, keeps answering check and
     whoami and verifying tokens, says so on /readyz and /v1/status, and
     writes again by itself once space returns; PRAGMA integrity_check
     and `agent-iam audit verify` pass afterwards.

The small filesystem is a 6 MiB tmpfs mounted in a mount namespace of
this driver's own (`unshare -m`, as root), so it vanishes with the driver
whatever happens. Where that is impossible (not root, no unshare), the
full disk is made with RLIMIT_FSIZE on the leader (prlimit), SIGXFSZ
ignored, which SQLite sees as EFBIG; the driver says which it used
(AGENT_IAM_ABUSE_NS=0 in the environment forces that way).

    abuse_test.py BIN TMPDIR
"""
import os
import sqlite3
import sys
import threading
import time

import smalldisk

NS_MARK = "AGENT_IAM_ABUSE_NS"
# The tmpfs of the full-disk section is private to this driver and its
# children (a mount namespace of its own) and is gone when they are.
smalldisk.private_mounts(NS_MARK)

import checks  # noqa: E402
from checks import check  # noqa: E402
import service as S  # noqa: E402

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()
FOLLOWER = "follower-" + os.urandom(12).hex()
RATE, BURST = 50, 100        # the defaults of --agent-rate / --agent-burst
HAMMER_S = 5
SCOPE = "openai:chat:completions"
DENIED = "github:repo:write"  # not in the tokens: a denial, audited


def db_path(home_dir):
    return os.path.join(home_dir, "agent-iam.db")


def sql(home_dir, query):
    """One value of a query on a home's database (a connection of its own,
    closed at once)."""
    db = sqlite3.connect(db_path(home_dir), timeout=10)
    try:
        return db.execute(query).fetchone()[0]
    finally:
        db.close()


def audit_rows(home_dir):
    return sql(home_dir, "SELECT count(*) FROM audit")


def root_token(srv, agent, scopes=(SCOPE,)):
    r = S.call(srv, "POST", "/v1/admin/tokens",
               {"agentId": agent, "scopes": list(scopes)}, bearer=ADMIN)
    if r.status != 200:
        raise RuntimeError("create root %s: %r" % (agent, r))
    return r.json["token"]


def delegate(srv, tok, agent, conn=None):
    return S.call(srv, "POST", "/v1/tokens/delegate",
                  {"agentId": agent, "requestedScopes": [SCOPE],
                   "ttlMinutes": 5}, bearer=tok, conn=conn)


def denied_credential(srv, tok, conn=None):
    return S.call(srv, "POST", "/v1/credentials",
                  {"scope": DENIED, "resource": ""}, bearer=tok, conn=conn)


def check_call(srv, tok, conn=None):
    return S.call(srv, "POST", "/v1/check",
                  {"scope": SCOPE, "resource": ""}, bearer=tok, conn=conn)


class Tally:
    """Answers of concurrent callers, by status, and what was wrong."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_status = {}
        self.bad = []

    def add(self, status, why=None):
        with self.lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if why is not None and len(self.bad) < 5:
                self.bad.append(why)

    def n(self, status):
        return self.by_status.get(status, 0)


def retry_after_ok(r):
    v = r.headers.get("Retry-After")
    return v is not None and v.isdigit() and int(v) >= 1


def hammer(srv, tokens, seconds, threads=4):
    """threads callers alternate delegate and a denied credential request
    with tokens (round robin) for `seconds`; (tally, seconds taken)."""
    t = Tally()
    stop = time.time() + seconds

    def worker(i):
        conn = srv.conn()
        n = 0
        while time.time() < stop:
            tok = tokens[(i + n) % len(tokens)]
            if n % 2 == 0:
                r = delegate(srv, tok, "sub-%d-%d" % (i, n), conn)
            else:
                r = denied_credential(srv, tok, conn)
            n += 1
            why = None
            if r.status == 429 and not (r.code == "rate_limited" and
                                        retry_after_ok(r)):
                why = "429 %s Retry-After %r" % (r.body[:120],
                                                 r.headers.get("Retry-After"))
            elif r.status not in (200, 403, 429):
                why = repr(r)
            t.add(r.status, why)
            if r.status == 0:
                conn.close()
                conn = srv.conn()
        conn.close()

    t0 = time.time()
    ws = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    return t, time.time() - t0


def section_rate(srv, home_dir, label, tok, child, other):
    """Hammer with the agent's root token and its sub-agent's token; the
    same agent's checks and another agent's delegations meanwhile."""
    time.sleep(BURST / RATE + 0.5)   # a full bucket to start with
    before = audit_rows(home_dir)
    checks_t, other_t = Tally(), Tally()
    done = threading.Event()

    def checker():
        conn = srv.conn()
        while not done.is_set():
            r = check_call(srv, tok, conn)
            checks_t.add(r.status, None if r.status == 200 and
                         r.json == {"valid": True} else repr(r))
            time.sleep(0.01)
        conn.close()

    def bystander():
        conn = srv.conn()
        for i in range(20):
            if done.is_set():
                break
            r = delegate(srv, other, "by-%d" % i, conn)
            other_t.add(r.status, None if r.status == 200 else repr(r))
            time.sleep(HAMMER_S / 25.0)
        conn.close()

    side = [threading.Thread(target=checker),
            threading.Thread(target=bystander)]
    for s in side:
        s.start()
    t, secs = hammer(srv, [tok, child], HAMMER_S)
    done.set()
    for s in side:
        s.join()
    grown = audit_rows(home_dir) - before
    writes = t.n(200) + t.n(403)
    allowed = RATE * (secs + 0.5) + BURST + other_t.n(200)
    print("note %s: answers %s in %.1fs; %d audit rows (at most %.0f)" %
          (label, t.by_status, secs, grown, allowed), flush=True)
    check("%s: the hammering agent gets 429 over the limit" % label,
          t.n(429) > 0 and writes <= RATE * (secs + 0.5) + BURST,
          "%s in %.1fs" % (t.by_status, secs))
    check("%s: every answer is 200/403/429, each 429 rate_limited with "
          "Retry-After >= 1 s" % label, not t.bad, "; ".join(t.bad))
    check("%s: the audit log grew by at most rate * seconds + burst" % label,
          grown <= allowed,
          "%d rows in %.1fs (allowed %.0f)" % (grown, secs, allowed))
    check("%s: POST /v1/check of the same agent answered 200 all along" %
          label, checks_t.n(200) >= 50 and not checks_t.bad,
          "%s %s" % (checks_t.by_status, checks_t.bad))
    check("%s: another agent's delegations are not limited" % label,
          other_t.n(200) >= 10 and not other_t.bad,
          "%s %s" % (other_t.by_status, other_t.bad))


def section_retention():
    """Rows older than 0.0001 day go; verify passes."""
    h = S.home("retain")
    admin_file = S.secret_file("admin.token", ADMIN)
    fol_file = S.secret_file("follower.token", FOLLOWER)
    R = S.leader("retain", h, "--admin-token-file", admin_file,
                 "--auth-token-file", fol_file, "--threads", "2",
                 "--audit-retain-days", "0.0001")
    tok = root_token(R, "old-agent")
    for i in range(10):
        delegate(R, tok, "old-%d" % i)
    old_max = sql(h, "SELECT max(id) FROM audit")
    time.sleep(5)
    for i in range(5):
        delegate(R, tok, "new-%d" % i)
    # 8.64 s after the first rows, they go; the five new ones stay.
    gone = S.wait_for(lambda: sql(h, "SELECT count(*) FROM audit WHERE "
                                     "id <= %d" % old_max) == 0, 15)
    check("retention: rows older than the retention are deleted", gone,
          "%d of the first %d rows left" %
          (sql(h, "SELECT count(*) FROM audit WHERE id <= %d" % old_max),
           old_max))
    check("retention: newer rows are kept",
          sql(h, "SELECT count(*) FROM audit WHERE id > %d" % old_max) >= 1,
          "%d rows left" % audit_rows(h))
    rc, out, err = S.cli("--home", h, "audit", "verify")
    check("retention: agent-iam audit verify passes", rc == 0,
          "exit %d: %s %s" % (rc, out, err))
    for i in range(5):
        delegate(R, tok, "later-%d" % i)
    rc, out, err = S.cli("--home", h, "audit", "verify")
    check("retention: audit verify passes after more rows", rc == 0,
          "exit %d: %s %s" % (rc, out, err))
    R.stop_checked()
    # Tampering after retention is still found: a kept row deleted.
    victim = sql(h, "SELECT id FROM audit ORDER BY id LIMIT 1 OFFSET 1")
    db = sqlite3.connect(db_path(h), timeout=10)
    db.execute("DELETE FROM audit WHERE id = ?", (victim,))
    db.commit()
    db.close()
    rc, out, err = S.cli("--home", h, "audit", "verify")
    check("retention: a kept row deleted by hand is found by audit verify",
          rc == 1 and "row %d is missing" % victim in (out + err),
          "exit %d: %s %s" % (rc, out, err))


def section_full_disk():
    disk = smalldisk.SmallDisk(os.path.join(S.TMP, "small"), 6, NS_MARK)
    print("note full disk made with %s" % disk.how, flush=True)
    h = os.path.join(disk.dir, "home")
    admin_file = S.secret_file("admin.token", ADMIN)
    fol_file = S.secret_file("follower.token", FOLLOWER)
    delegated = [0]
    try:
        D = disk.start("full", S.leader_args(
            "full", h, "--admin-token-file", admin_file, "--auth-token-file",
            fol_file, "--threads", "2", "--agent-rate", "off"))
        tok = root_token(D, "writer")
        r = delegate(D, tok, "before")
        check("full disk: a delegation works before", r.status == 200,
              repr(r))
        delegated[0] += r.status == 200
        disk.make_full(h)
        conn = D.conn()
        first = None
        t0 = time.time()
        for i in range(5000):
            if time.time() - t0 > 20 * S.SLOW:
                break
            r = delegate(D, tok, "fill-%d" % i, conn)
            if r.status != 200:
                first = r
                break
            delegated[0] += 1
        check("full disk: a write fails with 503 storage_full",
              first is not None and first.status == 503 and
              first.code == "storage_full", repr(first))
        after = Tally()
        for i in range(20):
            r = delegate(D, tok, "full-%d" % i, conn) if i % 2 == 0 \
                else denied_credential(D, tok, conn)
            delegated[0] += r.status == 200 and i % 2 == 0
            ok = r.status == 503 and r.code == "storage_full" or \
                (i % 2 and r.status == 403)
            after.add(r.status, None if ok else repr(r))
        check("full disk: the writes after it fail with 503 storage_full too",
              after.n(503) >= 10 and not after.bad,
              "%s %s" % (after.by_status, after.bad))
        reads = [check_call(D, tok, conn),
                 S.call(D, "GET", "/v1/whoami", bearer=tok, conn=conn)]
        check("full disk: check and whoami still answer 200",
              all(x.status == 200 for x in reads), repr(reads))
        rc, out, err = S.cli("--home", h, "token", "verify", tok)
        check("full disk: the CLI still verifies a token", rc == 0,
              "exit %d: %s %s" % (rc, out, err))
        rz = S.call(D, "GET", "/readyz")
        check("full disk: /readyz answers 503 storage_full",
              rz.status == 503 and rz.code == "storage_full", repr(rz))
        st = S.call(D, "GET", "/v1/status", bearer=ADMIN)
        storage = (st.json or {}).get("storage") or {}
        check("full disk: /v1/status says the store cannot write",
              st.status == 200 and storage.get("writable") is False,
              repr(st))
        conn.close()
        lines = [ln for ln in D.log().splitlines() if "storage full" in ln]
        check("full disk: one log line, not one per request",
              1 <= len(lines) <= 2, "%d lines: %s" % (len(lines), lines[:3]))
        disk.make_room()
        back = S.wait_for(lambda: delegate(D, tok, "back").status == 200,
                          10)
        delegated[0] += bool(back)
        check("full disk: writes succeed again once space returns", back)
        check("full disk: /readyz is 200 again",
              S.wait_for(lambda: S.call(D, "GET", "/readyz").status == 200,
                         5))
        check("full disk: the recovery is logged",
              "writable again" in D.log(), D.log()[-400:])
        ok_rows = sql(h, "SELECT count(*) FROM audit WHERE action = "
                         "'delegate' AND decision = 'ok'")
        check("full disk: every delegation served has its audit row",
              ok_rows == delegated[0],
              "%d rows, %d served" % (ok_rows, delegated[0]))
        D.stop_checked()
        ic = sql(h, "PRAGMA integrity_check")
        check("full disk: PRAGMA integrity_check is ok", ic == "ok", ic)
        rc, out, err = S.cli("--home", h, "audit", "verify")
        check("full disk: agent-iam audit verify passes", rc == 0,
              "exit %d: %s %s" % (rc, out, err))
    finally:
        for p in S.PROCS:
            if p.alive():
                p.kill9()
        disk.close()


def section(fn, *args):
    """Run one section; an exception is a failure, not the end."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - report and go on
        checks.no("%s raised" % fn.__name__, repr(e)[:600])


def rate_on_leader_and_follower():
    admin_file = S.secret_file("admin.token", ADMIN)
    fol_file = S.secret_file("follower.token", FOLLOWER)
    lh = S.home("leader")
    L = S.leader("leader", lh, "--admin-token-file", admin_file,
                 "--auth-token-file", fol_file, "--threads", "2")
    tok = root_token(L, "hammer", (SCOPE, "openai:models:list"))
    other = root_token(L, "bystander")
    r = delegate(L, tok, "hammer-child")
    if r.status != 200:
        raise RuntimeError("delegate: %r" % r)
    child = r.json["token"]
    section_rate(L, lh, "leader", tok, child, other)

    fh = S.home("follower")
    F = S.follower("follower", fh, L, "--auth-token-file", fol_file,
                   "--follower-id", "f1", "--threads", "2")
    S.wait_for(lambda: S.call(F, "GET", "/readyz").status == 200, 20)
    section_rate(F, fh, "follower", tok, child, other)
    F.stop_checked()
    L.stop_checked()


def main():
    section(rate_on_leader_and_follower)
    section(section_retention)
    section(section_full_disk)
    print("%d passed, %d failed" % (checks.counts["pass"],
                                    checks.counts["fail"]))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
