#!/bin/sh
# make bench, last part: the HTTP leader under load. wrk (TLS, keep-alive,
# 64 connections, 2 threads) against
#   * our leader, `agent-iam serve`: POST /v1/check with a root token;
#   * the Node.js package's leader (agent-iam@0.0.3 LeaderServer over TLS,
#     bench/http/node_leader.mjs): GET /status, its cheapest authenticated
#     route (it has no token check route);
# on the same machine in the same run, and the CPU each server process used
# (utime + stime from /proc/PID/stat, before and after the wrk run). These
# 2-core machines are shared and noisy and wrk itself needs CPU, so the
# figure to compare is requests per CPU-second of the server process and
# the ratio ours / Node of it. Targets: p99 under 5 ms, ratio >= 3.
#
# Environment: BENCH_HTTP_SECONDS (default 10) per measured run, after a
# warm-up of BENCH_HTTP_WARMUP seconds (default 2); BENCH_HTTP_THREADS=N
# passes --threads N to our server; BENCH_HTTP_NODE_CHECK=1 adds a row: a
# plain Node https server doing the package's deserialize + checkPermission
# on POST /v1/check (not the package's leader; it shows what a token check
# costs over Node's https); BENCH_HTTP_PERF=1 then profiles our server
# under the same load (perf record, not during the measured run) and prints
# the hottest symbols.
#
# Exit 1 when our server does not start, does not answer {"valid":true}
# before the run, or answers anything but 2xx during it.
# Usage: sh bench/http/run.sh BUILD/agent-iam
set -u

if [ $# -ne 1 ]; then
    echo "usage: sh bench/http/run.sh path/to/agent-iam" >&2
    exit 2
fi
case $1 in
/*) BIN=$1 ;;
*) BIN=$(pwd)/$1 ;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
SECS=${BENCH_HTTP_SECONDS:-10}
WARM=${BENCH_HTTP_WARMUP:-2}
CONNS=64
WTHREADS=2
SCOPE=github:repo:read
BODY='{"scope":"github:repo:read","resource":"myorg/myrepo"}'

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench/http: wrk is missing (sh scripts/install-deps.sh installs it)" >&2
    exit 1
fi
if [ ! -x "$BIN" ]; then
    echo "bench/http: $BIN: not an executable (make $1)" >&2
    exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agent-iam-bench-http.XXXXXX") || exit 1
PIDS=""
cleanup() {
    for p in $PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
# shellcheck disable=SC2317
trap cleanup EXIT
trap 'exit 130' INT TERM

HZ=$(getconf CLK_TCK)
# utime + stime of a process, every thread, in clock ticks (fields 14 and
# 15 of /proc/PID/stat; the name in field 2 may hold spaces, so count
# from the ") " that closes it).
cpu_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_https NAME PID URL: until URL answers over TLS (any status).
wait_https() {
    i=0
    while [ $i -lt 100 ]; do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "bench/http: $1 exited before it listened:" >&2
            sed 's/^/    /' "$TMP/$1.log" | tail -n 20 >&2
            return 1
        fi
        if curl -s -o /dev/null --max-time 2 --cacert "$TMP/ca.pem" "$3" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    echo "bench/http: $1 did not answer $3 within 10 s:" >&2
    sed 's/^/    /' "$TMP/$1.log" | tail -n 20 >&2
    return 1
}
# measure NAME PID URL METHOD BEARER BODY: a warm-up, then the measured
# wrk run with the server's CPU read before and after; the wrk output goes
# to $TMP/NAME.wrk, "cpu_ticks=N" is appended to it.
measure() {
    name=$1 pid=$2 url=$3
    export BENCH_METHOD="$4" BENCH_BEARER="$5" BENCH_BODY="$6"
    if [ "$WARM" -gt 0 ]; then
        wrk -t"$WTHREADS" -c"$CONNS" -d"${WARM}s" --timeout 5s \
            -s "$HERE/request.lua" "$url" >"$TMP/$name.warm" 2>&1
    fi
    c0=$(cpu_ticks "$pid")
    wrk -t"$WTHREADS" -c"$CONNS" -d"${SECS}s" --latency --timeout 5s \
        -s "$HERE/request.lua" "$url" >"$TMP/$name.wrk" 2>&1
    rc=$?
    c1=$(cpu_ticks "$pid")
    unset BENCH_METHOD BENCH_BEARER BENCH_BODY
    echo "cpu_ticks=$((c1 - c0))" >>"$TMP/$name.wrk"
    echo "--- $name: wrk -t$WTHREADS -c$CONNS -d${SECS}s --latency $url"
    sed -e '/^wrk_result/d' -e '/^cpu_ticks=/d' -e 's/^/    /' "$TMP/$name.wrk"
    if [ $rc -ne 0 ] || ! grep -q '^wrk_result ' "$TMP/$name.wrk"; then
        echo "bench/http: wrk failed against $name (exit $rc)" >&2
        return 1
    fi
}

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
    chmod 600 ca.key server.key
) >"$TMP/openssl.log" 2>&1 || {
    echo "bench/http: openssl could not make the certificates:" >&2
    cat "$TMP/openssl.log" >&2
    exit 1
}

echo "HTTP: TLS keep-alive, $CONNS connections, $WTHREADS wrk threads, ${SECS} s" \
     "(after ${WARM} s of warm-up); $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"

# ---- our leader ------------------------------------------------------------
AUTH=$(openssl rand -hex 24)
PORT=$(free_port)
THREADS_OPT=
[ -n "${BENCH_HTTP_THREADS:-}" ] && THREADS_OPT="--threads $BENCH_HTTP_THREADS"
# shellcheck disable=SC2086
"$BIN" serve --home "$TMP/home" --host 127.0.0.1 --port "$PORT" \
    --auth-token "$AUTH" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
    $THREADS_OPT </dev/null >"$TMP/ours.log" 2>&1 &
OURS=$!
PIDS="$PIDS $OURS"
wait_https ours "$OURS" "https://127.0.0.1:$PORT/healthz" || exit 1

if ! "$BIN" token create-root --home "$TMP/home" --agent-id bench \
        --scopes "$SCOPE" >"$TMP/root.tok" 2>"$TMP/create.err"; then
    echo "bench/http: token create-root failed: $(cat "$TMP/create.err")" >&2
    exit 1
fi
TOKEN=$(cat "$TMP/root.tok")
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$TMP/auth.hdr"
ANSWER=$(curl -sS --max-time 5 --cacert "$TMP/ca.pem" -X POST \
    -H @"$TMP/auth.hdr" -H 'Content-Type: application/json' -d "$BODY" \
    -w '\n%{http_code}' "https://127.0.0.1:$PORT/v1/check" 2>&1)
if [ "$(printf '%s' "$ANSWER" | head -n 1 | tr -d ' \t\r')" != '{"valid":true}' ] ||
   [ "$(printf '%s' "$ANSWER" | tail -n 1)" != 200 ]; then
    echo "bench/http: POST /v1/check did not answer 200 {\"valid\":true}; it answered:" >&2
    printf '%s\n' "$ANSWER" | sed 's/^/    /' >&2
    exit 1
fi
echo "ours: POST /v1/check answers 200 $(printf '%s' "$ANSWER" | head -n 1) (curl, verified TLS)"

measure ours "$OURS" "https://127.0.0.1:$PORT/v1/check" POST "$TOKEN" "$BODY" || exit 1

# ---- the Node package's leader ---------------------------------------------
NODE_ROWS=""
node_skip() {
    echo "bench/http: $1: no Node.js figures"
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    node_skip "node or npm missing"
else
    # the same install as tests/interop/run.sh
    mkdir "$TMP/npm"
    printf '{"name":"agent-iam-bench-http","private":true}\n' >"$TMP/npm/package.json"
    if ! (cd "$TMP/npm" && npm_config_update_notifier=false npm install \
            --no-audit --no-fund --loglevel=error agent-iam@0.0.3) \
            </dev/null >"$TMP/npm.log" 2>&1 ||
       [ ! -f "$TMP/npm/node_modules/agent-iam/dist/index.js" ]; then
        echo "bench/http: npm install agent-iam@0.0.3 failed:"
        tail -n 5 "$TMP/npm.log" | sed 's/^/    /'
        node_skip "no package"
    else
        PKG=$TMP/npm/node_modules/agent-iam
        NAUTH=$(openssl rand -hex 24)
        NPORT=$(free_port)
        node "$HERE/node_leader.mjs" "$PKG" "$TMP/node-home" "$NPORT" \
            "$TMP/server.pem" "$TMP/server.key" "$NAUTH" status \
            </dev/null >"$TMP/node.log" 2>&1 &
        NODE=$!
        PIDS="$PIDS $NODE"
        if wait_https node "$NODE" "https://127.0.0.1:$NPORT/status"; then
            printf 'Authorization: Bearer %s\n' "$NAUTH" >"$TMP/nauth.hdr"
            NANSWER=$(curl -sS --max-time 5 --cacert "$TMP/ca.pem" -H @"$TMP/nauth.hdr" \
                -w '\n%{http_code}' "https://127.0.0.1:$NPORT/status" 2>&1)
            case $NANSWER in
            *'"mode":"leader"'*200)
                echo "node: GET /status answers 200 $(printf '%s' "$NANSWER" | head -n 1)"
                if measure node "$NODE" "https://127.0.0.1:$NPORT/status" GET "$NAUTH" ""; then
                    NODE_ROWS="node"
                fi ;;
            *)
                echo "bench/http: node GET /status answered:"
                printf '%s\n' "$NANSWER" | sed 's/^/    /'
                node_skip "unexpected /status answer" ;;
            esac
        else
            node_skip "the Node leader did not start"
        fi
        kill -TERM "$NODE" 2>/dev/null

        if [ "${BENCH_HTTP_NODE_CHECK:-0}" = 1 ]; then
            CPORT=$(free_port)
            node "$HERE/node_leader.mjs" "$PKG" "$TMP/node-check-home" "$CPORT" \
                "$TMP/server.pem" "$TMP/server.key" unused check \
                </dev/null >"$TMP/nodecheck.log" 2>&1 &
            NCHECK=$!
            PIDS="$PIDS $NCHECK"
            i=0
            while [ ! -s "$TMP/node-check-home/root.tok" ] && [ $i -lt 100 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            if wait_https nodecheck "$NCHECK" "https://127.0.0.1:$CPORT/"; then
                NTOKEN=$(cat "$TMP/node-check-home/root.tok")
                printf 'Authorization: Bearer %s\n' "$NTOKEN" >"$TMP/ncheck.hdr"
                CANSWER=$(curl -sS --max-time 5 --cacert "$TMP/ca.pem" -X POST \
                    -H @"$TMP/ncheck.hdr" -H 'Content-Type: application/json' -d "$BODY" \
                    "https://127.0.0.1:$CPORT/v1/check" 2>&1)
                if [ "$CANSWER" = '{"valid":true}' ]; then
                    echo "nodecheck: POST /v1/check answers $CANSWER"
                    measure nodecheck "$NCHECK" "https://127.0.0.1:$CPORT/v1/check" \
                        POST "$NTOKEN" "$BODY" && NODE_ROWS="$NODE_ROWS nodecheck"
                else
                    echo "bench/http: the Node check wrapper answered: $CANSWER"
                fi
            fi
            kill -TERM "$NCHECK" 2>/dev/null
        fi
    fi
fi

# ---- the table ---------------------------------------------------------------
echo
# shellcheck disable=SC2086
python3 - "$TMP" "$HZ" ours $NODE_ROWS <<'PY'
import sys
tmp, hz, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
label = {"ours": "agent-iam serve, POST /v1/check",
         "node": "node agent-iam@0.0.3 LeaderServer, GET /status",
         "nodecheck": "node https + deserialize/checkPermission (wrapper)"}
rows = {}
for n in names:
    r = {}
    for line in open("%s/%s.wrk" % (tmp, n)):
        if line.startswith("wrk_result ") or line.startswith("cpu_ticks="):
            for kv in line.split()[1:] if line.startswith("wrk_result") else [line.strip()]:
                k, v = kv.split("=")
                r[k] = float(v)
    secs = r["duration_us"] / 1e6
    cpu = r["cpu_ticks"] / hz
    r["rps"] = r["requests"] / secs
    r["cores"] = cpu / secs
    r["per_cpu"] = r["requests"] / cpu if cpu > 0 else float("inf")
    r["cpu"] = cpu
    r["errors"] = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    rows[n] = r
print("%-52s %10s %8s %8s %8s %7s %12s" % ("server", "requests/s", "p50 ms", "p99 ms",
      "cpu s", "cores", "req/cpu-s"))
for n in names:
    r = rows[n]
    print("%-52s %10.0f %8.2f %8.2f %8.2f %7.2f %12.0f" % (label[n], r["rps"],
          r["p50_us"] / 1000, r["p99_us"] / 1000, r["cpu"], r["cores"], r["per_cpu"]))
    if r["errors"]:
        print("  ^ %d non-2xx answers, %d connect, %d read, %d write, %d timeout errors"
              % (r["non2xx"], r["connect"], r["read"], r["write"], r["timeout"]))
print()
o = rows["ours"]
p99 = o["p99_us"] / 1000
print("targets:")
print("  p99 of agent-iam serve        %8.2f ms   (target < 5 ms)  %s" % (p99, "ok" if p99 < 5 else "ABOVE"))
if "node" in rows:
    ratio = o["per_cpu"] / rows["node"]["per_cpu"]
    print("  requests per CPU-second, ours / node /status  %6.1fx  (target >= 3x)  %s"
          % (ratio, "ok" if ratio >= 3 else "BELOW"))
    print("  (requests/s, ours / node: %.1fx, with both sharing the CPUs with wrk)"
          % (o["rps"] / rows["node"]["rps"]))
else:
    print("  requests per CPU-second, ours / node: no Node.js figures")
if "nodecheck" in rows:
    print("  requests per CPU-second, ours / node check wrapper  %6.1fx"
          % (o["per_cpu"] / rows["nodecheck"]["per_cpu"]))
sys.exit(1 if o["errors"] else 0)
PY
status=$?
if [ $status -ne 0 ]; then
    echo "bench/http: agent-iam serve answered errors during the run (see above)" >&2
    tail -n 20 "$TMP/ours.log" | sed 's/^/    /' >&2
    exit 1
fi

# ---- where our server's time goes (BENCH_HTTP_PERF=1) ------------------------
if [ "${BENCH_HTTP_PERF:-0}" = 1 ]; then
    if ! command -v perf >/dev/null 2>&1; then
        echo "bench/http: BENCH_HTTP_PERF=1 but perf is missing"
        exit 0
    fi
    echo
    echo "perf record -g on agent-iam serve under the same load (not the measured run):"
    perf record -F 999 -g -p "$OURS" -o "$TMP/perf.data" -- sleep "$SECS" \
        >"$TMP/perf.log" 2>&1 &
    PERF=$!
    BENCH_METHOD=POST BENCH_BEARER="$TOKEN" BENCH_BODY="$BODY" \
        wrk -t"$WTHREADS" -c"$CONNS" -d"${SECS}s" --timeout 5s \
        -s "$HERE/request.lua" "https://127.0.0.1:$PORT/v1/check" >/dev/null 2>&1
    wait "$PERF"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol \
        -g none --percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 40
fi
exit 0
