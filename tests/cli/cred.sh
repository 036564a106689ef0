#!/bin/sh
# CLI tests of `agent-iam cred` on a local home: the README's API-key
# example (json and --format token), maxUses budgets, unconfigured and
# unknown providers, a scope without a provider segment, a token without
# the scope and a revoked token; and that no secret reaches the audit log.
# Usage: tests/cli/cred.sh BUILD/agent-iam
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
h=$tmp/home
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

key=sk-cred-test-0123456789
expect "apikey add" 0 "" -- ai apikey add --name openai --provider openai --key "$key" \
    --base-url https://api.openai.com/v1
expect "create-root (README getCredential)" 0 "" -- ai token create-root --agent-id my-agent \
    --scopes "github:repo:read,openai:chat:*" --ttl-days 1
cp "$tmp/out" "$tmp/tok"

# --- API key credential ---------------------------------------------------
expect "cred openai:chat:completions" 0 "" -- ai cred openai:chat:completions "" --token "@$tmp/tok"
grep -q '"credentialType": "api_key"' "$tmp/out" && ok "credentialType api_key" || no "credentialType api_key"
grep -q "\"apiKey\": \"$key\"" "$tmp/out" && ok "apiKey" || no "apiKey"
grep -q "\"Authorization\": \"Bearer $key\"" "$tmp/out" && ok "Authorization header" || no "Authorization header"
grep -q '"baseUrl": "https://api.openai.com/v1"' "$tmp/out" && ok "baseUrl" || no "baseUrl"
grep -q '"expiresAt": "20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:.]*Z"' "$tmp/out" \
    && ok "expiresAt ISO" || no "expiresAt ISO"
expect "cred --format token" 0 "" -- ai cred openai:chat:completions "" --token "@$tmp/tok" --format token
[ "$(cat "$tmp/out")" = "$key" ] && ok "--format token prints the key alone" || no "--format token prints the key alone"
expect "cred token from stdin" 0 "" -- sh -c "'$bin' --home '$h' cred openai:chat:completions '' --token - <'$tmp/tok'"
expect "bad --format" 2 "usage" -- ai cred openai:chat:completions "" --token "@$tmp/tok" --format xml
expect "missing --token" 2 "usage" -- ai cred openai:chat:completions ""

# --- maxUses: 2 -------------------------------------------------------------
expect "create-root maxUses 2" 0 "" -- ai token create-root --agent-id limited \
    --scopes "openai:chat:*" --constraints '{"openai:chat:*":{"maxUses":2}}'
cp "$tmp/out" "$tmp/lim"
expect "maxUses use 1" 0 "" -- ai cred openai:chat:completions "" --token "@$tmp/lim"
expect "maxUses use 2" 0 "" -- ai cred openai:chat:completions "" --token "@$tmp/lim"
expect "maxUses use 3 denied" 1 "no uses left" -- ai cred openai:chat:completions "" --token "@$tmp/lim"

# --- providers --------------------------------------------------------------
expect "github not configured" 1 "provider github is not configured" -- \
    ai cred github:repo:read myorg/repo --token "@$tmp/tok"
expect "create-root other scopes" 0 "" -- ai token create-root --agent-id wide \
    --scopes "github:repo:read,frob:thing:read,system:token:refresh"
cp "$tmp/out" "$tmp/wide"
expect "unknown provider" 1 "unknown provider \"frob\"" -- ai cred frob:thing:read x --token "@$tmp/wide"
# an API key only answers for its own provider, whatever its name
expect "apikey named like another provider" 0 "" -- ai apikey add --name github --provider openai --key sk-other-provider
expect "github not answered by an openai key" 1 "provider github is not configured" -- \
    ai cred github:repo:read myorg/repo --token "@$tmp/wide"
grep -q "sk-other-provider" "$tmp/out" && no "openai key handed out for github" || ok "openai key not handed out for github"
expect "unconfigured provider costs no use" 1 "not configured" -- \
    ai cred github:repo:read myorg/repo --token "@$tmp/wide"
expect "scope without provider segment" 1 "no provider segment" -- ai cred chat "" --token "@$tmp/tok"
expect "scope with empty provider" 1 "no provider segment" -- ai cred :chat:x "" --token "@$tmp/tok"

# --- refusals -----------------------------------------------------------------
expect "token without the scope" 1 "not allowed" -- ai cred openai:chat:completions "" --token "@$tmp/wide"
expect "bad token" 1 "invalid token" -- ai cred openai:chat:completions "" --token garbage
tid=$(ai token show "@$tmp/tok" | sed -n 's/.*"tokenId": "\([^"]*\)".*/\1/p')
expect "revoke" 0 "" -- ai revoke "$tid" --reason test
expect "revoked token" 1 "revoked" -- ai cred openai:chat:completions "" --token "@$tmp/tok"

# --- audit ------------------------------------------------------------------
expect "audit tail" 0 "" -- ai audit tail -n 50
grep -q "credential" "$tmp/out" && ok "credential rows audited" || no "credential rows audited"
grep -q "deny" "$tmp/out" && ok "denials audited" || no "denials audited"
if grep -q -- "$key" "$tmp/out" "$h"/*.db* 2>/dev/null; then
    no "key in the audit log or database"
else
    ok "no key in the audit log or database"
fi
expect "audit verify" 0 "" -- ai audit verify

echo "cred.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
