#!/bin/sh
# Integration tests of replication: a leader (`agent-iam serve`) and
# followers (`agent-iam follower`) started as real processes on 127.0.0.1
# with TLS from certificates made here (openssl: a CA and a server
# certificate for 127.0.0.1 and localhost; every process uses the same
# one), driven by tests/follower/follower_test.py (Python 3, standard
# library only; sqlite3 module for the homes' databases):
#   1. leader + 3 followers: revocation everywhere within 1 s, key
#      rotation, API key and provider config replicated, maxUses counted
#      at the leader, 409 not_leader, followers and lag on the leader
#   2. leader stopped: followers keep verifying, degraded, 503 past
#      --max-staleness; leader restarted on the same port: they catch up
#   3. SIGKILL a follower applying 50,000 revocations: a consistent
#      replica (integrity, applied seq matches its rows), then converges
#   4. a follower behind the retained log reloads the snapshot
#   5. a wrong follower auth token: said clearly, replica kept
#   6. `agent-iam sync`: the home verifies the leader's tokens offline
#   7. a follower past --max-staleness never answers 200 to a token
#      revoked meanwhile, even while applying its first batches after
#   8. the leader restored from a file copy: the hash chain tells the
#      follower, which ends with exactly the leader's revocations
#   9. the leader away 65 s: the follower caught up within 5 s of its
#      return (tests/follower/freshness_test.py)
#  10. a follower on a 4 MiB tmpfs: 2,000 revocations fit; filled while
#      the leader writes: 503 storage_full for writes, reads go on within
#      --max-staleness, said on /readyz, /v1/status, /metrics and in one
#      log line; it recovers without a restart once space returns; its WAL
#      stays bounded (tests/follower/disk_test.py, DESIGN §8)
#  11. a leader on an 8 MiB tmpfs: 5,000 revocations, the WAL bounded
#  12. `agent-iam sync` under a pseudo-terminal: the progress of a
#      100,000-revocation snapshot and of the change feed's batches,
#      rewritten in place on stderr, the final line as before; nothing of it
#      without a terminal or with --json
# Every server is started with --port 0 (the port read back from its
# "listening on" line; scenario 2 uses a free port chosen here, to
# restart the leader on it) and killed on exit. With an ASan build each
# server must exit 0 at SIGTERM with no sanitizer or leak report.
# Usage: tests/follower/run.sh BUILD/agent-iam
name=follower-test
usage_path=tests/follower/run.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tls_env.sh"

# 7-9 (freshness_test.py, in a folder of its own: its secrets, homes and
# logs apart) run beside the others, since scenario 9 mostly waits for its
# leader's 65 s away; its output is shown after theirs. Its driver and its
# servers are listed in $tmp/pids (the trap's list) through a link.
mkdir -p "$tmp/fresh"
cp "$tmp/ca.pem" "$tmp/server.pem" "$tmp/server.key" "$tmp/fresh/"
touch "$tmp/pids"
ln -s "$tmp/pids" "$tmp/fresh/pids"
python3 "$here/freshness_test.py" "$bin" "$tmp/fresh" >"$tmp/freshness.out" \
    2>&1 &
fpid=$!
echo "$fpid" >>"$tmp/pids"
python3 "$here/follower_test.py" "$bin" "$tmp"
rc=$?

# disk_test.py in a folder of its own (its logs apart; its pids reach the
# trap through $tmp/pids)
mkdir -p "$tmp/disk"
cp "$tmp/ca.pem" "$tmp/server.pem" "$tmp/server.key" "$tmp/disk/"
python3 "$here/disk_test.py" "$bin" "$tmp/disk"
drc=$?
[ -f "$tmp/disk/pids" ] && cat "$tmp/disk/pids" >>"$tmp/pids"
if [ $drc -ne 0 ]; then
    for f in "$tmp/disk"/*.log; do
        [ -f "$f" ] || continue
        echo "---- disk/$(basename "$f") (last 40 lines)"
        tail -n 40 "$f"
    done
    rc=1
fi
wait "$fpid"
frc=$?
cat "$tmp/freshness.out"
if [ $frc -ne 0 ]; then
    for f in "$tmp/fresh"/*.log; do
        [ -f "$f" ] || continue
        echo "---- fresh/$(basename "$f") (last 40 lines)"
        tail -n 40 "$f"
    done
    rc=1
fi
[ $rc -eq 0 ] || dump_logs 40
exit $rc
