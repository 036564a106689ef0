#!/bin/sh
# `make demo`: the whole system on one machine, narrated. A leader and two
# followers on localhost (TLS, a CA made by the leader), each follower with
# a credential of its own, a root token, a delegated token used through a
# follower to get an API-key credential (served from the replica where the
# provider is granted, forwarded to the leader where it is not), a
# revocation refused at both followers, and a clean shutdown. Every step
# checks what it says; the script exits 0 only if all of them did.
# Usage: scripts/demo.sh BUILD/agent-iam
set -u
bin=$1
. "$(cd "$(dirname "$0")" && pwd)/demo-lib.sh"

# the port a server printed in its "listening on ...:PORT" line
port_of() {
    i=0
    while [ $i -lt 100 ]; do
        p=$(sed -n 's/.*listening on https:\/\/[^:]*:\([0-9]*\).*/\1/p' "$1" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

step "1. the leader: a home of its own, a generated CA, an admin token"
(umask 077 && head -c 24 /dev/urandom | base64 >admin.token)
"$bin" serve --home leader --host 127.0.0.1 --port 0 \
    --admin-token-file admin.token --access-log off 2>leader.log &
pids="$pids $!"
lp=$(port_of leader.log) || fail "the leader did not start"
ca=leader/tls/ca.pem
L="--leader-url https://localhost:$lp --auth-token-file admin.token --ca-cert $ca"
ok "leader on https://localhost:$lp, CA $ca"

step "2. two followers, each with its own credential, replicate it"
# region-b may hold the openai key; region-c holds no provider secret and
# forwards such requests to the leader.
(umask 077 && "$bin" followers add region-b --providers openai $L \
    >region-b.token 2>/dev/null) || fail "followers add region-b"
(umask 077 && "$bin" followers add region-c $L >region-c.token 2>/dev/null) \
    || fail "followers add region-c"
ok "followers add: region-b (openai), region-c (no provider secrets)"
for r in b c; do
    "$bin" follower --home "region-$r" --host 127.0.0.1 --port 0 \
        --leader-url "https://localhost:$lp" \
        --auth-token-file "region-$r.token" \
        --follower-id "region-$r" --ca-cert "$ca" --access-log off \
        2>"region-$r.log" &
    pids="$pids $!"
done
fb=$(port_of region-b.log) || fail "region-b did not start"
fc=$(port_of region-c.log) || fail "region-c did not start"
ready() { curl -s -o /dev/null -w '%{http_code}' --cacert "$1/tls/ca.pem" \
    "https://localhost:$2/readyz"; }
i=0
until [ "$(ready region-b "$fb")" = 200 ] && [ "$(ready region-c "$fc")" = 200 ]; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "the followers did not sync"
    sleep 0.1
done
ok "region-b on :$fb and region-c on :$fc are in sync and ready"

step "3. an API key and a root token, made by the leader (admin API)"
printf 'sk-demo-%s\n' "$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" >apikey
"$bin" apikey add $L --name openai --provider openai --key-file apikey >/dev/null \
    || fail "apikey add"
root=$("$bin" token create-root $L --agent-id orchestrator \
    --scopes 'openai:chat:*,github:repo:read') || fail "create-root"
ok "root token for orchestrator (openai:chat:*, github:repo:read)"

step "4. the orchestrator delegates a narrower token to a worker, at region-b"
call() { # FOLLOWER_DIR PORT TOKEN PATH BODY -> "STATUS BODY"
    curl -s --cacert "$1/tls/ca.pem" -H "Authorization: Bearer $3" \
        -w ' %{http_code}' -d "$5" "https://localhost:$2$4"
}
out=$(call region-b "$fb" "$root" /v1/tokens/delegate \
    '{"agentId":"worker","requestedScopes":["openai:chat:completions"],"ttlMinutes":30}')
case $out in *" 200") ;; *) fail "delegate: $out" ;; esac
child=$(printf '%s' "${out% 200}" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$child" ] || fail "no child token in $out"
ok "worker token: openai:chat:completions only, 30 minutes"

step "5. the worker gets an API-key credential through region-b"
out=$(call region-b "$fb" "$child" /v1/credentials \
    '{"scope":"openai:chat:completions","resource":""}')
case $out in *'"credentialType":"api_key"'*"$(cat apikey)"*" 200") ;;
    *) fail "credential: $out" ;; esac
"$bin" apikey list --home region-b | grep -q '^openai ' \
    || fail "region-b's replica has no openai key"
"$bin" apikey list --home region-c | grep -q '^openai ' \
    && fail "region-c's replica holds the openai key"
ok "credentialType api_key, the key added at the leader (region-b holds it)"
out=$(call region-c "$fc" "$child" /v1/credentials \
    '{"scope":"openai:chat:completions","resource":""}')
case $out in *'"credentialType":"api_key"'*"$(cat apikey)"*" 200") ;;
    *) fail "forwarded credential: $out" ;; esac
ok "region-c, not granted openai, forwards the request to the leader"
out=$(call region-c "$fc" "$child" /v1/check \
    '{"scope":"github:repo:read","resource":"myorg/repo"}')
case $out in *'"valid":false'*" 200") ;; *) fail "narrowing: $out" ;; esac
ok "region-c agrees the worker cannot read github (not delegated)"

step "6. revoke the worker's token at the leader: both followers refuse it"
tid=$("$bin" token show "$child" | sed -n 's/.*"tokenId": "\(.*\)".*/\1/p')
"$bin" revoke $L --reason "demo" "$tid" >/dev/null || fail "revoke"
for f in "region-b $fb" "region-c $fc"; do
    set -- $f
    i=0
    while :; do
        out=$(call "$1" "$2" "$child" /v1/check \
            '{"scope":"openai:chat:completions","resource":""}')
        case $out in *token_revoked*" 401") break ;; esac
        i=$((i + 1)); [ $i -gt 50 ] && fail "$1 still accepts it: $out"
        sleep 0.02
    done
    ok "$1 refuses it: token_revoked"
done

step "7. a clean shutdown: SIGTERM, every process exits 0"
for p in $pids; do kill -TERM "$p"; done
for p in $pids; do wait "$p" || fail "a server exited non-zero"; done
pids=""
ok "leader and followers stopped"
printf '\ndemo: every step did what it says\n'
