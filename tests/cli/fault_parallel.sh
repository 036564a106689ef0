#!/bin/sh
# Fault test (a): eight `agent-iam revoke` loops at once on one home, 200
# ids each (some beginning with '-'). Every command must succeed, SQLite's
# locking and busy timeout serializing the writers, and all 1,600 rows
# must be there afterwards, in the table and in `status --json`.
# Usage: tests/cli/fault_parallel.sh BUILD/agent-iam
set -u
bin=$1
tmp=$(mktemp -d)
pids=""
trap '[ -n "$pids" ] && kill $pids 2>/dev/null; wait; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
h=$tmp/home
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
loops=8
per=200

# the home exists before the writers start, as with a running broker
"$bin" --home "$h" status >/dev/null 2>&1 || no "home created"

start=$(date +%s)
w=1
while [ $w -le $loops ]; do
    (
        i=0
        while [ $i -lt $per ]; do
            # every fifth id begins with '-', every seventh with '--';
            # a tokenId is 22 characters
            p=
            [ $((i % 5)) -eq 0 ] && p="-"
            [ $((i % 7)) -eq 0 ] && p="--$p"
            id=$(printf '%s%s' "$p" "w$w-$i" AAAAAAAAAAAAAAAAAAAAAA | cut -c1-22)
            if ! "$bin" --home "$h" revoke "$id" --reason "writer $w" \
                    >/dev/null 2>"$tmp/err.$w.$i"; then
                echo "$id: $(cat "$tmp/err.$w.$i")" >>"$tmp/failed.$w"
            fi
            rm -f "$tmp/err.$w.$i"
            i=$((i + 1))
        done
    ) &
    pids="$pids $!"
    w=$((w + 1))
done
wait
pids=""
took=$(($(date +%s) - start))

if cat "$tmp"/failed.* >"$tmp/failed" 2>/dev/null && [ -s "$tmp/failed" ]; then
    no "every revoke succeeded ($(wc -l <"$tmp/failed") failed, first: $(head -1 "$tmp/failed"))"
else
    ok "every revoke of $loops x $per succeeded (${took}s)"
fi
n=$(sqlite3 "$h/agent-iam.db" "SELECT count(*) FROM revocations WHERE target = 0")
[ "$n" = $((loops * per)) ] && ok "all $n rows present" \
    || no "rows present: $n, want $((loops * per))"
n=$(sqlite3 "$h/agent-iam.db" "SELECT count(DISTINCT reason) FROM revocations")
[ "$n" = $loops ] && ok "each writer's reason kept" || no "reasons: $n"
# one changelog row per revoke, seqs without repeats
n=$(sqlite3 "$h/agent-iam.db" "SELECT count(*), count(DISTINCT seq) FROM changelog WHERE kind = 'revocation'")
[ "$n" = "$((loops * per))|$((loops * per))" ] && ok "one changelog row each" \
    || no "changelog rows: $n"
"$bin" --home "$h" status --json >"$tmp/status" 2>"$tmp/err" \
    && grep -q "\"revocations\": $((loops * per))," "$tmp/status" \
    && ok "status --json counts $((loops * per))" \
    || no "status --json: $(cat "$tmp/status" "$tmp/err")"
n=$(sqlite3 "$h/agent-iam.db" "PRAGMA integrity_check")
[ "$n" = ok ] && ok "integrity_check ok" || no "integrity_check: $n"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
