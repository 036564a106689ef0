#!/bin/sh
# CLI tests of `agent-iam revoke` and `unrevoke` on a local home: tokenIds
# (22 base64url characters) taken as given (even beginning with '-' or
# '--'), by token and by agent, --reason, --json results, idempotent
# revoke, unrevoke of what is not revoked (exit 1), -h/--help (the usage,
# nothing revoked), and argument errors and what is not a tokenId (exit 2
# with the usage).
# Usage: tests/cli/revoke.sh BUILD/agent-iam
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
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

# tid PREFIX: a tokenId (22 base64url characters) that begins with PREFIX
tid() { printf '%s%s' "$1" AAAAAAAAAAAAAAAAAAAAAA | cut -c1-22; }
T1=$(tid tok-1) T2=$(tid tok-2) T3=$(tid tok-3) T4=$(tid tok-4) T5=$(tid tok-5)
D1=$(tid -abc) D2=$(tid --abc)

expect "revoke a token id" 0 "" -- ai revoke "$T1"
out_is "revoke prints the id" "revoked token $T1"
[ "$(rows 0 "$T1")" = 1 ] && ok "row written" || no "row written"
expect "revoke again is fine" 0 "" -- ai revoke "$T1" --reason "again"
[ "$(rows 0 "$T1")" = 1 ] && ok "still one row" || no "still one row"
[ "$(sqlite3 "$db" "SELECT reason FROM revocations WHERE id = '$T1'")" = again ] \
    && ok "reason updated" || no "reason updated"

expect "id beginning with -" 0 "" -- ai revoke "$D1"
out_is "its id printed as given" "revoked token $D1"
expect "id beginning with --" 0 "" -- ai revoke "$D2" --reason "dash dash"
[ "$(rows 0 "$D2")" = 1 ] && ok "-- id stored as given" || no "-- id stored as given"
expect "--reason=R form" 0 "" -- ai revoke "$T2" --reason=rotated
[ "$(sqlite3 "$db" "SELECT reason FROM revocations WHERE id = '$T2'")" = rotated ] \
    && ok "--reason=R kept" || no "--reason=R kept"
expect "id never issued by this home" 0 "" -- ai revoke AAAAAAAAAAAAAAAAAAAAAA
expect "--home after the command" 0 "" -- "$bin" revoke "$T3" --home "$h"
[ "$(rows 0 "$T3")" = 1 ] && ok "--home after the command used" || no "--home after the command used"

expect "revoke --agent" 0 "" -- ai revoke --agent code-reviewer --reason "left"
out_is "agent revoke prints the id" "revoked agent code-reviewer"
[ "$(rows 1 code-reviewer)" = 1 ] && ok "agent row written" || no "agent row written"
[ "$(rows 0 code-reviewer)" = 0 ] && ok "not a token row" || no "not a token row"
expect "agent id beginning with --" 0 "" -- ai revoke --agent --odd
[ "$(rows 1 --odd)" = 1 ] && ok "agent --odd stored" || no "agent --odd stored"

expect "revoke --json" 0 "" -- ai revoke "$T4" --reason r --json
grep -q '"revoked": true' "$tmp/out" && grep -q "\"id\": \"$T4\"" "$tmp/out" \
    && grep -q '"target": "token"' "$tmp/out" && grep -q '"reason": "r"' "$tmp/out" \
    && grep -q '"revokedAt": "20' "$tmp/out" && ok "--json result object" \
    || no "--json result object: $(cat "$tmp/out")"
expect "--json before the command" 0 "" -- "$bin" --json --home "$h" revoke --agent bob
grep -q '"target": "agent"' "$tmp/out" && ok "--json agent target" \
    || no "--json agent target: $(cat "$tmp/out")"

expect "status counts them" 0 "" -- ai status --json
grep -q '"revocations": 10,' "$tmp/out" && ok "status shows 10" \
    || no "status shows 10: $(cat "$tmp/out")"

expect "unrevoke a token" 0 "" -- ai unrevoke "$T1"
out_is "unrevoke prints the id" "unrevoked token $T1"
[ "$(rows 0 "$T1")" = 0 ] && ok "row removed" || no "row removed"
expect "unrevoke it again" 1 "token \"$T1\" is not revoked" -- ai unrevoke "$T1"
[ "$(wc -l <"$tmp/err")" -eq 1 ] && ok "one line on stderr" || no "one line on stderr: $(cat "$tmp/err")"
expect "unrevoke of a never-revoked id" 1 "is not revoked" -- ai unrevoke "$(tid never)"
expect "unrevoke --agent" 0 "" -- ai unrevoke --agent code-reviewer
[ "$(rows 1 code-reviewer)" = 0 ] && ok "agent row removed" || no "agent row removed"
expect "unrevoke --agent not revoked" 1 'agent "code-reviewer" is not revoked' -- \
    ai unrevoke --agent code-reviewer
expect "unrevoke an id beginning with --" 0 "" -- ai unrevoke "$D2"
expect "unrevoke --json" 0 "" -- ai unrevoke "$T2" --json
grep -q '"unrevoked": true' "$tmp/out" && grep -q "\"id\": \"$T2\"" "$tmp/out" \
    && ok "unrevoke --json result" || no "unrevoke --json result: $(cat "$tmp/out")"
expect "unrevoke takes no --reason" 2 "usage" -- ai unrevoke "$T3" --reason x

# each command left an audit row (actor cli), never for refusals
audit() {
    sqlite3 "$db" "SELECT count(*) FROM audit WHERE actor = 'cli' AND $1"
}
[ "$(audit "action = 'revoke' AND token_id = '$T1' AND reason = 'again'")" = 1 ] \
    && ok "audit row of a revoke" || no "audit row of a revoke"
[ "$(audit "action = 'revoke' AND agent_id = 'code-reviewer' AND token_id IS NULL")" = 1 ] \
    && ok "audit row of an agent revoke" || no "audit row of an agent revoke"
[ "$(audit "action = 'unrevoke' AND token_id = '$T1'")" = 1 ] \
    && ok "audit row of an unrevoke" || no "audit row of an unrevoke"
[ "$(audit "action = 'unrevoke'")" = 4 ] && ok "no audit row for a refused unrevoke" \
    || no "audit rows of unrevoke: $(audit "action = 'unrevoke'")"
# an audit log that cannot be written: the revoke and its row are one
# transaction, so it fails and nothing changes
sqlite3 "$db" "CREATE TRIGGER t_no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'audit disabled by the test'); END;"
expect "revoke with a failing audit log" 1 "audit disabled by the test" -- ai revoke "$T5"
[ ! -s "$tmp/out" ] && ok "no id printed" || no "no id printed: $(cat "$tmp/out")"
[ "$(rows 0 "$T5")" = 0 ] && ok "not revoked" || no "not revoked"
sqlite3 "$db" "DROP TRIGGER t_no_audit"

# ---- refused: help, not a tokenId, argument errors -------------------------
n0=$(sqlite3 "$db" "SELECT count(*) FROM revocations")
a0=$(sqlite3 "$db" "SELECT count(*) FROM audit")
for args in "revoke --help" "revoke -h" "unrevoke --help" "unrevoke -h" \
    "revoke $T1 --help" "revoke --agent bot -h" "revoke --help --reason x"; do
    # shellcheck disable=SC2086
    expect "$args: exit 0" 0 "" -- ai $args
    grep -q "^usage: agent-iam ${args%% *} " "$tmp/out" && [ ! -s "$tmp/err" ] \
        && ok "$args: the usage on stdout" \
        || no "$args: the usage on stdout ($(cat "$tmp/out" "$tmp/err"))"
done
expect "revoke without an id" 2 "usage" -- ai revoke
expect "revoke with only --reason" 2 "required" -- ai revoke --reason r
expect "revoke with two ids" 2 "unexpected argument" -- ai revoke "$T1" "$T2"
expect "revoke with an id and --agent" 2 "not both" -- ai revoke "$T1" --agent b
expect "revoke --agent without its value" 2 "needs a value" -- ai revoke --agent
expect "revoke --reason without its value" 2 "needs a value" -- ai revoke "$T1" --reason
expect "revoke an agent with an empty id" 2 "empty" -- ai revoke --agent ""
for bad in notanid "" - -x --abc "$(tid x)A" "$(tid x | cut -c1-21)" \
    "$(tid x | cut -c1-21)=" "$(tid x | cut -c1-21)." "$(printf 'a\tbAAAAAAAAAAAAAAAAAAAA')"; do
    expect "revoke \"$bad\" (not a tokenId)" 2 "not a token id" -- ai revoke "$bad"
    expect "unrevoke \"$bad\" (not a tokenId)" 2 "not a token id" -- ai unrevoke "$bad"
done
long=$(head -c 300 /dev/zero | tr '\0' x)
expect "revoke an id over 256 bytes" 2 "not a token id" -- ai revoke "$long"
expect "revoke --unknown-option" 2 "not a token id" -- ai revoke --frobnicate
expect "unrevoke without an id" 2 "usage" -- ai unrevoke
expect "unrevoke with two ids" 2 "unexpected argument" -- ai unrevoke "$T1" "$T2"
expect "revoke -- ID" 0 "" -- ai revoke -- "$(tid -x)"
n=$(sqlite3 "$db" "SELECT count(*) FROM revocations")
[ "$n" = $((n0 + 1)) ] && ok "refused commands and help wrote nothing" \
    || no "rows after refusals: $n0 -> $n"
[ "$(sqlite3 "$db" "SELECT count(*) FROM audit")" = $((a0 + 1)) ] \
    && ok "and no audit row" || no "audit rows after refusals"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
