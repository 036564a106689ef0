#!/usr/bin/env python3
"""Revocations that must hold (DESIGN.md §8), against a real leader and a
real follower over TLS:

  1. agent revocation reaches descendants: root R (agent X) -> child for
     agent Y -> grandchild for agent Z; revoking agent X (admin API) makes
     the child and the grandchild refused (401 token_revoked) on the leader
     and on the follower, for checks and for delegation; `agent-iam token
     verify` refuses them offline, on the leader's home, on the follower's
     replica and on a standalone home revoked with the local CLI;
  2. a revocation outlives the caller's expiry: a child refreshed past its
     first expiry, and another token, revoked with an "expiresAt" a second
     in the past or a second ahead, stay refused on the leader and on the
     follower after both have run their prune tick. Pruning runs at start
     and then hourly: both processes are restarted, and a canary
     revocation whose prune time has passed (written into each home while
     it is stopped) shows that each one pruned.

    revocation_test.py BIN TMPDIR
"""
import os
import sqlite3
import sys
import time

import checks
from checks import check, token_json
import service as S

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()
FOLLOWER = "follower-" + os.urandom(12).hex()
SCOPE = "github:repo:read"
CANARY = "canary-pruned-at-start"


def expect(name, r, status, code=None):
    ok = r.status == status and (code is None or r.code == code)
    return check(name, ok, "got %r" % r)


def must(name, r):
    """An admin or agent call that must succeed for the test to go on."""
    if r.status != 200:
        raise RuntimeError("%s: %r" % (name, r))
    return r.json


def root(L, agent, scopes):
    return must("create root for %s" % agent,
                S.call(L, "POST", "/v1/admin/tokens",
                       {"agentId": agent, "scopes": scopes,
                        "maxDelegationDepth": 4}, bearer=ADMIN))


def delegate(srv, parent, agent, scopes, **extra):
    body = {"agentId": agent, "requestedScopes": scopes}
    body.update(extra)
    return S.call(srv, "POST", "/v1/tokens/delegate", body, bearer=parent)


def check_call(srv, tok):
    return S.call(srv, "POST", "/v1/check", {"scope": SCOPE, "resource": "r"},
                  bearer=tok)


def revoked_on(srv, tok):
    r = check_call(srv, tok)
    return r.status == 401 and r.code == "token_revoked"


def db_rows(home, sql, args=()):
    db = sqlite3.connect(os.path.join(home, "agent-iam.db"), timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def has_revocation(home, target, ident):
    return bool(db_rows(home, "SELECT 1 FROM revocations WHERE target = ? "
                        "AND id = ?", (target, ident)))


def plant_canary(home):
    """A token revocation whose prune time has long passed, written while
    the home's process is stopped: the first prune tick removes it."""
    db = sqlite3.connect(os.path.join(home, "agent-iam.db"), timeout=10)
    try:
        db.execute("INSERT INTO revocations (target, id, reason, revoked_at, "
                   "prune_after) VALUES (0, ?, 'canary', 1000, 2000)",
                   (CANARY,))
        db.commit()
    finally:
        db.close()


def start_leader(name, home, admin_file, fol_file, port=None):
    """The leader; on `port` when given (a follower's home is bound to its
    leader's URL, so a restarted leader keeps it)."""
    flags = ["--admin-token-file", admin_file, "--auth-token-file", fol_file,
             "--threads", "2"]
    if port is None:
        return S.leader(name, home, *flags)
    return S.Proc(name, ["--home", home, "serve", "--host", "127.0.0.1",
                         "--port", port, "--tls-cert", S.CERT,
                         "--tls-key", S.KEY] + flags)


def start_follower(name, home, L, fol_file):
    F = S.follower(name, home, L, "--auth-token-file", fol_file,
                   "--follower-id", "f1", "--threads", "2")
    S.wait_for(lambda: S.call(F, "GET", "/readyz").status == 200, 20)
    return F


def offline_verify(home, tok):
    """`agent-iam token verify` on a home: (exit code, output)."""
    rc, out, err = S.cli("--home", home, "token", "verify", tok)
    return rc, (out + err).strip()


# ---- 1. revoking an agent cuts off its descendants -------------------------

def section_agent(L, F, lhome, fhome):
    r = root(L, "agent-x", ["github:*"])
    child_r = delegate(L, r["token"], "agent-y", ["github:repo:*"])
    child = must("delegate to agent-y", child_r)["token"]
    # the grandchild is minted by the follower, from its replica
    grand = must("delegate to agent-z",
                 delegate(F, child, "agent-z", [SCOPE]))["token"]
    cj, gj = token_json(child), token_json(grand)
    check("child carries ancestorAgents [agent-x]",
          cj.get("ancestorAgents") == ["agent-x"], repr(cj))
    check("grandchild carries ancestorAgents [agent-x, agent-y]",
          gj.get("ancestorAgents") == ["agent-x", "agent-y"], repr(gj))
    for srv, where in ((L, "leader"), (F, "follower")):
        expect("before: grandchild checks on the %s" % where,
               check_call(srv, grand), 200)

    expect("revoke agent agent-x (admin API)",
           S.call(L, "POST", "/v1/admin/revoke",
                  {"agentId": "agent-x", "reason": "compromised"},
                  bearer=ADMIN), 200)
    check("the follower has the revocation within 5 s",
          S.wait_for(lambda: revoked_on(F, r["token"]), 5))
    for srv, where in ((L, "leader"), (F, "follower")):
        for tok, who in ((child, "child (agent-y)"),
                         (grand, "grandchild (agent-z)")):
            expect("%s refused on the %s: 401 token_revoked" % (who, where),
                   check_call(srv, tok), 401, "token_revoked")
            expect("%s whoami on the %s: 401 token_revoked" % (who, where),
                   S.call(srv, "GET", "/v1/whoami", bearer=tok), 401,
                   "token_revoked")
            expect("%s cannot delegate on the %s: 401 token_revoked" %
                   (who, where),
                   delegate(srv, tok, "agent-w", [SCOPE]), 401,
                   "token_revoked")
    for home, where in ((lhome, "the leader's home"),
                        (fhome, "the follower's replica")):
        for tok, who in ((child, "child"), (grand, "grandchild")):
            rc, out = offline_verify(home, tok)
            check("token verify offline on %s: %s refused" % (where, who),
                  rc == 1 and "agent-x" in out and "revoked" in out,
                  "exit %d: %s" % (rc, out[-300:]))
    # unrevoking the agent gives the subtree back (the same rule, undone)
    expect("unrevoke agent agent-x",
           S.call(L, "POST", "/v1/admin/unrevoke", {"agentId": "agent-x"},
                  bearer=ADMIN), 200)
    check("after unrevoke: the grandchild checks on the follower",
          S.wait_for(lambda: check_call(F, grand).status == 200, 5))
    # revoking the middle agent cuts off the grandchild, not the root
    expect("revoke agent agent-y",
           S.call(L, "POST", "/v1/admin/revoke", {"agentId": "agent-y"},
                  bearer=ADMIN), 200)
    check("agent-y revoked: the grandchild is refused on the follower",
          S.wait_for(lambda: revoked_on(F, grand), 5))
    expect("agent-y revoked: the grandchild is refused on the leader",
           check_call(L, grand), 401, "token_revoked")
    expect("agent-y revoked: the root still checks",
           check_call(L, r["token"]), 200)


def section_standalone():
    """A home without any server: create-root, delegate twice, revoke the
    root's agent with the local CLI, verify."""
    home = S.home("standalone")
    rc, rt, err = S.cli("--home", home, "token", "create-root",
                        "--agent-id", "solo-x", "--scopes", "github:*")
    if rc != 0:
        raise RuntimeError("standalone create-root: %s" % err)
    rc, ch, err = S.cli("--home", home, "token", "delegate", "--parent",
                        rt.strip(), "--agent-id", "solo-y", "--scopes",
                        "github:repo:*")
    if rc != 0:
        raise RuntimeError("standalone delegate: %s" % err)
    rc, gc, err = S.cli("--home", home, "token", "delegate", "--parent",
                        ch.strip(), "--agent-id", "solo-z", "--scopes", SCOPE)
    if rc != 0:
        raise RuntimeError("standalone delegate 2: %s" % err)
    rc, _, err = S.cli("--home", home, "revoke", "--agent", "solo-x")
    check("standalone: revoke --agent solo-x", rc == 0, err)
    for tok, who in ((ch, "child"), (gc, "grandchild")):
        rc, out = offline_verify(home, tok.strip())
        check("standalone home: token verify refuses the %s" % who,
              rc == 1 and "solo-x" in out and "revoked" in out,
              "exit %d: %s" % (rc, out[-300:]))
    rc, _, err = S.cli("--home", home, "token", "delegate", "--parent",
                       gc.strip(), "--agent-id", "solo-w", "--scopes", SCOPE)
    check("standalone home: the grandchild cannot delegate", rc == 1,
          "exit %d: %s" % (rc, err))


# ---- 2. a caller's expiry never prunes a revocation ------------------------

def section_prune(L, F, lhome, fhome, admin_file, fol_file):
    r = root(L, "agent-p", ["github:*", "system:token:refresh"])
    # a child with a short first expiry, refreshed past it
    c = must("delegate a 1-minute child",
             delegate(L, r["token"], "agent-q",
                      [SCOPE, "system:token:refresh"], ttlMinutes=1))
    first_exp = c["expiresAt"]
    ref = must("refresh the child for 60 minutes",
               S.call(L, "POST", "/v1/tokens/refresh", {"ttlMinutes": 60},
                      bearer=c["token"]))
    refreshed, tid = ref["token"], ref["tokenId"]
    check("the refreshed child keeps its tokenId", tid == c["tokenId"])
    check("the refresh moved the expiry past the first one",
          ref["expiresAt"] > first_exp, "%s vs %s" % (ref["expiresAt"],
                                                      first_exp))
    other = must("delegate another child",
                 delegate(L, r["token"], "agent-s", [SCOPE]))
    now = time.time()
    past = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 1))
    ahead = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now + 1))
    for tok_id, exp, what in ((tid, past, "a second ago"),
                              (other["tokenId"], ahead, "a second ahead")):
        expect("revoke a token with expiresAt %s" % what,
               S.call(L, "POST", "/v1/admin/revoke",
                      {"tokenId": tok_id, "reason": "stolen",
                       "expiresAt": exp}, bearer=ADMIN), 200)
    toks = ((refreshed, "the refreshed child"),
            (other["token"], "the other child"))
    check("the follower has both revocations within 5 s",
          S.wait_for(lambda: all(revoked_on(F, t) for t, _ in toks), 5))
    time.sleep(2)  # both expiresAt values are now in the past

    # Pruning runs when a process starts, then hourly: restart both, with
    # a canary in each home that the first prune removes.
    port = L.port
    F.stop_checked()
    L.stop_checked()
    plant_canary(lhome)
    plant_canary(fhome)
    L = start_leader("leader-2", lhome, admin_file, fol_file, port)
    F = start_follower("follower-2", fhome, L, fol_file)
    check("the leader pruned at start (its canary is gone)",
          S.wait_for(lambda: not has_revocation(lhome, 0, CANARY), 10))
    check("the follower prunes on its own timer (its canary is gone)",
          S.wait_for(lambda: not has_revocation(fhome, 0, CANARY), 10))
    for tok_id, what in ((tid, "refreshed child"),
                         (other["tokenId"], "other child")):
        check("the %s's revocation is kept on the leader" % what,
              has_revocation(lhome, 0, tok_id))
        check("the %s's revocation is kept on the follower" % what,
              has_revocation(fhome, 0, tok_id))
    for srv, where in ((L, "leader"), (F, "follower")):
        for tok, who in toks:
            expect("after the prune tick: %s refused on the %s" % (who, where),
                   check_call(srv, tok), 401, "token_revoked")
    rows = db_rows(lhome, "SELECT prune_after, revoked_at FROM revocations "
                   "WHERE target = 0 AND id = ?", (tid,))
    check("its prune time is the longest root TTL after the revocation",
          rows and rows[0][0] >= rows[0][1] + 90 * 86400 * 1000,
          repr(rows))
    return L, F


def main():
    admin_file = S.secret_file("admin.token", ADMIN)
    fol_file = S.secret_file("follower.token", FOLLOWER)
    lhome, fhome = S.home("leader"), S.home("follower")
    L = start_leader("leader", lhome, admin_file, fol_file)
    F = start_follower("follower", fhome, L, fol_file)
    section_agent(L, F, lhome, fhome)
    section_standalone()
    L, F = section_prune(L, F, lhome, fhome, admin_file, fol_file)
    F.stop_checked()
    L.stop_checked()


if __name__ == "__main__":
    try:
        main()
    finally:
        S._kill_all()
    print("%d passed, %d failed" % (checks.counts["pass"],
                                    checks.counts["fail"]))
    sys.exit(1 if checks.counts["fail"] else 0)
