#!/bin/sh
# A leader group as processes (DESIGN §9): three `agent-iam serve
# --cluster` voters on 127.0.0.1 with a cluster CA made by certs/gen.sh
# (one voter certificate for 127.0.0.1, serverAuth and clientAuth),
# driven by tests/cluster/cluster_test.py: election on empty homes, a
# write through any voter (307) applied once, SIGKILL of the leader in a
# stream of revocations losing nothing acknowledged, a stopped majority
# (SIGSTOP) committing nothing and a write to it failing, a voter with
# another master.key stopping. Every process is killed on exit.
# Usage: tests/cluster/run.sh BUILD/agent-iam
name=cluster-test
usage_path=tests/cluster/run.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tls_env.sh"

top=$(cd "$here/../.." && pwd)
voter=test
. "$here/../lib/cluster_pki.sh"
touch "$tmp/pids"
PYTHONPATH="$here/../lib${PYTHONPATH:+:$PYTHONPATH}" \
    python3 "$here/cluster_test.py" "$bin" "$tmp"
