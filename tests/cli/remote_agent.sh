#!/bin/sh
# CLI tests of the agent verbs on a running server (--leader-url, DESIGN.md
# §10): token verify, check, delegate, refresh and cred against the real
# `agent-iam serve` on 127.0.0.1 over TLS (tests/lib/tls_env.sh's CA and
# certificate) and a follower of it, the token itself as the bearer. Outputs and exit
# codes are the local ones; a revoked, forged or widened token is refused
# with the server's reason; $AGENT_IAM_LEADER_URL alone is enough and no
# command creates a home then ($HOME/.agent-iam stays absent); usage
# errors for --home with --leader-url, --auth-token, --ca-cert alone; an
# unreachable server fails in one line.
# Usage: tests/cli/remote_agent.sh BUILD/agent-iam
name=remote-agent
usage_path=tests/cli/remote_agent.sh
free_port=$(cd "$(dirname "$0")/../lib" && pwd)/free_port.py
. "$(dirname "$0")/../lib/tls_env.sh" # bin, tmp, ca.pem, server.pem/.key
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
unset AGENT_IAM_LEADER_URL AGENT_IAM_AUTH_TOKEN AGENT_IAM_CA_CERT AGENT_IAM_HOME

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
has() { grep -q -- "$2" "$tmp/out" && ok "$1" || no "$1 (stdout lacks \"$2\": $(head -c 300 "$tmp/out"))"; }
out_is() {
    if [ "$(cat "$tmp/out")" = "$2" ]; then ok "$1"; else no "$1 (stdout: $(head -c 300 "$tmp/out"))"; fi
}
one_line() {
    if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q '^agent-iam: ' "$tmp/err"; then
        ok "$1"
    else
        no "$1 (stderr: $(head -c 300 "$tmp/err"))"
    fi
}
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/out" "$1"; }

h=$tmp/home
cd "$tmp" || exit 1

# ---- the home and the leader -----------------------------------------------
loc() { "$bin" --home "$h" "$@"; }
expect "apikey add on the home" 0 "" -- loc apikey add --name openai --provider openai \
    --key sk-remote-123
expect "a root token on the home" 0 "" -- loc token create-root --agent-id boss \
    --scopes "github:repo:read,openai:chat:*,system:token:refresh" \
    --constraints '{"github:repo:*":{"resources":["myorg/*"]}}'
cp "$tmp/out" root.tok
expect "a root with federation and capabilities" 0 "" -- loc token create-root --agent-id mapr \
    --scopes a:b:c --federation '{"crossSystemAllowed":false,"maxHops":2}' \
    --capabilities '{"canSpawn":false}'
cp "$tmp/out" mapr.tok
expect "a follower's credential on the home" 0 "" -- loc followers add eu-1 --providers '*'
cp "$tmp/out" follower.cred
port=$(python3 "$free_port")
"$bin" serve --home "$h" --host 127.0.0.1 --port "$port" \
    --tls-cert server.pem --tls-key server.key >"$tmp/server.log" 2>&1 &
pid=$!
echo "$pid" >>"$tmp/pids"
i=0
until curl -sf --cacert ca.pem "https://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        no "the leader starts (log: $(head -c 500 "$tmp/server.log"))"
        echo "$pass passed, $fail failed"
        exit 1
    fi
    sleep 0.1
done
ok "the leader starts and answers /healthz"
U=https://127.0.0.1:$port
fport=$(python3 "$free_port")
"$bin" follower --home "$tmp/fhome" --leader-url "$U" --ca-cert ca.pem \
    --auth-token-file follower.cred --follower-id eu-1 --host 127.0.0.1 \
    --port "$fport" --tls-cert server.pem --tls-key server.key \
    >"$tmp/follower.log" 2>&1 &
echo "$!" >>"$tmp/pids"
F=https://127.0.0.1:$fport
i=0
until curl -sf --cacert ca.pem "$F/readyz" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt 300 ] && break
    sleep 0.1
done
[ $i -le 300 ] && ok "a follower of the leader is ready" \
    || no "a follower of the leader is ready (log: $(head -c 500 "$tmp/follower.log"))"

# ---- with $AGENT_IAM_LEADER_URL and no home ----------------------------------
# HOME has no .agent-iam; nothing below may create one.
export HOME="$tmp/user" AGENT_IAM_LEADER_URL="$U" AGENT_IAM_CA_CERT="$tmp/ca.pem"
mkdir -p "$HOME"
e() { "$bin" "$@"; }
expect "verify on the leader" 0 "" -- e token verify @root.tok
out_is "verify says valid" "valid"
rid=$(loc --json token verify @root.tok | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokenId"])')
expect "verify --json on the leader" 0 "" -- e --json token verify @root.tok
[ "$(jget valid)" = True ] && [ "$(jget tokenId)" = "$rid" ] && [ "$(jget agentId)" = boss ] &&
    [ -n "$(jget expiresAt)" ] && ok "verify --json: valid, tokenId, agentId, expiresAt" \
    || no "verify --json: $(cat "$tmp/out")"
expect "verify reads the token from stdin" 0 "" -- sh -c "'$bin' token verify - <root.tok"
expect "check allowed on the leader" 0 "" -- e token check @root.tok github:repo:read myorg/frontend
out_is "check says allowed" "allowed"
expect "check of a scope not granted: exit 1" 1 "" -- e token check @root.tok github:repo:write myorg/frontend
one_line "the denial is one line"
expect "check of a resource outside the constraint: exit 1" 1 "" -- e token check @root.tok github:repo:read other/x
expect "check --json denied" 1 "" -- e --json token check @root.tok github:repo:write myorg/x
[ "$(jget valid)" = False ] && [ -n "$(jget error)" ] && ok "check --json: valid false with the reason" \
    || no "check --json: $(cat "$tmp/out")"
expect "delegate on the leader" 0 "" -- e token delegate --parent @root.tok --agent-id kid \
    --scopes github:repo:read --constraints '{"github:repo:read":{"resources":["myorg/frontend"]}}' \
    --ttl-minutes 30 --no-delegatable
cp "$tmp/out" kid.tok
[ "$(wc -l <kid.tok)" -eq 1 ] && ok "delegate prints the token alone" || no "delegate prints the token alone"
expect "the child verifies locally" 0 "" -- loc --json token verify @kid.tok
[ "$(jget agentId)" = kid ] && ok "the child's agentId is kid" || no "the child's agentId: $(cat "$tmp/out")"
expect "token show of the child" 0 "" -- e token show @kid.tok
has "the child is not delegatable" '"delegatable": false'
has "the child has the narrowed constraint" 'myorg/frontend'
expect "the child checks on the leader" 0 "" -- e token check @kid.tok github:repo:read myorg/frontend
expect "the child is refused another repo" 1 "" -- e token check @kid.tok github:repo:read myorg/backend
expect "delegate that widens the scopes is refused" 1 "" -- e token delegate --parent @root.tok \
    --scopes github:repo:write
one_line "the refusal is one line"
expect "delegate --json on the leader" 0 "" -- e --json token delegate --parent @root.tok \
    --scopes openai:chat:completions
[ -n "$(jget token)" ] && [ -n "$(jget tokenId)" ] && [ -n "$(jget expiresAt)" ] &&
    [ "$(jget narrowed)" = "[]" ] &&
    ok "delegate --json: token, tokenId, expiresAt, narrowed []" || no "delegate --json: $(cat "$tmp/out")"
# narrowed federation and capabilities: the server's "narrowed", the notice
narrowed="agent-iam: notice: narrowed to the parent's: federation.maxHops, agentCapabilities.canSpawn"
expect "a narrowed delegate on the leader" 0 "" -- e token delegate --parent @mapr.tok --scopes a:b:c \
    --federation '{"maxHops":5}' --capabilities '{"canSpawn":true}'
[ "$(cat "$tmp/err")" = "$narrowed" ] && ok "narrowed: the notice line on stderr" \
    || no "narrowed: the notice line on stderr ($(cat "$tmp/err"))"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "narrowed: the token alone on stdout" || no "narrowed: the token alone on stdout"
expect "a delegate narrowing nothing" 0 "" -- e token delegate --parent @mapr.tok --scopes a:b:c \
    --federation '{"maxHops":1}' --capabilities '{"canSpawn":false}'
[ ! -s "$tmp/err" ] && ok "not narrowed: nothing on stderr" || no "not narrowed: nothing on stderr ($(cat "$tmp/err"))"
expect "a narrowed delegate --json" 0 "" -- e --json token delegate --parent @mapr.tok --scopes a:b:c \
    --capabilities '{"canSpawn":true}'
[ ! -s "$tmp/err" ] && [ "$(jget narrowed)" = "['agentCapabilities.canSpawn']" ] \
    && ok "narrowed --json: the list, nothing on stderr" || no "narrowed --json: $(cat "$tmp/out" "$tmp/err")"
[ "$(curl -s --cacert ca.pem -H "Authorization: Bearer $(cat mapr.tok)" -d '{"requestedScopes":["a:b:c"]}' \
    "$U/v1/tokens/delegate" | python3 -c 'import json,sys; print(json.load(sys.stdin)["narrowed"])')" = "[]" ] \
    && ok "POST /v1/tokens/delegate: narrowed [] when nothing was" || no "POST /v1/tokens/delegate: narrowed []"
expect "a narrowed delegate on the follower" 0 "" -- e token delegate --parent @mapr.tok --scopes a:b:c \
    --federation '{"maxHops":5}' --capabilities '{"canSpawn":true}' --leader-url "$F"
[ "$(cat "$tmp/err")" = "$narrowed" ] && ok "the follower's answer gives the notice too" \
    || no "the follower's answer gives the notice too ($(cat "$tmp/err"))"
expect "refresh on the leader" 0 "" -- e token refresh @root.tok --ttl-minutes 20
cp "$tmp/out" fresh.tok
expect "the refreshed token verifies locally" 0 "" -- loc token verify @fresh.tok
expect "refresh without system:token:refresh: exit 1" 1 "" -- e token refresh @kid.tok
expect "cred on the leader" 0 "" -- e cred openai:chat:completions "" --token @root.tok
[ "$(jget credentialType)" = api_key ] && ok "cred: an api_key CredentialResult" \
    || no "cred: $(cat "$tmp/out")"
expect "cred --format token on the leader" 0 "" -- e cred openai:chat:completions "" \
    --token @root.tok --format token
out_is "cred --format token prints the key alone" "sk-remote-123"
expect "cred for a scope not granted: exit 1" 1 "" -- e cred openai:images:create "" --token @kid.tok
expect "cred of an unconfigured provider: exit 1" 1 "" -- e cred github:repo:read myorg/x --token @root.tok
# the same verbs on the follower
expect "verify on the follower" 0 "" -- e token verify @root.tok --leader-url "$F"
out_is "the follower says valid" "valid"
expect "check on the follower" 0 "" -- e token check @root.tok github:repo:read myorg/x --leader-url "$F"
expect "check denied on the follower: exit 1" 1 "" -- e token check @root.tok github:repo:write myorg/x --leader-url "$F"
expect "delegate on the follower" 0 "" -- e token delegate --parent @root.tok --scopes openai:chat:completions --leader-url "$F"
expect "cred on the follower" 0 "" -- e cred openai:chat:completions "" --token @root.tok --format token --leader-url "$F"
out_is "the follower gives the key" "sk-remote-123"
# $AGENT_IAM_AUTH_TOKEN is the admin's, never the agent verbs' bearer
expect "verify ignores \$AGENT_IAM_AUTH_TOKEN" 0 "" -- env AGENT_IAM_AUTH_TOKEN=admin-x "$bin" token verify @root.tok

# revocation, forgery
kid_id=$(loc --json token verify @kid.tok | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokenId"])')
expect "revoke the child on the home" 0 "" -- loc revoke "$kid_id"
i=0
while [ $i -lt 50 ] && "$bin" token verify @kid.tok >/dev/null 2>&1; do
    i=$((i + 1)); sleep 0.1
done
expect "verify of the revoked child: exit 1" 1 "revoked" -- e token verify @kid.tok
one_line "the refusal is one line"
i=0
while [ $i -lt 100 ] && "$bin" token verify @kid.tok --leader-url "$F" >/dev/null 2>&1; do
    i=$((i + 1)); sleep 0.1
done
expect "the follower refuses the revoked child too" 1 "revoked" -- e token verify @kid.tok --leader-url "$F"
expect "verify --json of the revoked child" 1 "" -- e --json token verify @kid.tok
[ "$(jget valid)" = False ] && ok "verify --json: valid false" || no "verify --json: $(cat "$tmp/out")"
expect "check with the revoked child: exit 1" 1 "revoked" -- e token check @kid.tok github:repo:read myorg/frontend
expect "delegate from the revoked child: exit 1" 1 "" -- e token delegate --parent @kid.tok --scopes github:repo:read
sed 's/.$/A/' root.tok >forged.tok
cmp -s root.tok forged.tok && sed 's/.$/B/' root.tok >forged.tok
expect "verify of a forged token: exit 1" 1 "" -- e token verify @forged.tok
expect "verify of garbage: exit 1" 1 "" -- e token verify not-a-token

# local-only commands do not create a home
expect "key list with a leader URL and no home: exit 1" 1 "no home at" -- e key list
one_line "says so in one line"
expect "audit tail likewise" 1 "no home at" -- e audit tail
[ ! -e "$HOME/.agent-iam" ] && ok "no home was created under \$HOME" \
    || no "a home was created under \$HOME"

# ---- flags instead of the environment, usage errors, failures ---------------
unset AGENT_IAM_LEADER_URL AGENT_IAM_CA_CERT
expect "--leader-url and --ca-cert flags" 0 "" -- e token verify @root.tok --leader-url "$U" --ca-cert "$tmp/ca.pem"
expect "check with the flags" 0 "" -- e token check @root.tok github:repo:read myorg/a --leader-url "$U" --ca-cert "$tmp/ca.pem"
expect "--home with --leader-url: usage" 2 "not both" -- e --home "$h" token verify @root.tok --leader-url "$U"
expect "--auth-token is not an agent verb's flag: usage" 2 "" -- e token verify @root.tok \
    --leader-url "$U" --auth-token x
expect "--ca-cert without a URL: usage" 2 "leader-url" -- e token verify @root.tok --ca-cert "$tmp/ca.pem"
expect "an http:// URL to another host: usage" 2 "" -- e token verify @root.tok --leader-url http://example.com
expect "without the CA: exit 1" 1 "" -- e token verify @root.tok --leader-url "$U"
one_line "the TLS failure is one line"
dead=$(python3 "$free_port")
expect "an unreachable server: exit 1" 1 "127.0.0.1:$dead" -- e token verify @root.tok \
    --leader-url "https://127.0.0.1:$dead" --ca-cert "$tmp/ca.pem"
one_line "the transport failure is one line"
expect "--home wins over \$AGENT_IAM_LEADER_URL" 0 "" -- env AGENT_IAM_LEADER_URL="https://127.0.0.1:$dead" \
    "$bin" --home "$h" token verify @root.tok
[ ! -e "$HOME/.agent-iam" ] && ok "still no home under \$HOME" || no "a home was created under \$HOME"
if grep -q "$(head -c 40 root.tok)" "$tmp/server.log"; then
    no "the server log holds a token"
else
    ok "the server log holds no token"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
