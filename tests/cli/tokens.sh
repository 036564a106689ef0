#!/bin/sh
# CLI tests of tokens on a local home: the README's Quick Start and
# Constraints examples with the results it states, refused escalations,
# revocation (of an ancestor, by agent) and key rotation seen by verify,
# refresh, tokens from stdin and files, --json results and exit codes.
# Usage: tests/cli/tokens.sh BUILD/agent-iam
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

# --- README Quick Start ---------------------------------------------------
expect "create-root" 0 "" -- ai token create-root --agent-id orchestrator \
    --scopes "github:repo:read,github:repo:write,openai:chat:*" \
    --constraints '{"github:repo:*":{"resources":["myorg/*"]}}' \
    --max-depth 3 --ttl-days 7
cp "$tmp/out" "$tmp/root"
[ "$(wc -l <"$tmp/root")" -eq 1 ] && ok "create-root prints the token alone" || no "create-root prints the token alone"
expect "delegate (parent from a file)" 0 "" -- ai token delegate --parent "@$tmp/root" \
    --agent-id code-reviewer --scopes github:repo:read \
    --constraints '{"github:repo:read":{"resources":["myorg/frontend"]}}' --ttl-minutes 60
cp "$tmp/out" "$tmp/child"
expect "verify child: valid" 0 "" -- ai token verify "@$tmp/child"
expect "check read myorg/frontend: allowed" 0 "" -- ai token check "@$tmp/child" github:repo:read myorg/frontend
expect "check write myorg/frontend: refused" 1 "not allowed" -- ai token check "@$tmp/child" github:repo:write myorg/frontend
expect "check read myorg/backend: refused" 1 "Resource" -- ai token check "@$tmp/child" github:repo:read myorg/backend
expect "verify from stdin" 0 "" -- sh -c "'$bin' --home '$h' token verify - <'$tmp/child'"
expect "verify --json" 0 "" -- ai token verify "@$tmp/child" --json
grep -q '"valid": true' "$tmp/out" && grep -q '"agentId": "code-reviewer"' "$tmp/out" \
    && ok "verify --json result" || no "verify --json result"
expect "check --json refused" 1 "" -- ai --json token check "@$tmp/child" github:repo:write x
grep -q '"valid": false' "$tmp/out" && grep -q '"error"' "$tmp/out" \
    && ok "check --json result" || no "check --json result"
expect "show" 0 "" -- ai token show "@$tmp/child"
grep -q '"parentId": "orchestrator"' "$tmp/out" && ok "show prints claims" || no "show prints claims"

# --- escalations refused --------------------------------------------------
expect "child scope outside the parent" 1 'Scope "github:repo:write" not allowed by parent token' -- \
    ai token delegate --parent "@$tmp/child" --scopes github:repo:write
expect "wildcard under a narrower parent" 1 "not allowed by parent token" -- \
    ai token delegate --parent "@$tmp/root" --scopes 'github:*'
expect "wider resources" 1 "not allowed by parent token" -- \
    ai token delegate --parent "@$tmp/child" --scopes github:repo:read \
    --constraints '{"github:repo:read":{"resources":["myorg/*"]}}'
ai token create-root --agent-id solo --scopes a:b:c --max-depth 0 >"$tmp/flat" 2>/dev/null
expect "depth exceeded" 1 "Delegation depth exceeded" -- ai token delegate --parent "@$tmp/flat" --scopes a:b:c
ai token create-root --agent-id nd --scopes a:b:c --no-delegatable >"$tmp/nd" 2>/dev/null
expect "non-delegatable parent" 1 "not delegatable" -- ai token delegate --parent "@$tmp/nd" --scopes a:b:c

# --- README Constraints example -------------------------------------------
expect "constraints example" 0 "" -- ai token create-root --agent-id restricted-agent \
    --scopes github:repo:read --ttl-days 30 --constraints \
    '{"github:repo:read":{"resources":["myorg/*","partner/shared-*"],"notBefore":"2024-01-01T00:00:00Z","notAfter":"2099-12-31T23:59:59Z","maxUses":100}}'
cp "$tmp/out" "$tmp/restricted"
expect "glob myorg/*" 0 "" -- ai token check "@$tmp/restricted" github:repo:read myorg/app
expect "glob partner/shared-*" 0 "" -- ai token check "@$tmp/restricted" github:repo:read partner/shared-docs
expect "glob partner/private" 1 "Resource" -- ai token check "@$tmp/restricted" github:repo:read partner/private
ai token create-root --agent-id late --scopes a:b:c --constraints \
    '{"a:b:c":{"notBefore":"2099-01-01T00:00:00Z"}}' >"$tmp/late" 2>/dev/null
expect "time window not open yet" 1 "not valid before" -- ai token check "@$tmp/late" a:b:c x

# --- narrowed federation and capabilities: a notice, JSON "narrowed" ------
ai token create-root --agent-id mapr --scopes a:b:c \
    --federation '{"crossSystemAllowed":false,"maxHops":2}' \
    --capabilities '{"canSpawn":false,"visibility":"scope"}' >"$tmp/mapr" 2>/dev/null
expect "narrowed delegation exits 0" 0 "" -- ai token delegate --parent "@$tmp/mapr" \
    --scopes a:b:c --federation '{"crossSystemAllowed":true,"maxHops":5}' \
    --capabilities '{"canSpawn":true,"visibility":"public"}'
[ "$(cat "$tmp/err")" = "agent-iam: notice: narrowed to the parent's: federation.crossSystemAllowed, federation.maxHops, agentCapabilities.canSpawn, agentCapabilities.visibility" ] \
    && ok "narrowed: one notice line on stderr" || no "narrowed: one notice line on stderr ($(cat "$tmp/err"))"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && ai token verify "$(cat "$tmp/out")" >/dev/null 2>&1 \
    && ok "narrowed: the token alone on stdout" || no "narrowed: the token alone on stdout"
expect "not narrowed" 0 "" -- ai token delegate --parent "@$tmp/mapr" --scopes a:b:c \
    --federation '{"maxHops":1}' --capabilities '{"canSpawn":false,"visibility":"system"}'
[ ! -s "$tmp/err" ] && ok "not narrowed: nothing on stderr" || no "not narrowed: nothing on stderr ($(cat "$tmp/err"))"
expect "narrowed --json" 0 "" -- ai --json token delegate --parent "@$tmp/mapr" \
    --scopes a:b:c --capabilities '{"canSpawn":true}'
[ ! -s "$tmp/err" ] && python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["narrowed"] == ["agentCapabilities.canSpawn"] and o["token"] and o["tokenId"] and o["expiresAt"]' "$tmp/out" \
    && ok "narrowed --json: the list, nothing on stderr" || no "narrowed --json: the list, nothing on stderr ($(cat "$tmp/out" "$tmp/err"))"
expect "not narrowed --json" 0 "" -- ai --json token delegate --parent "@$tmp/mapr" --scopes a:b:c
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["narrowed"] == []' "$tmp/out" \
    && ok "not narrowed --json: narrowed is []" || no "not narrowed --json: narrowed is []"

# --- bad arguments: exit 2 ------------------------------------------------
expect "missing --scopes" 2 "required" -- ai token create-root --agent-id x
expect "bad JSON" 2 "not a JSON object" -- ai token create-root --agent-id x --scopes a --constraints '{'
expect "TTL below 1" 2 "ttl-days" -- ai token create-root --agent-id x --scopes a --ttl-days 0
expect "TTL not a number" 2 "ttl-minutes" -- ai token delegate --parent "@$tmp/root" --scopes github:repo:read --ttl-minutes ten
expect "unknown constraint field" 2 "unknown field" -- ai token create-root --agent-id x --scopes a:b --constraints '{"a:b":{"resource":["x"]}}'
# well-formed JSON of the wrong type: say which member and what it takes
expect "resources not an array says so" 2 'constraints: "resources" must be an array of strings ("resources":\["myorg/\*"\])' -- \
    ai token create-root --agent-id x --scopes a:b:c --constraints '{"a:b:c":{"resources":"notarray"}}'
expect "a constraint not an object says so" 2 'constraints: a constraint must be an object' -- \
    ai token create-root --agent-id x --scopes a:b:c --constraints '{"a:b:c":"x"}'
expect "maxUses not a number says so" 2 'constraints: "maxUses" must be a whole number from 1' -- \
    ai token create-root --agent-id x --scopes a:b:c --constraints '{"a:b:c":{"maxUses":"3"}}'
expect "wildcard scope in check" 2 '"\*" segment' -- ai token check "@$tmp/child" 'github:repo:*' myorg/frontend
expect "garbage token" 1 "invalid token: " -- ai token verify 'not-a-token'

# --- revocation and rotation take effect ----------------------------------
rid=$(ai --json token verify "@$tmp/root" | sed -n 's/.*"tokenId": "\(.*\)".*/\1/p')
[ -n "$rid" ] && ok "root tokenId" || no "root tokenId"
if [ -n "$rid" ]; then
    expect "revoke the root" 0 "" -- ai revoke --reason "test" -- "$rid"
    expect "child refused: ancestor revoked" 1 "revoked" -- ai token verify "@$tmp/child"
    expect "unrevoke the root" 0 "" -- ai unrevoke -- "$rid"
    expect "child valid again" 0 "" -- ai token verify "@$tmp/child"
fi
expect "revoke the agent" 0 "" -- ai revoke --agent code-reviewer
expect "agent's token refused" 1 "revoked" -- ai token verify "@$tmp/child"
expect "unrevoke the agent" 0 "" -- ai unrevoke --agent code-reviewer
expect "rotate-key" 0 "" -- ai rotate-key --grace 1h
expect "old token still verifies in grace" 0 "" -- ai token verify "@$tmp/child"
ai token create-root --agent-id newer --scopes a:b:c >"$tmp/newer" 2>/dev/null
ai --json token show "@$tmp/newer" >"$tmp/newer.json" 2>/dev/null
grep -q '"keyVersion": 2' "$tmp/newer.json" && ok "new tokens use key version 2" || no "new tokens use key version 2"

# --- refresh --------------------------------------------------------------
ai token create-root --agent-id long --scopes "system:token:refresh,a:b:c" \
    --ttl-days 1 --max-ttl-days 30 >"$tmp/long" 2>/dev/null
expect "refresh" 0 "" -- ai token refresh "@$tmp/long" --ttl-minutes 600
expect "refreshed token verifies" 0 "" -- ai token verify "$(cat "$tmp/out")"
expect "refresh without the scope" 1 "system:token:refresh" -- ai token refresh "@$tmp/child"
ai token create-root --agent-id once --scopes "system:*" --max-ttl-days 30 \
    --constraints '{"system:token:refresh":{"maxUses":1}}' >"$tmp/once" 2>/dev/null
expect "refresh with one use" 0 "" -- ai token refresh "@$tmp/once"
expect "second refresh: no uses left" 1 "no uses left" -- ai token refresh "@$tmp/once"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
