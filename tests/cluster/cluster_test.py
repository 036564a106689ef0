#!/usr/bin/env python3
"""A leader group as processes (DESIGN §9), on 127.0.0.1 over TLS: three
`agent-iam serve --cluster FILE --node-id N` voters on empty homes sharing
one master.key. Called by tests/cluster/run.sh as `cluster_test.py BIN
TMPDIR`; prints ok/FAIL lines and exits 1 on a failure.

  1. the voters elect one leader; the group's first signing key is on
     every voter (made once, through the log)
  2. a write sent to a follower voter is answered 307 to the leader's URL
     and applied once through it; a retry with the same Idempotency-Key
     applies once; a root token minted by the leader verifies everywhere
  3. SIGKILL of the leader while a client sends revocations (following
     307, retrying with the same key): a new leader takes writes, every
     acknowledged revocation is on every voter, none twice, and the old
     leader rejoins with all of them
  4. two voters stopped (SIGSTOP): the leader cannot commit, a write to it
     fails (503) instead of being lost silently, and the same request
     applies once after SIGCONT
  5. a voter whose home has another master.key stops at the group's first
     entry, says why, and applies nothing
  7. the CLI given the voters' URLs (`--leader-url A,B,C`, a dead one
     first, a follower voter next) revokes through the leader, once
  8b. the Python and Node clients (clients/) given a follower voter then
     the leader: a metered credential answered 503 by the first is asked
     of the leader, each use counted once
  9. a fourth node started with --join and listed in the file becomes a
     voter with `cluster add 4` and has every change; `cluster remove 4`
     takes it out again
  6. a follower given the three voters' URLs keeps following when the
     voter it follows is killed: a revocation made through the new leader
     reaches it
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import service as S
import voters as V
from free_port import free_port
from voters import free_ports, head_of, rows
from checks import check, counts
from prom import validate

S.init(sys.argv[1], sys.argv[2])
S.CA = os.path.join(S.TMP, "pki", "ca.pem")
CERT = os.path.join(S.TMP, "pki", "voter-test.pem")
KEY = os.path.join(S.TMP, "pki", "voter-test.key")
ADMIN = "cluster-admin-" + os.urandom(12).hex()
ADMIN_FILE = S.secret_file("admin.token", ADMIN)
N = 3


class Group(V.Voters):
    def __init__(self, tag):
        V.Voters.__init__(self, tag, CERT, KEY, ADMIN, ADMIN_FILE, N,
                          ("--snapshot-every", 64))

    def write(self, i, path, body, key=None, hops=3):
        """POST to voter i, following 307 (the same body and key)."""
        h = {"Idempotency-Key": key} if key else {}
        p = self.procs[i]
        for _ in range(hops):
            r = S.call(p, "POST", path, body, bearer=ADMIN, headers=h,
                       timeout=15)
            if r.status != 307:
                return r
            p = self.procs[self.index_of(r.headers["Location"])]
        return r


def scenario_basics(g):
    print("# 1-2. election, first key, writes through any voter", flush=True)
    l = g.leader()
    check("a leader is elected on empty homes", l is not None)
    if l is None:
        return
    check("the group's first signing key is on every voter",
          S.wait_for(lambda: all(
              (g.status(i) or {}).get("signingKeyVersion") == 1
              for i in range(N)), 10),
          repr([g.status(i) for i in range(N)]))
    f = (l + 1) % N
    r = S.call(g.procs[f], "POST", "/v1/admin/revoke", {"agentId": "rogue"},
               bearer=ADMIN)
    check("a follower voter answers a write 307", r.status == 307, repr(r))
    check("... to the leader's URL and the same path",
          r.headers.get("Location") ==
          "https://127.0.0.1:%d/v1/admin/revoke" % g.http[l],
          repr(r.headers.get("Location")))
    check("... with code not_leader", r.code == "not_leader", repr(r))
    r = g.write(f, "/v1/admin/revoke", {"agentId": "rogue"}, key="k-rogue")
    check("followed, the write is applied", r.status == 200, repr(r))
    # every voter applied it (a follower applies at the next heartbeat)
    S.wait_for(lambda: len(set(g.head(i) for i in range(N))) == 1, 5)
    heads = [g.head(i) for i in range(N)]
    r = g.write(l, "/v1/admin/revoke", {"agentId": "rogue"}, key="k-rogue")
    check("a retry with the same Idempotency-Key answers 200",
          r.status == 200, repr(r))
    check("... and applies nothing twice",
          S.wait_for(lambda: [g.head(i) for i in range(N)] == heads, 3),
          "%r then %r" % (heads, [g.head(i) for i in range(N)]))
    check("the revocation is on every voter",
          S.wait_for(lambda: all("rogue" in g.revoked(i)
                                 for i in range(N)), 5))
    m = S.call(g.procs[l], "GET", "/metrics", bearer=ADMIN)
    errs, samples = validate(m.body.decode())
    check("the leader's /metrics follow the text format", m.status == 200
          and not errs, repr(errs[:3]))
    check("... with its role, term, indexes and write latency",
          samples.get(("agent_iam_cluster_role",
                       (("role", "leader"),))) == 1.0 and
          samples.get(("agent_iam_cluster_term", ())) >= 1 and
          samples.get(("agent_iam_cluster_applied_index", ())) >= 3 and
          samples.get(("agent_iam_cluster_write_seconds_count", ())) >= 2,
          repr({k: v for k, v in samples.items()
                if k[0].startswith("agent_iam_cluster")}))
    m = S.call(g.procs[f], "GET", "/metrics", bearer=ADMIN)
    errs, samples = validate(m.body.decode())
    check("a follower voter's /metrics say follower", not errs and
          samples.get(("agent_iam_cluster_role",
                       (("role", "follower"),))) == 1.0, repr(errs[:3]))
    r = g.write(l, "/v1/admin/tokens",
                {"agentId": "bot", "scopes": ["github:repo:read"]})
    tok = (r.json or {}).get("token")
    check("the leader mints a root token", r.status == 200 and tok, repr(r))
    for i in range(N):
        v = S.call(g.procs[i], "POST", "/v1/check",
                   {"scope": "github:repo:read"}, bearer=tok)
        check("voter %d verifies it" % (i + 1), v.status == 200, repr(v))


def scenario_uses(g, l):
    print("# 2b. uses are counted by the group", flush=True)
    f = (l + 1) % N
    r = S.call(g.procs[l], "PUT", "/v1/admin/apikeys/openai",
               {"provider": "openai", "key": "sk-test-cluster-0123456789"},
               bearer=ADMIN)
    check("an API key through the group", r.status == 200, repr(r))
    r = g.write(l, "/v1/admin/tokens",
                {"agentId": "metered", "scopes": ["openai:chat:completions"],
                 "constraints": {"openai:chat:completions": {"maxUses": 2}}})
    tok = (r.json or {}).get("token")
    body = {"scope": "openai:chat:completions"}
    a = S.call(g.procs[l], "POST", "/v1/credentials", body, bearer=tok)
    b = S.call(g.procs[l], "POST", "/v1/credentials", body, bearer=tok)
    c = S.call(g.procs[l], "POST", "/v1/credentials", body, bearer=tok)
    check("maxUses 2 on the leader: 200, 200, then 403",
          [a.status, b.status, c.status] == [200, 200, 403],
          repr([a, b, c]))
    d = S.call(g.procs[f], "POST", "/v1/credentials", body, bearer=tok)
    check("a third use on a follower voter is refused too (the group's "
          "count, or 503: only the leader counts)",
          d.status in (403, 503), repr(d))
    r = g.write(l, "/v1/admin/tokens",
                {"agentId": "metered2", "scopes": ["openai:chat:completions"],
                 "constraints": {"openai:chat:completions": {"maxUses": 1}}})
    tok2 = (r.json or {}).get("token")
    e = S.call(g.procs[f], "POST", "/v1/credentials", body, bearer=tok2)
    check("a follower voter never counts a use on its own (503)",
          e.status == 503, repr(e))


def scenario_kill(g, l):
    print("# 3. SIGKILL of the leader during a stream of revocations",
          flush=True)
    acked, stop = [], threading.Event()
    errors = []

    def writer():
        n = 0
        while not stop.is_set() and n < 400:
            agent = "stream-%d" % n
            deadline = time.time() + 20 * S.SLOW
            while time.time() < deadline:
                live = [i for i in range(N) if g.procs[i].alive()]
                i = live[n % len(live)]
                try:
                    r = g.write(i, "/v1/admin/revoke", {"agentId": agent},
                                key="k-" + agent)
                except Exception as e:  # noqa: BLE001 - a dead voter
                    r = None
                    errors.append(repr(e))
                if r is not None and r.status == 200:
                    acked.append(agent)
                    break
                time.sleep(0.05)
            n += 1

    t = threading.Thread(target=writer)
    t.start()
    S.wait_for(lambda: len(acked) >= 50, 20)
    old = g.procs[l]
    old.kill9()
    t0 = time.time()
    nl = g.leader(timeout=15)
    took = time.time() - t0
    check("a new leader after SIGKILL of the leader (%.1f s)" % took,
          nl is not None and nl != l)
    S.wait_for(lambda: len(acked) >= 150, 30)
    stop.set()
    t.join(60)
    check("the writer saw its writes acknowledged after the kill",
          len(acked) >= 150, "%d acknowledged" % len(acked))
    live = [i for i in range(N) if i != l]
    want = set(acked)
    for i in live:
        check("voter %d has every acknowledged revocation" % (i + 1),
              S.wait_for(lambda: want <= g.revoked(i), 10),
              "%d missing" % len(want - g.revoked(i)))
    # one changelog row per revocation: nothing applied twice
    twice = [g.doubled(i) for i in live]
    check("no revocation applied twice", not any(twice), repr(twice))
    g.start(l)
    check("the old leader rejoins with every acknowledged revocation",
          S.wait_for(lambda: want <= g.revoked(l), 15),
          "%d missing" % len(want - g.revoked(l)))
    s = g.status(l)
    check("... as a follower", s and s["cluster"]["role"] == "follower",
          repr(s and s["cluster"]))


def scenario_minority(g, l):
    print("# 4. a leader without its majority commits nothing", flush=True)
    others = [i for i in range(N) if i != l]
    for i in others:
        os.kill(g.procs[i].pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        r = S.call(g.procs[l], "POST", "/v1/admin/revoke",
                   {"agentId": "alone"}, bearer=ADMIN,
                   headers={"Idempotency-Key": "k-alone"}, timeout=30)
        took = time.time() - t0
        check("a write to a leader without its majority fails (%d after "
              "%.1f s)" % (r.status, took), r.status in (503, 307), repr(r))
        check("... and is applied nowhere", "alone" not in g.revoked(l))
        # without its majority it steps down: a write then finds no leader
        check("the voter without its majority steps down",
              S.wait_for(lambda: ((g.status(l) or {}).get("cluster") or {})
                         .get("role") != "leader", 10))
        r = S.call(g.procs[l], "POST", "/v1/admin/revoke",
                   {"agentId": "alone"}, bearer=ADMIN,
                   headers={"Idempotency-Key": "k-alone"}, timeout=30)
        check("a write to a voter that knows no leader: 503 unavailable "
              "with Retry-After (%d, %r)" % (r.status,
                                             r.headers.get("Retry-After")),
              r.status == 503 and r.headers.get("Retry-After") == "1" and
              r.code == "unavailable" and
              r.headers.get("Location") is None, repr(r))
    finally:
        for i in others:
            os.kill(g.procs[i].pid, signal.SIGCONT)
    nl = g.leader(timeout=15)
    check("the group has a leader again after SIGCONT", nl is not None)
    r = g.write(nl if nl is not None else l, "/v1/admin/revoke",
                {"agentId": "alone"}, key="k-alone")
    check("the same request then applies", r.status == 200, repr(r))
    check("... once, on every voter",
          S.wait_for(lambda: all("alone" in g.revoked(i)
                                 for i in range(N)), 10) and
          not any(g.doubled(i) for i in range(N)))


def scenario_follower(g, l):
    print("# 6. a follower of the group moves to another voter", flush=True)
    r = g.write(l, "/v1/admin/followers", {"id": "eu-1", "providers": ""})
    check("a follower registered through the group", r.status == 200,
          repr(r))
    secret = S.secret_file("eu-1.secret", (r.json or {}).get("secret", "x"))
    urls = ",".join(g.procs[i].url for i in [l] + [i for i in range(N)
                                                    if i != l])
    home = os.path.join(S.TMP, "f-eu-1")
    f = S.Proc("follower-eu-1",
               ["--home", home, "follower", "--leader-url", urls,
                "--ca-cert", S.CA, "--host", "127.0.0.1", "--port", "0",
                "--tls-cert", CERT, "--tls-key", KEY, "--access-log", "off",
                "--auth-token-file", secret, "--follower-id", "eu-1",
                "--long-poll", "2s", "--metrics-token-file", ADMIN_FILE])

    def applied():
        r = S.call(f, "GET", "/v1/status", bearer=ADMIN, timeout=3)
        return (r.json or {}).get("appliedSeq", -1) if r.status == 200 \
            else -1
    head = g.head(l)
    check("the follower catches up with the group",
          S.wait_for(lambda: applied() >= head, 15),
          "applied %r, head %r" % (applied(), head))
    g.procs[l].kill9()
    nl = g.leader(timeout=15)
    check("a new leader", nl is not None)
    r = g.write(nl, "/v1/admin/revoke", {"agentId": "after-move"},
                key="k-after-move")
    check("a revocation through the new leader", r.status == 200, repr(r))
    head = g.head(nl)
    check("the follower gets it from another voter",
          S.wait_for(lambda: applied() >= head, 20),
          "applied %r, head %r; %s" % (applied(), head, f.log()[-600:]))
    check("... without reloading the snapshot (one changelog for the group)",
          "reloading the snapshot" not in f.log(), f.log()[-600:])
    f.stop_checked()
    g.start(l)
    check("the killed voter rejoins",
          S.wait_for(lambda: g.head(l) >= head, 15))


def admin_cli(urls, *args, **kw):
    """The CLI as an admin of the group at urls (a URL or a list)."""
    return S.cli(*args, "--leader-url", urls, "--auth-token-file",
                 ADMIN_FILE, "--ca-cert", S.CA, **kw)


def scenario_cli(g, l):
    print("# 7. the CLI with the voters' URLs", flush=True)
    f = (l + 1) % N
    dead = "https://127.0.0.1:%d" % free_port()
    urls = ",".join([dead, g.procs[f].url, g.procs[l].url])
    rc, out, err = admin_cli(urls, "revoke", "--agent", "cli-rogue")
    check("revoke through a dead URL and a follower voter exits 0",
          rc == 0, "%r %r" % (out, err))
    check("... applied on every voter",
          S.wait_for(lambda: all("cli-rogue" in g.revoked(i)
                                 for i in range(N)), 5))
    rc, out, err = admin_cli(urls, "status", "--json")
    check("status through the list answers", rc == 0, "%r %r" % (out, err))
    rc, out, err = admin_cli(g.procs[f].url, "--json", "cluster", "status")
    st = json.loads(out) if rc == 0 else {}
    check("cluster status of a follower voter names the leader",
          st.get("role") == "follower" and st.get("leaderId") == l + 1 and
          st.get("voters") == 3, "%r %r" % (out, err))
    to = f + 1
    rc, out, err = admin_cli(g.procs[f].url + "," + g.procs[l].url,
                             "cluster", "transfer", to)
    check("cluster transfer %d (sent to a follower: 307) exits 0" % to,
          rc == 0 and ("node %d" % to) in out, "%r %r" % (out, err))
    check("... and voter %d leads" % to, g.leader() == f,
          repr(g.leader()))
    rc, out, err = admin_cli(g.procs[f].url, "cluster", "transfer", 99)
    check("cluster transfer to an unknown voter fails (exit 1, %r)" %
          err.strip()[:80], rc == 1, "%r %r" % (out, err))
    for path, body in (("/v1/admin/cluster/transfer", {"id": "2"}),
                       ("/v1/admin/cluster/transfer", [2]),
                       ("/v1/admin/cluster/add", {}),
                       ("/v1/admin/cluster/remove", {"id": 0})):
        r = S.call(g.procs[f], "POST", path, body, bearer=ADMIN)
        check("%s %s: 400 bad_request, nothing moved" % (path, body),
              r.status == 400 and r.code == "bad_request", repr(r))
    check("... voter %d still leads" % (f + 1), g.leader() == f,
          repr(g.leader()))


def scenario_runtime(g, l):
    print("# 8. an agent's runtime with the voters' URLs", flush=True)
    agent = os.path.join(os.path.dirname(S.BIN), "examples", "agent")
    if not check("examples/agent is built", os.path.exists(agent), agent):
        return
    r = g.write(l, "/v1/admin/tokens",
                {"agentId": "rt-agent",
                 "scopes": ["openai:chat:completions", "github:repo:read"]})
    tok = (r.json or {}).get("token", "")
    f = (l + 1) % N
    dead = "https://127.0.0.1:%d" % free_port()
    env = S.clean_env({"AGENT_TOKEN": tok, "AGENT_IAM_CA_CERT": S.CA,
                       "AGENT_IAM_URL": ",".join([dead, g.procs[f].url,
                                                  g.procs[l].url])})
    p = subprocess.run([agent, "openai:chat:completions", "github:repo:read"],
                       capture_output=True, text=True, env=env,
                       timeout=60 * S.SLOW)
    check("examples/agent with a dead URL first gets its credential and "
          "delegates to its child", p.returncode == 0,
          "%s %s" % (p.stdout[-600:], p.stderr[-300:]))


TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PY_CLIENT = """
import sys
from agent_iam import Client
c = Client(sys.argv[1], sys.argv[2], ca_file=sys.argv[3])
print(c.credential("openai:chat:completions")["credentialType"])
"""
NODE_CLIENT = """
import { Client } from '%s/clients/node/index.js';
const [urls, token, caFile] = process.argv.slice(1); // node -e: no script path
const c = new Client({ urls, token, caFile });
console.log((await c.credential('openai:chat:completions')).credentialType);
"""


def scenario_clients(g, l):
    print("# 8b. the Python and Node clients go round the voters", flush=True)
    f = (l + 1) % N
    r = g.write(l, "/v1/admin/tokens",
                {"agentId": "clients-metered",
                 "scopes": ["openai:chat:completions"],
                 "constraints": {"openai:chat:completions": {"maxUses": 2}}})
    tok = (r.json or {}).get("token", "")
    # a follower voter answers a metered credential 503 (only the leader
    # counts): each client must then ask the next URL, the leader
    urls = ",".join([g.procs[f].url, g.procs[l].url])
    env = S.clean_env({"PYTHONPATH": os.path.join(TOP, "clients",
                                                  "python")})
    runs = [("python", ["python3", "-c", PY_CLIENT, urls, tok, S.CA]),
            ("node", ["node", "--input-type=module", "-e",
                      NODE_CLIENT % TOP, urls, tok, S.CA])]
    for name, argv in runs:
        p = subprocess.run(argv, capture_output=True, text=True, env=env,
                           timeout=60 * S.SLOW)
        check("the %s client's credential through a follower voter (503) "
              "then the leader" % name,
              p.returncode == 0 and p.stdout.strip() == "api_key",
              "%s %s" % (p.stdout[-300:], p.stderr[-600:]))
    body = {"scope": "openai:chat:completions"}
    c = S.call(g.procs[l], "POST", "/v1/credentials", body, bearer=tok)
    check("... two uses counted once each: the third is refused (403)",
          c.status == 403, repr(c))


def scenario_members(g, l):
    print("# 9. a node added to the group, then removed", flush=True)
    hp, rp = free_ports(2)
    with open(g.file) as f:
        doc = json.load(f)
    doc["nodes"].append({"id": 4, "raft": "127.0.0.1:%d" % rp,
                         "url": "https://127.0.0.1:%d" % hp})
    with open(g.file, "w") as f:
        json.dump(doc, f)
    home = os.path.join(S.TMP, "a-h4")
    os.mkdir(home, 0o700)
    with open(os.path.join(g.homes[0], "master.key"), "rb") as f:
        V.write_key(home, f.read())
    v4 = S.Proc("a-v4", g.args(4, home, hp, "--join"))
    try:
        f = (l + 1) % N
        rc, out, err = admin_cli(g.procs[f].url, "cluster", "add", 4,
                                 timeout=60)
        check("cluster add 4 (sent to a follower voter) exits 0",
              rc == 0, "%r %r" % (out, err))
        head = g.head(l)
        check("node 4 has every change of the group",
              S.wait_for(lambda: head_of(home) >= head, 15),
              "%r < %r" % (head_of(home), head))
        s = g.status(l)
        check("the group has 4 voters",
              s and s["cluster"]["voters"] == 4, repr(s and s["cluster"]))
        r = g.write(l, "/v1/admin/revoke", {"agentId": "with-four"},
                    key="k-with-four")
        check("a write with 4 voters", r.status == 200, repr(r))
        rc, out, err = admin_cli(g.procs[l].url, "cluster", "remove", 4)
        check("cluster remove 4 exits 0", rc == 0, "%r %r" % (out, err))
        s = g.status(l)
        check("the group has 3 voters again",
              s and s["cluster"]["voters"] == 3, repr(s and s["cluster"]))
        rc, out, err = admin_cli(g.procs[l].url, "cluster", "add", 9)
        check("cluster add of a node not in the file fails (exit 1)",
              rc == 1 and "cluster file" in err, "%r %r" % (out, err))
    finally:
        v4.stop_checked()


def scenario_snapshot(g, l):
    print("# 10. a voter far behind catches up from a snapshot", flush=True)
    v = (l + 1) % N
    g.procs[v].stop_checked()
    for n in range(200):
        r = g.write(l, "/v1/admin/revoke", {"agentId": "snap-%d" % n},
                    key="k-snap-%d" % n)
        if r.status != 200:
            check("200 revocations while a voter is away", False, repr(r))
            return
    want = set("snap-%d" % n for n in range(200))
    g.start(v)
    check("the voter back (the leader's log snapshotted every 64 entries) "
          "has all 200",
          S.wait_for(lambda: want <= g.revoked(v), 20),
          "%d missing" % len(want - g.revoked(v)))
    check("... and its changelog is the group's",
          S.wait_for(lambda: g.head(v) == g.head(l), 10),
          "%r vs %r" % (g.head(v), g.head(l)))
    restored = (rows(g.homes[v], "SELECT count(*) FROM audit WHERE "
                                 "action = 'snapshot-restore'") or
                [[0]])[0][0]
    check("... through a snapshot (its audit log says so)", restored >= 1,
          repr(restored))
    log = g.procs[v].log()
    check("no error restoring", "snapshot:" not in log and
          "restoring" not in log, log[-400:])


def scenario_other_key():
    print("# 5. a voter with another master.key stops", flush=True)
    g = Group("k")
    try:
        l = g.leader()
        check("group k has a leader", l is not None)
        v = (l + 1) % N if l is not None else 2
        g.procs[v].kill9()
        # its home again, with another key
        shutil.rmtree(g.homes[v])
        os.mkdir(g.homes[v], 0o700)
        V.write_key(g.homes[v], os.urandom(32))
        g.start(v)
        said = S.wait_for(lambda: "this voter stops" in g.procs[v].log(), 15)
        check("it says it cannot apply the group's entries",
              said and "master key" in g.procs[v].log(),
              g.procs[v].log()[-500:])
        s = g.status(v)
        check("its status says failed", s and s["cluster"]["failed"],
              repr(s and s["cluster"]))
        check("it applied nothing", g.head(v) == 0, repr(g.head(v)))
    finally:
        g.stop()


def main():
    g = Group("a")
    try:
        scenario_basics(g)
        # each of these starts from the group's ready leader, l
        for scenario in (scenario_uses, scenario_kill, scenario_minority,
                         scenario_follower, scenario_cli, scenario_runtime,
                         scenario_clients, scenario_members,
                         scenario_snapshot):
            l = g.leader()
            if check("a ready leader before %s" % scenario.__name__,
                     l is not None):
                scenario(g, l)
    finally:
        g.stop()
    scenario_other_key()
    print("cluster tests: %d passed, %d failed" % (counts["pass"],
                                                  counts["fail"]))
    sys.exit(1 if counts["fail"] else 0)


main()
