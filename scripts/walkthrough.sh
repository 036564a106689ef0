#!/bin/sh
# `make run`: the README's session on a local home under .run/ (kept
# between runs), the Quick Start with the C library, then the leader on
# https://localhost:8443 with that home, in the foreground.
# Usage: scripts/walkthrough.sh BUILD/agent-iam BUILD/examples
set -eu
bin=$1
examples=$2
home=.run/home
mkdir -p .run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
step() { printf '\n== %s\n' "$*"; }
ai() { "$bin" --home "$home" "$@"; }

step "agent-iam $("$bin" version | cut -d' ' -f2), home $home"
ai status
step "a root token for the orchestrator (github repos under myorg/, chat)"
ai token create-root --agent-id orchestrator \
    --scopes "github:repo:read,github:repo:write,openai:chat:*" \
    --constraints '{"github:repo:*":{"resources":["myorg/*"]}}' \
    --max-depth 3 --ttl-days 7 >"$tmp/root"
ai --json token verify "@$tmp/root"
step "delegated to code-reviewer: read only, myorg/frontend only, 60 minutes"
ai token delegate --parent "@$tmp/root" --agent-id code-reviewer \
    --scopes github:repo:read \
    --constraints '{"github:repo:read":{"resources":["myorg/frontend"]}}' \
    --ttl-minutes 60 >"$tmp/child"
ai token show "@$tmp/child"
step "checks"
printf 'read  myorg/frontend: '; ai token check "@$tmp/child" github:repo:read myorg/frontend || true
printf 'write myorg/frontend: '; ai token check "@$tmp/child" github:repo:write myorg/frontend 2>&1 || true
printf 'read  myorg/backend:  '; ai token check "@$tmp/child" github:repo:read myorg/backend 2>&1 || true
step "revoking the root revokes the child"
rid=$(ai --json token verify "@$tmp/root" | sed -n 's/.*"tokenId": "\(.*\)".*/\1/p')
ai revoke --reason "walk-through" -- "$rid"
ai token verify "@$tmp/child" 2>&1 || true
step "the audit log"
ai audit tail -n 6
ai audit verify
step "the same Quick Start with the C library (examples/quickstart.c)"
"$examples/quickstart" >/dev/null

# The service: a leader on the same home, in the foreground until Ctrl-C.
port=${AGENT_IAM_PORT:-8443}
if [ ! -s "$home/admin.token" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 >"$home/admin.token")
fi
step "the leader: https://localhost:$port (Ctrl-C stops it)"
cat <<MSG
admin token:  $home/admin.token (the only admin credential; 0600)
CA:           $home/tls/ca.pem (made on first start)
try, in another terminal:
  curl --cacert $home/tls/ca.pem \\
      -H "Authorization: Bearer \$(cat $home/admin.token)" \\
      https://localhost:$port/v1/status
  $bin token create-root --leader-url https://localhost:$port \\
      --auth-token-file $home/admin.token --ca-cert $home/tls/ca.pem \\
      --agent-id demo --scopes github:repo:read
  $bin followers add region-b --providers openai \\
      --leader-url https://localhost:$port \\
      --auth-token-file $home/admin.token --ca-cert $home/tls/ca.pem
MSG
rm -rf "$tmp"
trap - EXIT INT TERM
exec "$bin" --home "$home" serve --host 127.0.0.1 --port "$port" \
    --admin-token-file "$home/admin.token"
