#!/bin/sh
# Integration tests of the leader: `agent-iam serve` started as a real
# process on 127.0.0.1 with TLS from certificates made here (openssl: a CA
# and a server certificate for 127.0.0.1 and localhost), driven by
# tests/server/server_test.py (Python 3, standard library only; curl too
# for a few checks, skipped without it):
#   1. every route with good input (agent, admin, follower, health)
#   2. bad input: status and "code" of each refusal, and nothing changes
#   3. revocation through the API and the CLI, key rotation
#   4. 10,000 malformed requests, then a good one; RSS bounded
#   5. SIGTERM under load: complete 200s only, exit 0
#   6. 16 held long-polls on --threads 2 do not block checks
#   7. the access log: one line per request, never a secret
#   8. plain HTTP only with --insecure-http
# Every server is started with --port 0 (the port is read back from its
# "listening on" line) and killed on exit. With an ASan build each server
# must exit 0 at SIGTERM with no sanitizer or leak report on its stderr.
# Usage: tests/server/run.sh BUILD/agent-iam
set -u
if [ $# -ne 1 ]; then
    echo "usage: sh tests/server/run.sh path/to/agent-iam" >&2
    exit 2
fi
case $1 in
/*) bin=$1 ;;
*) bin=$(pwd)/$1 ;;
esac
if [ ! -x "$bin" ]; then
    echo "server-test: $bin: not an executable" >&2
    exit 2
fi
for tool in python3 openssl; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "server-test: $tool is needed" >&2
        exit 1
    fi
done
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/agent-iam-server.XXXXXX") || exit 1

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
        -subj "/CN=agent-iam server-test CA" \
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
    echo "server-test: cannot make the certificates:" >&2
    cat "$tmp/openssl.log" >&2
    exit 1
fi

python3 "$here/server_test.py" "$bin" "$tmp"
rc=$?
if [ $rc -ne 0 ]; then
    # the servers' stderr (access logs), to see what the server said
    for f in "$tmp"/*.log; do
        case $f in */openssl.log) continue ;; esac
        [ -f "$f" ] || continue
        echo "---- $(basename "$f") (last 40 lines)"
        tail -n 40 "$f"
    done
fi
exit $rc
