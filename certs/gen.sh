#!/bin/sh
# certs/gen.sh - a private CA and the certificates of an agent-iam fleet,
# with the openssl command (1.1.1 or later). EC P-256 keys, made under
# umask 077: every file 0600 in a directory 0700. Nothing is overwritten
# unless --force (never the CA).
#
#   certs/gen.sh [--out DIR] ca                      the CA (once)
#   certs/gen.sh [--out DIR] leader --san DNS:leader.example.com --san IP:10.0.0.5
#   certs/gen.sh [--out DIR] follower NAME --san DNS:eu.example.com ...
#   certs/gen.sh [--out DIR] client NAME             a clientAuth certificate
#   certs/gen.sh [--out DIR] voter NAME --san IP:10.0.0.1   a voter of a
#                          leader group: serverAuth and clientAuth (its HTTPS
#                          API and its Raft traffic, which peers check)
#
# Options: --out DIR (default: $AGENT_IAM_PKI, else certs/pki beside this
# script), --san DNS:name|IP:address (repeat; the first DNS name is the
# CN), --days N (leaf lifetime, default 825; the CA lives 3650), --force
# (replace a leaf certificate and its key: renewal).
set -eu
umask 077

prog=certs/gen.sh
usage() {
    cat >&2 <<EOF
usage: $prog [--out DIR] [--days N] [--force] ca
       $prog [--out DIR] [--days N] [--force] leader --san DNS:NAME|IP:ADDR [--san ...]
       $prog [--out DIR] [--days N] [--force] follower NAME --san DNS:NAME|IP:ADDR [--san ...]
       $prog [--out DIR] [--days N] [--force] client NAME [--san ...]
       $prog [--out DIR] [--days N] [--force] voter NAME --san DNS:NAME|IP:ADDR [--san ...]
EOF
    exit 2
}
die() {
    echo "$prog: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
out=${AGENT_IAM_PKI:-$here/pki}
days=
force=false
sans=
kind=
name=
while [ $# -gt 0 ]; do
    case $1 in
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --days) [ $# -ge 2 ] || usage; days=$2; shift 2 ;;
    --days=*) days=${1#--days=}; shift ;;
    --san) [ $# -ge 2 ] || usage; sans="$sans $2"; shift 2 ;;
    --san=*) sans="$sans ${1#--san=}"; shift ;;
    --force) force=true; shift ;;
    -h|--help) usage ;;
    -*) echo "$prog: unknown option $1" >&2; usage ;;
    *)
        if [ -z "$kind" ]; then kind=$1
        elif [ -z "$name" ]; then name=$1
        else echo "$prog: unexpected argument $1" >&2; usage
        fi
        shift ;;
    esac
done

case $kind in
ca|leader) [ -z "$name" ] || { echo "$prog: $kind takes no NAME" >&2; usage; } ;;
follower|client|voter) [ -n "$name" ] || { echo "$prog: $kind needs a NAME" >&2; usage; } ;;
"") usage ;;
*) echo "$prog: unknown kind \"$kind\" (ca, leader, follower, client, voter)" >&2; usage ;;
esac
if [ -n "$name" ]; then
    case $name in
    .*|-*|*[!A-Za-z0-9._-]*) die "NAME must be letters, digits, '.', '_' or '-' (not first): $name" ;;
    esac
    [ ${#name} -le 64 ] || die "NAME is longer than 64 characters"
fi
if [ -n "$days" ]; then
    case $days in ''|*[!0-9]*) die "--days must be a whole number of days" ;; esac
    [ "$days" -ge 1 ] && [ "$days" -le 3650 ] || die "--days must be 1 to 3650"
fi
command -v openssl >/dev/null 2>&1 || die "the openssl command is missing (apt-get install openssl)"

# The SANs as one subjectAltName value, each checked.
san_list=
cn=
for s in $sans; do
    case $s in
    DNS:*)
        v=${s#DNS:}
        case $v in ''|.*|*..*|*.|-*|*[!A-Za-z0-9.-]*) die "bad DNS name in --san $s" ;; esac
        [ -n "$cn" ] || cn=$v ;;
    IP:*)
        v=${s#IP:}
        case $v in ''|*[!0-9A-Fa-f.:]*) die "bad IP address in --san $s" ;; esac ;;
    *) die "--san takes DNS:NAME or IP:ADDRESS, not $s" ;;
    esac
    san_list="${san_list:+$san_list,}$s"
done
case $kind in
leader|follower|voter) [ -n "$san_list" ] || die "$kind needs at least one --san (the names clients connect to)" ;;
ca) [ -z "$san_list" ] || die "the CA takes no --san" ;;
esac

# The directory: made 0700; an existing one open to others is refused.
if [ ! -d "$out" ]; then
    mkdir -p "$out"
    chmod 700 "$out"
fi
perm=$(ls -ld "$out" | cut -c5-10)
[ "$perm" = "------" ] || die "$out is open to group or others: run chmod 700 $out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "$out/.gen.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# A config of our own, so the system's openssl.cnf adds nothing.
conf() { # conf CN
    cat <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $1
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $san_list
[v3_voter]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $san_list
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    [ -z "$san_list" ] || echo "subjectAltName = $san_list"
}

newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1" 2>"$work/log" ||
        die "openssl genpkey failed: $(cat "$work/log")"
}

if [ "$kind" = ca ]; then
    [ ! -e "$out/ca.pem" ] && [ ! -e "$out/ca.key" ] ||
        die "$out already holds a CA (ca.pem, ca.key): it is made once; move it away to start over"
    conf "agent-iam CA" >"$work/cnf"
    newkey "$work/ca.key"
    openssl req -x509 -new -config "$work/cnf" -key "$work/ca.key" -sha256 \
        -days 3650 -extensions v3_ca -set_serial "0x$(openssl rand -hex 16)" \
        -out "$work/ca.pem" 2>"$work/log" || die "openssl req failed: $(cat "$work/log")"
    mv "$work/ca.key" "$out/ca.key"
    mv "$work/ca.pem" "$out/ca.pem"
    cat <<EOF
wrote $out/ca.pem   the CA certificate: give it to every client and follower
wrote $out/ca.key   the CA private key (0600): keep it offline; it signs every certificate
next: $prog --out $out leader --san DNS:leader.example.com --san IP:10.0.0.5
EOF
    exit 0
fi

[ -f "$out/ca.pem" ] && [ -f "$out/ca.key" ] ||
    die "no CA in $out: run $prog --out $out ca first"
case $kind in
leader) base=leader ext=v3_server ;;
follower) base=follower-$name ext=v3_server ;;
client) base=client-$name ext=v3_client ;;
voter) base=voter-$name ext=v3_voter ;;
esac
if [ -e "$out/$base.pem" ] || [ -e "$out/$base.key" ]; then
    $force || die "$out/$base.pem exists (--force replaces it and its key)"
fi
days=${days:-825}
# A certificate must not outlive the CA that signs it.
openssl x509 -in "$out/ca.pem" -noout -checkend $((days * 86400)) >/dev/null 2>&1 ||
    die "the CA in $out expires within $days days: make a new CA (or pass a smaller --days)"
case $kind in
leader) subject=${cn:-agent-iam leader} ;;
follower) subject=${cn:-agent-iam follower $name} ;;
client) subject=$name ;;
voter) subject=${cn:-agent-iam voter $name} ;;
esac
conf "$subject" >"$work/cnf"
newkey "$work/$base.key"
openssl req -new -config "$work/cnf" -key "$work/$base.key" -out "$work/$base.csr" \
    2>"$work/log" || die "openssl req failed: $(cat "$work/log")"
openssl x509 -req -in "$work/$base.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile "$work/cnf" -extensions "$ext" -out "$work/$base.pem" 2>"$work/log" ||
    die "openssl x509 failed: $(cat "$work/log")"
openssl verify -CAfile "$out/ca.pem" "$work/$base.pem" >"$work/log" 2>&1 ||
    die "the new certificate does not verify: $(cat "$work/log")"
mv "$work/$base.key" "$out/$base.key"
mv "$work/$base.pem" "$out/$base.pem"

echo "wrote $out/$base.pem   certificate ($kind${san_list:+, $san_list}, $days days)"
echo "wrote $out/$base.key   private key (0600)"
case $kind in
leader)
    cat <<EOF
run:     agent-iam serve --tls-cert $out/leader.pem --tls-key $out/leader.key --auth-token-file F
clients: --ca-cert $out/ca.pem (agent-iam, followers), curl --cacert $out/ca.pem
EOF
    ;;
follower)
    cat <<EOF
run:     agent-iam follower --follower-id $name --tls-cert $out/$base.pem --tls-key $out/$base.key \\
             --ca-cert $out/ca.pem --leader-url https://LEADER:8443 --auth-token-file F
agents:  curl --cacert $out/ca.pem
EOF
    ;;
voter)
    cat <<EOF
run:     agent-iam serve --tls-cert $out/$base.pem --tls-key $out/$base.key \\
             --cluster FILE --node-id N --admin-token-file F
         (FILE's "ca": $out/ca.pem; every voter's certificate from this CA)
EOF
    ;;
client)
    cat <<EOF
use:     curl --cacert $out/ca.pem --cert $out/$base.pem --key $out/$base.key https://...
         (for a TLS-terminating proxy in front of agent-iam that requires client certificates)
EOF
    ;;
esac
