#!/bin/sh
# CLI tests of the admin commands on a running leader (--leader-url): the
# real `agent-iam serve` on 127.0.0.1 over TLS with a CA and a server
# certificate made here by openssl. rotate-key, token create-root,
# revoke/unrevoke (by token and agent), config init github|aws, apikey
# add/remove and status act through the HTTPS admin API, and the local
# home shows the result; outputs and exit codes are the local ones. A
# wrong auth token, a missing CA, bad or unreachable URLs fail clearly and
# change nothing; the environment fallbacks work; the auth token is never
# printed.
# Usage: tests/cli/remote.sh BUILD/agent-iam
set -u
free_port=$(cd "$(dirname "$0")/../lib" && pwd)/free_port.py
bin=$1
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac # the script works in $tmp
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
unset AGENT_IAM_LEADER_URL AGENT_IAM_AUTH_TOKEN AGENT_IAM_CA_CERT AGENT_IAM_HOME

# expect NAME WANT_EXIT STDERR_PATTERN -- command...
# Every stdout and stderr is also kept in $tmp/all for the secret check.
expect() {
    name=$1 want=$2 pat=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    cat "$tmp/out" "$tmp/err" >>"$tmp/all"
    if [ "$got" -ne "$want" ]; then
        no "$name (exit $got, want $want; stderr: $(head -c 300 "$tmp/err"))"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/err"; then
        no "$name (stderr lacks \"$pat\": $(head -c 300 "$tmp/err"))"
    else
        ok "$name"
    fi
}
has() { grep -q -- "$2" "$tmp/out" && ok "$1" || no "$1 (stdout lacks \"$2\": $(head -c 300 "$tmp/out"))"; }
lacks() { grep -q -- "$2" "$tmp/out" && no "$1 (stdout has \"$2\")" || ok "$1"; }
out_is() {
    if [ "$(cat "$tmp/out")" = "$2" ]; then ok "$1"; else no "$1 (stdout: $(head -c 300 "$tmp/out"))"; fi
}
# one_line NAME: a failure's stderr is exactly one "agent-iam: " line
one_line() {
    if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q '^agent-iam: ' "$tmp/err"; then
        ok "$1"
    else
        no "$1 (stderr: $(head -c 300 "$tmp/err"))"
    fi
}
# jget MEMBER: a member of the JSON object in $tmp/out
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/out" "$1"; }

: >"$tmp/all"
h=$tmp/home
cd "$tmp" || exit 1

# ---- the test PKI and the leader ------------------------------------------
if ! openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
        -days 2 -subj "/CN=agent-iam test CA" >/dev/null 2>&1 ||
    ! openssl req -newkey rsa:2048 -nodes -keyout key.pem -out srv.csr \
        -subj "/CN=127.0.0.1" >/dev/null 2>&1 ||
    ! printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >srv.ext ||
    ! openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out cert.pem -days 2 -extfile srv.ext >/dev/null 2>&1; then
    no "openssl: test CA and server certificate"
    echo "$pass passed, $fail failed"
    exit 1
fi
port=$(python3 "$free_port")
T=admin-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --home "$h" --host 127.0.0.1 --port "$port" --admin-token "$T" \
    --tls-cert cert.pem --tls-key key.pem >"$tmp/server.log" 2>&1 &
pid=$!
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
# a second leader on its port: the address, the port, why and what to do
expect "a port in use: exit 1, names the address, the port and why" 1 \
    "cannot listen on 127.0.0.1 port $port: Address already in use" -- \
    "$bin" serve --home "$tmp/home2" --host 127.0.0.1 --port "$port" \
    --tls-cert cert.pem --tls-key key.pem
grep -q "another process listens there: stop it, or choose another --port" "$tmp/err" &&
    ok "it says to stop the other process or choose another --port" ||
    no "it says what to do ($(cat "$tmp/err"))"
one_line "the port-in-use error is one line"
U=https://127.0.0.1:$port
# r CMD...: the command on the leader, with every remote flag
r() { "$bin" "$@" --leader-url "$U" --auth-token "$T" --ca-cert "$tmp/ca.pem"; }
loc() { "$bin" --home "$h" "$@"; }

# ---- status and rotate-key --------------------------------------------------
expect "status --json on the leader" 0 "" -- r status --json
v0=$(jget signingKeyVersion)
[ "$(jget role)" = leader ] && ok "status says leader" || no "status says leader"
expect "rotate-key on the leader" 0 "" -- r rotate-key --grace 1h
v1=$((v0 + 1))
out_is "rotate-key prints the new version" "signing key version $v1"
expect "status --json after rotate-key" 0 "" -- r status --json
[ "$(jget signingKeyVersion)" = "$v1" ] && ok "status shows version $v1" \
    || no "status shows version $v1 ($(cat "$tmp/out"))"
expect "rotate-key --json on the leader" 0 "" -- r --json rotate-key
v2=$((v1 + 1))
[ "$(jget version)" = "$v2" ] && ok "rotate-key --json gives the version" \
    || no "rotate-key --json gives the version"
expect "status in text" 0 "" -- r status
has "status text names the role" "^agent-iam .* (leader)$"
has "status text has the key version" "^signing key version: $v2$"
has "status text has the revocations" "^revocations: "
has "status text has the URL" "^url: *$U$"
expect "status of the local home still works" 0 "" -- loc status
has "local status says standalone" "(standalone)"
has "local home has the rotated key" "^signing key version: $v2 "
expect "rotate-key with a bad --grace is a usage error" 2 "grace" -- r rotate-key --grace soon

# ---- token create-root, revoke, unrevoke -------------------------------------
expect "create-root on the leader" 0 "" -- r token create-root --agent-id remote-bot \
    --scopes "github:repo:read, aws:s3:read" --ttl-days 2 --max-depth 2
tok=$(cat "$tmp/out")
[ "$(wc -l <"$tmp/out")" -eq 1 ] && [ -n "$tok" ] && ok "create-root prints the token alone" \
    || no "create-root prints the token alone"
expect "the remote root verifies locally" 0 "" -- loc token verify "$tok"
out_is "local verify says valid" "valid"
expect "create-root --json on the leader" 0 "" -- r --json token create-root \
    --agent-id remote-bot-2 --scopes github:repo:read --constraints '{"github:repo:read":{"resources":["o/r"]}}'
tok2=$(jget token)
id2=$(jget tokenId)
[ -n "$(jget expiresAt)" ] && ok "create-root --json has expiresAt" || no "create-root --json has expiresAt"
expect "the second root verifies locally" 0 "" -- loc --json token verify "$tok2"
[ "$(jget tokenId)" = "$id2" ] && ok "its id is the one printed" || no "its id is the one printed"
expect "create-root without --scopes is a usage error" 2 "scopes" -- r token create-root --agent-id x
expect "create-root with bad --constraints is a usage error" 2 "constraints" -- \
    r token create-root --agent-id x --scopes a:b --constraints '[1]'
expect "create-root refused by the leader exits 2, as locally" 2 "leader: .*(400)" -- \
    r token create-root --agent-id x --scopes a:b --constraints '{"a:b":{"bogus":1}}'
one_line "the leader's refusal is one line"

expect "revoke on the leader" 0 "" -- r revoke "$id2" --reason "remote test"
out_is "revoke prints what it revoked" "revoked token $id2"
expect "the revoked token fails local verify" 1 "revoked" -- loc token verify "$tok2"
expect "unrevoke on the leader" 0 "" -- r unrevoke "$id2"
out_is "unrevoke prints what it unrevoked" "unrevoked token $id2"
expect "the token verifies again" 0 "" -- loc token verify "$tok2"
expect "unrevoke of what is not revoked exits 1" 1 "leader: .*(404)" -- r unrevoke "$id2"
one_line "its message is one line"
expect "revoke --agent --json on the leader" 0 "" -- r --json revoke --agent remote-bot --reason bye
[ "$(jget target)" = agent ] && [ "$(jget reason)" = bye ] && ok "revoke --json result" \
    || no "revoke --json result ($(cat "$tmp/out"))"
expect "the agent's token fails local verify" 1 "revoked" -- loc token verify "$tok"
expect "unrevoke --agent on the leader" 0 "" -- r unrevoke --agent remote-bot
out_is "unrevoke --agent prints it" "unrevoked agent remote-bot"
expect "the agent's token verifies again" 0 "" -- loc token verify "$tok"
expect "revoke without an id is a usage error" 2 "usage" -- r revoke
expect "revoke of an id beginning with -- on the leader" 0 "" -- r revoke --abcAAAAAAAAAAAAAAAAA
out_is "its id is taken as given" "revoked token --abcAAAAAAAAAAAAAAAAA"
expect "revoke --help with --leader-url: the usage" 0 "" -- r revoke --help
grep -q "^usage: agent-iam revoke " "$tmp/out" && ok "its usage is on stdout" \
    || no "its usage is on stdout ($(cat "$tmp/out"))"
expect "revoke of what is not a tokenId on the leader" 2 "not a token id" -- r revoke --abc

# ---- config init, apikey -----------------------------------------------------
sak=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY
expect "config init aws on the leader" 0 "" -- r config init aws --region eu-west-1 \
    --role-arn arn:aws:iam::123456789012:role/agent --access-key-id AKIAIOSFODNN7EXAMPLE \
    --secret-access-key "$sak" --duration-seconds 1800
out_is "config init prints the local message" "AWS provider configured"
expect "config show of the home" 0 "" -- loc config show
has "the home has the AWS config" "region: eu-west-1"
has "with its role" "roleArn: arn:aws:iam::123456789012:role/agent"
lacks "the secret key is not shown" "$sak"
expect "config init aws with a bad region is a usage error" 2 "region" -- \
    r config init aws --region EU --role-arn arn:aws:iam::1:role/x
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out gh.pem 2>/dev/null
expect "config init github --json on the leader" 0 "" -- r --json config init github \
    --app-id 77 --installation-id 88 --private-key gh.pem --owner my-org
[ "$(jget configured)" = True ] && ok "config init --json result" || no "config init --json result"
expect "config show --json of the home" 0 "" -- loc config show --json
grep -q '"appId": "77"' "$tmp/out" && ok "the home has the GitHub config" \
    || no "the home has the GitHub config"
expect "config init github with a non-RSA key fails before sending" 1 "not a PEM private key" -- \
    r config init github --app-id 77 --installation-id 88 --private-key ca.pem

expect "apikey add on the leader" 0 "" -- r apikey add --name openai --provider openai \
    --key sk-remote-secret-1 --ttl-minutes 30
out_is "apikey add prints the local message" 'API key "openai" added'
expect "apikey list of the home" 0 "" -- loc apikey list
has "the home has the key" "^openai "
lacks "the key itself is not shown" "sk-remote-secret-1"
printf 'sk-remote-secret-2\n' >key.txt
expect "apikey add from a key file on the leader" 0 "" -- r apikey add --name other \
    --provider anthropic --key-file key.txt
expect "apikey remove on the leader" 0 "" -- r apikey remove openai
out_is "apikey remove prints the local message" 'API key "openai" removed'
expect "apikey list after remove" 0 "" -- loc apikey list
lacks "the key is gone" "^openai "
expect "apikey remove again exits 1" 1 "leader: .*not found" -- r apikey remove openai
one_line "its message is one line"
expect "apikey remove with a bad name is a usage error" 2 "name" -- r apikey remove 'a/b'

# ---- failures change nothing ----------------------------------------------------
expect "wrong auth token exits 1" 1 "leader: .*(401)" -- "$bin" rotate-key \
    --leader-url "$U" --auth-token wrong-token --ca-cert ca.pem
one_line "the 401 is one line"
expect "with --json, the 401 is JSON on stdout" 1 "" -- "$bin" --json rotate-key \
    --leader-url "$U" --auth-token wrong-token --ca-cert ca.pem
[ "$(jget code)" = forbidden ] && [ ! -s "$tmp/err" ] && ok "its code is forbidden, stderr empty" \
    || no "its code is forbidden, stderr empty ($(cat "$tmp/out" "$tmp/err"))"
expect "status after the refused rotate-key" 0 "" -- r status --json
[ "$(jget signingKeyVersion)" = "$v2" ] && ok "the key was not rotated" \
    || no "the key was not rotated"
expect "apikey add with a wrong token exits 1" 1 "(401)" -- "$bin" apikey add --name bad \
    --provider p --key k --leader-url "$U" --auth-token wrong-token --ca-cert ca.pem
expect "apikey list after it" 0 "" -- loc apikey list
lacks "no key was added" "^bad "
expect "revoke with a wrong token exits 1" 1 "(401)" -- "$bin" revoke "$id2" \
    --leader-url "$U" --auth-token wrong-token --ca-cert ca.pem
expect "the token was not revoked" 0 "" -- loc token verify "$tok2"

expect "no --ca-cert: the private CA is refused" 1 "certificate" -- "$bin" rotate-key \
    --leader-url "$U" --auth-token "$T"
one_line "the certificate error is one line"
grep -q "127.0.0.1:$port" "$tmp/err" && ok "it names the host" || no "it names the host"
grep -q "pass the leader's CA with --ca-cert FILE" "$tmp/err" && ok "it says to pass --ca-cert" ||
    no "it says to pass --ca-cert ($(cat "$tmp/err"))"
expect "status without --ca-cert is refused too" 1 "certificate" -- "$bin" status --leader-url "$U"
expect "a missing --ca-cert file" 1 "cannot open the CA file" -- "$bin" rotate-key \
    --leader-url "$U" --auth-token "$T" --ca-cert "$tmp/none.pem"
expect "localhost matches the certificate" 0 "" -- "$bin" status --leader-url \
    "https://localhost:$port/" --ca-cert ca.pem --auth-token "$T"

# --host names an address, not a name to resolve: a usage error (2), and
# nothing is created
expect "serve --host NAME is a usage error" 2 "--host must be an IP address" -- \
    "$bin" serve --home "$tmp/hosthome" --host example.com --insecure-http
expect "follower --host NAME is a usage error" 2 "--host must be an IP address" -- \
    "$bin" follower --home "$tmp/hosthome" --host example.com \
    --leader-url "https://127.0.0.1:$port/" --auth-token "$T"
[ ! -e "$tmp/hosthome" ] && ok "a bad --host creates no home" || no "a bad --host created a home"

expect "an ftp URL is a usage error" 2 "leader URL" -- "$bin" rotate-key \
    --leader-url ftp://127.0.0.1/ --auth-token "$T"
expect "plain http to another host is a usage error" 2 "leader URL" -- "$bin" rotate-key \
    --leader-url http://example.com --auth-token "$T"
expect "user info in the URL is a usage error" 2 "leader URL" -- "$bin" rotate-key \
    --leader-url "https://localhost:1@evil.example" --auth-token "$T"
expect "a URL that does not parse is a usage error" 2 "leader URL" -- "$bin" rotate-key \
    --leader-url "not a url" --auth-token "$T"
expect "plain http to a TLS leader fails" 1 "leader 127.0.0.1:$port" -- "$bin" rotate-key \
    --leader-url "http://127.0.0.1:$port" --auth-token "$T"
grep -q "plain http:// to a server that may speak TLS: use https://" "$tmp/err" &&
    ok "it says to use https://" || no "it says to use https:// ($(cat "$tmp/err"))"
dead=$(python3 "$free_port")
expect "nothing listening exits 1" 1 "leader 127.0.0.1:$dead" -- "$bin" rotate-key \
    --leader-url "https://127.0.0.1:$dead" --auth-token "$T" --ca-cert ca.pem
one_line "the connection error is one line"

expect "--leader-url without a token is a usage error" 2 "auth-token" -- "$bin" rotate-key \
    --leader-url "$U" --ca-cert ca.pem
expect "--auth-token without --leader-url is a usage error" 2 "leader-url" -- "$bin" \
    --home "$h" rotate-key --auth-token "$T"
expect "--home and --leader-url together are a usage error" 2 "not both" -- "$bin" \
    --home "$h" rotate-key --leader-url "$U" --auth-token "$T" --ca-cert ca.pem
expect "--auth-token and --auth-token-file together are a usage error" 2 "not both" -- \
    r rotate-key --auth-token-file key.txt
expect "a token with a space is a usage error" 2 "auth token" -- "$bin" rotate-key \
    --leader-url "$U" --auth-token "a b" --ca-cert ca.pem
expect "list commands take no --leader-url" 2 "unknown option" -- "$bin" apikey list \
    --leader-url "$U"

# ---- secrets from files and the environment ------------------------------------
printf '%s\n' "$T" >token.txt
expect "--auth-token-file" 0 "" -- "$bin" rotate-key --leader-url "$U" \
    --auth-token-file token.txt --ca-cert ca.pem
expect "--auth-token - reads stdin" 0 "" -- sh -c "printf '%s\n' '$T' | '$bin' status --json \
    --leader-url '$U' --auth-token - --ca-cert ca.pem"
expect "the environment alone" 0 "" -- env AGENT_IAM_LEADER_URL="$U" AGENT_IAM_AUTH_TOKEN="$T" \
    AGENT_IAM_CA_CERT="$tmp/ca.pem" "$bin" --json rotate-key
v3=$((v2 + 2))
[ "$(jget version)" = "$v3" ] && ok "the environment reached the leader" \
    || no "the environment reached the leader ($(cat "$tmp/out"))"
expect "--home wins over AGENT_IAM_LEADER_URL" 0 "" -- env AGENT_IAM_LEADER_URL="$U" \
    AGENT_IAM_AUTH_TOKEN="$T" "$bin" --home "$tmp/other" status --json
[ "$(jget mode)" = standalone ] && ok "that was the local home" || no "that was the local home"
expect "AGENT_IAM_AUTH_TOKEN with a flag URL" 0 "" -- env AGENT_IAM_AUTH_TOKEN="$T" \
    "$bin" apikey remove other --leader-url "$U" --ca-cert ca.pem

# ---- --grace 0 on the leader: the warning counts the leader's keys -------------
expect "rotate-key --grace 0 on the leader, not on a terminal" 0 \
    "retires the [0-9]* keys\? that verif.* on the leader and, within a poll, every follower" \
    -- r rotate-key --grace 0 </dev/null
expect "after it one key verifies" 0 "" -- r status --json
[ "$(jget verifyingKeys)" = 1 ] && ok "every older key retired" || no "every older key retired ($(cat "$tmp/out"))"

# ---- the auth token is never printed --------------------------------------------
grep -qF "$T" "$tmp/all" && no "the auth token appears in an output" \
    || ok "the auth token appears in no output"
grep -qF "$T" "$tmp/server.log" && no "the auth token appears in the server's log" \
    || ok "the auth token appears nowhere in the server's log"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
