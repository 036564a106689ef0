"""service.py - real `agent-iam` processes for the integration suites
(tests/security and later ones): a leader or follower on 127.0.0.1 over
TLS with the test CA that tests/lib/tls_env.sh made, the CLI, and HTTP
calls. Standard library only.

A driver is called as `driver.py BIN TMPDIR` and starts with

    import service as S
    S.init(sys.argv[1], sys.argv[2])

Every process started here is killed at exit and its pid is written to
TMPDIR/pids, so the runner's trap kills it too if the driver dies."""
import atexit
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

from checks import check, sanitizer_report

BIN = TMP = CA = CERT = KEY = PIDS = None
ASAN = False
SLOW = 1  # time budgets scale under AddressSanitizer
PROCS = []
_CTX = None


def init(bin_path, tmp):
    global BIN, TMP, CA, CERT, KEY, PIDS, ASAN, SLOW
    BIN = os.path.abspath(bin_path)
    TMP = os.path.abspath(tmp)
    CA = os.path.join(TMP, "ca.pem")
    CERT = os.path.join(TMP, "server.pem")
    KEY = os.path.join(TMP, "server.key")
    PIDS = os.path.join(TMP, "pids")
    with open(BIN, "rb") as f:
        ASAN = b"__asan_init" in f.read()
    SLOW = 4 if ASAN else 1


@atexit.register
def _kill_all():
    for p in PROCS:
        if p.p.poll() is None:
            p.p.kill()
            p.p.wait()


def clean_env(extra=None):
    """The environment of a child: no AGENT_IAM_* of the caller's, HOME in
    the test directory."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGENT_IAM_")}
    env["HOME"] = TMP
    env.update(extra or {})
    return env


def cli(*args, stdin=None, env=None, timeout=60):
    """Run the CLI: (exit code, stdout, stderr)."""
    p = subprocess.run([BIN] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout * SLOW, input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       env=clean_env(env))
    return p.returncode, p.stdout, p.stderr


def home(name):
    """A fresh home directory path (not created)."""
    return os.path.join(TMP, name)


class Proc:
    """A server process (serve or follower) on 127.0.0.1 (or host, the
    address it is told to listen on), port 0: its port is read back from
    its "listening on" line. prefix goes before the binary on the command
    line (`ip netns exec NS`: a command that execs it, so the pid is the
    server's)."""

    def __init__(self, name, args, env=None, host="127.0.0.1", prefix=()):
        self.name = name
        self.host = host
        self.log_path = os.path.join(TMP, name + ".log")
        self.logf = open(self.log_path, "ab")
        self.mark = self.logf.tell()
        self.p = subprocess.Popen(list(prefix) + [BIN] +
                                  [str(a) for a in args],
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=self.logf,
                                  env=clean_env(env))
        PROCS.append(self)
        with open(PIDS, "a") as f:
            f.write("%d\n" % self.p.pid)
        self.port = None
        deadline = time.time() + 20 * SLOW
        while time.time() < deadline:
            m = re.search(r"listening on https?://%s:(\d+)" %
                          re.escape(host), self.log())
            if m:
                self.port = int(m.group(1))
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            self.p.kill()
            raise RuntimeError("%s did not start: %s" %
                               (name, self.log()[-2000:]))
        self.url = "https://%s:%d" % (host, self.port)

    @property
    def pid(self):
        return self.p.pid

    def log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.mark)
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.p.poll() is None

    def conn(self, timeout=10, source=None):
        return http.client.HTTPSConnection(
            self.host, self.port, timeout=timeout * SLOW,
            context=client_ctx(),
            source_address=(source, 0) if source else None)

    def fds(self):
        """Open descriptors of the process."""
        return len(os.listdir("/proc/%d/fd" % self.p.pid))

    def cpu_ticks(self):
        """utime + stime of the process, in clock ticks."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def cpu_percent(self, seconds=2.0):
        """CPU use over the next `seconds`, in percent of one core."""
        hz = os.sysconf("SC_CLK_TCK")
        a = self.cpu_ticks()
        time.sleep(seconds)
        return 100.0 * (self.cpu_ticks() - a) / hz / seconds

    def stop(self, timeout=15):
        """SIGTERM; (exit code or None on timeout, seconds taken)."""
        t0 = time.time()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        self.logf.close()
        return rc, time.time() - t0

    def stop_checked(self, timeout=15):
        rc, secs = self.stop(timeout)
        check("%s: exits 0 at SIGTERM" % self.name, rc == 0,
              "exit %s after %.1fs; stderr tail: %s" %
              (rc, secs, self.log()[-600:]))
        rep = sanitizer_report(self.log())
        check("%s: no sanitizer or leak report" % self.name, rep is None,
              rep or "")
        return rc

    def kill9(self):
        self.p.kill()
        self.p.wait()
        self.logf.close()


def leader_args(name, home_dir, *extra):
    """The arguments of `agent-iam serve` with the test certificate; extra
    flags as given (an --admin-token-file, an --auth-token-file...)."""
    return ["--home", home_dir, "serve", "--host", "127.0.0.1", "--port",
            "0", "--tls-cert", CERT, "--tls-key", KEY, "--access-log",
            os.path.join(TMP, name + ".access")] + list(extra)


def leader(name, home_dir, *extra, env=None):
    """`agent-iam serve` (leader_args)."""
    return Proc(name, leader_args(name, home_dir, *extra), env=env)


def follower_args(name, home_dir, lead, *extra):
    """The arguments of `agent-iam follower` of the leader `lead` (a Proc
    or a URL)."""
    url = lead.url if isinstance(lead, Proc) else lead
    return ["--home", home_dir, "follower", "--leader-url", url,
            "--ca-cert", CA, "--host", "127.0.0.1", "--port", "0",
            "--tls-cert", CERT, "--tls-key", KEY,
            "--access-log", os.path.join(TMP, name + ".access")] + list(extra)


def follower(name, home_dir, lead, *extra, env=None):
    """`agent-iam follower` (follower_args)."""
    return Proc(name, follower_args(name, home_dir, lead, *extra), env=env)


def secret_file(name, value):
    """A 0600 file holding value (a token or secret)."""
    path = os.path.join(TMP, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return path


def client_ctx():
    global _CTX
    if _CTX is None:
        _CTX = ssl.create_default_context(cafile=CA)  # verifies 127.0.0.1
    return _CTX


class Resp:
    def __init__(self, status, headers, body, elapsed=0.0):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        return self.json.get("code") if isinstance(self.json, dict) else None

    def __repr__(self):
        return "%s %s" % (self.status, self.body[:300])


def request_parts(body=None, bearer=None, headers=None):
    """(body bytes or None, headers) of a request: body dict/list as JSON,
    str as UTF-8, bytes as is; the bearer in Authorization."""
    h = dict(headers or {})
    if bearer is not None:
        h["Authorization"] = "Bearer " + bearer
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    return body, h


def call(srv, method, path, body=None, bearer=None, headers=None, conn=None,
         timeout=10, source=None):
    """One request; body: dict/list (JSON), str or bytes (as is). A
    transport failure is status 0 with the error as the body."""
    body, h = request_parts(body, bearer, headers)
    own = conn is None
    c = conn or srv.conn(timeout, source)
    t0 = time.time()
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Resp(r.status, r.headers, r.read(), time.time() - t0)
    except (OSError, http.client.HTTPException) as e:
        return Resp(0, {}, repr(e).encode(), time.time() - t0)
    finally:
        if own:
            c.close()


def raw(srv, data, read_timeout=5, tls=True, source=None):
    """Send raw bytes (a hand-made request) and read until the server
    closes or read_timeout passes; the bytes read."""
    s = socket.socket()
    if source:
        s.bind((source, 0))
    s.settimeout(10 * SLOW)
    s.connect(("127.0.0.1", srv.port))
    t = client_ctx().wrap_socket(s, server_hostname="127.0.0.1") if tls else s
    out = b""
    try:
        t.sendall(data)
        t.settimeout(read_timeout * SLOW)
        while True:
            b = t.recv(65536)
            if not b:
                break
            out += b
    except (OSError, ssl.SSLError):
        pass
    finally:
        t.close()
    return out


def status_line(data):
    """The status code of a raw HTTP answer, 0 when there is none."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else 0


def wait_for(pred, timeout, step=0.05):
    """Poll pred() until it is true or timeout seconds pass; its last
    value."""
    deadline = time.time() + timeout * SLOW
    while True:
        v = pred()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)
