#!/bin/sh
# CLI tests of `agent-iam revoke` and `unrevoke` on a local home: ids taken
# as given (even beginning with '-' or '--'), by token and by agent,
# --reason, --json results, idempotent revoke, unrevoke of what is not
# revoked (exit 1), and argument errors (exit 2 with the usage).
# Usage: tests/cli/revoke.sh BUILD/agent-iam
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
h=$tmp/home
db=$h/agent-iam.db
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
ai() { "$bin" --home "$h" "$@"; }

# expect NAME WANT_EXIT STDERR_PATTERN -- command...
expect() {
    name=$1 want=$2 pat=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        no "$name (exit $got, want $want; stderr: $(head -c 300 "$tmp/err"))"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/err"; then
        no "$name (stderr lacks \"$pat\": $(head -c 300 "$tmp/err"))"
    else
        ok "$name"
    fi
}
# rows TARGET ID: rows of the revocations table for it
rows() {
    sqlite3 "$db" "SELECT count(*) FROM revocations WHERE target = $1 AND id = '$2'"
}
out_is() {
    if [ "$(cat "$tmp/out")" = "$2" ]; then ok "$1"; else no "$1 (stdout: $(cat "$tmp/out"))"; fi
}

expect "revoke a token id" 0 "" -- ai revoke tok-1
out_is "revoke prints the id" "revoked token tok-1"
[ "$(rows 0 tok-1)" = 1 ] && ok "row written" || no "row written"
expect "revoke again is fine" 0 "" -- ai revoke tok-1 --reason "again"
[ "$(rows 0 tok-1)" = 1 ] && ok "still one row" || no "still one row"
[ "$(sqlite3 "$db" "SELECT reason FROM revocations WHERE id = 'tok-1'")" = again ] \
    && ok "reason updated" || no "reason updated"

expect "id beginning with -" 0 "" -- ai revoke -abc
out_is "its id printed as given" "revoked token -abc"
expect "id beginning with --" 0 "" -- ai revoke --abc --reason "dash dash"
[ "$(rows 0 --abc)" = 1 ] && ok "-- id stored as given" || no "-- id stored as given"
expect "id that is a lone -" 0 "" -- ai revoke -
[ "$(rows 0 -)" = 1 ] && ok "- stored as given" || no "- stored as given"
expect "--reason=R form" 0 "" -- ai revoke tok-2 --reason=rotated
[ "$(sqlite3 "$db" "SELECT reason FROM revocations WHERE id = 'tok-2'")" = rotated ] \
    && ok "--reason=R kept" || no "--reason=R kept"
expect "id never issued by this home" 0 "" -- ai revoke AAAAAAAAAAAAAAAAAAAAAA
expect "--home after the command" 0 "" -- "$bin" revoke tok-3 --home "$h"
[ "$(rows 0 tok-3)" = 1 ] && ok "--home after the command used" || no "--home after the command used"

expect "revoke --agent" 0 "" -- ai revoke --agent code-reviewer --reason "left"
out_is "agent revoke prints the id" "revoked agent code-reviewer"
[ "$(rows 1 code-reviewer)" = 1 ] && ok "agent row written" || no "agent row written"
[ "$(rows 0 code-reviewer)" = 0 ] && ok "not a token row" || no "not a token row"
expect "agent id beginning with --" 0 "" -- ai revoke --agent --odd
[ "$(rows 1 --odd)" = 1 ] && ok "agent --odd stored" || no "agent --odd stored"

expect "revoke --json" 0 "" -- ai revoke tok-4 --reason r --json
grep -q '"revoked": true' "$tmp/out" && grep -q '"id": "tok-4"' "$tmp/out" \
    && grep -q '"target": "token"' "$tmp/out" && grep -q '"reason": "r"' "$tmp/out" \
    && grep -q '"revokedAt": "20' "$tmp/out" && ok "--json result object" \
    || no "--json result object: $(cat "$tmp/out")"
expect "--json before the command" 0 "" -- "$bin" --json --home "$h" revoke --agent bob
grep -q '"target": "agent"' "$tmp/out" && ok "--json agent target" \
    || no "--json agent target: $(cat "$tmp/out")"

expect "status counts them" 0 "" -- ai status --json
grep -q '"revocations": 11,' "$tmp/out" && ok "status shows 11" \
    || no "status shows 11: $(cat "$tmp/out")"

expect "unrevoke a token" 0 "" -- ai unrevoke tok-1
out_is "unrevoke prints the id" "unrevoked token tok-1"
[ "$(rows 0 tok-1)" = 0 ] && ok "row removed" || no "row removed"
expect "unrevoke it again" 1 'token "tok-1" is not revoked' -- ai unrevoke tok-1
[ "$(wc -l <"$tmp/err")" -eq 1 ] && ok "one line on stderr" || no "one line on stderr: $(cat "$tmp/err")"
expect "unrevoke of a never-revoked id" 1 "is not revoked" -- ai unrevoke never
expect "unrevoke --agent" 0 "" -- ai unrevoke --agent code-reviewer
[ "$(rows 1 code-reviewer)" = 0 ] && ok "agent row removed" || no "agent row removed"
expect "unrevoke --agent not revoked" 1 'agent "code-reviewer" is not revoked' -- \
    ai unrevoke --agent code-reviewer
expect "unrevoke an id beginning with --" 0 "" -- ai unrevoke --abc
expect "unrevoke --json" 0 "" -- ai unrevoke tok-2 --json
grep -q '"unrevoked": true' "$tmp/out" && grep -q '"id": "tok-2"' "$tmp/out" \
    && ok "unrevoke --json result" || no "unrevoke --json result: $(cat "$tmp/out")"
expect "unrevoke takes no --reason" 2 "usage" -- ai unrevoke tok-3 --reason x

# each command left an audit row (actor cli), never for refusals
audit() {
    sqlite3 "$db" "SELECT count(*) FROM audit WHERE actor = 'cli' AND $1"
}
[ "$(audit "action = 'revoke' AND token_id = 'tok-1' AND reason = 'again'")" = 1 ] \
    && ok "audit row of a revoke" || no "audit row of a revoke"
[ "$(audit "action = 'revoke' AND agent_id = 'code-reviewer' AND token_id IS NULL")" = 1 ] \
    && ok "audit row of an agent revoke" || no "audit row of an agent revoke"
[ "$(audit "action = 'unrevoke' AND token_id = 'tok-1'")" = 1 ] \
    && ok "audit row of an unrevoke" || no "audit row of an unrevoke"
[ "$(audit "action = 'unrevoke'")" = 4 ] && ok "no audit row for a refused unrevoke" \
    || no "audit rows of unrevoke: $(audit "action = 'unrevoke'")"
# an audit log that cannot be written: the revoke stands, with a warning
sqlite3 "$db" "CREATE TRIGGER t_no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'audit disabled by the test'); END;"
expect "revoke with a failing audit log" 0 "warning: audit" -- ai revoke tok-5
out_is "its id printed all the same" "revoked token tok-5"
[ "$(rows 0 tok-5)" = 1 ] && ok "revoked all the same" || no "revoked all the same"
sqlite3 "$db" "DROP TRIGGER t_no_audit"

expect "revoke without an id" 2 "usage" -- ai revoke
expect "revoke with only --reason" 2 "required" -- ai revoke --reason r
expect "revoke with two ids" 2 "unexpected argument" -- ai revoke a b
expect "revoke with an id and --agent" 2 "not both" -- ai revoke a --agent b
expect "revoke --agent without its value" 2 "needs a value" -- ai revoke --agent
expect "revoke --reason without its value" 2 "needs a value" -- ai revoke a --reason
expect "revoke an empty id" 2 "empty" -- ai revoke ""
expect "revoke an id with a control character" 2 "control" -- ai revoke "$(printf 'a\tb')"
long=$(head -c 300 /dev/zero | tr '\0' x)
expect "revoke an id over 256 bytes" 2 "256" -- ai revoke "$long"
expect "unrevoke without an id" 2 "usage" -- ai unrevoke
expect "unrevoke with two ids" 2 "unexpected argument" -- ai unrevoke a b
n=$(sqlite3 "$db" "SELECT count(*) FROM revocations")
[ "$n" = 8 ] && ok "refused commands wrote nothing" || no "rows after refusals: $n"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
