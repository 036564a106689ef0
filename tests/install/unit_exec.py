#!/usr/bin/env python3
"""The ExecStart of a unit of deploy/, expanded as systemd would, for tests
without systemd as PID 1 (tests/install/deploy_verify.sh, readme_test.py).

Usage: unit_exec.py UNIT INSTANCE ROOT [--creds DIR] [--user U] [--bin PATH]
                    [--exec LOG]

Environment=, EnvironmentFile=, %i and $CREDENTIALS_DIRECTORY are expanded;
/etc/agent-iam and /var/lib/agent-iam move under ROOT ("/" keeps them);
each StateDirectory= is made (parents 0755, itself StateDirectoryMode=,
owned by U); each LoadCredential= source (which must exist) is copied,
0400, into DIR (default ROOT/creds-<unit>), owned by U. Without --exec it
prints the argv (one word a line), a line "--env--" and NAME=value lines.
With --exec it runs the argv as U (root's identity without --user), stdout
and stderr appended to LOG (a journal across restarts), umask 0077, BIN for /usr/local/bin/agent-iam."""
import os
import pwd
import re
import shlex
import shutil
import sys

args = sys.argv[1:]
opts = {}
while len(args) > 3:
    opts[args[-2]] = args[-1]
    args = args[:-2]
if len(args) != 3 or set(opts) - {"--creds", "--user", "--bin", "--exec"}:
    sys.exit(__doc__)
unit, inst, root = args
root = "" if root == "/" else root
user = pwd.getpwnam(opts["--user"]) if "--user" in opts else None
text = open(unit).read().replace("\\\n", " ")
if root:
    text = text.replace("/etc/agent-iam", root + "/etc/agent-iam").replace(
        "/var/lib/agent-iam", root + "/var/lib/agent-iam")
name = os.path.basename(unit).replace("@.service", "@" + inst + ".service")
creds = opts.get("--creds", os.path.join(root or "/", "creds-" + name))


def own(path):
    if user:
        os.chown(path, user.pw_uid, user.pw_gid)


os.makedirs(creds, mode=0o700, exist_ok=True)
own(creds)


def spec(s):
    return s.replace("%i", inst).replace("%I", inst).replace("%d", creds).replace("%%", "%")


env, argv, mode = {"CREDENTIALS_DIRECTORY": creds}, None, 0o755


def envfile(path):
    opt = path.startswith("-")
    path = path.lstrip("-")
    if not os.path.exists(path):
        if opt:
            return
        sys.exit("EnvironmentFile %s is missing" % path)
    for ln in open(path):
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            k, _, v = ln.partition("=")
            env[k.strip()] = v.strip().strip('"')


states = []
for ln in text.splitlines():
    ln = ln.strip()
    if ln.startswith("#") or "=" not in ln:
        continue
    k, _, v = ln.partition("=")
    v = spec(v)
    if k == "Environment":
        for a in shlex.split(v):
            n, _, val = a.partition("=")
            env[n] = val
    elif k == "EnvironmentFile":
        envfile(v)
    elif k == "LoadCredential":
        cid, _, src = v.partition(":")
        dst = os.path.join(creds, cid)
        shutil.copyfile(src, dst)   # systemd: a private read-only copy
        os.chmod(dst, 0o400)
        own(dst)
    elif k == "StateDirectory":
        states += v.split()
    elif k == "StateDirectoryMode":
        mode = int(v, 8)
    elif k == "ExecStart":
        argv = v
for d in states:
    path = os.path.join(root or "/", "var/lib", d)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    os.makedirs(path, mode=mode, exist_ok=True)
    os.chmod(path, mode)
    own(path)
out = []
for w in shlex.split(argv):
    if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", w):      # $VAR alone: split
        out += env.get(w[1:], "").split()
    else:                                                # ${VAR}: one word
        out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                          lambda m: env.get(m.group(1), ""), w))
if "--exec" not in opts:
    print("\n".join(out))
    print("--env--")
    for k, v in env.items():
        print("%s=%s" % (k, v))
    sys.exit(0)
if "--bin" in opts and out[0] == "/usr/local/bin/agent-iam":
    out[0] = opts["--bin"]
log = os.open(opts["--exec"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.dup2(log, 1)
os.dup2(log, 2)
devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(devnull, 0)
os.umask(0o077)
if user:
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
os.execve(out[0], out, env)
