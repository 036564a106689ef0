#!/bin/sh
# A follower on a bad network (issue 16): the leader (`agent-iam serve`)
# in this network namespace, listening on one end of a veth pair, and a
# follower (`agent-iam follower`, run with `ip netns exec`) in a namespace
# of its own on the other end, with TLS from tests/lib/tls_env.sh (its
# server certificate names the leader's veth address too). Driven by
# tests/netns/netns_test.py (Python 3, standard library only):
#   B. a silent-drop partition of 40 s (netem loss 100%, else static
#      neighbour entries to a MAC nobody has) while the leader revokes a
#      token: the follower reports an error within --long-poll + 10 s and
#      refuses the token within 15 s of the link healing
#   A. a 16 kbit/s link (tbf on both ends, else netem rate) with the
#      follower 3,000 revocations of ~500-byte reasons behind: its applied
#      seq must move within 90 s and then keep moving (3 moves or more in
#      the next 40 s, never 25 s apart), with the bytes/s reported
# Names are unique per run (the pid): namespace agent-iam-PID, veth
# aiamPIDa (here) / aiamPIDb (there), a /30 of 10.213.0.0/16 that no
# interface uses. On exit, whatever happened: the processes are killed,
# the namespace deleted (its veth end with it, and so the pair), and the
# run fails if any process or the veth was left behind.
# Without the right to make a namespace and a veth (not root, a container
# without them), it prints "skip netns-test: <why>" and exits 0.
# Usage: tests/netns/run.sh BUILD/agent-iam
# NETNS_TEST_ONLY=A or B runs one scenario (development).
name=netns-test
usage_path=tests/netns/run.sh
here=$(cd "$(dirname "$0")" && pwd)

# The addresses come first: the certificate made by tls_env.sh names the
# leader's. A /30 from the pid, moved on while any address of it is in use.
a=$(($$ / 64 % 256))
b=$(($$ % 64 * 4))
if command -v ip >/dev/null 2>&1; then
    i=0
    while [ $i -lt 64 ] && ip -4 -o addr show 2>/dev/null |
        grep -Eq " inet 10\.213\.$a\.($b|$((b + 1))|$((b + 2))|$((b + 3)))/"; do
        b=$(((b + 4) % 256))
        [ $b -eq 0 ] && a=$(((a + 1) % 256))
        i=$((i + 1))
    done
fi
lip=10.213.$a.$((b + 1))
fip=10.213.$a.$((b + 2))
extra_san="IP:$lip"
. "$here/../lib/tls_env.sh"

ns=agent-iam-$$
va=aiam$$a
vb=aiam$$b
made_ns=0
made_veth=0

# Kill what runs in the namespace (only this run's processes can be
# there) and delete it: its veth end goes with it, and so the pair.
ns_del() {
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -9 "$pid" 2>/dev/null
    done
    ip netns del "$ns" 2>/dev/null
    made_ns=0
}
# At exit, whatever happened; then tls_env.sh kills the driver's servers
# and removes $tmp.
net_cleanup() {
    [ $made_ns -eq 1 ] && ns_del
    if [ $made_veth -eq 1 ] && ip link show "$va" >/dev/null 2>&1; then
        ip link del "$va" 2>/dev/null
    fi
    made_veth=0
    cleanup
}
trap net_cleanup EXIT
# A closed stdout (`| head`) or a hangup must not skip the cleanup: with
# SIGPIPE ignored the writes fail and the run goes on to its end.
trap '' PIPE
trap 'exit 129' HUP

skip() {
    echo "skip netns-test: $*"
    exit 0
}

command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
if ! err=$(ip netns add "$ns" 2>&1); then
    skip "cannot make a network namespace (ip netns add: $(echo "$err" | head -n 1))"
fi
made_ns=1
if ! err=$(ip netns exec "$ns" true 2>&1); then
    skip "cannot run a command in a network namespace (ip netns exec: $(echo "$err" | head -n 1))"
fi
if ! err=$(ip link add "$va" type veth peer name "$vb" netns "$ns" 2>&1); then
    skip "cannot make a veth pair (ip link add type veth: $(echo "$err" | head -n 1))"
fi
made_veth=1
if ! err=$( (ip addr add "$lip/30" dev "$va" &&
    ip link set "$va" up &&
    ip -n "$ns" addr add "$fip/30" dev "$vb" &&
    ip -n "$ns" link set "$vb" up &&
    ip -n "$ns" link set lo up) 2>&1); then
    echo "FAIL netns-test: cannot set up the veth pair: $err"
    exit 1
fi
echo "# namespace $ns, veth $va ($lip) <-> $vb ($fip, in $ns)"

export PYTHONPATH="$here/../lib${PYTHONPATH:+:$PYTHONPATH}"
python3 "$here/netns_test.py" "$bin" "$tmp" "$ns" "$va" "$vb" "$lip" "$fip"
rc=$?
[ $rc -eq 0 ] || dump_logs 40

# Nothing may outlive the run: no process in the namespace, none of the
# driver's servers, and no veth once the namespace is gone.
left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
if [ -f "$tmp/pids" ]; then
    while read -r pid; do
        if grep -q "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then
            left="$left$pid "
        fi
    done <"$tmp/pids"
fi
if [ -n "$left" ]; then
    echo "FAIL netns-test: processes left running: $left"
    rc=1
else
    echo "ok   netns-test: no process left running"
fi
ns_del
i=0
while [ $i -lt 50 ] && ip link show "$va" >/dev/null 2>&1; do
    sleep 0.1
    i=$((i + 1))
done
if ip netns list 2>/dev/null | grep -Eq "^$ns( |$)" ||
    ip link show "$va" >/dev/null 2>&1; then
    echo "FAIL netns-test: the namespace or the veth $va is still there"
    rc=1
else
    echo "ok   netns-test: namespace $ns and veth $va removed"
fi
exit $rc
