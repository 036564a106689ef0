#!/bin/sh
# The AgentRuntime example (examples/agent.c) against a real leader: the
# `agent-iam serve` of a fresh home on 127.0.0.1 over TLS with the CA it
# generates, a root token and an API key made with the CLI. The agent gets
# a credential, spawns itself with a narrower AGENT_TOKEN, and the child
# may use its scope and not the parent's other one. Also: a parent token
# without the other scope fails, no AGENT_TOKEN fails, and no token text is
# ever printed.
# Usage: tests/cli/agent.sh BUILD/agent-iam BUILD/examples
set -u
free_port=$(cd "$(dirname "$0")/../lib" && pwd)/free_port.py
bin=$1
agent=$2/agent
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
case $agent in /*) ;; *) agent=$(pwd)/$agent ;; esac
tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
unset AGENT_TOKEN AGENT_IAM_URL AGENT_IAM_CA_CERT AGENT_IAM_HOME
h=$tmp/home

"$bin" --home "$h" apikey add --name openai --provider openai \
    --key sk-agent-example-secret-0123456789 >/dev/null 2>&1 \
    && ok "apikey add" || no "apikey add"
port=$(python3 "$free_port")
"$bin" serve --home "$h" --host 127.0.0.1 --port "$port" \
    --admin-token "admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    >"$tmp/server.log" 2>&1 &
pid=$!
i=0
until [ -f "$h/tls/ca.pem" ] &&
    curl -sf --cacert "$h/tls/ca.pem" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        no "the leader starts (log: $(head -c 500 "$tmp/server.log"))"
        echo "$pass passed, $fail failed"
        exit 1
    fi
    sleep 0.1
done
ok "the leader starts"

tok=$("$bin" --home "$h" token create-root --agent-id parent-agent \
    --scopes "openai:chat:*,github:repo:read,system:token:refresh" --ttl-days 1)
[ -n "$tok" ] && ok "root token" || no "root token"

AGENT_TOKEN=$tok AGENT_IAM_URL=https://127.0.0.1:$port AGENT_IAM_CA_CERT=$h/tls/ca.pem \
    "$agent" openai:chat:completions github:repo:read >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "the agent and its child behave" \
    || no "the agent and its child behave (exit $rc: $(head -c 1500 "$tmp/out"))"
grep -q '^parent: credential for openai:chat:completions: api_key$' "$tmp/out" \
    && ok "the parent gets an API key credential" || no "the parent gets an API key credential"
grep -q '^child: I am agent-example-child (depth 1, 1 scope)$' "$tmp/out" \
    && ok "the child runs with its own narrower token" || no "the child runs with its own narrower token"
grep -q '^child: github:repo:read .*refused' "$tmp/out" \
    && ok "the child may not use the parent's other scope" || no "the child may not use the parent's other scope"
grep -q '^parent: the child behaved$' "$tmp/out" \
    && ok "the parent saw the child succeed" || no "the parent saw the child succeed"
if grep -q -- "$tok" "$tmp/out" || grep -q 'sk-agent-example-secret' "$tmp/out"; then
    no "no token or secret printed"
else
    ok "no token or secret printed"
fi

# A parent that lacks the other scope: its own check fails, exit 1.
tok2=$("$bin" --home "$h" token create-root --agent-id narrow-parent \
    --scopes "openai:chat:*" --ttl-days 1)
AGENT_TOKEN=$tok2 AGENT_IAM_URL=https://127.0.0.1:$port AGENT_IAM_CA_CERT=$h/tls/ca.pem \
    "$agent" openai:chat:completions github:repo:read >"$tmp/out" 2>&1
[ $? -eq 1 ] && ok "a parent without the other scope fails" \
    || no "a parent without the other scope fails ($(head -c 500 "$tmp/out"))"

# No token at all.
AGENT_IAM_URL=https://127.0.0.1:$port AGENT_IAM_CA_CERT=$h/tls/ca.pem \
    "$agent" openai:chat:completions github:repo:read >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'AGENT_TOKEN' "$tmp/out" && ok "no AGENT_TOKEN fails clearly" \
    || no "no AGENT_TOKEN fails clearly (exit $rc: $(head -c 300 "$tmp/out"))"
"$agent" >/dev/null 2>&1
[ $? -eq 2 ] && ok "no arguments is a usage error" || no "no arguments is a usage error"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
