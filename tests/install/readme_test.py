#!/usr/bin/env python3
"""Every ```sh block of README.md and deploy/README.md, run as written.

Each block runs in bash, in a process group of its own (killed when it
ends), with the tree's build/ first on PATH (the README says so before its
first bare `agent-iam`) and HOME in a temporary folder. A line's trailing
comment `# exit N[: WHY]` asserts its exit status (and WHY's words in its
output), `# valid` / `# allowed` status 0 and that word, `# "TEXT"` that
its output holds TEXT; a comment line `# {...}` after it, its output; a
comment line `# agent-iam: ...`, what the last server started with `&`
said; `...` matches anything. Any
other command must exit 0. Blocks of synopses (flags in brackets,
placeholders) are held to `agent-iam COMMAND --help` instead: the command
exists and knows every flag shown. deploy/README.md's blocks run in one
bash, as root, in a private mount namespace (a copy of /etc, an overlay
on /usr/local, empty /var/lib and /var/backups), with systemctl and journalctl replaced as SUBST
says; without root or unshare that part prints `skip deploy-readme: WHY`.
README=PATH and DEPLOY_README=PATH run other copies (to see it fail).
Prints ok/FAIL lines; exits 1 on a failure."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
from free_port import free_port  # noqa: E402

# ---- what is not run as written, and why -------------------------------
# Blocks: (doc, first line starts with, mode, cwd, hidden setup run before
# it). mode: run | synopsis | deploy. cwd: top (the tree), tree (a
# temporary folder standing for the tree: build/ linked, .run/ of its own),
# own (a fresh temporary folder), work (deploy: the admin's folder, holding
# ca.pem and F).
BLOCKS = [
    ("README.md", "make run", "run", "top", ""),
    ("README.md", 'A="--leader-url', "run", "tree", ""),
    ("README.md", "export AGENT_IAM_HOME=$(mktemp", "run", "own", ""),
    ("README.md", "agent-iam token create-root --agent-id ID", "synopsis", "own", ""),
    ("README.md", "agent-iam key list", "synopsis", "own", ""),
    # ./key.pem: a GitHub App's private key (an RSA key made for it)
    ("README.md", "agent-iam config init github", "run", "own",
     "export AGENT_IAM_HOME=$PWD/home\nopenssl genrsa -out key.pem 2048 2>/dev/null\n"),
    # @agent.tok: a token for the three providers, and an OpenAI API key
    ("README.md", "agent-iam cred github", "run", "own",
     "export AGENT_IAM_HOME=$PWD/home\n"
     "agent-iam apikey add --name openai --provider openai --key sk-example >/dev/null\n"
     "agent-iam token create-root --agent-id agent"
     " --scopes github:repo:read,aws:s3:read,openai:chat:completions >agent.tok\n"),
    ("README.md", "export AGENT_IAM_HOME=/tmp/leader-home", "run", "own", ""),
    # a token and a CA file for the block, from the `make run` leader
    ("README.md", "export AGENT_IAM_LEADER_URL=", "run", "own",
     'A="--leader-url https://localhost:{run} --auth-token-file {tree}/.run/home/admin.token'
     ' --ca-cert {tree}/.run/home/tls/ca.pem"\n'
     "cp {tree}/.run/home/tls/ca.pem ca.pem\n"
     "agent-iam apikey add $A --name openai --provider openai --key sk-example >/dev/null &&\n"
     "agent-iam token create-root $A --agent-id eu-agent"
     " --scopes github:repo:read,openai:chat:completions >child.tok || exit 1\n"),
    ("README.md", "export PATH=$PWD/build:$PATH", "run", "tree", ""),
    # the A of the block 'While make run serves' (another terminal)
    ("README.md", "# with make run serving", "run", "tree",
     'A="--leader-url https://localhost:{run} --auth-token-file .run/home/admin.token'
     ' --ca-cert .run/home/tls/ca.pem"\n'),
    ("deploy/README.md", "make install", "deploy", "top", ""),
    # ca.pem and F: the fleet's CA and a file holding the admin token
    ("deploy/README.md", "(umask 077; agent-iam followers add eu-1", "deploy", "work",
     "cp /etc/agent-iam/pki/ca.pem ca.pem && cp /etc/agent-iam/admin-token F\n"
     "URL=https://leader.example.com:{dl}\n"),
    # the prose's certificate for eu-1, and the token copied as it says
    ("deploy/README.md", "install -d -m 0700 /etc/agent-iam /etc/agent-iam/pki", "deploy",
     "top", "certs/gen.sh --out /etc/agent-iam/pki follower eu-1 --san DNS:eu-1.example.com"
     " >/dev/null\ninstall -m 0600 {work}/follower-eu-1.token /etc/agent-iam/\n"),
    ("deploy/README.md", "agent-iam rotate-key", "deploy", "work", ""),
    # TOKEN_ID and AGENT_ID: a root token made for it
    ("deploy/README.md", "agent-iam revoke TOKEN_ID", "deploy", "work",
     "TID=$(agent-iam --json token create-root --leader-url $URL --auth-token-file F"
     " --ca-cert ca.pem --agent-id leaked-agent --scopes github:repo:read |"
     " sed -n 's/.*\"tokenId\": \"\\(.*\\)\".*/\\1/p')\n"),
    # master.key kept "separately and safely", as the prose says
    ("deploy/README.md", "install -d -o agent-iam -g agent-iam -m 0700 /var/backups", "deploy",
     "work",
     "install -d -m 0700 {tmp}/safe && cp /var/lib/agent-iam/leader/master.key {tmp}/safe/\n"),
    ("deploy/README.md", "systemctl stop agent-iam-leader", "deploy", "work", ""),
]
# Substitutions: (doc, block, old, new, why). Each must apply. {run},
# {lp}... are free ports, {dir} the block's temporary folder.
SUBST = [
    ("README.md", "make run", "make run    #", "__make_run  #",
     "make run: its walk-through and leader (scripts/walkthrough.sh, after deps and a build"
     " already done) in the background, in a folder standing for the tree, on a free port"),
    ("README.md", "make run", "make test   #", ": make test #",
     "make test: this test runs inside it"),
    ("README.md", "agent-iam config init github", "[--owner myorg]", "--owner myorg",
     "the optional flag, given"),
    ("README.md", "agent-iam cred github", "agent-iam cred github:repo:read",
     ": agent-iam cred github:repo:read",
     "a GitHub App and its API: held to `agent-iam cred --help` (synopsis) instead"),
    ("README.md", "agent-iam cred github", "agent-iam cred aws:s3:read",
     ": agent-iam cred aws:s3:read",
     "AWS STS and a role: held to `agent-iam cred --help` instead"),
    ("README.md", 'A="--leader-url', "localhost:8443", "localhost:{run}",
     "8443: the free port of the make run leader"),
    ("README.md", "export AGENT_IAM_HOME=/tmp/leader-home", "sleep 1",
     "__wait https://localhost:{lp}/healthz", "sleep 1: a wait for /healthz"),
    ("README.md", "export AGENT_IAM_HOME=/tmp/leader-home", "/tmp/", "{dir}/",
     "/tmp: a private folder"),
    ("README.md", "export AGENT_IAM_HOME=/tmp/leader-home", "8443", "{lp}", "8443: a free port"),
    ("README.md", "export AGENT_IAM_LEADER_URL=", "https://follower-eu.example:8443",
     "https://localhost:{run}", "no follower-eu.example here: the make run leader answers the"
     " same agent verbs"),
    ("README.md", "export PATH=$PWD/build:$PATH", "&\nsleep 1\nL=",
     "&\n__wait https://localhost:{lp}/healthz\nL=", "sleep 1: a wait for the leader's /healthz"),
    ("README.md", "export PATH=$PWD/build:$PATH", "--public-metrics &\nsleep 1",
     "--public-metrics &\n__wait https://localhost:{fp}/readyz",
     "sleep 1: a wait for the follower's /readyz (synced)"),
    ("README.md", "export PATH=$PWD/build:$PATH", "/tmp/", "{dir}/", "/tmp: a private folder"),
    ("README.md", "export PATH=$PWD/build:$PATH", "8443", "{lp}", "8443: a free port"),
    ("README.md", "export PATH=$PWD/build:$PATH", "9443", "{fp}", "9443: a free port"),
    ("README.md", "# with make run serving", "localhost:8443", "localhost:{run}",
     "8443: the free port of the make run leader"),
    ("deploy/README.md", "make install", "/etc/agent-iam/leader.env      # optional: port, flags",
     "/etc/agent-iam/leader.env && __setenv /etc/agent-iam/leader.env AGENT_IAM_PORT={dl}",
     "the leader on a free port (the comment's 'optional: port')"),
    ("deploy/README.md", "make install", "8443", "{dl}", "8443: that port"),
    ("deploy/README.md", "install -d -m 0700 /etc/agent-iam /etc/agent-iam/pki",
     "/etc/agent-iam/follower.env   # set AGENT_IAM_LEADER_URL",
     "/etc/agent-iam/follower.env && __setenv /etc/agent-iam/follower.env"
     " AGENT_IAM_LEADER_URL=$URL AGENT_IAM_PORT={df}",
     "the comment's 'set AGENT_IAM_LEADER_URL', and a free port (one machine for both)"),
    ("deploy/README.md", "install -d -m 0700 /etc/agent-iam /etc/agent-iam/pki", "8443", "{df}",
     "8443: the follower's free port"),
    ("deploy/README.md", "agent-iam revoke TOKEN_ID", "TOKEN_ID", "$TID", "a real tokenId"),
    ("deploy/README.md", "agent-iam revoke TOKEN_ID", "AGENT_ID", "leaked-agent", "its agent"),
    ("deploy/README.md", "agent-iam revoke TOKEN_ID", "$URL ...",
     "$URL --auth-token-file F --ca-cert ca.pem", "...: the flags of the blocks above"),
    ("deploy/README.md", "systemctl stop agent-iam-leader", "DATE", "$(date +%F)",
     "DATE: the backup's date"),
    ("deploy/README.md", "systemctl stop agent-iam-leader", "/safe/place", "{tmp}/safe",
     "the master.key kept aside above"),
]
# Also, in deploy/README.md (functions defined before its blocks):
#   systemctl start|enable --now|stop|restart UNIT: the unit's ExecStart
#     run as its user by tests/install/unit_exec.py (no systemd as PID 1
#     here), credentials under a temporary folder; start waits for the
#     server's "listening on" line; daemon-reload does nothing;
#   journalctl -u UNIT: that process's stdout and stderr;
#   sudo -u USER CMD: runuser -u USER -- CMD (sudo is not installed);
#   leader.example.com and eu-1.example.com: 127.0.0.1 in the private
#     /etc/hosts; $URL: https://leader.example.com:{dl}.

PRELUDE = r"""
__wait() {  # URL: until the server answers (any status), 15 s at most
    __i=0
    until curl -sk -o /dev/null "$1" 2>/dev/null; do
        __i=$((__i + 1)); [ $__i -gt 150 ] && return 1; sleep 0.1
    done
}
__make_run() {  # make run's walk-through and leader, in the background
    # setsid alone in the background: $! is then the walk-through's session
    # (with `cd && setsid ... &` it was a subshell's, no group to kill)
    (cd {tree} || exit 1
     AGENT_IAM_PORT={run} setsid sh {top}/scripts/walkthrough.sh \
        {top}/build/agent-iam {top}/build/examples >{tmp}/make-run.log 2>&1 </dev/null &
     echo $! >{tmp}/make-run.pid)
    __wait https://localhost:{run}/healthz
}
__setenv() {  # FILE NAME=VALUE...: set each NAME in an environment file
    __f=$1; shift
    for __a; do
        grep -v "^${__a%%=*}=" "$__f" >"$__f.new"; echo "$__a" >>"$__f.new"; mv "$__f.new" "$__f"
    done
}
__unit() {  # UNIT: its file, then its instance
    case $1 in
    *@*) echo "/etc/systemd/system/${1%%@*}@.service"; echo "${1#*@}" ;;
    *) echo "/etc/systemd/system/$1.service"; echo ;;
    esac
}
__start() {
    { read -r __uf; read -r __in; } <<EOF
$(__unit "$1")
EOF
    __n=$(cat {tmp}/journal-$1 2>/dev/null | grep -c 'listening on')
    python3 {top}/tests/install/unit_exec.py "$__uf" "$__in" / --creds {tmp}/creds/$1 \
        --user agent-iam --exec {tmp}/journal-$1 &
    echo $! >{tmp}/pid-$1
    __i=0
    until [ "$(cat {tmp}/journal-$1 2>/dev/null | grep -c 'listening on')" -gt "$__n" ]; do
        kill -0 $! 2>/dev/null || return 1
        __i=$((__i + 1)); [ $__i -gt 150 ] && return 1; sleep 0.1
    done
}
__stop() { [ -f {tmp}/pid-$1 ] && kill -TERM "$(cat {tmp}/pid-$1)" && wait "$(cat {tmp}/pid-$1)"; }
systemctl() {
    case $1 in
    daemon-reload) ;;
    enable) [ "$2" = --now ] && __start "$3" ;;
    start) __start "$2" ;;
    stop) __stop "$2" ;;
    restart) __stop "$2"; __start "$2" ;;
    *) echo "systemctl $1: not simulated" >&2; return 1 ;;
    esac
}
journalctl() { [ "$1" = -u ] && cat {tmp}/journal-$2; }
sudo() { [ "$1" = -u ] || return 2; __u=$2; shift 2; runuser -u "$__u" -- "$@"; }
"""
# the namespace: private copies of what deploy/README.md writes; /usr/local
# an overlay (python3 may live there), else an empty folder
NAMESPACE = r"""
cp -a /etc {tmp}/etc && mount --bind {tmp}/etc /etc || exit 77
printf '127.0.0.1 leader.example.com eu-1.example.com\n' >>/etc/hosts
mkdir -p {tmp}/ov && mount -t tmpfs tmpfs {tmp}/ov && mkdir {tmp}/ov/up {tmp}/ov/work &&
    mount -t overlay overlay -o lowerdir=/usr/local,upperdir={tmp}/ov/up,workdir={tmp}/ov/work \
        /usr/local 2>/dev/null ||
    { mkdir -p -m 0755 {tmp}/usr/local && mount --bind {tmp}/usr/local /usr/local; } || exit 77
for d in var/lib var/backups; do
    mkdir -p -m 0755 {tmp}/$d && mount --bind {tmp}/$d /$d || exit 77
done
mkdir -m 0755 {tmp}/creds
"""

passed = failed = 0


def ok(msg):
    global passed
    passed += 1
    print("ok   " + msg, flush=True)


def no(msg):
    global failed
    failed += 1
    print("FAIL " + msg, flush=True)


def blocks(path):
    """The ```sh blocks of a file: (first line number, text)."""
    out, cur, start = [], None, 0
    for i, ln in enumerate(open(path), 1):
        if cur is None and ln.strip() == "```sh":
            cur, start = [], i + 1
        elif cur is not None and ln.strip() == "```":
            out.append((start, "".join(cur)))
            cur = None
        elif cur is not None:
            cur.append(ln)
    return out


def comment(line):
    m = re.search(r"\s#\s?(.*)$", line)
    return m.group(1).strip() if m else ""


def steps(text, first):
    """Commands (backslash lines joined) with their line and expectations."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        ln = lines[i]
        if not ln.strip() or ln.lstrip().startswith("#"):
            s = ln.strip()[1:].strip()
            if out and s.startswith("{"):
                out[-1]["json"] = re.split(r"\s{2,}", s)[0]
            bg = [st for st in out if st["cmd"].rstrip().endswith("&")]
            if bg and s.startswith("agent-iam: "):   # what a server started with & says
                bg[-1].setdefault("says", []).append(s)
            i += 1
            continue
        start, cmd = i, [ln]
        while cmd[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd.append(lines[i])
        c = comment(cmd[-1])
        st = {"line": first + start, "cmd": "\n".join(cmd), "exit": 0}
        m = re.match(r"exit (\d+)(: (.*))?", c)
        if m:
            st["exit"] = int(m.group(1))
            if m.group(3):
                st["why"] = m.group(3)
        elif c in ("valid", "allowed"):
            st["word"] = c
        elif c.startswith('"'):
            st["text"] = c.strip('"')
        out.append(st)
        i += 1
    return out


def fill(s, v):
    """{name} replaced by v[name] for the names v has; other braces stay."""
    return re.sub(r"\{([a-z]+)\}", lambda m: str(v.get(m.group(1), m.group(0))), s)


def pattern(s):
    return ".*".join(re.escape(p) for p in s.split("..."))


def script(steps_, res):
    """bash lines running each command in this shell, recording its status
    and output under res (RES.LINE.out / .err, RES.status)."""
    body = []
    for st in steps_:
        n = st["line"]
        body.append("{ %s\n} >%s/%d.out 2>%s/%d.err </dev/null; echo \"%d $?\" >>%s/status"
                    % (st["cmd"], res, n, res, n, n, res))
    return "\n".join(body) + "\n"


def read(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""


def judge(name, steps_, res):
    """ok/FAIL for a run block from its recorded results."""
    status = dict(tuple(map(int, ln.split())) for ln in read(res + "/status").split("\n") if ln)
    bad, checked = 0, 0
    for st in steps_:
        n = st["line"]
        out, err = read("%s/%d.out" % (res, n)), read("%s/%d.err" % (res, n))
        what, got = [], []
        if n not in status:
            what.append("it to run")
            got.append("not reached")
        elif status[n] != st["exit"]:
            what.append("exit %d" % st["exit"])
            got.append("exit %d" % status[n])
        if "word" in st and st["word"] not in out.split():
            what.append(repr(st["word"]))
            got.append(repr(out.strip()[:200]))
        if "why" in st and not all(w in (out + err).lower() for w in st["why"].lower().split()):
            what.append("the reason %r" % st["why"])
            got.append(repr((out + err).strip()[:300]))
        for line in st.get("says", []):
            if line not in (out + err):
                what.append(repr(line))
                got.append(repr((out + err).strip()[:400]))
        if "text" in st and not re.search(pattern(st["text"]), out + err):
            what.append(repr(st["text"]))
            got.append(repr((out + err).strip()[:300]))
        if "json" in st and not re.fullmatch(pattern(re.sub(r"\s", "", st["json"])),
                                             re.sub(r"\s", "", out)):
            what.append(st["json"])
            got.append(repr(out.strip()[:300]))
        checked += len(st.get("says", [])) + (st["exit"] != 0) + sum(
            k in st for k in ("why", "word", "text", "json"))
        if what:
            bad += 1
            no("%s line %d: `%s`: expected %s, got %s%s" % (
                name, n, st["cmd"].split("\n")[0][:100], ", ".join(what), ", ".join(got),
                "; stderr: " + err.strip()[:300] if err.strip() else ""))
    if not bad:
        ok("%s: %d commands, %d outputs or statuses checked" % (name, len(steps_), checked))


def synopsis(name, text, env, cwd=None):
    """Each `agent-iam ...` entry: its command answers --help and names
    every flag the entry shows; with cwd, an entry with no placeholder (no
    brackets, |, ... or CAPITALS) also runs there, on a home of its own,
    and must exit 0."""
    entries = []
    for ln in text.split("\n"):
        ln = re.sub(r"\s#.*$", "", ln)
        if ln.startswith("agent-iam "):
            entries.append(ln)
        elif ln.startswith(" ") and ln.strip() and entries:
            entries[-1] += " " + ln.strip()
    bad = ran = 0
    for e in entries:
        if cwd and not re.search(r"[\[|]|\.\.\.|\b[A-Z][A-Z_0-9]*\b", e):
            ran += 1
            p = subprocess.run(["bash", "-c", e], cwd=cwd, capture_output=True, text=True,
                               env=dict(env, AGENT_IAM_HOME=cwd + "/home"),
                               stdin=subprocess.DEVNULL, timeout=30)
            if p.returncode != 0:
                bad += 1
                no("%s: `%s`: expected exit 0, got exit %d; stderr: %s" % (
                    name, e[:100], p.returncode, p.stderr.strip()[:300]))
        for alt in e.split(" | "):
            words = alt.replace("agent-iam ", "", 1).split()
            cmd = []
            for w in words:
                if not re.fullmatch(r"[a-z][a-z-]*", w) or len(cmd) == 3:
                    break
                cmd.append(w)
            p = subprocess.run(["agent-iam"] + cmd + ["--help"], env=env,
                               capture_output=True, text=True)
            flags = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", alt)
            missing = [f for f in flags if f not in p.stdout + p.stderr]
            if p.returncode != 0 or missing:
                bad += 1
                no("%s: `%s`: agent-iam %s --help exit %d%s" % (
                    name, alt[:100], " ".join(cmd), p.returncode,
                    ", lacks " + " ".join(missing) if missing else ""))
    if not bad:
        ok("%s: %d synopses match their --help%s" % (
            name, len(entries), ", %d without placeholders run" % ran if ran else ""))


def killgroup(pid):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.3)


def run(argv, cwd, env, log, timeout):
    with open(log, "w") as f:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True)
        rc = None
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:   # whatever it left running, also on SIGTERM or Ctrl-C
            killgroup(p.pid)
            p.wait()
        return rc


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="readme-test.")
    os.chmod(tmp, 0o755)
    ports = set()
    while len(ports) < 5:
        ports.add(free_port())
    v = dict(zip(("run", "lp", "fp", "dl", "df"), sorted(ports)))
    v.update(top=TOP, tmp=tmp, tree=tmp + "/tree", work=tmp + "/work")
    os.makedirs(v["tree"])
    os.makedirs(v["work"])
    os.symlink(TOP + "/build", v["tree"] + "/build")
    env = {k: x for k, x in os.environ.items() if not k.startswith("AGENT_IAM_")}
    env.update(HOME=tmp + "/home", TMPDIR=tmp + "/tmpdir",
               PATH=TOP + "/build:" + env.get("PATH", "/usr/bin:/bin"))
    os.makedirs(env["HOME"])
    os.makedirs(env["TMPDIR"])
    docs = {"README.md": os.environ.get("README", TOP + "/README.md"),
            "deploy/README.md": os.environ.get("DEPLOY_README", TOP + "/deploy/README.md")}
    deploy = []
    try:
        for doc, path in docs.items():
            for k, (line, text) in enumerate(blocks(path), 1):
                name = "%s block %d (line %d)" % (doc, k, line)
                conf = [b for b in BLOCKS if b[0] == doc and text.startswith(b[1])]
                if len(conf) != 1:
                    no("%s: not in readme_test.py's table of blocks (%s)" % (name, text[:60]))
                    continue
                _, key, mode, cwd, setup = conf[0]
                d = "%s/b%s.%d" % (tmp, doc[0], k)
                os.makedirs(d + "/res")
                os.makedirs(d + "/tmp")
                vb = dict(v, dir=d)
                for sdoc, skey, old, new, why in SUBST:
                    if (sdoc, skey) != (doc, key):
                        continue
                    if old not in text:
                        no("%s: substitution %r no longer applies (%s)" % (name, old, why))
                    text = text.replace(old, fill(new, vb))
                if mode == "synopsis":
                    synopsis(name, text, env, d)
                    continue
                held = [ln[2:] for ln in text.split("\n") if ln.startswith(": agent-iam ")]
                if held:
                    synopsis(name + " (not run)", "\n".join(held), env)
                st = steps(text, line)
                where = {"top": TOP, "tree": v["tree"], "own": d, "work": v["work"]}[cwd]
                sh = "cd %s || exit 1\n%s%s" % (where, fill(setup, vb), script(st, d + "/res"))
                if mode == "deploy":
                    deploy.append((name, st, d + "/res", sh))
                    continue
                with open(d + "/run.sh", "w") as f:
                    f.write(fill(PRELUDE, vb) + sh)
                run(["bash", d + "/run.sh"], d, env, d + "/log", 60)
                judge(name, st, d + "/res")
        run_deploy(deploy, v, env, tmp)
    finally:
        pid = read(tmp + "/make-run.pid").strip()
        if pid:
            killgroup(int(pid))
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def run_deploy(deploy, v, env, tmp):
    if not deploy:
        return
    why = None
    if os.geteuid() != 0:
        why = "not root"
    elif not shutil.which("unshare"):
        why = "no unshare"
    elif subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        why = "unshare -m fails here"
    elif not shutil.which("systemd-sysusers") or not shutil.which("runuser"):
        why = "systemd-sysusers or runuser missing"
    if why:
        print("skip deploy-readme: " + why, flush=True)
        return
    body = fill(NAMESPACE, v) + fill(PRELUDE, v)
    body += ("trap 'for f in %s/pid-*; do [ -f \"$f\" ] && kill \"$(cat \"$f\")\"; done' EXIT\n"
             % tmp)
    body += "".join(sh for _, _, _, sh in deploy)
    with open(tmp + "/deploy.sh", "w") as f:
        f.write(body)
    denv = dict(env, PATH="/usr/local/bin:" + env["PATH"].split(":", 1)[1])
    rc = run(["unshare", "-m", "bash", tmp + "/deploy.sh"], TOP, denv, tmp + "/deploy.log", 120)
    if rc == 77:
        print("skip deploy-readme: the private mounts failed: " + read(tmp + "/deploy.log")[:200])
        return
    for name, st, res, _ in deploy:
        judge(name, st, res)


if __name__ == "__main__":
    sys.exit(main())
