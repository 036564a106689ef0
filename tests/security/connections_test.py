#!/usr/bin/env python3
"""Connection abuse without credentials (DESIGN.md §8), against a real
leader and a real follower over TLS:

  1. half-open TCP: connections that never start the TLS handshake are
     closed by the server within the 10 s handshake + header deadline; a
     client that gives up first leaves nothing behind (no CLOSE-WAIT, no
     busy worker): descriptors back within 10 of the baseline and CPU
     under 5% within 10 s;
  2. slowloris: TLS connections that send a header byte every few
     seconds are cut at the deadline, whatever they send;
  3. 1,000 half-open and 1,000 slowloris connections from 127.0.0.2 at
     once: a client on 127.0.0.1 still gets /healthz and POST /v1/check
     answered in under 1 s each; --max-conns-per-ip caps what one address
     holds; when the attackers stop, descriptors and CPU return to
     baseline within 10 s;
  4. the same on a follower;
  5. SIGTERM during a flood of half-open, slow TLS and connect-and-close
     clients from 127.0.0.1 and 127.0.0.2, and right after it: the leader
     exits 0 within 5 s every time, never aborted by libmicrohttpd
     ("Failed to remove listen FD from epoll set"). When a C compiler is
     there, the leader runs with tests/security/epoll_delay.c preloaded,
     which makes the race behind that abort likely instead of rare.

    connections_test.py BIN TMPDIR
"""
import os
import resource
import shutil
import subprocess
import socket
import ssl
import sys
import threading
import time

import checks
from checks import check
import service as S

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()
FOLLOWER = "follower-" + os.urandom(12).hex()
DEADLINE = 10          # the handshake + header deadline of §8, seconds
ATTACK = 1000          # connections per kind of attack

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if hard < 2 * ATTACK + 200:
    ATTACK = (hard - 200) // 2


def open_tcp(n, src, port):
    """n TCP connections from src that send nothing."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            out.append(s)
        except OSError:
            s.close()
    return out


def closed_by_peer(s):
    """True when the server has closed (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


class Slowloris:
    """n TLS connections from src, each sending a request header one byte
    every `every` seconds and never finishing it."""

    HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: "

    def __init__(self, n, src, port, every=2.0, first=HEADER):
        self.socks = []
        self.refused = 0
        self.stop = threading.Event()
        self.every = every
        for _ in range(n):
            s = socket.socket()
            s.bind((src, 0))
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
                t = S.client_ctx().wrap_socket(s, server_hostname="127.0.0.1")
                t.sendall(first)
                self.socks.append(t)
            except (OSError, ssl.SSLError):
                self.refused += 1
                s.close()
        self.thread = threading.Thread(target=self.drip, daemon=True)
        self.thread.start()

    def drip(self):
        while not self.stop.wait(self.every):
            for t in list(self.socks):
                try:
                    t.send(b"a")
                except (OSError, ssl.SSLError):
                    pass

    def alive(self):
        """How many the server has not closed."""
        n = 0
        for t in self.socks:
            try:
                t.settimeout(0.001)
                if t.recv(1) != b"":
                    n += 1
            except (socket.timeout, ssl.SSLWantReadError):
                n += 1
            except (OSError, ssl.SSLError):
                pass
        return n

    def close(self):
        self.stop.set()
        self.thread.join(10)
        for t in self.socks:
            try:
                t.close()
            except OSError:
                pass


def quick_calls(srv, tok, label):
    """/healthz and POST /v1/check from 127.0.0.1 under attack, < 1 s."""
    r = S.call(srv, "GET", "/healthz", timeout=5)
    check("%s: /healthz answered in < 1 s" % label,
          r.status == 200 and r.elapsed < 1.0 * S.SLOW,
          "%s in %.2fs" % (r.status, r.elapsed))
    r = S.call(srv, "POST", "/v1/check",
               {"scope": "openai:chat:completions", "resource": ""},
               bearer=tok, timeout=5)
    check("%s: POST /v1/check answered in < 1 s" % label,
          r.status == 200 and r.elapsed < 1.0 * S.SLOW,
          "%s in %.2fs" % (r.status, r.elapsed))


def back_to_baseline(srv, base_fds, label):
    """Descriptors within 10 of the baseline and CPU < 5% within 10 s."""
    t0 = time.time()
    fds = S.wait_for(lambda: srv.fds() <= base_fds + 10, 10)
    check("%s: descriptors back within 10 of baseline in 10 s" % label, fds,
          "%d open, baseline %d" % (srv.fds(), base_fds))
    left = max(0.5, 10 - (time.time() - t0) - 2)
    cpu = S.wait_for(lambda: srv.cpu_percent(1.0) < 5.0, left, step=0)
    check("%s: CPU under 5%% within 10 s" % label, cpu,
          "%.0f%%" % srv.cpu_percent(1.0))


def section_deadline(srv, label):
    """One connection of each kind from 127.0.0.1: closed at the deadline."""
    tcp = open_tcp(1, "127.0.0.1", srv.port)
    slow = Slowloris(1, "127.0.0.1", srv.port, every=1.0)
    # A whole request made of bytes a second apart: cut as well.
    t0 = time.time()
    tcp_cut = slow_cut = None
    while time.time() - t0 < (DEADLINE + 5) * S.SLOW and \
            (tcp_cut is None or slow_cut is None):
        if tcp_cut is None and tcp and closed_by_peer(tcp[0]):
            tcp_cut = time.time() - t0
        if slow_cut is None and slow.alive() == 0:
            slow_cut = time.time() - t0
        time.sleep(0.1)
    check("%s: a TCP connection without a handshake is closed at the "
          "deadline" % label,
          tcp_cut is not None and DEADLINE - 1 <= tcp_cut <= DEADLINE + 3,
          "closed after %s s" % tcp_cut)
    check("%s: a header sent a byte a second is cut at the deadline" % label,
          slow_cut is not None and DEADLINE - 1 <= slow_cut <= DEADLINE + 3,
          "cut after %s s" % slow_cut)
    for s in tcp:
        s.close()
    slow.close()


def section_give_up(srv, base_fds, label, during):
    """Clients that open TCP connections, never start the handshake, and
    close them 32 s later (past the idle timeout of 30 s): nothing is left
    behind. `during` runs meanwhile."""
    socks = open_tcp(12, "127.0.0.3", srv.port)
    # and a whole header, then its body a byte every 2 s: cut at the body
    # deadline (30 s after the header)
    body = Slowloris(1, "127.0.0.4", srv.port, every=2.0,
                     first=b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: 200\r\n\r\n{")
    t0 = time.time()
    during()
    cut = None
    while time.time() - t0 < 36 * S.SLOW:
        if cut is None and body.alive() == 0:
            cut = time.time() - t0
        if time.time() - t0 >= 32 and cut is not None:
            break
        time.sleep(0.2)
    check("%s: a body sent a byte every 2 s is cut at the body deadline "
          "(30 s)" % label, cut is not None and 28 <= cut <= 34,
          "cut after %s s" % cut)
    body.close()
    for s in socks:
        s.close()
    back_to_baseline(srv, base_fds, label + " after 12 half-open closed by "
                     "their client after 32 s")


def section_flood(srv, tok, base_fds, label, per_ip):
    tcp = open_tcp(ATTACK, "127.0.0.2", srv.port)
    slow = Slowloris(ATTACK, "127.0.0.2", srv.port)
    time.sleep(0.5)
    held = sum(1 for s in tcp if not closed_by_peer(s)) + slow.alive()
    check("%s: one address holds at most --max-conns-per-ip (%d) "
          "connections" % (label, per_ip), held <= per_ip,
          "%d of %d attempts held" % (held, 2 * ATTACK))
    quick_calls(srv, tok, label + " under %d half-open + %d slowloris" %
                (ATTACK, ATTACK))
    time.sleep(2)
    quick_calls(srv, tok, label + " 2 s later")
    for s in tcp:
        s.close()
    slow.close()
    back_to_baseline(srv, base_fds, label + " after the attackers closed")


def churn(src, port, stop):
    """Connect and close until stop, every other time after the first
    bytes of a TLS ClientHello."""
    n = 0
    while not stop.is_set():
        s = socket.socket()
        try:
            s.bind((src, 0))
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
            if n % 2:
                s.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        except OSError:
            pass
        s.close()
        n += 1


def epoll_delay_env():
    """The environment that preloads epoll_delay.so (built into TMP), or
    None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "epoll_delay.c")
    so = os.path.join(S.TMP, "epoll_delay.so")
    if cc is None or subprocess.run([cc, "-shared", "-fPIC", "-o", so, src,
                                     "-ldl"]).returncode != 0:
        return None
    asan = os.environ.get("ASAN_OPTIONS", "")
    # the sanitizer runtime would refuse a library loaded before it
    return {"LD_PRELOAD": so,
            "ASAN_OPTIONS": (asan + ":" if asan else "") +
            "verify_asan_link_order=0"}


def section_sigterm_in_flood(rounds=6):
    env = epoll_delay_env()
    bad = {"during": [], "after": []}
    for r in range(rounds):
        when = "during" if r % 2 == 0 else "after"
        srv = S.leader("sigterm%d" % r, S.home("sigterm%d" % r),
                       "--threads", "2", env=env)
        stop = threading.Event()
        threads = [threading.Thread(target=churn, args=(src, srv.port, stop),
                                    daemon=True)
                   for src in ("127.0.0.1", "127.0.0.2") for _ in range(2)]
        for t in threads:
            t.start()
        held = open_tcp(100, "127.0.0.1", srv.port) + \
            open_tcp(100, "127.0.0.2", srv.port)
        slow = Slowloris(20, "127.0.0.1", srv.port, every=0.5)

        def end_flood():
            stop.set()
            for t in threads:
                t.join(10)
            slow.close()
            for s in held:
                s.close()
        time.sleep(0.5)
        if when == "after":
            end_flood()
        rc, secs = srv.stop(timeout=10)
        end_flood()
        log = srv.log()
        rep = checks.sanitizer_report(log)
        if rc != 0 or secs > 5 * S.SLOW or "epoll" in log or rep:
            bad[when].append("round %d: exit %s after %.1f s: %s" %
                             (r, rc, secs, (rep or log)[-300:]))
    for when, what in (("during", "during a flood"),
                       ("after", "right after a flood")):
        check("SIGTERM %s of half-open, slow TLS and connect-and-close "
              "clients: exit 0 within 5 s, no abort, %d rounds%s" %
              (what, (rounds + (when == "during")) // 2,
               "" if env else " (no C compiler: without epoll_delay.so)"),
              not bad[when], "; ".join(bad[when]))


def main():
    admin_file = S.secret_file("admin.token", ADMIN)
    fol_file = S.secret_file("follower.token", FOLLOWER)
    L = S.leader("leader", S.home("leader"), "--admin-token-file", admin_file,
                 "--auth-token-file", fol_file, "--threads", "2")
    r = S.call(L, "POST", "/v1/admin/tokens",
               {"agentId": "probe", "scopes": ["openai:chat:completions"]},
               bearer=ADMIN)
    if r.status != 200:
        raise RuntimeError("create root: %r" % r)
    tok = r.json["token"]
    quick_calls(L, tok, "leader")
    time.sleep(0.5)
    base = L.fds()
    section_give_up(L, base, "leader", lambda: section_deadline(L, "leader"))
    section_flood(L, tok, base, "leader", 64)

    F = S.follower("follower", S.home("follower"), L,
                   "--auth-token-file", fol_file, "--follower-id", "f1",
                   "--threads", "2", "--max-conns-per-ip", "16")
    S.wait_for(lambda: S.call(F, "GET", "/readyz").status == 200, 20)
    quick_calls(F, tok, "follower")
    time.sleep(0.5)
    fbase = F.fds()
    section_give_up(F, fbase, "follower",
                    lambda: section_deadline(F, "follower"))
    section_flood(F, tok, fbase, "follower", 16)

    F.stop_checked()
    L.stop_checked()
    section_sigterm_in_flood()
    print("%d passed, %d failed" % (checks.counts["pass"],
                                    checks.counts["fail"]))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
