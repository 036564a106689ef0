#!/bin/sh
# The README's `cred` command end to end through each provider backend:
# `config init` for GitHub, Google and AWS pointed at the stub servers of
# tests/providers (TLS on 127.0.0.1 with a test CA, each checking what the
# real provider checks), then `agent-iam cred` with a token.
# Usage: tests/cli/cred_providers.sh BUILD/agent-iam
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
stubs=$(cd "$(dirname "$0")/../providers" && pwd)
tmp=$(mktemp -d)
# The stubs are children of this shell (start runs in it, not in $(...)),
# so the trap can stop them and wait for them on every way out.
pids=""
trap '[ -n "$pids" ] && kill $pids 2>/dev/null; wait; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
h=$tmp/home
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
ai() { "$bin" --home "$h" "$@"; }

# start NAME ARGS...: run a stub in $tmp/NAME, wait for its port (in $port)
start() {
    name=$1
    shift
    mkdir -p "$tmp/$name"
    python3 "$stubs/$name.py" "$tmp/$name" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids="$pids $!"
    i=0
    while [ $i -lt 300 ] && ! grep -q "^PORT" "$tmp/$name.out" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    port=$(sed -n 's/^PORT //p' "$tmp/$name.out")
}

start stub_github 12345 67890
gh=$port
start stub_google client-1 shh-secret refresh-1
go=$port
start stub_sts AKIDTESTEXAMPLE01 stssecretkey ""
sts=$port
if [ -z "$gh" ] || [ -z "$go" ] || [ -z "$sts" ]; then
    no "stub servers started"
    echo "$pass passed, $fail failed"
    exit 1
fi
ok "stub servers started"

ai config init github --app-id 12345 --installation-id 67890 \
    --private-key "$tmp/stub_github/app.pem" --api-url "https://127.0.0.1:$gh" >/dev/null 2>&1 \
    && ok "config init github" || no "config init github"
ai config init google --client-id client-1 --client-secret shh-secret \
    --refresh-token refresh-1 --token-url "https://127.0.0.1:$go/token" >/dev/null 2>&1 \
    && ok "config init google" || no "config init google"
ai config init aws --region us-east-1 --role-arn arn:aws:iam::123456789012:role/Agent \
    --access-key-id AKIDTESTEXAMPLE01 --secret-access-key stssecretkey \
    --sts-url "https://127.0.0.1:$sts/" >/dev/null 2>&1 \
    && ok "config init aws" || no "config init aws"

ai token create-root --agent-id my-agent \
    --scopes "github:repo:read,google:drive:read,aws:s3:read" \
    --constraints '{"github:repo:*":{"resources":["myorg/*"]}}' >"$tmp/tok" 2>/dev/null

# cred SCOPE RESOURCE with the stubs' CA
cred() { AGENT_IAM_PROVIDER_CA_FILE="$tmp/$1/ca.pem" ai cred "$2" "$3" --token "@$tmp/tok" "$4" "$5"; }

if cred stub_github github:repo:read myorg/myrepo --format json >"$tmp/out" 2>"$tmp/err"; then
    grep -q '"credentialType": "bearer_token"' "$tmp/out" && grep -q 'ghs_test' "$tmp/out" \
        && ok "github credential" || no "github credential: $(cat "$tmp/out")"
else
    no "github credential: $(cat "$tmp/err")"
fi
cred stub_github github:repo:read myorg/myrepo --format token >"$tmp/out" 2>"$tmp/err" \
    && grep -q '^ghs_test' "$tmp/out" && ok "github --format token" || no "github --format token: $(cat "$tmp/err")"
cred stub_github github:repo:read otherorg/repo --format json >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "Resource" "$tmp/err" && ok "github outside the constraint refused" \
    || no "github outside the constraint refused: $(cat "$tmp/err")"

if cred stub_google google:drive:read "" --format json >"$tmp/out" 2>"$tmp/err"; then
    grep -q 'ya29.test' "$tmp/out" && ok "google credential" || no "google credential: $(cat "$tmp/out")"
else
    no "google credential: $(cat "$tmp/err")"
fi

if cred stub_sts aws:s3:read my-bucket/prefix/x --format json >"$tmp/out" 2>"$tmp/err"; then
    grep -q '"credentialType": "aws_credentials"' "$tmp/out" && grep -q '"sessionToken"' "$tmp/out" \
        && ok "aws credential" || no "aws credential: $(cat "$tmp/out")"
    grep -q 'arn:aws:s3:::my-bucket' "$tmp/stub_sts/last.json" \
        && ok "aws session policy narrowed to the bucket" || no "aws session policy narrowed to the bucket"
else
    no "aws credential: $(cat "$tmp/err")"
fi

# the provider's TLS certificate is verified: without the CA it fails
ai cred github:repo:read myorg/other --token "@$tmp/tok" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "github" "$tmp/err" && ok "untrusted certificate refused" \
    || no "untrusted certificate refused: $(cat "$tmp/err")"

# no secret in anything printed on failure
ai config init google --client-id client-1 --client-secret wrong-secret \
    --refresh-token refresh-1 --token-url "https://127.0.0.1:$go/token" >/dev/null 2>&1
cred stub_google google:drive:read "" --format json >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "google: HTTP 401" "$tmp/err" && ! grep -q "wrong-secret" "$tmp/err" \
    && ok "google 401 named, no secret" || no "google 401 named, no secret: $(cat "$tmp/err")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
