# cluster_pki.sh - sourced after tls_env.sh by the leader group's runners
# (tests/cluster, bench/cluster): a cluster CA and one voter certificate
# for 127.0.0.1 (serverAuth and clientAuth) made by certs/gen.sh in
# $tmp/pki: ca.pem, voter-$voter.pem, voter-$voter.key.
# Set before sourcing: top (the tree's top), voter (the certificate name).
(
    cd "$tmp" &&
    sh "$top/certs/gen.sh" --out pki ca &&
    sh "$top/certs/gen.sh" --out pki voter "$voter" --san IP:127.0.0.1
) >"$tmp/openssl-cluster.log" 2>&1 || {
    echo "$name: certs/gen.sh could not make the cluster certificates" >&2
    cat "$tmp/openssl-cluster.log" >&2
    exit 1
}
