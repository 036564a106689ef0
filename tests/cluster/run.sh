#!/bin/sh
# A leader group as processes (DESIGN §9): three `agent-iam serve
# --cluster` voters on 127.0.0.1 with a cluster CA made here (openssl:
# one voter certificate for 127.0.0.1 with serverAuth and clientAuth),
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

(
    cd "$tmp" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout cluster-ca.key -out cluster-ca.pem -subj /CN=cluster-ca \
        -days 2 &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout voter.key -out voter.csr -subj /CN=127.0.0.1 &&
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >voter.ext &&
    openssl x509 -req -in voter.csr -CA cluster-ca.pem -CAkey cluster-ca.key \
        -CAcreateserial -days 2 -extfile voter.ext -out voter.pem &&
    chmod 600 cluster-ca.key voter.key
) >"$tmp/openssl-cluster.log" 2>&1 || {
    echo "$name: openssl could not make the cluster certificates" >&2
    cat "$tmp/openssl-cluster.log" >&2
    exit 1
}
touch "$tmp/pids"
PYTHONPATH="$here/../lib${PYTHONPATH:+:$PYTHONPATH}" \
    python3 "$here/cluster_test.py" "$bin" "$tmp"
