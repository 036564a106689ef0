# tls_env.sh - sourced by the integration test runners (tests/server,
# tests/follower): checks the arguments and tools, makes a temporary
# directory with a test CA and a server certificate for 127.0.0.1 and
# localhost (ca.pem, server.pem, server.key), and on exit kills every
# server pid the driver wrote to $tmp/pids and removes the directory.
# Set before sourcing: name (for messages), usage_path (the runner), and
# optionally extra_san (more subjectAltName entries of the server
# certificate, e.g. "IP:10.213.0.1" for a leader on a veth address).
# Sets: bin (absolute path of agent-iam), tmp. Provides: dump_logs.
set -u
if [ $# -ne 1 ]; then
    echo "usage: sh $usage_path path/to/agent-iam" >&2
    exit 2
fi
case $1 in
/*) bin=$1 ;;
*) bin=$(pwd)/$1 ;;
esac
if [ ! -x "$bin" ]; then
    echo "$name: $bin: not an executable" >&2
    exit 2
fi
for tool in python3 openssl; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "$name: $tool is needed" >&2
        exit 1
    fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/agent-iam-$name.XXXXXX") || exit 1

cleanup() {
    if [ -f "$tmp/pids" ]; then
        while read -r pid; do
            # only a server of this run still alive (not a reused pid)
            if grep -q "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then
                kill -9 "$pid" 2>/dev/null
            fi
        done <"$tmp/pids"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- certificates: a CA and a server certificate signed by it -----------
gen() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 \
        -subj "/CN=agent-iam $name CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" \
        -subj "/CN=localhost" &&
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1${extra_san:+,$extra_san}" \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" >"$tmp/server.ext" &&
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" \
        -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
        -extfile "$tmp/server.ext" -out "$tmp/server.pem" &&
    chmod 600 "$tmp/server.key" "$tmp/ca.key"
}
if ! gen >"$tmp/openssl.log" 2>&1; then
    echo "$name: cannot make the certificates:" >&2
    cat "$tmp/openssl.log" >&2
    exit 1
fi

# The servers' stderr (access logs), to see what they said after a failure.
dump_logs() {
    for f in "$tmp"/*.log; do
        case $f in */openssl.log) continue ;; esac
        [ -f "$f" ] || continue
        echo "---- $(basename "$f") (last ${1:-40} lines)"
        tail -n "${1:-40}" "$f"
    done
}
