#!/usr/bin/env python3
"""The command line under attack (DESIGN.md §6, §8), with real processes:

  1. help: `agent-iam help` lists every command with its flags (each
     entry's flags are those of the command's own usage, both ways); every
     command and command group in that list, with --help or -h after it,
     prints its usage on stdout and exits 0, creating no home and calling
     no leader;
  2. `revoke --help`, `revoke -h` and `unrevoke --help` revoke nothing: on
     a local home (the revocation count of `status` unchanged, no audit
     row) and on a running leader with --leader-url (its count unchanged);
  3. revoke and unrevoke take a tokenId, 22 base64url characters that may
     begin with '-'; anything else is a usage error (exit 2);
  4. secrets in argv: while a command waits (on a "leader" that accepts
     and never answers, on stdin kept open, on a locked database),
     /proc/PID/cmdline holds none of the bytes of a secret flag's value,
     for every secret flag; the help list names no secret flag this
     driver does not try.

    cli_test.py BIN TMPDIR
"""
import atexit
import base64
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import checks
from checks import check
import service as S

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()
GLOBAL_FLAGS = {"--home", "--json", "--help"}
# CLI_REMOTE_USAGE, written [LEADER] in the help list
REMOTE_FLAGS = {"--leader-url", "--auth-token", "--auth-token-file",
                "--ca-cert"}
# CLI_AGENT_REMOTE_USAGE, written [SERVER] in the help list
AGENT_REMOTE_FLAGS = {"--leader-url", "--ca-cert"}
# Flags whose value is a secret or a bearer token. Every flag of the help
# list that is one of these or looks like one must be tried in section 4.
SECRET_FLAGS = {"--key", "--auth-token", "--admin-token", "--client-secret",
                "--refresh-token", "--secret-access-key", "--token",
                "--parent", "--metrics-token"}
SECRETISH = re.compile(r"--(.*token|.*secret.*|key|parent|password.*)$")
tried = set()


def is_secret(flag):
    return ((flag in SECRET_FLAGS or SECRETISH.match(flag)) and
            not flag.endswith("-file"))


def secret_flags_of(*words):
    """The secret flags of a command's own usage."""
    rc, out, _ = S.cli(*(list(words) + ["--help"]))
    return sorted(f for f in flags_of(out) if is_secret(f))


def tid(first=""):
    """A fresh tokenId (22 base64url characters) starting with first."""
    s = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    return (first + s)[:22]


def flags_of(text):
    out = set(re.findall(r"--[a-z][a-z0-9-]*", text))
    if "LEADER" in text:
        out |= REMOTE_FLAGS
    if "SERVER" in text:
        out |= AGENT_REMOTE_FLAGS
    return out - GLOBAL_FLAGS


# ---- a "leader" that accepts connections and never answers ------------------

class BlackHole:
    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(64)
        self.port = self.s.getsockname()[1]
        self.url = "https://127.0.0.1:%d" % self.port
        self.accepted = 0
        self.held = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.held.append(c)
            self.accepted += 1


HOLE = BlackHole()

# ---- CLI processes left waiting ---------------------------------------------

WAITING = []


@atexit.register
def _kill_waiting():
    for p in WAITING:
        if p.poll() is None:
            p.kill()
            p.wait()


def start(args, stdin=subprocess.DEVNULL):
    p = subprocess.Popen([S.BIN] + [str(a) for a in args], stdin=stdin,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=S.clean_env())
    WAITING.append(p)
    with open(S.PIDS, "a") as f:
        f.write("%d\n" % p.pid)
    return p


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read()


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait()
    if p.stdin is not None:
        p.stdin.close()
    err = p.stderr.read().decode("utf-8", "replace")
    p.stderr.close()
    return err


def no_secret_in_argv(name, p, secrets, flags, until, must_wait=True):
    """Wait for until() (the command is blocked), then read p's cmdline:
    none of the secrets may be in it, each flag still is (the command
    line is not wiped whole)."""
    S.wait_for(lambda: until() or p.poll() is not None, 10)
    alive = p.poll() is None
    line = cmdline(p.pid) if alive else b""
    err = stop(p)
    if must_wait and not alive:
        checks.no(name + ": the command waits", "exit %s: %s" %
                  (p.returncode, err[-300:]))
        return
    leaked = [s for s in secrets if s.encode() in line]
    check(name + ": no secret in /proc/PID/cmdline", not leaked,
          "%r in %r" % (leaked, line[:400]))
    kept = all(f.encode() in line for f in flags)
    check(name + ": the rest of the command line is kept", kept,
          repr(line[:400]))
    tried.update(f.split("=")[0] for f in flags)


def connected(before):
    return lambda: HOLE.accepted > before


def after(seconds):
    t = time.time() + seconds * S.SLOW
    return lambda: time.time() >= t


def cli(*args, timeout=20):
    """S.cli, with a command that does not finish in time (one that took
    --help for something else and waits) as exit None."""
    try:
        return S.cli(*args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", "(did not finish in %ds)" % timeout


def local_revocations(home):
    rc, out, err = S.cli("--home", home, "--json", "status")
    if rc != 0:
        raise RuntimeError("status: %s" % err)
    import json
    return json.loads(out)["revocations"]


def audit_rows(home):
    db = sqlite3.connect(os.path.join(home, "agent-iam.db"))
    try:
        return db.execute("SELECT count(*) FROM audit").fetchone()[0]
    finally:
        db.close()


# ---- 1. help ----------------------------------------------------------------

def help_entries(text):
    """{command words: flags} of the help list: an entry starts at a line
    indented two spaces; lines indented 3 to 15 continue its flags; lines
    indented more are its description, as is what follows two spaces."""
    entries = {}
    cur = None
    for line in text.splitlines():
        if re.match(r"^  [a-z]", line):
            part = re.split(r"\s{2,}", line.strip())[0]
            words = []
            for w in part.split():
                if not re.fullmatch(r"[a-z][a-z0-9-]*", w):
                    break
                words.append(w)
            cur = tuple(words)
            entries.setdefault(cur, set()).update(flags_of(part))
        elif cur is not None and re.match(r"^ {3,15}\S", line):
            part = re.split(r"\s{2,}", line.strip())[0]
            entries[cur].update(flags_of(part))
        elif cur is not None and re.match(r"^ {16,}\S", line):
            pass
        else:
            cur = None
    return entries


def section_help():
    print("# 1. help lists every command; --help and -h after each",
          flush=True)
    nohome = S.home("help-home")
    rc, top, err = S.cli("help")
    check("help: exit 0, the list on stdout", rc == 0 and "revoke" in top,
          "exit %d: %s" % (rc, err))
    for a in ("--help", "-h"):
        rc2, out, _ = S.cli(a)
        check("agent-iam %s: the same list, exit 0" % a,
              rc2 == 0 and out == top, "exit %d" % rc2)
    entries = help_entries(top)
    for words in (("token", "create-root"), ("token", "delegate"),
                  ("token", "verify"), ("token", "show"), ("token", "check"),
                  ("token", "refresh"), ("cred",), ("revoke",),
                  ("unrevoke",), ("serve",), ("follower",), ("sync",),
                  ("config", "init", "github"), ("apikey", "add"),
                  ("audit", "verify"), ("status",)):
        check("help lists %s" % " ".join(words), words in entries,
              sorted(" ".join(w) for w in entries))
    groups = set()
    for words in entries:
        for i in range(1, len(words)):
            groups.add(words[:i])
    calls = HOLE.accepted
    for words in sorted(set(entries) | groups):
        name = " ".join(words)
        for h in ("--help", "-h"):
            args = ["--home", nohome] + list(words) + [h]
            if words in (("revoke",), ("unrevoke",), ("status",),
                         ("rotate-key",)):
                args += ["--leader-url", HOLE.url, "--auth-token", "x"]
            rc, out, err = cli(*args, timeout=10)
            want = ("usage: agent-iam [" if words == ("help",)
                    else "usage: agent-iam " + name)
            check("%s %s: usage on stdout, exit 0, nothing on stderr" %
                  (name, h), rc == 0 and out.startswith(want) and err == "",
                  "exit %s; stdout %r; stderr %r" % (rc, out[:120],
                                                     err[:200]))
        if words in groups or words == ("help",):
            continue
        rc, out, _ = cli(*(list(words) + ["--help"]))
        mine = flags_of(out)
        listed = entries[words]
        check("help lists the flags of %s" % name, mine == listed,
              "usage only: %s; help only: %s" %
              (sorted(mine - listed), sorted(listed - mine)))
    check("--help created no home", not os.path.exists(nohome) and
          not os.path.exists(os.path.join(S.TMP, ".agent-iam")))
    check("--help called no leader", HOLE.accepted == calls,
          "%d connections" % (HOLE.accepted - calls))
    # main.c's command table: every command it runs is in the list
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "..", "src", "cli", "main.c")
    with open(src) as f:
        table = set(re.findall(r'\{"([a-z-]+)", cli_[a-z_]+\}', f.read()))
    firsts = {w[0] for w in entries if w}
    check("help lists every command main.c runs (%d)" % len(table),
          table and table <= firsts, sorted(table - firsts))
    return {f for f in set().union(*entries.values()) if is_secret(f)}


# ---- 2. help revokes nothing ------------------------------------------------

def section_revoke_help():
    print("# 2. revoke --help, revoke -h, unrevoke --help revoke nothing",
          flush=True)
    home = S.home("local")
    rc, _, err = S.cli("--home", home, "revoke", tid())
    check("local: a real revoke works (exit 0)", rc == 0, err)
    n0, a0 = local_revocations(home), audit_rows(home)
    some = tid()
    for args in (["revoke", "--help"], ["revoke", "-h"],
                 ["unrevoke", "--help"], ["unrevoke", "-h"],
                 ["revoke", some, "--help"], ["revoke", "--agent", "bot",
                                              "-h"],
                 ["revoke", "--help", "--reason", "x"]):
        rc, out, err = S.cli("--home", home, *args)
        check("local: %s: usage on stdout, exit 0" % " ".join(args),
              rc == 0 and out.startswith("usage: agent-iam " + args[0]),
              "exit %s; stdout %r; stderr %r" % (rc, out[:100], err[:200]))
    check("local: the revocation count is unchanged",
          local_revocations(home) == n0,
          "%d -> %d" % (n0, local_revocations(home)))
    check("local: no audit row", audit_rows(home) == a0,
          "%d -> %d" % (a0, audit_rows(home)))

    lhome = S.home("leader")
    adm = S.secret_file("admin.tok", ADMIN)
    L = S.leader("leader", lhome, "--admin-token-file", adm)
    try:
        def count():
            r = S.call(L, "GET", "/v1/status", bearer=ADMIN)
            return r.json["revocations"] if r.status == 200 else None
        remote = ["--leader-url", L.url, "--auth-token-file", adm,
                  "--ca-cert", S.CA]
        rc, _, err = S.cli("revoke", tid(), *remote)
        check("leader: a real revoke works (exit 0)", rc == 0, err)
        n0 = count()
        for args in (["revoke", "--help"], ["revoke", "-h"],
                     ["unrevoke", "--help"], ["revoke", some, "--help"]):
            rc, out, err = cli(*(args + remote))
            check("leader: %s --leader-url: usage, exit 0" % " ".join(args),
                  rc == 0 and out.startswith("usage: agent-iam " + args[0]),
                  "exit %s; stdout %r; stderr %r" %
                  (rc, out[:100], err[:200]))
        check("leader: its revocation count is unchanged", count() == n0,
              "%s -> %s" % (n0, count()))
        rc, _, err = S.cli("revoke", tid(), *remote)
        check("leader: and a revoke after them counts",
              rc == 0 and count() == n0 + 1, "%s: %s" % (count(), err))
    finally:
        L.stop_checked()


# ---- 3. token ids -----------------------------------------------------------

def section_ids():
    print("# 3. revoke and unrevoke take a tokenId", flush=True)
    home = S.home("ids")
    S.cli("--home", home, "status")
    n0 = local_revocations(home)
    for cmd in ("revoke", "unrevoke"):
        for bad in ("notanid", "", tid()[:21], tid() + "A", "-" * 21,
                    tid()[:21] + "=", tid()[:21] + ".", tid()[:20] + "é"):
            rc, out, err = S.cli("--home", home, cmd, bad)
            check("%s %r: exit 2, says what a token id is" % (cmd, bad),
                  rc == 2 and "22" in err and "usage" in err and out == "",
                  "exit %s; stderr %r" % (rc, err[:300]))
    check("refused ids revoked nothing", local_revocations(home) == n0)
    for first in ("-", "--", "-h", "--help"):
        i = tid(first)
        rc, out, err = S.cli("--home", home, "revoke", i)
        check("revoke %s (22 characters): exit 0, taken as the id" % i,
              rc == 0 and out.strip() == "revoked token " + i,
              "exit %d; %r %r" % (rc, out, err[:200]))
        rc, out, err = S.cli("--home", home, "unrevoke", i)
        check("unrevoke %s: exit 0" % i,
              rc == 0 and out.strip() == "unrevoked token " + i,
              "exit %d; %r %r" % (rc, out, err[:200]))
    i = tid()
    rc, out, err = S.cli("--home", home, "revoke", "--", i)
    check("revoke -- ID: exit 0", rc == 0, err)
    rc, out, err = S.cli("--home", home, "revoke", "--agent", "not-a-token-id")
    check("revoke --agent takes any agent id", rc == 0, err)


# ---- 4. secrets in argv -----------------------------------------------------

def section_argv():
    print("# 4. secret flags leave /proc/PID/cmdline at once", flush=True)
    sec = lambda tag: "S3cr3t-%s-%s" % (tag, os.urandom(8).hex())
    tokf = S.secret_file("auth.tok", "the-auth-token")

    # admin commands on a leader that never answers
    cases = [
        ("apikey add --key", lambda s: ["apikey", "add", "--name", "k1",
                                        "--provider", "openai", "--key", s,
                                        "--auth-token-file", tokf],
         ["--key"]),
        ("apikey add --key=", lambda s: ["apikey", "add", "--name", "k1",
                                         "--provider", "openai", "--key=" + s,
                                         "--auth-token-file", tokf],
         ["--key="]),
        ("apikey add --auth-token", lambda s: ["apikey", "add", "--name",
                                               "k1", "--provider", "openai",
                                               "--key-file", tokf,
                                               "--auth-token", s],
         ["--auth-token"]),
        ("revoke --auth-token", lambda s: ["revoke", tid(), "--auth-token",
                                           s], ["--auth-token"]),
        ("revoke --auth-token=", lambda s: ["revoke", tid(),
                                            "--auth-token=" + s],
         ["--auth-token="]),
        ("config init google --client-secret",
         lambda s: ["config", "init", "google", "--client-id", "cid",
                    "--client-secret", s, "--refresh-token-file", tokf,
                    "--auth-token-file", tokf], ["--client-secret"]),
        ("config init google --refresh-token",
         lambda s: ["config", "init", "google", "--client-id", "cid",
                    "--client-secret-file", tokf, "--refresh-token", s,
                    "--auth-token-file", tokf], ["--refresh-token"]),
        ("config init aws --secret-access-key",
         lambda s: ["config", "init", "aws", "--region", "us-east-1",
                    "--role-arn", "arn:aws:iam::123456789012:role/r",
                    "--access-key-id", "AKIAIOSFODNN7EXAMPLE",
                    "--secret-access-key", s, "--auth-token-file", tokf],
         ["--secret-access-key"]),
        ("sync --auth-token", lambda s: ["--home", S.home("sync"), "sync",
                                         "--follower-id", "f1",
                                         "--auth-token", s],
         ["--auth-token"]),
    ]
    for name, argv, flags in cases:
        s = sec(name.split()[-1].strip("-="))
        args = argv(s) + ["--leader-url", HOLE.url]
        before = HOLE.accepted
        p = start(args)
        no_secret_in_argv(name, p, [s], flags, connected(before))

    # a follower of that leader: it serves while its sync waits
    flags = secret_flags_of("follower")
    given = {f: sec(f.strip("-")) for f in flags}
    before = HOLE.accepted
    F = S.follower("follower", S.home("follower"), HOLE.url,
                   "--follower-id", "f1",
                   *[x for f in flags for x in (f, given[f])])
    S.wait_for(connected(before), 10)
    line = cmdline(F.pid)
    check("follower %s: none in /proc/PID/cmdline" % " ".join(flags),
          not any(v.encode() in line for v in given.values()) and
          all(f.encode() in line for f in flags), repr(line))
    tried.update(flags)
    F.stop_checked()

    # serve: every secret flag of its usage on a running leader, and each
    # while another waits on stdin
    flags = secret_flags_of("serve")
    given = {f: sec(f.strip("-")) for f in flags}
    L = S.leader("argv-leader", S.home("argv-leader"),
                 *[x for f in flags for x in (f, given[f])])
    line = cmdline(L.pid)
    check("serve %s: none in /proc/PID/cmdline" % " ".join(flags),
          not any(v.encode() in line for v in given.values()) and
          all(f.encode() in line for f in flags), repr(line))
    tried.update(flags)
    L.stop_checked()
    for given in flags:
        waiting = "--auth-token" if given != "--auth-token" else \
            "--admin-token"
        s = sec(given)
        p = start(["--home", S.home("serve-stdin"), "serve", "--host",
                   "127.0.0.1", "--port", "0", "--tls-cert", S.CERT,
                   "--tls-key", S.KEY, given, s, waiting, "-"],
                  stdin=subprocess.PIPE)
        no_secret_in_argv("serve %s while %s - waits on stdin" %
                          (given, waiting), p, [s], [given, waiting],
                          after(1.5))

    # local commands with a bearer token, held on a locked database
    home = S.home("locked")
    rc, root, err = S.cli("--home", home, "token", "create-root",
                          "--agent-id", "bot", "--scopes",
                          "openai:chat:completions")
    root = root.strip()
    check("a root token for the local cases", rc == 0 and root, err)
    db = sqlite3.connect(os.path.join(home, "agent-iam.db"),
                         isolation_level=None, timeout=1)
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    db.execute("BEGIN EXCLUSIVE")
    db.execute("CREATE TABLE IF NOT EXISTS t_lock (x)")
    try:
        for name, args, flags in (
                ("cred --token", ["cred", "openai:chat:completions", "",
                                  "--token", root], ["--token"]),
                ("token delegate --parent",
                 ["token", "delegate", "--parent", root, "--scopes",
                  "openai:chat:completions"], ["--parent"]),
                ("token refresh TOKEN", ["token", "refresh", root], [])):
            p = start(["--home", home] + args)
            no_secret_in_argv(name + " (the database locked)", p, [root],
                              flags + ["--home"], after(1.5))
    finally:
        db.execute("ROLLBACK")
        db.close()



secret = section_help()
section_revoke_help()
section_ids()
section_argv()
check("section 4 tried every secret flag of the help list", secret <= tried,
      sorted(secret - tried))

print("%d passed, %d failed" % (checks.counts["pass"],
                                checks.counts["fail"]), flush=True)
sys.exit(1 if checks.counts["fail"] else 0)
