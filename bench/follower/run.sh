#!/bin/sh
# make bench, after bench/http: the followers, on 127.0.0.1 over TLS.
#   1. Revocation propagation: a leader and 8 followers; 1,000 root tokens
#      made through the admin API, then revoked one at a time; after each
#      revoke's 200, all 8 followers are polled (POST /v1/check with the
#      revoked token, one keep-alive connection each) until the last one
#      answers 401 token_revoked. p50/p99/max of that time; target p99
#      under 100 ms.
#   2. Catch-up: a leader whose home holds 1,000,000 revocations and a
#      follower on an empty home: seconds from its start to /readyz 200
#      (target under 20 s) and its peak memory, VmHWM (target under 300 MB).
# The work is done by bench/follower/driver.py (Python 3 standard library);
# this script makes the CA and the certificate and ends every process the
# driver started (it lists their pids in $TMP/pids), whatever happens.
#
# Environment: BENCH_FOLLOWER_REVOCATIONS=N (default 1000; 0 skips 1),
# BENCH_FOLLOWER_CATCHUP=N (default 1000000; 0 skips 2);
# BENCH_FOLLOWER_COUNT=N followers in 1 (default 8);
# BENCH_FOLLOWER_THREADS=N passes --threads N to the follower of 2 (default:
# the server's, one thread per CPU).
# Exit 1 when a server does not start or answers wrongly, or a revocation
# does not reach every follower within 10 s.
# Usage: sh bench/follower/run.sh BUILD/agent-iam
set -u

if [ $# -ne 1 ]; then
    echo "usage: sh bench/follower/run.sh path/to/agent-iam" >&2
    exit 2
fi
case $1 in
/*) BIN=$1 ;;
*) BIN=$(pwd)/$1 ;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
NREV=${BENCH_FOLLOWER_REVOCATIONS:-1000}
NCATCH=${BENCH_FOLLOWER_CATCHUP:-1000000}
for v in "$NREV" "$NCATCH"; do
    case $v in
    '' | *[!0-9]*) echo "bench/follower: BENCH_FOLLOWER_REVOCATIONS and _CATCHUP are numbers" >&2
        exit 2 ;;
    esac
done
if [ ! -x "$BIN" ]; then
    echo "bench/follower: $BIN: not an executable (make $1)" >&2
    exit 2
fi
for tool in python3 openssl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench/follower: $tool is missing" >&2
        exit 1
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agent-iam-bench-follower.XXXXXX") || exit 1
DRIVER=""
# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
    [ -n "$DRIVER" ] && kill -TERM "$DRIVER" 2>/dev/null
    if [ -f "$TMP/pids" ]; then
        while read -r p; do
            kill -TERM "$p" 2>/dev/null
        done <"$TMP/pids"
        while read -r p; do
            i=0
            while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            kill -KILL "$p" 2>/dev/null
        done <"$TMP/pids"
    fi
    [ -n "$DRIVER" ] && wait "$DRIVER" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- a CA and a server certificate for 127.0.0.1 ---------------------------
(
    cd "$TMP" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=agent-iam bench CA" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=127.0.0.1" &&
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 2 -extfile server.ext -out server.pem &&
    chmod 600 ca.key server.key &&
    (umask 077 && openssl rand -hex 24 >auth.token &&
        openssl rand -hex 24 >admin.token)
) >"$TMP/openssl.log" 2>&1 || {
    echo "bench/follower: openssl could not make the certificates:" >&2
    cat "$TMP/openssl.log" >&2
    exit 1
}

echo "Followers: TLS on 127.0.0.1, $NREV revocations over ${BENCH_FOLLOWER_COUNT:-8} followers, catch-up of" \
     "$NCATCH revocations; $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"

# The driver runs in the background so that the INT/TERM trap runs at once.
python3 "$HERE/driver.py" "$BIN" "$TMP" "$NREV" "$NCATCH" &
DRIVER=$!
wait "$DRIVER"
status=$?
DRIVER=""
exit $status
