#!/bin/sh
# Fault test (b): SIGKILL in the middle of revoking. A loop runs
# `agent-iam revoke` on one id after another; the command prints the id
# only after its commit returned. The loop and the command it is running
# are killed with SIGKILL (three rounds, each once it has acknowledged
# five, then 0, 50 or 130 ms later). After a restart every printed id
# must be revoked and SQLite's integrity_check must be ok: an acknowledged
# revoke survives kill -9.
# Usage: tests/cli/fault_kill.sh BUILD/agent-iam
set -u
bin=$1
tmp=$(mktemp -d)
# a loop still running (setsid: no signal to our group reaches it) is
# killed on every way out
pgid=""
trap '[ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
h=$tmp/home
db=$h/agent-iam.db
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }

"$bin" --home "$h" status >/dev/null 2>&1 || no "home created"
: >"$tmp/printed"
lines() { wc -l <"$tmp/printed"; }
for round in 1 2 3; do
    case $round in
    1) nap=0 ;;
    2) nap=0.05 ;;
    *) nap=0.13 ;;
    esac
    # its own process group, so one kill reaches the loop and the command
    setsid sh -c '
        # tokenIds of 22 characters: r1-AAAAAAAAA1000000000...
        i=1000000000
        while :; do
            "$1" --home "$2" revoke "r$3-AAAAAAAAA$i" >>"$4" 2>/dev/null
            i=$((i + 1))
        done' sh "$bin" "$h" "$round" "$tmp/printed" &
    pgid=$!
    # kill once this round has acknowledged a few (however slow the build:
    # a sanitizer, a loaded machine), then a little later, so the kill
    # lands at a different moment of a revoke each round; at most 60 s
    want=$(($(lines) + 5))
    t=0
    while [ "$(lines)" -lt "$want" ] && [ "$t" -lt 1200 ]; do
        sleep 0.05
        t=$((t + 1))
    done
    sleep "$nap"
    kill -KILL -- "-$pgid" 2>/dev/null || kill -KILL "$pgid"
    wait "$pgid" 2>/dev/null
    pgid=""
done

# what the command printed: "revoked token ID" lines, possibly a torn last
# line if a kill came in the middle of a write (not an acknowledgement)
grep -E '^revoked token r[0-9]+-A+[0-9]+$' "$tmp/printed" | sed 's/^revoked token //' \
    | sort >"$tmp/acked"
n=$(wc -l <"$tmp/acked")
[ "$n" -ge 15 ] && ok "$n revokes acknowledged before the kills" \
    || no "only $n revokes acknowledged"

# restart: a new process opens the home (recovering the WAL) and works
"$bin" --home "$h" revoke after-restart000000000 >/dev/null 2>"$tmp/err" \
    && ok "revoke after restart" || no "revoke after restart: $(cat "$tmp/err")"
"$bin" --home "$h" status --json >"$tmp/status" 2>"$tmp/err" \
    && ok "status after restart" || no "status after restart: $(cat "$tmp/err")"

sqlite3 "$db" "SELECT id FROM revocations WHERE target = 0" | sort >"$tmp/stored"
missing=$(comm -23 "$tmp/acked" "$tmp/stored" | wc -l)
[ "$missing" -eq 0 ] && ok "every acknowledged id is revoked" \
    || no "$missing acknowledged ids missing, e.g. $(comm -23 "$tmp/acked" "$tmp/stored" | head -3 | tr '\n' ' ')"
# the changelog has each revocation too (followers replay it)
sqlite3 "$db" "SELECT substr(key, 3) FROM changelog WHERE kind = 'revocation'" \
    | sort >"$tmp/logged"
missing=$(comm -23 "$tmp/acked" "$tmp/logged" | wc -l)
[ "$missing" -eq 0 ] && ok "every acknowledged id is in the changelog" \
    || no "$missing acknowledged ids not in the changelog"
r=$(sqlite3 "$db" "PRAGMA integrity_check")
[ "$r" = ok ] && ok "integrity_check ok" || no "integrity_check: $r"
r=$(sqlite3 "$db" "PRAGMA foreign_key_check" | wc -l)
[ "$r" -eq 0 ] && ok "foreign_key_check clean" || no "foreign_key_check: $r rows"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
