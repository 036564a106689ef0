#!/bin/sh
# Tests of certs/gen.sh: a CA, a leader, a follower and a client
# certificate in a temporary directory; the modes (directory 0700, keys
# 0600), the chain and purposes (openssl verify), the refusals (a second
# CA, a leaf without --force, bad SANs and names), then `agent-iam serve`
# with the generated leader certificate answering /healthz to curl
# --cacert, and a follower with its own certificate replicating from it
# over the CA.
# Usage: tests/cli/certs.sh BUILD/agent-iam
set -u
free_port=$(cd "$(dirname "$0")/../lib" && pwd)/free_port.py
bin=$1
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
gen=$(cd "$(dirname "$0")/../../certs" && pwd)/gen.sh
tmp=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
unset AGENT_IAM_LEADER_URL AGENT_IAM_AUTH_TOKEN AGENT_IAM_CA_CERT AGENT_IAM_HOME AGENT_IAM_PKI

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
mode() { stat -c %a "$1"; }
freeport() { python3 "$free_port"; }
# wait_up URL PID LOG NAME [CURL ARGS...]
wait_up() {
    url=$1 wpid=$2 log=$3 what=$4
    shift 4
    i=0
    until curl -sf "$@" "$url" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 150 ] || ! kill -0 "$wpid" 2>/dev/null; then
            no "$what (log: $(head -c 500 "$log"))"
            return 1
        fi
        sleep 0.1
    done
    ok "$what"
}

p=$tmp/pki
cd "$tmp" || exit 1

# ---- generation -----------------------------------------------------------------
expect "gen.sh ca" 0 "" -- sh "$gen" --out "$p" ca
has "it names the CA certificate" "^wrote $p/ca.pem"
expect "a second ca is refused" 1 "already holds a CA" -- sh "$gen" --out "$p" ca
expect "gen.sh leader" 0 "" -- sh "$gen" --out "$p" leader --san DNS:localhost --san IP:127.0.0.1
has "it prints the serve flags" "agent-iam serve --tls-cert $p/leader.pem --tls-key $p/leader.key"
has "it prints the CA flag" "\-\-ca-cert $p/ca.pem"
expect "gen.sh follower" 0 "" -- sh "$gen" --out "$p" follower eu-1 --san DNS:localhost --san IP:127.0.0.1
has "it prints the follower flags" "\-\-tls-cert $p/follower-eu-1.pem --tls-key $p/follower-eu-1.key"
expect "gen.sh client" 0 "" -- sh "$gen" --out "$p" client ops-bot

[ "$(mode "$p")" = 700 ] && ok "the directory is 0700" || no "the directory is 0700 ($(mode "$p"))"
bad=
for f in "$p"/*; do
    [ "$(mode "$f")" = 600 ] || bad="$bad $f:$(mode "$f")"
done
[ -z "$bad" ] && ok "every file is 0600" || no "every file is 0600:$bad"
ls "$p" | sort | tr '\n' ' ' >"$tmp/out"
[ "$(cat "$tmp/out")" = "ca.key ca.pem client-ops-bot.key client-ops-bot.pem follower-eu-1.key follower-eu-1.pem leader.key leader.pem " ] &&
    ok "exactly the expected files" || no "exactly the expected files: $(cat "$tmp/out")"
ls -a "$p" | grep -q '^\.gen' && no "no work directory left" || ok "no work directory left"

openssl verify -CAfile "$p/ca.pem" -purpose sslserver "$p/leader.pem" >/dev/null 2>&1 &&
    ok "openssl verify: the leader chain (sslserver)" || no "openssl verify: the leader chain (sslserver)"
openssl verify -CAfile "$p/ca.pem" -purpose sslserver "$p/follower-eu-1.pem" >/dev/null 2>&1 &&
    ok "openssl verify: the follower chain (sslserver)" || no "openssl verify: the follower chain (sslserver)"
openssl verify -CAfile "$p/ca.pem" -purpose sslclient "$p/client-ops-bot.pem" >/dev/null 2>&1 &&
    ok "openssl verify: the client chain (sslclient)" || no "openssl verify: the client chain (sslclient)"
openssl verify -CAfile "$p/ca.pem" -purpose sslserver "$p/client-ops-bot.pem" >/dev/null 2>&1 &&
    no "the client certificate is not a server certificate" || ok "the client certificate is not a server certificate"
openssl x509 -in "$p/ca.pem" -noout -text >"$tmp/out" 2>&1
has "the CA is a CA" "CA:TRUE"
has "the CA key is P-256" "prime256v1"
openssl x509 -in "$p/leader.pem" -noout -text >"$tmp/out" 2>&1
has "the leader has its DNS SAN" "DNS:localhost"
has "the leader has its IP SAN" "IP Address:127.0.0.1"
has "the leader is not a CA" "CA:FALSE"
has "the leader key is P-256" "prime256v1"
openssl pkey -in "$p/leader.key" -noout 2>/dev/null && ok "the key is an unencrypted PEM key" ||
    no "the key is an unencrypted PEM key"

serial=$(openssl x509 -in "$p/leader.pem" -noout -serial)
expect "a leaf is not replaced without --force" 1 "exists (--force" -- sh "$gen" --out "$p" leader --san DNS:localhost
[ "$(openssl x509 -in "$p/leader.pem" -noout -serial)" = "$serial" ] && ok "the leaf is untouched" || no "the leaf is untouched"
cp "$p/leader.pem" old-leader.pem
cp "$p/leader.key" old-leader.key
expect "--force renews it" 0 "" -- sh "$gen" --out "$p" --force leader --san DNS:localhost --san IP:127.0.0.1
[ "$(openssl x509 -in "$p/leader.pem" -noout -serial)" != "$serial" ] && ok "the renewed leaf has a new serial" ||
    no "the renewed leaf has a new serial"
expect "leader without --san" 1 "at least one --san" -- sh "$gen" --out "$p" leader --force
expect "a bad SAN kind" 1 "DNS:NAME or IP:ADDRESS" -- sh "$gen" --out "$p" follower x --san URI:http://x
expect "a wildcard DNS SAN" 1 "bad DNS name" -- sh "$gen" --out "$p" follower x --san 'DNS:*.example.com'
expect "a bad IP SAN" 1 "bad IP address" -- sh "$gen" --out "$p" follower x --san IP:10.0.0.x
expect "a bad NAME" 1 "NAME must be" -- sh "$gen" --out "$p" client '../evil'
expect "follower without NAME" 2 "needs a NAME" -- sh "$gen" --out "$p" follower
expect "an unknown kind" 2 "unknown kind" -- sh "$gen" --out "$p" server
expect "an unknown option" 2 "unknown option" -- sh "$gen" --out "$p" --bits 4096 ca
expect "a leaf before the CA" 1 "no CA in" -- sh "$gen" --out "$tmp/empty" leader --san DNS:x
mkdir -m 755 open
expect "a directory open to others is refused" 1 "chmod 700" -- sh "$gen" --out "$tmp/open" ca
expect "--days beyond the CA" 1 "expires within" -- sh "$gen" --out "$p" --days 3650 client late

# ---- the leader and a follower on the generated certificates ----------------------
T=fleet-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$T" >token
printf 'admin-%s\n' "$T" >admin.token
chmod 600 token admin.token
lport=$(freeport)
"$bin" serve --home "$tmp/leader" --host 127.0.0.1 --port "$lport" --auth-token-file token \
    --admin-token-file admin.token \
    --tls-cert "$p/leader.pem" --tls-key "$p/leader.key" --access-log off >leader.log 2>&1 &
lpid=$!
pids="$lpid"
if wait_up "https://127.0.0.1:$lport/healthz" "$lpid" leader.log \
    "serve with the generated leader certificate answers /healthz (curl --cacert)" --cacert "$p/ca.pem"; then
    curl -s --cacert "$p/ca.pem" "https://localhost:$lport/healthz" >/dev/null 2>&1 &&
        ok "its DNS name verifies too" || no "its DNS name verifies too"
    curl -s --cacert old-leader.pem "https://127.0.0.1:$lport/healthz" >/dev/null 2>&1 &&
        no "another trust anchor is refused" || ok "another trust anchor is refused"
    [ ! -e "$tmp/leader/tls" ] && ok "no certificate generated in the home" || no "no certificate generated in the home"
    "$bin" status --leader-url "https://127.0.0.1:$lport" --ca-cert "$p/ca.pem" \
        --auth-token-file admin.token >"$tmp/out" 2>&1 &&
        ok "agent-iam --ca-cert trusts it" || no "agent-iam --ca-cert trusts it: $(cat "$tmp/out")"
    fport=$(freeport)
    "$bin" follower --home "$tmp/eu-1" --host 127.0.0.1 --port "$fport" --follower-id eu-1 \
        --leader-url "https://127.0.0.1:$lport" --auth-token-file token --ca-cert "$p/ca.pem" \
        --tls-cert "$p/follower-eu-1.pem" --tls-key "$p/follower-eu-1.key" --public-metrics \
        --access-log off >follower.log 2>&1 &
    fpid=$!
    pids="$fpid $lpid"
    if wait_up "https://127.0.0.1:$fport/v1/status" "$fpid" follower.log \
        "a follower with its generated certificate answers (curl --cacert)" --cacert "$p/ca.pem"; then
        i=0
        until curl -s --cacert "$p/ca.pem" "https://127.0.0.1:$fport/v1/status" | grep -q '"state": *"connected"'; do
            i=$((i + 1))
            [ $i -gt 100 ] && break
            sleep 0.1
        done
        [ $i -le 100 ] && ok "the follower replicates from the leader over the CA" ||
            no "the follower replicates from the leader over the CA ($(curl -s --cacert "$p/ca.pem" "https://127.0.0.1:$fport/v1/status"))"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
