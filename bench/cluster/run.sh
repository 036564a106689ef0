#!/bin/sh
# bench/cluster: a leader group of three voters on 127.0.0.1 (DESIGN §9),
# measured by bench/cluster/driver.py: failover after SIGKILL of the
# leader under a write load (KILLS times), acknowledged writes lost or
# applied twice over those kills, write latency at a fixed rate and the
# throughput ceiling, and a voter's catch-up after CATCHUP writes.
# Figures go to stdout (bench/README.md keeps them). Not a test: no
# threshold fails it, but a lost or doubled write is printed loudly.
# Usage: bench/cluster/run.sh BUILD/agent-iam
#   KILLS=20 RATE=500 RATE_S=20 CATCHUP=100000 (environment);
#   PARTS=failover,latency,catchup picks some
name=bench-cluster
usage_path=bench/cluster/run.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tests/lib/tls_env.sh"
top=$(cd "$here/../.." && pwd)
voter=bench
. "$here/../../tests/lib/cluster_pki.sh"
touch "$tmp/pids"
PYTHONPATH="$here/../../tests/lib${PYTHONPATH:+:$PYTHONPATH}" \
    python3 "$here/driver.py" "$bin" "$tmp"
