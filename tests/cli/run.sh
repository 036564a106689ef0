#!/bin/sh
# CLI tests: the agent-iam binary as a user runs it (exit codes, messages,
# token arguments from argv, stdin and files) and the example programs.
# Usage: tests/cli/run.sh BUILD/agent-iam BUILD/examples
set -u
bin=$1
examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect NAME WANT_EXIT STDERR_PATTERN -- command...
expect() {
    name=$1 want=$2 pat=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        no "$name (exit $got, want $want; stderr: $(head -c 200 "$tmp/err"))"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/err"; then
        no "$name (stderr lacks \"$pat\": $(head -c 200 "$tmp/err"))"
    else
        ok "$name"
    fi
}

expect "version prints" 0 "" -- "$bin" version
grep -q "^agent-iam [0-9]" "$tmp/out" && ok "version text" || no "version text"
expect "no command is a usage error" 2 "usage" -- "$bin"
expect "unknown command is a usage error" 2 "unknown command" -- "$bin" frobnicate
expect "help exits 0" 0 "" -- "$bin" help
for c in "token create-root" "token delegate" "token verify" "token check" \
    "token refresh" "token show" "cred" "revoke" "serve" "follower" "apikey add"; do
    grep -q "^  $c " "$tmp/out" && ok "help lists $c" || no "help lists $c"
done
expect "--help after a command" 0 "" -- "$bin" token create-root --agent-id x --help
grep -q "^usage: agent-iam token create-root " "$tmp/out" && ok "its usage on stdout" \
    || no "its usage on stdout ($(cat "$tmp/out"))"
expect "-h after a command group" 0 "" -- "$bin" config -h
expect "help COMMAND" 0 "" -- "$bin" help apikey add
grep -q "^usage: agent-iam apikey add " "$tmp/out" && ok "help COMMAND prints its usage" \
    || no "help COMMAND prints its usage ($(cat "$tmp/out"))"

# The quick start example mints a root and a child and checks the README's
# results; its stdout is the child token.
"$examples/quickstart" >"$tmp/child" 2>"$tmp/qs.err" && ok "quickstart example" \
    || no "quickstart example: $(cat "$tmp/qs.err")"
tok=$(cat "$tmp/child")

expect "show reads argv" 0 "" -- "$bin" token show "$tok"
grep -q '"agentId": "code-reviewer"' "$tmp/out" && ok "show prints claims" || no "show prints claims"
grep -q '"ancestors"' "$tmp/out" && ok "show prints ancestors" || no "show prints ancestors"
expect "show reads stdin" 0 "" -- sh -c "printf '%s\n' '$tok' | '$bin' token show -"
printf '%s\r\n' "$tok" >"$tmp/tok.crlf"
expect "show reads @file with CRLF" 0 "" -- "$bin" token show "@$tmp/tok.crlf"
expect "show missing file" 1 "cannot open" -- "$bin" token show "@$tmp/none"
expect "show garbage" 1 "invalid token: " -- "$bin" token show 'not a token!'
expect "show empty" 1 "invalid token: empty" -- "$bin" token show ''
expect "show padded base64" 1 "invalid token: not unpadded base64url" -- "$bin" token show "${tok}="
head -c 30000 /dev/zero | tr '\0' 'A' >"$tmp/huge"
expect "show oversized file" 1 "longer than 22000" -- "$bin" token show "@$tmp/huge"
printf 'eyJhIjoxfQ' >"$tmp/nosig"
expect "show token without signature" 1 "invalid token: " -- "$bin" token show "@$tmp/nosig"
expect "show without argument" 2 "usage" -- "$bin" token show
expect "token without subcommand" 2 "usage" -- "$bin" token

# Random bytes never crash the decoder: every run ends in exit 1.
i=0
while [ $i -lt 50 ]; do
    head -c $((i * 37 + 1)) /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$tmp/rand"
    "$bin" token show "@$tmp/rand" >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 1 ] || ! grep -q "invalid token: " "$tmp/err"; then
        no "random token $i (exit $rc)"
        break
    fi
    i=$((i + 1))
done
[ $i -eq 50 ] && ok "50 random tokens refused cleanly"

# The commands of a local home, each script a group of cases.
here=$(dirname "$0")
sh "$here/store_keys.sh" "$bin" && ok "store_keys.sh" || no "store_keys.sh"
sh "$here/store_config.sh" "$bin" && ok "store_config.sh" || no "store_config.sh"
sh "$here/tokens.sh" "$bin" && ok "tokens.sh" || no "tokens.sh"
sh "$here/cred.sh" "$bin" && ok "cred.sh" || no "cred.sh"
sh "$here/cred_providers.sh" "$bin" && ok "cred_providers.sh" || no "cred_providers.sh"
sh "$here/store_audit.sh" "$bin" && ok "store_audit.sh" || no "store_audit.sh"
sh "$here/revoke.sh" "$bin" && ok "revoke.sh" || no "revoke.sh"
# fault_parallel.sh (a minute of eight writers) runs in `make test-slow`.
sh "$here/fault_kill.sh" "$bin" && ok "fault_kill.sh" || no "fault_kill.sh"
sh "$here/fault_corrupt.sh" "$bin" && ok "fault_corrupt.sh" || no "fault_corrupt.sh"
sh "$here/remote.sh" "$bin" && ok "remote.sh" || no "remote.sh"
sh "$here/remote_agent.sh" "$bin" && ok "remote_agent.sh" || no "remote_agent.sh"
sh "$here/json_errors.sh" "$bin" && ok "json_errors.sh" || no "json_errors.sh"
sh "$here/agent.sh" "$bin" "$examples" && ok "agent.sh" || no "agent.sh"
sh "$here/backup.sh" "$bin" && ok "backup.sh" || no "backup.sh"
sh "$here/certs.sh" "$bin" && ok "certs.sh" || no "certs.sh"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
