#!/bin/sh
# shellcheck disable=SC2034 # (NAME_url... are read through eval in measure)
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
# All servers are started first; then each round measures each server in
# turn (a warm-up, then the measured run); with several rounds the table
# shows medians and the ratio is the median of the per-round ratios.
#
# Environment: BENCH_HTTP_SECONDS (default 10) per measured run, after a
# warm-up of BENCH_HTTP_WARMUP seconds (default 2); BENCH_HTTP_ROUNDS
# (default 1); BENCH_HTTP_THREADS=N passes --threads N to our server;
# BENCH_HTTP_VERBOSE=1 prints wrk's own output of every run;
# BENCH_HTTP_NODE_CHECK=1 adds a row: a plain Node https server doing the
# package's deserialize + checkPermission on POST /v1/check (not the
# package's leader; it shows what a token check costs over Node's https);
# BENCH_HTTP_PERF=1 then profiles our server under the same load (perf
# record, not during a measured run) and prints where its time goes.
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
ROUNDS=${BENCH_HTTP_ROUNDS:-1}
CONNS=64
WTHREADS=2
SCOPE=github:repo:read
BODY='{"scope":"github:repo:read","resource":"myorg/myrepo"}'

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench/http: wrk is missing (sh scripts/install-deps.sh installs it)" >&2
    exit 1
fi
for v in "$SECS" "$WARM" "$ROUNDS"; do
    case $v in
    '' | *[!0-9]*) echo "bench/http: BENCH_HTTP_SECONDS, _WARMUP and _ROUNDS are numbers" >&2
        exit 2 ;;
    esac
done
if [ "$SECS" -eq 0 ] || [ "$ROUNDS" -eq 0 ]; then
    echo "bench/http: BENCH_HTTP_SECONDS and _ROUNDS must be > 0" >&2
    exit 2
fi
if [ ! -x "$BIN" ]; then
    echo "bench/http: $BIN: not an executable (make $1)" >&2
    exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agent-iam-bench-http.XXXXXX") || exit 1
PIDS=""
# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
    for p in $PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HZ=$(getconf CLK_TCK)
# utime + stime of a process, every thread, in clock ticks (fields 14 and
# 15 of /proc/PID/stat; the name in field 2 may hold spaces, so count
# from the ") " that closes it).
cpu_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
# The whole machine from /proc/stat's cpu line, in clock ticks summed over
# the CPUs: "busy steal total" (busy: user nice system irq softirq; steal:
# time the hypervisor gave this VM's CPUs to other VMs).
machine_ticks() {
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit}' /proc/stat
}
# A free TCP port on 127.0.0.1 (the kernel's choice); fails when none.
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' ||
        { echo "bench/http: python3 could not find a free port" >&2; return 1; }
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
# measure NAME ROUND: a warm-up, then the measured wrk run against server
# NAME (its PID, URL, METHOD, BEARER and BODY are in NAME_pid, NAME_url...),
# with the server's CPU and the machine's read before and after; wrk's
# output goes to $TMP/NAME.ROUND.wrk, with "cpu_ticks=N" and "machine ..."
# lines appended.
# shellcheck disable=SC2154 # (pid and url are set by the eval)
measure() {
    name=$1 round=$2
    eval "pid=\$${name}_pid url=\$${name}_url"
    eval "BENCH_METHOD=\$${name}_method BENCH_BEARER=\$${name}_bearer BENCH_BODY=\$${name}_body"
    export BENCH_METHOD BENCH_BEARER BENCH_BODY
    out=$TMP/$name.$round.wrk
    if [ "$WARM" -gt 0 ]; then
        wrk -t"$WTHREADS" -c"$CONNS" -d"${WARM}s" --timeout 5s \
            -s "$HERE/request.lua" "$url" >"$TMP/$name.warm" 2>&1
    fi
    m0=$(machine_ticks)
    c0=$(cpu_ticks "$pid")
    wrk -t"$WTHREADS" -c"$CONNS" -d"${SECS}s" --latency --timeout 5s \
        -s "$HERE/request.lua" "$url" >"$out" 2>&1
    rc=$?
    c1=$(cpu_ticks "$pid")
    m1=$(machine_ticks)
    unset BENCH_METHOD BENCH_BEARER BENCH_BODY
    echo "cpu_ticks=$((c1 - c0))" >>"$out"
    echo "$m0 $m1" | awk '{printf "machine busy=%d steal=%d total=%d\n", $4 - $1, $5 - $2, $6 - $3}' >>"$out"
    if [ "${BENCH_HTTP_VERBOSE:-0}" = 1 ]; then
        echo "--- round $round, $name: wrk -t$WTHREADS -c$CONNS -d${SECS}s --latency $url"
        sed -e '/^wrk_result/d' -e '/^cpu_ticks=/d' -e '/^machine /d' -e 's/^/    /' "$out"
    fi
    if [ $rc -ne 0 ] || ! grep -q '^wrk_result ' "$out"; then
        echo "bench/http: wrk failed against $name (exit $rc):" >&2
        sed 's/^/    /' "$out" >&2
        return 1
    fi
    awk -v n="$name" -v r="$round" -v hz="$HZ" '
        /^wrk_result/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
        /^cpu_ticks=/ { split($0, kv, "="); t = kv[2] }
        END { printf "  round %d %-9s %8d requests in %5.2f s, p50 %6.2f ms, p99 %7.2f ms, server CPU %5.2f s\n",
                     r, n, v["requests"], v["duration_us"] / 1e6, v["p50_us"] / 1000, v["p99_us"] / 1000, t / hz }' "$out"
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

echo "HTTP: TLS keep-alive, $CONNS connections, $WTHREADS wrk threads, ${SECS} s a run" \
     "(after ${WARM} s of warm-up), $ROUNDS round(s); $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"

# Each server's parameters are NAME_pid, NAME_url, NAME_method,
# NAME_bearer and NAME_body (NAME: ours, node, nodecheck), read by measure.

# ---- our leader ------------------------------------------------------------
AUTH=$(openssl rand -hex 24)
PORT=$(free_port) || exit 1
THREADS_OPT=
[ -n "${BENCH_HTTP_THREADS:-}" ] && THREADS_OPT="--threads $BENCH_HTTP_THREADS"
# shellcheck disable=SC2086
"$BIN" serve --home "$TMP/home" --host 127.0.0.1 --port "$PORT" \
    --auth-token "$AUTH" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
    $THREADS_OPT </dev/null >"$TMP/ours.log" 2>&1 &
ours_pid=$!
PIDS="$PIDS $ours_pid"
wait_https ours "$ours_pid" "https://127.0.0.1:$PORT/healthz" || exit 1

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
ours_url=https://127.0.0.1:$PORT/v1/check ours_method=POST ours_bearer=$TOKEN ours_body=$BODY
SERVERS=ours

# ---- the Node package's leader ---------------------------------------------
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
        NPORT=$(free_port) || exit 1
        node "$HERE/node_leader.mjs" "$PKG" "$TMP/node-home" "$NPORT" \
            "$TMP/server.pem" "$TMP/server.key" "$NAUTH" status \
            </dev/null >"$TMP/node.log" 2>&1 &
        node_pid=$!
        PIDS="$PIDS $node_pid"
        if wait_https node "$node_pid" "https://127.0.0.1:$NPORT/status"; then
            printf 'Authorization: Bearer %s\n' "$NAUTH" >"$TMP/nauth.hdr"
            NANSWER=$(curl -sS --max-time 5 --cacert "$TMP/ca.pem" -H @"$TMP/nauth.hdr" \
                -w '\n%{http_code}' "https://127.0.0.1:$NPORT/status" 2>&1)
            case $NANSWER in
            *'"mode":"leader"'*200)
                echo "node: GET /status answers 200 $(printf '%s' "$NANSWER" | head -n 1)"
                node_url=https://127.0.0.1:$NPORT/status node_method=GET
                node_bearer=$NAUTH node_body=
                SERVERS="$SERVERS node" ;;
            *)
                echo "bench/http: node GET /status answered:"
                printf '%s\n' "$NANSWER" | sed 's/^/    /'
                node_skip "unexpected /status answer" ;;
            esac
        else
            node_skip "the Node leader did not start"
        fi

        if [ "${BENCH_HTTP_NODE_CHECK:-0}" = 1 ]; then
            CPORT=$(free_port) || exit 1
            node "$HERE/node_leader.mjs" "$PKG" "$TMP/node-check-home" "$CPORT" \
                "$TMP/server.pem" "$TMP/server.key" unused check \
                </dev/null >"$TMP/nodecheck.log" 2>&1 &
            nodecheck_pid=$!
            PIDS="$PIDS $nodecheck_pid"
            if wait_https nodecheck "$nodecheck_pid" "https://127.0.0.1:$CPORT/" &&
               [ -s "$TMP/node-check-home/root.tok" ]; then
                NTOKEN=$(cat "$TMP/node-check-home/root.tok")
                printf 'Authorization: Bearer %s\n' "$NTOKEN" >"$TMP/ncheck.hdr"
                CANSWER=$(curl -sS --max-time 5 --cacert "$TMP/ca.pem" -X POST \
                    -H @"$TMP/ncheck.hdr" -H 'Content-Type: application/json' -d "$BODY" \
                    "https://127.0.0.1:$CPORT/v1/check" 2>&1)
                if [ "$CANSWER" = '{"valid":true}' ]; then
                    echo "nodecheck: POST /v1/check answers $CANSWER"
                    nodecheck_url=https://127.0.0.1:$CPORT/v1/check nodecheck_method=POST
                    nodecheck_bearer=$NTOKEN nodecheck_body=$BODY
                    SERVERS="$SERVERS nodecheck"
                else
                    echo "bench/http: the Node check wrapper answered: $CANSWER"
                fi
            else
                echo "bench/http: the Node check wrapper did not start"
            fi
        fi
    fi
fi

# ---- the runs ----------------------------------------------------------------
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for name in $SERVERS; do
        measure "$name" "$round" || exit 1
    done
    round=$((round + 1))
done

# ---- the table ---------------------------------------------------------------
echo
# shellcheck disable=SC2086
python3 - "$TMP" "$HZ" "$ROUNDS" $SERVERS <<'PY'
import statistics, sys
tmp, hz, rounds, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
label = {"ours": "agent-iam serve, POST /v1/check",
         "node": "node agent-iam@0.0.3 LeaderServer, GET /status",
         "nodecheck": "node https + deserialize/checkPermission (wrapper)"}

def load(n, rnd):
    r = {}
    for line in open("%s/%s.%d.wrk" % (tmp, n, rnd)):
        w = line.split()
        if not w:
            continue
        if w[0].startswith("cpu_ticks="):
            w = ["x"] + w
        if w[0] in ("x", "wrk_result", "machine"):
            for kv in w[1:]:
                k, v = kv.split("=")
                r[k] = float(v)
    secs = r["duration_us"] / 1e6
    cpu = r["cpu_ticks"] / hz
    r["secs"], r["cpu"] = secs, cpu
    r["rps"] = r["requests"] / secs
    r["cores"] = cpu / secs
    r["per_cpu"] = r["requests"] / cpu if cpu > 0 else float("inf")
    r["errors"] = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    r["mbusy"] = r["busy"] / hz / secs if r["total"] else 0.0
    r["ncpu"] = r["total"] / hz / secs if r["total"] else 0.0
    r["steal_pct"] = 100.0 * r["steal"] / r["total"] if r["total"] else 0.0
    return r

runs = {n: [load(n, k) for k in range(1, rounds + 1)] for n in names}
med = lambda n, key: statistics.median(r[key] for r in runs[n])
what = "median of %d rounds" % rounds if rounds > 1 else "one run each"
print("%-52s %10s %8s %8s %8s %7s %12s   (%s)" % ("server", "requests/s", "p50 ms", "p99 ms",
      "cpu s", "cores", "req/cpu-s", what))
for n in names:
    print("%-52s %10.0f %8.2f %8.2f %8.2f %7.2f %12.0f" % (label[n], med(n, "rps"),
          med(n, "p50_us") / 1000, med(n, "p99_us") / 1000, med(n, "cpu"), med(n, "cores"),
          med(n, "per_cpu")))
    print("  ^ machine: %.2f of %.0f CPUs busy (this server %.2f; wrk, the kernel and the rest %.2f), %.0f%% stolen by other VMs"
          % (med(n, "mbusy"), med(n, "ncpu"), med(n, "cores"), med(n, "mbusy") - med(n, "cores"), med(n, "steal_pct")))
    errs = [r for r in runs[n] if r["errors"]]
    for k, r in enumerate(runs[n], 1):
        if r["errors"]:
            print("  ^ round %d: %d non-2xx answers, %d connect, %d read, %d write, %d timeout errors"
                  % (k, r["non2xx"], r["connect"], r["read"], r["write"], r["timeout"]))
print()
p99 = med("ours", "p99_us") / 1000
print("targets:")
print("  p99 of agent-iam serve at %d connections  %7.2f ms  (target < 5 ms)  %s"
      % (64, p99, "ok" if p99 < 5 else "ABOVE"))
if "node" in runs:
    ratios = [o["per_cpu"] / n["per_cpu"] for o, n in zip(runs["ours"], runs["node"])]
    ratio = statistics.median(ratios)
    print("  requests per CPU-second, ours / node /status  %5.1fx  (target >= 3x)  %s"
          % (ratio, "ok" if ratio >= 3 else "BELOW"))
    if rounds > 1:
        print("    per round: " + ", ".join("%.1fx" % x for x in ratios))
    print("  (requests/s, ours / node: %.1fx; both share the 2 CPUs with wrk)"
          % statistics.median(o["rps"] / n["rps"] for o, n in zip(runs["ours"], runs["node"])))
else:
    print("  requests per CPU-second, ours / node: no Node.js figures")
if "nodecheck" in runs:
    print("  requests per CPU-second, ours / node check wrapper  %5.1fx"
          % statistics.median(o["per_cpu"] / n["per_cpu"] for o, n in zip(runs["ours"], runs["nodecheck"])))
sys.exit(1 if any(r["errors"] for r in runs["ours"]) else 0)
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
    echo "perf record -g on agent-iam serve under the same load (not a measured run):"
    perf record -F 999 -g -p "$ours_pid" -o "$TMP/perf.data" -- sleep "$SECS" \
        >"$TMP/perf.log" 2>&1 &
    perf_pid=$!
    BENCH_METHOD=POST BENCH_BEARER="$TOKEN" BENCH_BODY="$BODY" \
        wrk -t"$WTHREADS" -c"$CONNS" -d"${SECS}s" --timeout 5s \
        -s "$HERE/request.lua" "$ours_url" >/dev/null 2>&1
    wait "$perf_pid"
    echo "  by library:"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort dso -g none \
        --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12
    echo "  by function (self):"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol -g none \
        --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' |
        sed 's/ *- *- *$//' | head -n 30
fi
exit 0
