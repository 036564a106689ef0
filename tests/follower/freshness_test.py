#!/usr/bin/env python3
"""A follower never says yes to a revoked token: freshness, the changelog's
hash chain, and coming back after the leader was away. Real processes on
127.0.0.1 over TLS, with the helpers of follower_test.py (same arguments:
BIN TMPDIR, the certificates made by tests/follower/run.sh).

  7 stale      a follower past --max-staleness (SIGSTOP) while the leader
               writes 20,000 changes and then one revocation: after SIGCONT
               the revoked token is never answered 200, not even while the
               first batches are applied; it serves again once caught up,
               and keeps serving while idle (its long-poll stays under
               the limit)
  8 restore    the leader's database restored from a plain file copy (not
               `agent-iam backup`) and written past the follower's seq: the
               follower notices (hash chain, 410) and ends with exactly the
               leader's revocations
  9 leader away the leader down 65 s (past the old 60 s backoff cap):
               the follower has caught up within 5 s of its return

Scenario 9's leader is stopped first and restarted last, so its 65 s pass
while 7 and 8 run. FRESHNESS_TEST_ONLY=7,8 runs those alone.
"""
import os
import shutil
import signal
import sqlite3
import sys
import time

import follower_test as ft
from follower_test import (ADMIN, SLOW, admin, bulk_revocations, call,
                           caught_up, check, check_req, create_root,
                           db_query, follower, free_port, is_revoked,
                           is_valid, leader, note, status_of, wait_until)

import checks  # noqa: E402 (on the path follower_test set)

TMP = ft.TMP
AWAY_S = 65


def revoked_ids(home):
    return set(r[0] for r in db_query(
        home, "SELECT target || ':' || id FROM revocations"))


# ---- 7 ----------------------------------------------------------------------

def scenario_stale():
    print("# 7. a stale follower catches up before it serves", flush=True)
    LH, FH = os.path.join(TMP, "l7"), os.path.join(TMP, "f7")
    port = free_port()
    L = leader("leader7", LH, port=port)
    tok = create_root(L, "agent-f7")
    victim = create_root(L, "agent-f7-victim")
    F = follower("f7", FH, L.url, "f7",
                 extra=["--max-staleness", "%ds" % (3 * SLOW)])
    try:
        check("f7: caught up", wait_until(lambda: caught_up(L, F), 10))
        check("f7: the victim's token is valid before",
              is_valid(check_req(F, victim)))
        os.kill(F.p.pid, signal.SIGSTOP)
        try:
            L.stop_checked()
            bulk_revocations(LH, 20000)
            L = leader("leader7-bulk", LH, port=port)
            rc, out, err = admin(L, "revoke", "--agent", "agent-f7-victim")
            check("leader: the victim's agent revoked after 20,000 changes",
                  rc == 0, err)
            head = status_of(L)["changelogSeq"]
            time.sleep(3.5 * SLOW)  # past its max staleness while stopped
        finally:
            os.kill(F.p.pid, signal.SIGCONT)
        answers, t0 = {}, time.time()
        conn = F.conn()
        seen_apply = set()
        deadline = time.time() + 30 * SLOW
        while time.time() < deadline:
            try:
                r = check_req(F, victim, conn=conn)
                answers[r.status] = answers.get(r.status, 0) + 1
                if r.status == 200 and answers[200] == 1:
                    note("the revoked token got 200 at %.3fs" %
                         (time.time() - t0))
            except OSError:
                conn.close()
                conn = F.conn()
                continue
            try:
                s = status_of(F)
            except OSError:
                continue
            seen_apply.add(s["appliedSeq"])
            if s["appliedSeq"] == head and r.status == 401:
                break
        conn.close()
        note("after SIGCONT: answers %r over %.2fs; %d applied seqs seen" %
             (answers, time.time() - t0, len(seen_apply)))
        check("f7: the revoked token is never answered 200 while catching up",
              answers.get(200, 0) == 0, repr(answers))
        check("f7: it was refused with 503 while behind",
              answers.get(503, 0) > 0, repr(answers))
        check("f7: applied in several batches (the test saw it behind)",
              len(seen_apply) >= 2, repr(sorted(seen_apply)))
        check("f7: once caught up, the revoked token is refused (401)",
              is_revoked(check_req(F, victim)))
        check("f7: and the others' tokens are valid again",
              is_valid(check_req(F, tok)))
        s = status_of(F)
        check("f7: status: serving, fresh", s.get("serving") is True and
              s.get("secondsSinceFresh") is not None and
              s["secondsSinceFresh"] <= 2, repr(s))
        # idle and healthy for longer than its --max-staleness (3 s, under
        # the default 25 s long-poll): it keeps serving
        refused, t_end = [], time.time() + 5 * SLOW
        conn = F.conn()
        # and its idle polls (one a second here) write nothing to its home:
        # data_version moves when another connection commits
        dbc = sqlite3.connect("file:%s?mode=ro" %
                              os.path.join(FH, "agent-iam.db"), uri=True,
                              timeout=10)
        dv0 = dbc.execute("PRAGMA data_version").fetchone()[0]
        s0 = status_of(F)
        while time.time() < t_end:
            r = check_req(F, tok, conn=conn)
            if not is_valid(r):
                refused.append(r)
            time.sleep(0.2)
        conn.close()
        dv1 = dbc.execute("PRAGMA data_version").fetchone()[0]
        dbc.close()
        s1 = status_of(F)
        check("f7: idle past its max staleness, it keeps serving (the "
              "long-poll wait stays well under the limit)", not refused,
              repr(refused[:2]))
        check("f7: its idle polls commit nothing to its home (data_version "
              "unchanged over %d s)" % (5 * SLOW),
              dv0 == dv1 and s1["appliedSeq"] == s0["appliedSeq"],
              "data_version %r -> %r, %r" % (dv0, dv1, s1))
        check("f7: while /v1/status still says it heard the leader within "
              "the last seconds (contact kept in memory)",
              s1.get("secondsSinceContact") is not None and
              s1["secondsSinceContact"] <= 2 and s1["state"] == "connected",
              repr(s1))
        F.stop_checked()
    finally:
        if F.alive():
            F.kill9()
        if L.alive():
            L.stop_checked()


# ---- 8 ----------------------------------------------------------------------

def admin_revoke_many(L, prefix, n):
    conn = L.conn()
    try:
        for i in range(n):
            r = call(L, "POST", "/v1/admin/revoke",
                     {"agentId": "%s-%04d" % (prefix, i), "reason": "t"},
                     bearer=ADMIN, conn=conn)
            if r.status != 200:
                raise RuntimeError("revoke: %r" % r)
    finally:
        conn.close()


def insert_revocations(home, prefix, n):
    """n agent revocations written into a stopped leader's database, as
    rows without a hash (the leader chains them when it opens)."""
    import sqlite3
    now = int(time.time() * 1000)
    c = sqlite3.connect(os.path.join(home, "agent-iam.db"), timeout=10)
    try:
        with c:
            for i in range(n):
                aid = "%s-%04d" % (prefix, i)
                c.execute("INSERT INTO revocations (target, id, reason, "
                          "revoked_at, prune_after) VALUES (1, ?, 'x', ?, ?)",
                          (aid, now, now + 86400000))
                c.execute("INSERT INTO changelog (at, kind, key, op) VALUES "
                          "(?, 'revocation', ?, 'set')", (now, "1:" + aid))
    finally:
        c.close()


def scenario_restore():
    print("# 8. the leader restored from a plain file copy", flush=True)
    LH, FH = os.path.join(TMP, "l8"), os.path.join(TMP, "f8")
    copy = os.path.join(TMP, "l8-copy")
    port = free_port()
    L = leader("leader8", LH, port=port)
    tok = create_root(L, "agent-f8")
    F = follower("f8", FH, L.url, "f8")
    try:
        check("f8: caught up", wait_until(lambda: caught_up(L, F), 10))
        L.stop_checked()
        shutil.copytree(LH, copy)  # the copy an operator made
        L = leader("leader8-a", LH, port=port)
        admin_revoke_many(L, "before-restore", 300)
        check("f8: has the 300 revocations made after the copy",
              wait_until(lambda: caught_up(L, F), 10))
        applied = status_of(F)["appliedSeq"]
        F.stop_checked()
        L.stop_checked()
        shutil.rmtree(LH)
        shutil.copytree(copy, LH)  # restored: those 300 are gone
        insert_revocations(LH, "after-restore", 500)
        L = leader("leader8-restored", LH, port=port)
        head = status_of(L)["changelogSeq"]
        check("leader: restored and written past the follower's seq",
              head > applied, "head %d, follower at %d" % (head, applied))
        F = follower("f8-again", FH, L.url, "f8")
        conv = wait_until(lambda: caught_up(L, F), 15)
        check("f8: converges on the restored leader", conv,
              repr(status_of(F)))
        want, have = revoked_ids(LH), revoked_ids(FH)
        check("f8: its revocations are exactly the leader's",
              want == have,
              "%d missing, %d extra (e.g. %r)" % (
                  len(want - have), len(have - want),
                  sorted(have ^ want)[:3]))
        lines = [l for l in F.log().splitlines() if "snapshot" in l]
        check("f8: it said why it reloaded", any(
            "history" in l or "differs" in l for l in lines), repr(lines))
        check("f8: serves the leader's tokens", is_valid(check_req(F, tok)))
        F.stop_checked()
    finally:
        if F.alive():
            F.kill9()
        if L.alive():
            L.stop_checked()


# ---- 9 ----------------------------------------------------------------------

class Away:
    """A leader and its follower; the leader stopped at start() and
    restarted by finish() AWAY_S seconds later."""

    def start(self):
        print("# 9. the leader away %d s (set up; checked at the end)" %
              AWAY_S, flush=True)
        self.LH, self.FH = os.path.join(TMP, "l9"), os.path.join(TMP, "f9")
        self.port = free_port()
        self.L = leader("leader9", self.LH, port=self.port)
        self.victim = create_root(self.L, "agent-f9-victim")
        self.F = follower("f9", self.FH, self.L.url, "f9")
        check("f9: caught up", wait_until(lambda: caught_up(self.L, self.F),
                                          10))
        self.L.stop_checked()
        self.down = time.time()

    def finish(self):
        print("# 9. the leader back after %d s" % AWAY_S, flush=True)
        if not hasattr(self, "down"):
            return  # start() failed, and said so
        L, F = None, self.F
        try:
            left = self.down + AWAY_S - time.time()
            if left > 0:
                time.sleep(left)
            s = status_of(F)
            check("f9: knows the leader is away",
                  "lastError" in s, repr(s))
            L = self.L = leader("leader9-back", self.LH, port=self.port)
            t0 = time.time()
            rc, out, err = admin(L, "revoke", "--agent", "agent-f9-victim")
            check("leader: back, revokes at once", rc == 0, err)
            seen = wait_until(lambda: is_revoked(check_req(F, self.victim)),
                              5, step=0.05)
            note("the follower had the revocation %.2fs after the leader "
                 "came back" % (time.time() - t0))
            check("f9: caught up within 5 s of the leader's return", seen,
                  repr(status_of(F)))
            F.stop_checked()
        finally:
            if F.alive():
                F.kill9()
            if L is not None and L.alive():
                L.stop_checked()


def main():
    t_start = time.time()
    only = os.environ.get("FRESHNESS_TEST_ONLY", "")
    away = Away() if not only or "9" in only.split(",") else None
    todo = [("7", scenario_stale), ("8", scenario_restore)]
    steps = ([away.start] if away else []) + \
        [fn for key, fn in todo if not only or key in only.split(",")] + \
        ([away.finish] if away else [])
    for fn in steps:
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - one scenario's crash
            import traceback
            traceback.print_exc()
            checks.no("%s crashed" % fn.__name__, repr(e))
        note("%s: %.1fs" % (fn.__name__, time.time() - t0))
    print("freshness tests: %d passed, %d failed in %.1fs%s" %
          (checks.counts["pass"], checks.counts["fail"],
           time.time() - t_start, " (ASan build)" if ft.ASAN else ""))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
