#!/bin/sh
# `make demo-cluster`: a leader group on one machine, narrated (DESIGN §9).
# Three voters (`serve --cluster`, certificates from certs/gen.sh, one
# master.key) and a follower given the three URLs; root tokens minted,
# then a stream of revocations through the CLI (also given the three
# URLs) during which the leader is killed with SIGKILL; the new leader,
# every acknowledged revocation refused by every node, and the old leader
# rejoining with all of them. Every step checks what it says; the script
# exits 0 only if all of them did.
# Usage: scripts/demo-cluster.sh BUILD/agent-iam
set -u
bin=$1
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/demo-lib.sh"
port() { python3 "$top/tests/lib/free_port.py"; }

step "1. certificates: a cluster CA and one voter certificate (certs/gen.sh)"
sh "$top/certs/gen.sh" --out pki ca >/dev/null 2>&1 || fail "certs/gen.sh ca"
sh "$top/certs/gen.sh" --out pki voter local --san IP:127.0.0.1 \
    --san DNS:localhost >/dev/null 2>&1 || fail "certs/gen.sh voter"
ok "pki/ca.pem, pki/voter-local.pem (serverAuth and clientAuth)"

step "2. three voters on empty homes sharing one master.key"
(umask 077 && head -c 24 /dev/urandom | base64 >admin.token &&
    mkdir h1 h2 h3 && head -c 32 /dev/urandom >h1/master.key &&
    cp h1/master.key h2/ && cp h1/master.key h3/) || fail "homes"
for i in 1 2 3; do
    eval "hp$i=$(port)"
    eval "rp$i=$(port)"
done
cat >cluster.json <<EOF
{"ca": "$dir/pki/ca.pem",
 "nodes": [{"id": 1, "raft": "127.0.0.1:$rp1", "url": "https://localhost:$hp1"},
           {"id": 2, "raft": "127.0.0.1:$rp2", "url": "https://localhost:$hp2"},
           {"id": 3, "raft": "127.0.0.1:$rp3", "url": "https://localhost:$hp3"}]}
EOF
start_voter() {
    eval "p=\$hp$1"
    "$bin" serve --home "h$1" --host 127.0.0.1 --port "$p" \
        --tls-cert pki/voter-local.pem --tls-key pki/voter-local.key \
        --admin-token-file admin.token --access-log off \
        --cluster cluster.json --node-id "$1" 2>>"voter$1.log" &
    eval "vpid$1=$!"
    pids="$pids $!"
}
for i in 1 2 3; do start_voter $i; done
urls="https://localhost:$hp1,https://localhost:$hp2,https://localhost:$hp3"
A="--leader-url $urls --auth-token-file admin.token --ca-cert pki/ca.pem"
# the leader's id, once one is elected and ready ("" after 15 s)
leader_id() {
    i=0
    while [ $i -lt 150 ]; do
        for n in 1 2 3; do
            eval "p=\$hp$n"
            s=$("$bin" --json cluster status --leader-url "https://localhost:$p" \
                --auth-token-file admin.token --ca-cert pki/ca.pem 2>/dev/null)
            if printf '%s' "$s" | grep -q '"role": *"leader"' &&
               printf '%s' "$s" | grep -q '"ready": *true'; then
                echo "$n"; return 0
            fi
        done
        sleep 0.1; i=$((i + 1))
    done
    echo ""
}
lead=$(leader_id)
[ -n "$lead" ] || fail "no leader elected"
ok "voter $lead is the leader; $(eval "echo https://localhost:\$hp$lead")"
"$bin" cluster status $A | sed 's/^/   /'

step "3. a follower given the three voters' URLs"
"$bin" followers add region-b $A >region-b.token 2>/dev/null \
    || fail "followers add region-b"
"$bin" follower --home region-b --host 127.0.0.1 --port 0 \
    --leader-url "$urls" --auth-token-file region-b.token \
    --follower-id region-b --ca-cert pki/ca.pem --tls-cert pki/voter-local.pem \
    --tls-key pki/voter-local.key --access-log off --long-poll 2s \
    2>region-b.log &
pids="$pids $!"
i=0
until fp=$(sed -n 's/.*listening on https:\/\/[^:]*:\([0-9]*\).*/\1/p' region-b.log | head -1) &&
      [ -n "$fp" ] && curl -sf --cacert pki/ca.pem "https://localhost:$fp/readyz" >/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "the follower is not ready"; sleep 0.1
done
ok "follower region-b on https://localhost:$fp, ready"

step "4. 40 root tokens, then revocations of them while the leader is killed"
n=0
while [ $n -lt 40 ]; do
    "$bin" token create-root --agent-id "agent-$n" --scopes github:repo:read \
        $A >"tok.$n" 2>/dev/null || fail "create-root $n"
    n=$((n + 1))
done
ok "40 root tokens (agent-0 ... agent-39)"
: >acked
(
    n=0
    while [ $n -lt 40 ]; do
        id=$("$bin" --json token show "@tok.$n" 2>/dev/null |
            sed -n 's/.*"tokenId": *"\([^"]*\)".*/\1/p')
        if "$bin" revoke "$id" --reason demo $A >/dev/null 2>"rev.$n.err"; then
            echo "$n" >>acked
        fi
        n=$((n + 1))
    done
) &
writer=$!
i=0
while [ "$(wc -l <acked)" -lt 15 ]; do
    i=$((i + 1)); [ $i -lt 300 ] || fail "the revocations do not go through"
    sleep 0.05
done
eval "kill -9 \$vpid$lead"
killed=$lead
t0=$(date +%s.%N)
ok "SIGKILL of the leader (voter $killed) after $(wc -l <acked) revocations"
new=$(leader_id)
t1=$(date +%s.%N)
[ -n "$new" ] && [ "$new" != "$killed" ] || fail "no new leader"
ok "voter $new leads now (seen $(python3 -c "print('%.1f' % ($t1 - $t0))") s after the kill)"
wait "$writer"
acked_n=$(wc -l <acked)
ok "$acked_n of 40 revocations acknowledged (the CLI waits out the election; one it could not finish would say so, exit 1)"
cat rev.*.err 2>/dev/null | sort | uniq -c | sed 's/^/   /' | head -5

step "5. every acknowledged revocation is refused by every node"
check_all() { # $1: https port; every acknowledged token answers 401
    for n in $(cat acked); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --cacert pki/ca.pem \
            -H "Authorization: Bearer $(cat "tok.$n")" \
            -d '{"scope":"github:repo:read"}' "https://localhost:$1/v1/check")
        [ "$code" = 401 ] || return 1
    done
}
for v in 1 2 3; do
    [ "$v" = "$killed" ] && continue
    eval "p=\$hp$v"
    check_all "$p" || fail "voter $v answers a revoked token"
    ok "voter $v refuses all $acked_n"
done
i=0
until check_all "$fp"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the follower answers a revoked token"; sleep 0.1
done
ok "follower region-b refuses all $acked_n (it moved to another voter)"

step "6. the old leader comes back and catches up"
start_voter "$killed"
eval "p=\$hp$killed"
i=0
until check_all "$p" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 150 ] || fail "voter $killed did not catch up"; sleep 0.1
done
ok "voter $killed refuses all $acked_n; it follows voter $(leader_id)"

step "7. a clean stop"
for p in $pids; do kill "$p" 2>/dev/null; done
for p in $pids; do wait "$p" 2>/dev/null; done
pids=""
ok "every process stopped"
echo
echo "demo-cluster: every step did what it says"
