#!/bin/sh
# make bench: bench/verify, then (when node and npm exist) the Node.js
# package doing the same work on the same machine, and the ratios. These
# 2-core machines are shared and noisy, so absolute figures move from run
# to run; the ratio to the Node package measured alongside moves less.
# With a second argument, BUILD/bench/revocations then measures the
# revocation view at 1,000,000 entries (load, memory, verify at 0 and 1M).
# Usage: bench/run.sh BUILD/bench/verify [BUILD/bench/revocations]
set -eu
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
"$bin" | tee "$tmp/c.out"
if [ $# -ge 2 ]; then
    echo
    "$2"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "bench: node or npm missing: no Node.js baseline"
    exit 0
fi
echo
echo "Node.js agent-iam@0.0.3 on the same machine (npm install into $tmp):"
if ! (cd "$tmp" && npm install --silent --no-audit --no-fund --no-save \
        agent-iam@0.0.3 >npm.log 2>&1); then
    echo "bench: npm install failed, no baseline:"; tail -3 "$tmp/npm.log"
    exit 0
fi
node "$(dirname "$0")/node_baseline.mjs" "$tmp/node_modules/agent-iam" >"$tmp/node.json"
python3 - "$tmp/c.out" "$tmp/node.json" <<'PY'
import json, sys
c = json.loads([l for l in open(sys.argv[1]) if l.startswith("json ")][0][5:])
n = json.load(open(sys.argv[2]))
nc, nd = n["deserialize_check"], n["delegate"]
print("  deserialize + checkPermission   median %9.0f  best %9.0f ops/s" % tuple(nc))
print("  delegate                        median %9.0f  best %9.0f ops/s" % tuple(nd))
print()
print("ratio to Node.js (medians; the design's targets assume Node at 200,000")
print("checks and 120,000 delegations per second on these machines):")
rows = [("a", "(a) verify + check, distinct", nc, 600000 / 200000),
        ("b", "(b) same token, cache", nc, 4000000 / 200000),
        ("c", "(c) forged tokens rejected", nc, 1000000 / 200000),
        ("d", "(d) delegate", nd, 250000 / 120000)]
for tag, name, base, want in rows:
    if tag in c:
        r = c[tag][0] / base[0]
        print("  %-32s %6.1fx Node  (target %4.1fx)  %s" % (name, r, want, "ok" if r >= want else "BELOW"))
PY
