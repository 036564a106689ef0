#!/bin/sh
# Checks of the systemd units in deploy/:
#  1. the hardening and secret-handling directives are there;
#  2. `systemd-analyze verify` accepts them: the command deploy/README.md
#     gives, on the shipped units with BIN bound over /usr/local/bin (as
#     root), and copies whose ExecStart points at BIN; and
#     `systemd-analyze security --offline` rates them OK; skipped, saying
#     so, when systemd-analyze is missing;
#  3. their ExecStart lines work: each is expanded as systemd would
#     (Environment=, EnvironmentFile= from the example files, %i,
#     $CREDENTIALS_DIRECTORY filled from the LoadCredential= sources made
#     by certs/gen.sh) and run without the sandbox: the leader answers
#     /healthz over TLS and a follower instance replicates from it.
# Usage: tests/install/deploy_verify.sh BIN (an agent-iam binary)
set -u
free_port=$(cd "$(dirname "$0")/../lib" && pwd)/free_port.py
bin=${1:?usage: deploy_verify.sh BIN}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
top=$(cd "$(dirname "$0")/../.." && pwd)
deploy=$top/deploy
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
leader=$deploy/agent-iam-leader.service
follower=$deploy/agent-iam-follower@.service

# ---- 1. directives ------------------------------------------------------------
for u in "$leader" "$follower"; do
    n=$(basename "$u")
    missing=
    for d in 'User=agent-iam' 'StateDirectory=agent-iam/' 'StateDirectoryMode=0700' \
             'Environment=AGENT_IAM_HOME=/var/lib/agent-iam/' 'NoNewPrivileges=yes' \
             'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' \
             'CapabilityBoundingSet=$' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$' \
             'SystemCallFilter=@system-service$' 'MemoryDenyWriteExecute=yes' \
             'LockPersonality=yes' 'UMask=0077' 'LimitCORE=0' \
             'EnvironmentFile=' 'Restart=on-failure' 'RestartSec=' 'KillSignal=SIGTERM' \
             'ExecStart=/usr/local/bin/agent-iam '; do
        grep -q -- "^ *$d" "$u" || missing="$missing [$d]"
    done
    case $n in
    *leader*) need1='LoadCredential=admin-token:'
              need2='--admin-token-file ${CREDENTIALS_DIRECTORY}/admin-token' ;;
    *) need1='LoadCredential=follower-token:'
       need2='--auth-token-file ${CREDENTIALS_DIRECTORY}/follower-token' ;;
    esac
    for d in "$need1" "$need2"; do
        grep -q -- "^ *$d" "$u" || missing="$missing [$d]"
    done
    [ -z "$missing" ] && ok "$n has every required directive" || no "$n lacks$missing"
    t=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$u")
    [ -n "$t" ] && [ "$t" -gt 10 ] && ok "$n: TimeoutStopSec ($t s) is longer than the 10 s drain" ||
        no "$n: TimeoutStopSec longer than the 10 s drain (got \"$t\")"
    grep -Eq -- '--auth-token [^-]|AGENT_IAM_AUTH_TOKEN=|--admin-token [^-]' "$u" &&
        no "$n passes a secret in argv or the environment" || ok "$n passes no secret in argv or the environment"
done
for f in leader.env.example follower.env.example; do
    grep -Eiq '^[^#]*(TOKEN|SECRET|PASSWORD|KEY)[A-Z_]*=' "$deploy/$f" &&
        no "$f holds no secret setting" || ok "$f holds no secret setting"
done
grep -q '^AGENT_IAM_LEADER_URL=' "$deploy/follower.env.example" && ok "follower.env.example sets the leader URL" ||
    no "follower.env.example sets the leader URL"

# ---- 2. systemd-analyze --------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd)"
else
    # The command deploy/README.md gives, on the shipped units, with BIN
    # where their ExecStart looks (as after `make install`): a private
    # mount namespace binds a folder holding it over /usr/local/bin.
    cmd='systemd-analyze verify deploy/agent-iam-leader.service deploy/agent-iam-follower@.service'
    grep -qF "$cmd" "$deploy/README.md" && ok "deploy/README.md gives: $cmd" ||
        no "deploy/README.md gives: $cmd"
    mkdir "$tmp/bin" && cp "$bin" "$tmp/bin/agent-iam"
    if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 &&
        unshare -m sh -c "mount --bind '$tmp/bin' /usr/local/bin" 2>/dev/null; then
        (cd "$top" && unshare -m sh -c "mount --bind '$tmp/bin' /usr/local/bin && $cmd") \
            >"$tmp/sa.out" 2>&1
        st=$?
        [ $st -eq 0 ] && [ ! -s "$tmp/sa.out" ] && ok "$cmd, as documented: no errors, no warnings" ||
            no "$cmd, as documented (exit $st): $(head -c 600 "$tmp/sa.out")"
    else
        echo "SKIP $cmd as documented: binding BIN over /usr/local/bin needs root and unshare"
    fi
    mkdir "$tmp/units"
    for u in "$leader" "$follower"; do
        sed "s|/usr/local/bin/agent-iam|$bin|g" "$u" >"$tmp/units/$(basename "$u")"
    done
    cd "$tmp/units" || exit 1
    for u in agent-iam-leader.service agent-iam-follower@eu-1.service; do
        if systemd-analyze verify --man=no "./$u" >"$tmp/sa.out" 2>&1 && [ ! -s "$tmp/sa.out" ]; then
            ok "systemd-analyze verify $u: no errors, no warnings"
        else
            no "systemd-analyze verify $u: $(head -c 600 "$tmp/sa.out")"
        fi
        if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
            if systemd-analyze security --offline=yes --threshold=20 "./$u" >"$tmp/sa.out" 2>&1; then
                ok "systemd-analyze security $u: $(grep -o 'exposure level.*' "$tmp/sa.out")"
            else
                no "systemd-analyze security $u: $(tail -1 "$tmp/sa.out")"
            fi
        else
            echo "SKIP systemd-analyze security $u: this systemd has no --offline"
        fi
    done
    # a unit with a mistake is caught (the check is not vacuous)
    sed 's/^ProtectSystem=strict/ProtectSystem=bogus/' agent-iam-leader.service >broken.service
    systemd-analyze verify --man=no ./broken.service >"$tmp/sa.out" 2>&1
    grep -qi "protect.system" "$tmp/sa.out" && ok "systemd-analyze verify reports a broken unit" ||
        no "systemd-analyze verify reports a broken unit ($(head -c 300 "$tmp/sa.out"))"
    cd "$top" || exit 1
fi

# ---- 3. the ExecStart lines, run ------------------------------------------------
if ! command -v python3 >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 ||
    ! command -v curl >/dev/null 2>&1; then
    echo "SKIP running the ExecStart lines: python3, openssl or curl missing"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
fi
# run_unit UNIT INSTANCE LOG: the unit's ExecStart as systemd would expand
# it (tests/install/unit_exec.py: /etc and /var/lib moved under $tmp/root,
# credentials copied), in the background ($! is its pid), BIN for
# /usr/local/bin/agent-iam; $tmp/exec holds the expanded argv.
unit_exec=$top/tests/install/unit_exec.py
run_unit() {
    python3 "$unit_exec" "$1" "$2" "$tmp/root" >"$tmp/exec" 2>"$tmp/exec.err" || return 1
    python3 "$unit_exec" "$1" "$2" "$tmp/root" --bin "$bin" --exec "$3" &
}
freeport() { python3 "$free_port"; }

r=$tmp/root
mkdir -p "$r/etc/agent-iam" && chmod 700 "$r/etc/agent-iam"
head -c 32 /dev/urandom | base64 >"$r/etc/agent-iam/admin-token"
chmod 600 "$r/etc/agent-iam/admin-token"
pki=$r/etc/agent-iam/pki
if sh "$top/certs/gen.sh" --out "$pki" ca >/dev/null &&
    sh "$top/certs/gen.sh" --out "$pki" leader --san DNS:localhost --san IP:127.0.0.1 >/dev/null &&
    sh "$top/certs/gen.sh" --out "$pki" follower eu-1 --san DNS:localhost --san IP:127.0.0.1 >/dev/null; then
    ok "certs/gen.sh made the files the units load"
else
    no "certs/gen.sh made the files the units load"
fi
lport=$(freeport)
fport=$(freeport)
sed -e "s/^AGENT_IAM_HOST=.*/AGENT_IAM_HOST=127.0.0.1/" -e "s/^AGENT_IAM_PORT=.*/AGENT_IAM_PORT=$lport/" \
    -e "s/^AGENT_IAM_SERVE_ARGS=.*/AGENT_IAM_SERVE_ARGS=--access-log off --threads 2/" \
    "$deploy/leader.env.example" >"$r/etc/agent-iam/leader.env"
sed -e "s|^AGENT_IAM_LEADER_URL=.*|AGENT_IAM_LEADER_URL=https://localhost:$lport|" \
    -e "s/^AGENT_IAM_HOST=.*/AGENT_IAM_HOST=127.0.0.1/" \
    "$deploy/follower.env.example" >"$r/etc/agent-iam/follower.env"
printf 'AGENT_IAM_PORT=%s\nAGENT_IAM_FOLLOWER_ARGS=--public-metrics\n' "$fport" \
    >"$r/etc/agent-iam/follower-eu-1.env"

if run_unit "$leader" "" "$tmp/leader.log"; then
    pids="$!"
    ok "the leader's ExecStart expands ($(tr '\n' ' ' <"$tmp/exec" | sed 's/--env--.*//' | head -c 300))"
else
    no "the leader's ExecStart expands: $(cat "$tmp/exec.err")"
fi
i=0
until curl -sf --cacert "$pki/ca.pem" "https://localhost:$lport/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt 100 ] && break
    sleep 0.1
done
[ $i -le 100 ] && ok "the leader's ExecStart serves /healthz over the generated certificate" ||
    no "the leader's ExecStart serves /healthz (log: $(head -c 500 "$tmp/leader.log"))"
home=$r/var/lib/agent-iam/leader
[ -f "$home/agent-iam.db" ] && [ "$(stat -c %a "$home")" = 700 ] &&
    ok "its home is the StateDirectory, 0700" || no "its home is the StateDirectory, 0700"
# the follower's own credential, as the unit's comment says
(umask 077 && "$bin" followers add eu-1 --providers '*' \
    --leader-url "https://localhost:$lport" \
    --auth-token-file "$r/etc/agent-iam/admin-token" --ca-cert "$pki/ca.pem" \
    >"$r/etc/agent-iam/follower-eu-1.token" 2>"$tmp/fadd.err") &&
    ok "followers add eu-1 writes the credential the follower unit loads" ||
    no "followers add eu-1: $(cat "$tmp/fadd.err")"
if run_unit "$follower" eu-1 "$tmp/follower.log"; then
    pids="$! $pids"
    ok "the follower's ExecStart expands for instance eu-1"
else
    no "the follower's ExecStart expands: $(cat "$tmp/exec.err")"
fi
i=0
until curl -s --cacert "$pki/ca.pem" "https://localhost:$fport/v1/status" 2>/dev/null |
    grep -q '"state": *"connected"'; do
    i=$((i + 1))
    [ $i -gt 150 ] && break
    sleep 0.1
done
[ $i -le 150 ] && ok "the follower@eu-1 ExecStart replicates from the leader and serves on its own certificate" ||
    no "the follower@eu-1 ExecStart replicates (log: $(head -c 500 "$tmp/follower.log"))"
curl -s --cacert "$pki/ca.pem" "https://localhost:$fport/v1/status" | grep -q '"followerId": *"eu-1"' &&
    ok "the follower id is the instance name" || no "the follower id is the instance name"
[ -d "$r/var/lib/agent-iam/follower-eu-1" ] && ok "its home is follower-eu-1" || no "its home is follower-eu-1"
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
st=0
for p in $pids; do wait "$p" || st=$?; done
pids=
[ $st -eq 0 ] && ok "SIGTERM (KillSignal) stops both with exit 0" || no "SIGTERM stops both with exit 0 (exit $st)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
