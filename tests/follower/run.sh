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
# Every server is started with --port 0 (the port read back from its
# "listening on" line; scenario 2 uses a free port chosen here, to
# restart the leader on it) and killed on exit. With an ASan build each
# server must exit 0 at SIGTERM with no sanitizer or leak report.
# Usage: tests/follower/run.sh BUILD/agent-iam
set -u
if [ $# -ne 1 ]; then
    echo "usage: sh tests/follower/run.sh path/to/agent-iam" >&2
    exit 2
fi
case $1 in
/*) bin=$1 ;;
*) bin=$(pwd)/$1 ;;
esac
if [ ! -x "$bin" ]; then
    echo "follower-test: $bin: not an executable" >&2
    exit 2
fi
for tool in python3 openssl; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "follower-test: $tool is needed" >&2
        exit 1
    fi
done
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/agent-iam-follower.XXXXXX") || exit 1

cleanup() {
    if [ -f "$tmp/pids" ]; then
        while read -r pid; do
            # only a server of this run still alive (not a reused pid)
            if grep -q "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then
                kill -9 "$pid" 2>/dev/null
            fi
        done <"$tmp/pids"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- certificates: a CA and a server certificate signed by it -----------
gen() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 \
        -subj "/CN=agent-iam follower-test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" \
        -subj "/CN=localhost" &&
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" >"$tmp/server.ext" &&
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" \
        -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
        -extfile "$tmp/server.ext" -out "$tmp/server.pem" &&
    chmod 600 "$tmp/server.key" "$tmp/ca.key"
}
if ! gen >"$tmp/openssl.log" 2>&1; then
    echo "follower-test: cannot make the certificates:" >&2
    cat "$tmp/openssl.log" >&2
    exit 1
fi

python3 "$here/follower_test.py" "$bin" "$tmp"
rc=$?
if [ $rc -ne 0 ]; then
    # the servers' stderr, to see what they said
    for f in "$tmp"/*.log; do
        case $f in */openssl.log) continue ;; esac
        [ -f "$f" ] || continue
        echo "---- $(basename "$f") (last 40 lines)"
        tail -n 40 "$f"
    done
fi
exit $rc
