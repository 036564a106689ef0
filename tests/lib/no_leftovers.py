#!/usr/bin/env python3
"""Run a test command and fail if it leaves a process behind.

Usage: python3 tests/lib/no_leftovers.py CMD [ARG...]

The exit code is CMD's, or 1 when CMD passed but left processes alive.

DESIGN: a process started by CMD is found three ways, so that one it
hides from a single check is still caught:
  - its environment holds NO_LEFTOVERS=<random>, set for CMD only (not
    named AGENT_IAM_*: the test libraries strip those from their children);
  - its session is CMD's (CMD starts in a session of its own), for one
    started with a cleared environment (tests/install/unit_exec.py);
  - it descends from this process, which is a child subreaper (prctl), so
    an orphan is reparented here rather than to init even when it made a
    session of its own and cleared its environment.
After CMD exits, those still alive after a grace of a few seconds (a server
told to stop may take a moment) are listed with their command line, killed
(SIGKILL) and the run fails. SIGINT, SIGTERM and SIGHUP here are passed on
to CMD's process group, and the same scan follows.
"""
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time

GRACE = 5.0
PR_SET_CHILD_SUBREAPER = 36


def reap():
    """Collect orphans reparented here (zombies otherwise)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def procs():
    """{pid: (state, ppid, sid)} of every process readable now."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        f = stat[stat.rindex(b")") + 2:].split()
        out[int(d)] = (f[0].decode(), int(f[1]), int(f[3]))
    return out


def has_mark(pid, mark):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return mark in f.read().split(b"\0")
    except OSError:
        return False


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            a = f.read().rstrip(b"\0").replace(b"\0", b" ")
    except OSError:
        return "?"
    return a.decode(errors="replace")[:200] or "?"


def leftovers(sid, mark):
    """Live processes started by CMD: pid -> command line."""
    me = os.getpid()
    table = procs()
    found = {}
    for pid, (state, ppid, psid) in table.items():
        if pid == me or state in ("Z", "X"):
            continue
        up, seen = ppid, 0
        while up > 1 and up != me and up in table and seen < 1000:
            up, seen = table[up][1], seen + 1
        if psid == sid or up == me or has_mark(pid, mark):
            found[pid] = cmdline(pid)
    return found


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: no_leftovers.py CMD [ARG...]\n")
        return 2
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the mark and the session still find them
    mark_value = secrets.token_hex(8)
    mark = ("NO_LEFTOVERS=" + mark_value).encode()
    env = dict(os.environ, NO_LEFTOVERS=mark_value)
    try:
        p = subprocess.Popen(sys.argv[1:], env=env, start_new_session=True)
    except OSError as e:
        sys.stderr.write("no_leftovers: %s: %s\n" % (sys.argv[1], e.strerror))
        return 127

    def forward(sig, _frame):
        try:
            os.killpg(p.pid, sig)
        except OSError:
            pass
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, forward)
    rc = p.wait()
    if rc < 0:
        rc = 128 - rc
    deadline = time.monotonic() + GRACE
    while True:
        reap()
        left = leftovers(p.pid, mark)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if not left:
        return rc
    sys.stderr.write("no_leftovers: %s left %d process(es) behind:\n"
                     % (" ".join(sys.argv[1:]), len(left)))
    for pid in sorted(left):
        sys.stderr.write("  %d %s\n" % (pid, left[pid]))
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.2)
    reap()
    return rc if rc != 0 else 1


if __name__ == "__main__":
    sys.exit(main())
