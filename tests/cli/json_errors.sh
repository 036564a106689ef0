#!/bin/sh
# CLI tests of errors under --json: every failure is one JSON object
# {"error", "code"} on stdout (not also on stderr, where a usage error
# still shows the usage),
# with the exit code it has without --json; verify and check keep their
# verdict object and add the code.
# Usage: tests/cli/json_errors.sh BUILD/agent-iam
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
. "$(dirname "$0")/lib.sh"

# jerr NAME WANT_EXIT WANT_CODE -- command... (run with --json, then without)
jerr() {
    name=$1 want=$2 code=$3
    shift 4
    "$@" --json >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        no "$name (exit $got, want $want; out: $(head -c 200 "$tmp/out"))"
        return
    fi
    if ! python3 - "$tmp/out" "$code" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert isinstance(o, dict), o
assert isinstance(o.get("error"), str) and o["error"], o
assert o.get("code") == sys.argv[2], (o, sys.argv[2])
PY
    then
        no "$name (stdout is not {\"error\",\"code\":\"$code\"}: $(head -c 300 "$tmp/out"))"
        return
    fi
    if grep -q '^agent-iam: ' "$tmp/err"; then
        no "$name (the error is on stderr too: $(head -c 200 "$tmp/err"))"
        return
    fi
    # the same message first on stderr without --json (digits aside: a connect
    # error says how many ms it took)
    msg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$tmp/out")
    "$@" >"$tmp/out2" 2>"$tmp/err2"
    got2=$?
    if [ "$got2" -ne "$want" ]; then
        no "$name (exit without --json $got2, with $want)"
    elif [ -s "$tmp/out2" ]; then
        no "$name (without --json, stdout: $(head -c 200 "$tmp/out2"))"
    elif [ "$(head -n 1 "$tmp/err2" | tr -d 0-9)" != "$(printf 'agent-iam: %s\n' "$msg" | tr -d 0-9)" ]; then
        no "$name (without --json, stderr lacks the same message: $(head -c 200 "$tmp/err2"))"
    else
        ok "$name"
    fi
}

h=$tmp/home
"$bin" --home "$h" token create-root --agent-id bot --scopes a:b:c >"$tmp/root" ||
    no "create-root"
id=$("$bin" --home "$h" --json token verify "@$tmp/root" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["tokenId"])')

jerr "unknown command" 2 usage -- "$bin" --home "$h" frobnicate
jerr "missing flags" 2 usage -- "$bin" --home "$h" token delegate
jerr "bad option" 2 usage -- "$bin" --home "$h" key list --nope
(cd "$tmp" && "$bin" status --home --json >"$tmp/out" 2>"$tmp/err")
rc=$?
if [ "$rc" -eq 2 ] && [ ! -e "$tmp/--json" ] && grep -q '"code": "usage"' "$tmp/out"; then
    ok "--home followed by an option is a usage error, no home made"
else
    no "--home followed by an option (exit $rc: $(cat "$tmp/out" "$tmp/err"))"
fi
jerr "a malformed token" 1 invalid_token -- "$bin" --home "$h" token show abc
jerr "a token file that is not there" 1 failed -- "$bin" --home "$h" token show "@$tmp/none"
jerr "a key version that is not there" 1 not_found -- "$bin" --home "$h" key export --version 9
jerr "a constraint of the wrong type" 2 bad_request -- "$bin" --home "$h" token create-root \
    --agent-id x --scopes a:b:c --constraints '{"a:b:c":{"resources":"notarray"}}'
: >"$tmp/exists"
jerr "backup over a file" 1 bad_request -- "$bin" --home "$h" backup "$tmp/exists"
jerr "a leader that is not there" 1 unavailable -- "$bin" status \
    --leader-url https://127.0.0.1:1 --auth-token x

# verify and check: the verdict object, with the code
"$bin" --home "$h" revoke "$id" >/dev/null 2>&1 || no "revoke"
"$bin" --home "$h" --json token verify "@$tmp/root" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 1 ] && [ ! -s "$tmp/err" ] && python3 - "$tmp/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["valid"] is False and o["code"] == "token_revoked" and "revoked" in o["error"], o
PY
then ok "verify --json of a revoked token: valid false, code token_revoked"
else no "verify --json of a revoked token (exit $rc: $(cat "$tmp/out" "$tmp/err"))"
fi
"$bin" --home "$h" --json token check "@$tmp/root" a:b:c r >"$tmp/out" 2>&1
grep -q '"code": "token_revoked"' "$tmp/out" && ok "check --json names the code too" ||
    no "check --json names the code too ($(cat "$tmp/out"))"

finish
