#!/usr/bin/env python3
"""A follower on a bad network (issue 16), driven by tests/netns/run.sh,
which made a network namespace NS and a veth pair (VA here, VB in NS) on a
/30 of 10.213.0.0/16:

    netns_test.py BIN TMPDIR NS VA VB LEADER_IP FOLLOWER_IP

The leader listens on LEADER_IP (on VA, in this namespace); the follower
runs in NS (`ip netns exec NS agent-iam follower`) and replicates over the
veth; it serves on 127.0.0.1 inside NS, and this driver reads its
/v1/status (with the metrics token) over sockets made in NS (setns on
this thread around socket creation), so what is done to the veth never
slows or cuts those reads. The admin CLI talks to the leader from here
(a local address: not over the veth either).

Scenarios (NETNS_TEST_ONLY=A or B runs one):
  B partition  the follower caught up and long-polling (--long-poll 10s);
               right after a held poll was answered, every packet on the
               veth is silently dropped for 40 s (netem loss 100% on both
               ends, else static neighbour entries to a MAC nobody has:
               frames leave but the other end discards them, and neither
               sender learns of it) while the leader revokes a token.
               The follower must report an error (lastError) within
               long-poll + 10 s of the partition, keep serving its replica,
               and refuse the token (401) within 15 s of the link healing.
  A slow link  the follower stopped, 3,000 revocations with ~500-byte
               reasons written into the stopped leader's home, the leader
               restarted on its port, the veth shaped to 16 kbit/s on both
               ends (tbf rate 16kbit burst 4kb latency 400ms, else netem
               rate 16kbit), the follower restarted: its appliedSeq must
               move within 90 s and then keep moving (3 moves or more in
               the 40 s after the first, never 25 s apart). The link's
               bytes/s (VA's tx counter) and the changes/s are printed.

Prints "ok"/"FAIL" lines, "#" lines with the timings, "skip ..." for a
scenario the kernel gives no means for, and exits 1 on a failure. Every
process it starts is killed at exit (and written to TMPDIR/pids for the
runner's trap); the qdiscs and neighbour entries live on the veth and go
with it."""
import ctypes
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import checks
from checks import check, no
import service as S

S.init(sys.argv[1], sys.argv[2])
NS, VA, VB, LIP, FIP = sys.argv[3:8]

ADMIN = "admin-" + secrets.token_hex(16)
METRICS = "metrics-" + secrets.token_hex(16)
ADMINF = S.secret_file("admin.token", ADMIN)
METRICSF = S.secret_file("metrics.token", METRICS)
SCOPE = "openai:chat:completions"
FID = "region-slow"
LONG_POLL = 10        # --long-poll of the follower, seconds
PARTITION_S = 40      # how long scenario B cuts the link
ERROR_WITHIN = LONG_POLL + 10   # the first error after the partition began
HEAL_WITHIN = 15      # the revocation applied after the link healed
BULK = 3000           # changes the follower is behind in scenario A
REASON_LEN = 480      # bytes of each bulk revocation's reason (max 512)
FIRST_MOVE_WITHIN = 90  # scenario A: the first batch applied within
OBSERVE_S = 40        # then watched this long after the first move
MAX_GAP = 25          # never longer than this without a move
MIN_MOVES = 3
RATE = "16kbit"
BOGUS_MAC = "02:00:00:00:00:01"  # locally administered, on no interface


def note(text):
    print("# " + text, flush=True)


# ---- the follower's namespace -------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


class InNetns:
    """`with InNetns():` this thread is in NS for the block (sockets made
    there belong to NS for good), and back in its own namespace after."""

    def __enter__(self):
        self.back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(os.path.join("/run/netns", NS), os.O_RDONLY)
        try:
            _setns(fd)
        except OSError:
            os.close(self.back)
            raise
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        try:
            _setns(self.back)
        finally:
            os.close(self.back)
        return False


class NsConn(http.client.HTTPSConnection):
    """An HTTPS connection whose socket is made (and connected) in NS."""

    def connect(self):
        with InNetns():
            sock = socket.create_connection((self.host, self.port),
                                            self.timeout)
        self.sock = self._context.wrap_socket(sock,
                                              server_hostname=self.host)


class NsProc(S.Proc):
    """A server started in NS, reached on its 127.0.0.1 there."""

    def conn(self, timeout=10, source=None):
        return NsConn(self.host, self.port, timeout=timeout * S.SLOW,
                      context=S.client_ctx())


def sh(*argv, netns=False):
    """A command (ip, tc), in NS when netns: (exit code, its stderr)."""
    argv = (["ip", "netns", "exec", NS] if netns else []) + list(argv)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    return p.returncode, (p.stderr or p.stdout).strip()


def tx_bytes(dev):
    with open("/sys/class/net/%s/statistics/tx_bytes" % dev) as f:
        return int(f.read())


# ---- what is done to the link --------------------------------------------

def qdisc_both(*spec):
    """The same root qdisc on both ends of the veth: None, or why not."""
    rc, err = sh("tc", "qdisc", "add", "dev", VA, "root", *spec)
    if rc != 0:
        return err or "tc exit %d" % rc
    rc, err = sh("tc", "qdisc", "add", "dev", VB, "root", *spec, netns=True)
    if rc != 0:
        sh("tc", "qdisc", "del", "dev", VA, "root")
        return err or "tc exit %d" % rc
    return None


def qdisc_clear():
    """Back to the veth's default on both ends; True when both went."""
    a = sh("tc", "qdisc", "del", "dev", VA, "root")[0] == 0
    b = sh("tc", "qdisc", "del", "dev", VB, "root", netns=True)[0] == 0
    return a and b


def load_netem():
    """The kernel loads sch_netem on demand where it can; help it where
    modprobe exists (kmod), and never mind if it fails."""
    if shutil.which("modprobe"):
        subprocess.run(["modprobe", "-q", "sch_netem"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=20)


class Partition:
    """A silent drop of everything on the veth, both ways: netem loss 100%
    on both ends, else static neighbour entries that send each end's
    frames to a MAC nobody has (the other end discards them as meant for
    another host). Either way the senders see no error and no ICMP, as
    with a cable cut somewhere far away. iptables is not used: OUTPUT DROP
    reports EPERM to the sender, and it is often not installed."""

    def __init__(self):
        self.how = None
        self.why_not = []

    def start(self):
        if shutil.which("tc"):
            load_netem()
            err = qdisc_both("netem", "loss", "100%")
            if err is None:
                self.how = "netem loss 100%"
                return True
            self.why_not.append("netem: " + err)
        else:
            self.why_not.append("netem: tc is not installed")
        rc, err = sh("ip", "neigh", "replace", FIP, "lladdr", BOGUS_MAC,
                     "dev", VA, "nud", "permanent")
        if rc == 0:
            rc, err = sh("ip", "neigh", "replace", LIP, "lladdr", BOGUS_MAC,
                         "dev", VB, "nud", "permanent", netns=True)
            if rc == 0:
                self.how = "static neighbour entries to %s" % BOGUS_MAC
                return True
            sh("ip", "neigh", "del", FIP, "dev", VA)
        self.why_not.append("neighbour entries: " + err)
        return False

    def heal(self):
        if self.how is None:
            return True
        if self.how.startswith("netem"):
            ok = qdisc_clear()
        else:
            ok = (sh("ip", "neigh", "del", FIP, "dev", VA)[0] == 0) & \
                 (sh("ip", "neigh", "del", LIP, "dev", VB, netns=True)[0] == 0)
        self.how = None
        return ok


def shape(rate):
    """The link down to rate both ways: tbf, else netem rate. (how, None)
    or (None, why not)."""
    if not shutil.which("tc"):
        return None, "tc is not installed"
    err = qdisc_both("tbf", "rate", rate, "burst", "4kb", "latency", "400ms")
    if err is None:
        return "tbf rate %s burst 4kb latency 400ms" % rate, None
    load_netem()
    err2 = qdisc_both("netem", "rate", rate)
    if err2 is None:
        return "netem rate %s" % rate, None
    return None, "tbf: %s; netem: %s" % (err, err2)


# ---- processes -------------------------------------------------------------

def leader(name, home, port=0):
    return S.Proc(name, ["--home", home, "serve", "--host", LIP,
                         "--port", port, "--tls-cert", S.CERT,
                         "--tls-key", S.KEY, "--admin-token-file", ADMINF,
                         "--access-log",
                         os.path.join(S.TMP, "leader.access")],
                  host=LIP)


def follower(name, home, lead_url, cred):
    return NsProc(name, ["--home", home, "follower", "--leader-url",
                         lead_url, "--auth-token-file", cred,
                         "--follower-id", FID, "--ca-cert", S.CA,
                         "--host", "127.0.0.1", "--port", "0",
                         "--tls-cert", S.CERT, "--tls-key", S.KEY,
                         "--metrics-token-file", METRICSF,
                         "--long-poll", "%ds" % LONG_POLL,
                         "--access-log",
                         os.path.join(S.TMP, "follower.access")],
                  prefix=["ip", "netns", "exec", NS])


def admin(L, *args):
    return S.cli(*(list(args) + ["--leader-url", L.url, "--auth-token-file",
                                 ADMINF, "--ca-cert", S.CA]))


def status(srv, bearer):
    """/v1/status as a dict ({} when it cannot be read)."""
    r = S.call(srv, "GET", "/v1/status", bearer=bearer, timeout=5)
    return r.json if r.status == 200 and isinstance(r.json, dict) else {}


def fstatus(F):
    return status(F, METRICS)


def head(L):
    return status(L, ADMIN).get("changelogSeq")


def check_req(srv, tok):
    return S.call(srv, "POST", "/v1/check", {"scope": SCOPE, "resource": ""},
                  bearer=tok, timeout=5)


def is_valid(r):
    return r.status == 200 and r.json == {"valid": True}


def is_revoked(r):
    return r.status == 401 and r.code == "token_revoked"


def caught_up(L, F):
    h = head(L)
    return h is not None and fstatus(F).get("appliedSeq") == h


def bulk_revocations(home, n, reason_len):
    """n token revocations with long reasons written as store_revoke
    writes them (a revocations row and a changelog row "0:<id>"), into a
    stopped leader's database, as tests/follower's scenario 3 does. The
    reasons are random hex: no compression makes them small."""
    now = int(time.time() * 1000)
    prune = now + 7 * 86400 * 1000
    c = sqlite3.connect(os.path.join(home, "agent-iam.db"), timeout=10)
    try:
        with c:
            c.executemany(
                "INSERT INTO revocations (target, id, reason, revoked_at, "
                "prune_after) VALUES (0, ?, ?, ?, ?)",
                (("slow-%06d" % i, secrets.token_hex(reason_len // 2), now,
                  prune) for i in range(n)))
            c.executemany(
                "INSERT INTO changelog (at, kind, key, op) VALUES "
                "(?, 'revocation', ?, 'set')",
                ((now, "0:slow-%06d" % i) for i in range(n)))
    finally:
        c.close()


def change_size():
    """About the bytes one bulk revocation takes in a feed answer (the
    leader's JSON for it: seq, at, kind, key, op, hash, value)."""
    now = int(time.time() * 1000)
    return len(json.dumps(
        {"seq": BULK, "at": now, "kind": "revocation", "key": "0:slow-000000",
         "op": "set", "hash": "0" * 64,
         "value": {"target": "token", "id": "slow-000000",
                   "reason": "0" * REASON_LEN, "revokedAt": now,
                   "pruneAfter": now}}, separators=(",", ":"))) + 1


def feed_polls(path, since_pos):
    """The change-feed requests of the leader's access log after byte
    since_pos: (completion time, milliseconds held) each."""
    out = []
    try:
        with open(path, "rb") as f:
            f.seek(since_pos)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r"(\S+) GET /v1/replication/changes (\d+) "
                     r"(\d+)\.\d+ms .*follower=" + re.escape(FID), line)
        if m:
            out.append((m.group(1), int(m.group(3))))
    return out


# ---- B. a silent partition ---------------------------------------------

def scenario_partition(L, F, tok, tok_id):
    print("# B. a silent-drop partition of %ds, --long-poll %ds" %
          (PARTITION_S, LONG_POLL), flush=True)
    check("B: follower caught up before the partition",
          S.wait_for(lambda: caught_up(L, F), 20), repr(fstatus(F)))
    s = fstatus(F)
    check("B: follower connected, no lastError before the partition",
          s.get("state") == "connected" and not s.get("lastError"), repr(s))
    check("B: the token is valid on the follower before",
          is_valid(check_req(F, tok)), repr(check_req(F, tok)))

    # Cut the link right after a held long-poll came back empty: the next
    # one has just begun, so the time to the first error is what a poll
    # held from the start of the partition takes to be given up.
    log = os.path.join(S.TMP, "leader.access")
    pos = os.path.getsize(log) if os.path.exists(log) else 0
    polls = S.wait_for(lambda: [p for p in feed_polls(log, pos)
                                if p[1] >= (LONG_POLL - 2) * 1000],
                       LONG_POLL + 10, step=0.01)
    if not polls:
        note("no held long-poll answered in %ds: partitioning anyway" %
             (LONG_POLL + 10))
    part = Partition()
    t0 = time.time()
    if not part.start():
        print("skip netns-test scenario B: no way to drop packets silently "
              "(%s)" % "; ".join(part.why_not), flush=True)
        return
    note("partition by %s (a held poll of %dms had just been answered)" %
         (part.how, polls[-1][1] if polls else -1))
    try:
        time.sleep(2)
        rc, out, err = admin(L, "revoke", tok_id, "--reason",
                             "netns partition")
        t_rev = time.time()
        check("B: the leader revokes the token during the partition "
              "(admin CLI, exit 0)", rc == 0, err)
        check("B: the leader refuses it at once (401 token_revoked)",
              is_revoked(check_req(L, tok)), repr(check_req(L, tok)))

        first_err = None
        still_valid = True
        reads_ok = True
        deadline = t0 + PARTITION_S
        while time.time() < deadline:
            s = fstatus(F)
            if not s:
                reads_ok = False
            if first_err is None and s.get("lastError"):
                first_err = (time.time() - t0, s.get("lastError"),
                             s.get("state"))
                note("first error %.1fs after the partition began "
                     "(state %s): %s" % (first_err[0], first_err[2],
                                         first_err[1]))
            if not is_valid(check_req(F, tok)):
                still_valid = False
            time.sleep(0.25)
        s_end = fstatus(F)
        check("B: the follower's status stays readable during the partition "
              "(its own API is not on the veth)", reads_ok)
        check("B: the partition holds: the revocation does not reach the "
              "follower for %ds (the token stays valid there)" % PARTITION_S,
              still_valid)
        check("B: the follower reports an error during the partition "
              "(lastError)", first_err is not None, repr(s_end))
        if first_err is not None:
            check("B: first error within --long-poll + 10 s = %ds of the "
                  "partition" % ERROR_WITHIN, first_err[0] <= ERROR_WITHIN,
                  "%.1fs (a held poll is given up only after its wait plus "
                  "the grace)" % first_err[0])
        note("at the end of the partition: state %s, lastError %r, "
             "appliedSeq %s" % (s_end.get("state"), s_end.get("lastError"),
                                s_end.get("appliedSeq")))
    finally:
        healed = part.heal()
    t_heal = time.time()
    check("B: the link heals (the drop removed)", healed)
    r = False
    while not r and time.time() < t_heal + HEAL_WITHIN:  # not scaled
        r = is_revoked(check_req(F, tok))
        if not r:
            time.sleep(0.05)
    took = time.time() - t_heal
    check("B: the follower refuses the token (401 token_revoked) within "
          "%ds of the link healing" % HEAL_WITHIN, r,
          "after %.1fs: %r; status %r" % (took, check_req(F, tok),
                                          fstatus(F)))
    if r:
        note("revocation applied %.1fs after healing (%.1fs after it was "
             "made at the leader)" % (took, time.time() - t_rev))
    s = S.wait_for(lambda: (lambda s: s if s.get("state") == "connected" and
                            not s.get("lastError") else None)(fstatus(F)), 10)
    check("B: connected again with no lastError", s, repr(fstatus(F)))


# ---- A. a 16 kbit/s link -----------------------------------------------

def scenario_slow_link(L, LH, F, FH, cred):
    print("# A. a %s/s link, the follower %d changes behind (%d-byte reasons)" %
          (RATE, BULK, REASON_LEN), flush=True)
    check("A: follower caught up first",
          S.wait_for(lambda: caught_up(L, F), 20), repr(fstatus(F)))
    F.stop_checked()
    port = L.port
    L.stop_checked()
    t0 = time.time()
    bulk_revocations(LH, BULK, REASON_LEN)
    note("%d revocations with %d-byte reasons written to the stopped "
         "leader in %.2fs" % (BULK, REASON_LEN, time.time() - t0))
    L = leader("leader-2", LH, port=port)
    h = head(L)
    check("A: the restarted leader has the changes (changelogSeq %s)" % h,
          h is not None and h >= BULK, repr(status(L, ADMIN)))

    how, why = shape(RATE)
    if how is None:
        print("skip netns-test scenario A: cannot shape the link (%s)" % why,
              flush=True)
        return L, F
    note("link shaped: %s on %s and %s" % (how, VA, VB))
    try:
        F = follower("follower-2", FH, L.url, cred)
        t_start = time.time()
        b_start = tx_bytes(VA)
        seq0 = fstatus(F).get("appliedSeq")
        note("follower restarted at appliedSeq %s, leader at %s" %
             (seq0, h))
        moves = []          # (time since start, appliedSeq)
        last = seq0
        samples = []
        first = None
        end = t_start + FIRST_MOVE_WITHIN
        while time.time() < end:
            time.sleep(1)
            s = fstatus(F)
            a = s.get("appliedSeq")
            now = time.time() - t_start
            samples.append((now, a, tx_bytes(VA) - b_start,
                            s.get("lastError")))
            if a is not None and last is not None and a > last:
                moves.append((now, a))
                if first is None:
                    first = now
                    end = time.time() + OBSERVE_S
            if a is not None:
                last = a
        t_end = time.time() - t_start
        b_total = tx_bytes(VA) - b_start
        s = fstatus(F)
        for t, a, b, e in samples[4::5]:
            note("  %5.1fs appliedSeq %s, %6d bytes over the link%s" %
                 (t, a, b, ", lastError: %s" % e if e else ""))
        check("A: the first batch is applied within %ds on a %s/s link" %
              (FIRST_MOVE_WITHIN, RATE), first is not None,
              "appliedSeq stuck at %s for %.0fs (leader at %s), %d bytes moved "
              "(%.0f bytes/s); lastError: %s" %
              (seq0, t_end, h, b_total, b_total / t_end,
               s.get("lastError")))
        if first is not None:
            after = [m for m in moves if m[0] > first]
            times = [first] + [m[0] for m in after] + [t_end]
            gap = max(b - a for a, b in zip(times, times[1:]))
            check("A: then it keeps moving: %d moves or more in the %ds "
                  "after the first, never %ds apart" %
                  (MIN_MOVES, OBSERVE_S, MAX_GAP),
                  len(after) >= MIN_MOVES and gap <= MAX_GAP,
                  "%d moves, longest gap %.1fs: %s" %
                  (len(after), gap, moves))
            done = (last or 0) - moves[0][1]
            span = max(t_end - first, 0.1)
            note("first move after %.1fs (appliedSeq %d); then %d changes "
                 "in %.0fs: %.1f changes/s, ~%.0f bytes/s of changes "
                 "(~%d bytes each); %d moves, longest gap %.1fs" %
                 (first, moves[0][1], done, span, done / span,
                  done * change_size() / span, change_size(), len(moves),
                  gap))
        rate_bps = b_total / t_end
        note("link: %d bytes leader -> follower in %.0fs = %.0f bytes/s "
             "(%s/s is %d bytes/s)" %
             (b_total, t_end, rate_bps, RATE, 16000 // 8))
        check("A: the link is really shaped (at most 2,600 bytes/s went "
              "to the follower)", rate_bps <= 2600, "%.0f bytes/s" %
              rate_bps)
    finally:
        check("A: the shaping is removed", qdisc_clear())
    return L, F


def main():
    t_start = time.time()
    only = os.environ.get("NETNS_TEST_ONLY", "")
    LH = S.home("leader")
    FH = S.home("follower")
    L = leader("leader", LH)
    F = None
    try:
        rc, out, err = admin(L, "followers", "add", FID, "--providers", "*")
        if rc != 0:
            raise RuntimeError("followers add: %s" % err)
        cred = S.secret_file("follower.token", out.strip())
        rc, out, err = admin(L, "--json", "token", "create-root",
                             "--agent-id", "netns-agent", "--scopes", SCOPE)
        if rc != 0:
            raise RuntimeError("token create-root: %s" % err)
        made = json.loads(out)
        F = follower("follower", FH, L.url, cred)
        check("the follower in %s replicates over the veth (caught up)" % NS,
              S.wait_for(lambda: caught_up(L, F), 30),
              "leader %s, follower %r" % (head(L), fstatus(F)))
        if not only or "B" in only:
            t0 = time.time()
            scenario_partition(L, F, made["token"], made["tokenId"])
            note("scenario B: %.1fs" % (time.time() - t0))
        if not only or "A" in only:
            t0 = time.time()
            L, F = scenario_slow_link(L, LH, F, FH, cred)
            note("scenario A: %.1fs" % (time.time() - t0))
    except Exception as e:  # noqa: BLE001 - reported, then cleaned up
        import traceback
        traceback.print_exc()
        no("netns scenarios crashed", repr(e))
    finally:
        for p in (F, L):
            if p is not None and p.alive():
                p.stop_checked()
    left = [p.name for p in S.PROCS if p.alive()]
    check("every server of the run stopped", not left, repr(left))
    print("netns tests: %d passed, %d failed in %.1fs%s" %
          (checks.counts["pass"], checks.counts["fail"],
           time.time() - t_start, " (ASan build)" if S.ASAN else ""),
          flush=True)
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
