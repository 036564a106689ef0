#!/bin/sh
# Interoperability with the Node.js package agent-iam@0.0.3 (DESIGN §2: the
# token wire format is byte-compatible). Installs the package from the npm
# registry into a temporary directory and checks both directions with one
# shared random 32-byte secret (key version 1 on the C side):
#   * tokens minted by Node (root, delegated, grandchild; strings with
#     quotes, backslashes, '/', non-ASCII, U+2028, control characters) verify
#     in C, and checkPermission gives the same answers in C and in Node;
#   * tokens minted here (root, delegated with tokenId, keyVersion,
#     ancestors, ancestorAgents, budgets) verify in Node (TokenService.verify re-serializes
#     with JSON.stringify, so our bytes must be exactly its bytes) and
#     checkPermission agrees; delegation across the two both ways;
#   * a tampered token and one signed with another secret are refused by
#     both.
# Needs node and npm (skipped, exit 0, without them) and the npm registry
# (exit 1 when it cannot be reached: that is a failure, not a pass).
#
# usage: sh tests/interop/run.sh path/to/interop_tool
set -u

if [ $# -ne 1 ]; then
    echo "usage: sh tests/interop/run.sh path/to/interop_tool" >&2
    exit 2
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "interop: SKIP: node and npm are both needed to test against the" \
         "Node.js package agent-iam@0.0.3" \
         "(node: $(command -v node || echo missing)," \
         "npm: $(command -v npm || echo missing))"
    exit 0
fi
case $1 in
/*) TOOL=$1 ;;
*) TOOL=$(pwd)/$1 ;;
esac
if [ ! -x "$TOOL" ]; then
    echo "interop: $TOOL: not an executable (make $1)" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT=$HERE/interop.mjs

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agent-iam-interop.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# ---- install the Node package (once) -------------------------------------
printf '{"name":"agent-iam-interop","private":true}\n' >"$TMP/package.json"
echo "interop: npm install agent-iam@0.0.3 ($(node --version), npm $(npm --version))"
if ! (cd "$TMP" && npm_config_update_notifier=false npm install \
        --no-audit --no-fund --loglevel=error agent-iam@0.0.3) \
        </dev/null >"$TMP/npm.log" 2>&1; then
    if grep -q -E 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|proxy' \
            "$TMP/npm.log"; then
        echo "interop: FAIL: the npm registry ($(npm config get registry)) cannot be reached, so" \
             "agent-iam@0.0.3 could not be installed; nothing was tested:"
    else
        echo "interop: FAIL: npm install agent-iam@0.0.3 failed; nothing was tested:"
    fi
    sed 's/^/    /' "$TMP/npm.log" | tail -n 15
    exit 1
fi
PKG=$TMP/node_modules/agent-iam
if [ ! -f "$PKG/dist/index.js" ]; then
    echo "interop: FAIL: npm installed no $PKG/dist/index.js"
    exit 1
fi

# ---- secrets: raw 32 bytes, like the Node package's token_secret ----------
KEY=$TMP/token_secret
OTHER=$TMP/other_secret
node -e 'const fs = require("fs"), c = require("crypto");
fs.writeFileSync(process.argv[1], c.randomBytes(32), { mode: 0o600 });
fs.writeFileSync(process.argv[2], c.randomBytes(32), { mode: 0o600 });' \
    "$KEY" "$OTHER" || exit 1

PASS=0
FAIL=0
pass() {
    PASS=$((PASS + 1))
    echo "ok   $1"
}
fail() {
    FAIL=$((FAIL + 1))
    echo "FAIL $1"
    shift
    for line in "$@"; do
        [ -n "$line" ] && printf '%s\n' "$line" | sed 's/^/       /'
    done
    return 0
}

# Run the C tool / the Node script; sets GOT to yes (exit 0: valid,
# allowed, done), no (exit 1: refused) or "error (...)" (usage error, crash,
# sanitizer report: never a pass).
c_run() {
    "$TOOL" "$@" </dev/null >"$TMP/c.out" 2>"$TMP/c.err"
    rc=$?
    if grep -q -e 'Sanitizer' -e 'runtime error' "$TMP/c.err"; then
        GOT="error (sanitizer report)"
    else
        case $rc in
        0) GOT=yes ;;
        1) GOT=no ;;
        *) GOT="error (exit $rc)" ;;
        esac
    fi
}
n_run() {
    node "$SCRIPT" "$PKG" "$@" </dev/null >"$TMP/n.out" 2>"$TMP/n.err"
    rc=$?
    case $rc in
    0) GOT=yes ;;
    1) GOT=no ;;
    *) GOT="error (exit $rc)" ;;
    esac
}
# SHOWN = the signed JSON of a token (the C tool's `show`); a failure counts.
c_show() {
    c_run show "$1"
    SHOWN=$(cat "$TMP/c.out")
    [ "$GOT" = yes ] || fail "C shows a token" "$GOT: $(cat "$TMP/c.err")"
}
# TID = a token's tokenId.
token_id() {
    c_show "$1"
    TID=$(printf '%s\n' "$SHOWN" |
        sed -n 's/.*"tokenId":"\([A-Za-z0-9_-]\{22\}\)".*/\1/p')
}

# verify_both DESC KEYFILE TOKEN WANT_C WANT_NODE
verify_both() {
    desc=$1 key=$2 tok=$3 want_c=$4 want_n=$5
    c_run verify "$key" "$tok"
    got_c=$GOT
    n_run verify "$key" "$tok"
    got_n=$GOT
    if [ "$got_c" = "$want_c" ] && [ "$got_n" = "$want_n" ]; then
        pass "$desc"
    else
        fail "$desc" "C: want $want_c, got $got_c: $(head -c 300 "$TMP/c.err")" \
            "Node: want $want_n, got $got_n: $(head -c 600 "$TMP/n.out")$(head -c 300 "$TMP/n.err")"
    fi
}

# checks NAME KEYFILE TOKEN <<EOF  lines "SCOPE RESOURCE yes|no"
# checkPermission in C and in Node must both give the expected answer.
checks() {
    name=$1 key=$2 tok=$3
    while read -r scope res want; do
        [ -n "$scope" ] || continue
        c_run check "$key" "$tok" "$scope" "$res"
        got_c=$GOT
        n_run check "$key" "$tok" "$scope" "$res"
        got_n=$GOT
        word=allowed
        [ "$want" = no ] && word=denied
        desc="$name: check $scope $res: $word by C and Node"
        if [ "$got_c" = "$want" ] && [ "$got_n" = "$want" ]; then
            pass "$desc"
        else
            fail "$desc" "C: $got_c $(head -c 300 "$TMP/c.err")" \
                "Node: $got_n $(head -c 300 "$TMP/n.out")$(head -c 300 "$TMP/n.err")"
        fi
    done
}

# ---- Node -> C -----------------------------------------------------------
echo "interop: Node-minted tokens"
mkdir "$TMP/node"
if ! node "$SCRIPT" "$PKG" mint "$KEY" "$OTHER" "$TMP/node" </dev/null \
        >"$TMP/mint.log" 2>&1; then
    fail "Node mints its tokens" "$(tail -n 20 "$TMP/mint.log")"
    echo "$PASS passed, $FAIL failed"
    exit 1
fi
N_ROOT=$(cat "$TMP/node/node_root.tok")
N_CHILD=$(cat "$TMP/node/node_child.tok")
N_GRAND=$(cat "$TMP/node/node_grandchild.tok")

verify_both "node root (constraints, identity/federation/capabilities with tricky strings) verifies in C and Node" \
    "$KEY" "$N_ROOT" yes yes
verify_both "node delegated child verifies in C and Node" "$KEY" "$N_CHILD" yes yes
verify_both "node grandchild (no identity, not delegatable) verifies in C and Node" \
    "$KEY" "$N_GRAND" yes yes
c_run verify "$KEY" "$N_ROOT"
if [ "$GOT" = yes ] &&
    node -e 'const fs = require("fs");
const raw = Buffer.from(process.argv[1], "base64url").toString("utf-8");
process.exit(fs.readFileSync(process.argv[2], "utf-8") === raw + "\n" ? 0 : 1);' \
        "$N_ROOT" "$TMP/c.out"; then
    pass "node root: C reads back exactly the signed JSON bytes"
else
    fail "node root: C reads back exactly the signed JSON bytes" "$(head -c 300 "$TMP/c.err")"
fi

checks node_root "$KEY" "$N_ROOT" <<'EOF'
github:repo:read myorg/widgets yes
github:repo:write other/repo-7 yes
github:repo:read other/repo-77 no
github:repo:read x"y\z/é yes
aws:s3:read bucket-logs yes
aws:s3:read logs no
slack:chat:write C0123 no
gcp:storage:read anything no
EOF
checks node_child "$KEY" "$N_CHILD" <<'EOF'
github:repo:read myorg/api yes
github:repo:read myorg/web no
github:repo:write myorg/api no
aws:s3:read bucket-1 yes
EOF
checks node_grandchild "$KEY" "$N_GRAND" <<'EOF'
github:repo:read myorg/api yes
aws:s3:read bucket-1 no
EOF

# DESIGN §2: every token expires; Node mints one without expiresAt when no
# TTL is given. Refusing it is intended.
verify_both "node root without expiresAt: Node accepts, C refuses (DESIGN §2)" \
    "$KEY" "$(cat "$TMP/node/node_noexp.tok")" no yes

# C delegates from the Node root: the child verifies in Node.
c_run delegate "$KEY" "$N_ROOT" "c-child-of-node" "github:repo:read" \
    '{"github:repo:read":{"resources":["myorg/api-*"],"maxUses":2}}' --ttl-minutes 30
if [ "$GOT" = yes ]; then
    C_OF_N=$(cat "$TMP/c.out")
    pass "C delegates from the node root"
    # The node root has no tokenId: no ancestors, but its agent is named.
    c_show "$C_OF_N"
    desc="C child of the node root: no ancestors, ancestorAgents names the node root's agent"
    case $SHOWN in
    *'"ancestors"'*) fail "$desc" "$SHOWN" ;;
    *'"tokenId":"'*'","ancestorAgents":["node-root '*'"],"keyVersion":1,"signature":"'*)
        pass "$desc" ;;
    *) fail "$desc" "$SHOWN" ;;
    esac
    verify_both "C child of the node root verifies in C and Node" "$KEY" "$C_OF_N" yes yes
    checks c_child_of_node "$KEY" "$C_OF_N" <<'EOF'
github:repo:read myorg/api-v2 yes
github:repo:read myorg/web no
EOF
else
    fail "C delegates from the node root" "$GOT: $(cat "$TMP/c.err")"
fi

# C delegates from the node child: its parentId (the node root's agent)
# and its agentId both go into ancestorAgents, tricky strings included.
c_run delegate "$KEY" "$N_CHILD" "c-child-of-node-child" "github:repo:read" --ttl-minutes 10
if [ "$GOT" = yes ]; then
    C_OF_NC=$(cat "$TMP/c.out")
    c_show "$C_OF_NC"
    desc="C child of the node child: ancestorAgents names the node root and the node child"
    case $SHOWN in
    *'"ancestors"'*) fail "$desc" "$SHOWN" ;;
    *'"ancestorAgents":["node-root '*'","node-child '*'"],"keyVersion":1,"signature":"'*)
        pass "$desc" ;;
    *) fail "$desc" "$SHOWN" ;;
    esac
    verify_both "C child of the node child (ancestorAgents with tricky strings) verifies in C and Node" \
        "$KEY" "$C_OF_NC" yes yes
else
    fail "C delegates from the node child" "$GOT: $(cat "$TMP/c.err")"
fi

# ---- C -> Node -----------------------------------------------------------
echo "interop: C-minted tokens"
TRICKY='q\"b\\s/é–€😀\u2028\u007f\u001f\n\t\b\f\r\u0001'
CONS='{"github:repo:*":{"resources":["myorg/*","other/repo-?","x\"y\\z/é"],"maxUses":10},'
CONS=$CONS'"aws:s3:read":{"resources":["bucket-*"],"notBefore":"2020-01-01T00:00:00+02:00","notAfter":"2099-12-31T23:59:59Z"},'
CONS=$CONS'"slack:chat:write":{"notBefore":"2099-01-01T00:00:00Z"}}'
IDENT='{"systemId":"sys-'$TRICKY'","principalId":"ユーザー/π","principalType":"human",'
IDENT=$IDENT'"externalAuth":{"issuer":"https://idp.example/","subject":"sub '$TRICKY'",'
IDENT=$IDENT'"authenticatedAt":"2026-01-01T00:00:00.000Z","claims":{"z":1,"10":"ten","2":"two",'
IDENT=$IDENT'"iat":1700000000,"ratio":0.25,"neg":-3,"nested":{"arr":[1,"a",null,true,{"k":"v","0":0}]}}}}'
FED='{"crossSystemAllowed":true,"allowedSystems":["sys/a","sys-'$TRICKY'"],"originSystem":"origin '$TRICKY'","hopCount":0,"maxHops":3,"allowFurtherFederation":true}'
CAPS='{"canSpawn":true,"canMessage":false,"visibility":"scope","custom":{"flag '$TRICKY'":true,"x/y":true,"7":false}}'

c_run mint-root "$KEY" 'c-root "q" \ / é–€😀' 'github:repo:*,aws:s3:read,slack:chat:write' \
    "$CONS" --identity "$IDENT" --federation "$FED" --caps "$CAPS"
if [ "$GOT" != yes ]; then
    fail "C mints a root token" "$GOT: $(cat "$TMP/c.err")"
    echo "$PASS passed, $FAIL failed"
    exit 1
fi
C_ROOT=$(cat "$TMP/c.out")
pass "C mints a root token (constraints, identity/federation/capabilities with tricky strings)"
verify_both "C root verifies in C and Node (bytes exactly JSON.stringify's)" "$KEY" "$C_ROOT" yes yes
checks c_root "$KEY" "$C_ROOT" <<'EOF'
github:repo:read myorg/widgets yes
github:repo:write other/repo-7 yes
github:repo:read other/repo-77 no
github:repo:read x"y\z/é yes
aws:s3:read bucket-logs yes
aws:s3:read logs no
slack:chat:write C0123 no
gcp:storage:read anything no
EOF

c_run delegate "$KEY" "$C_ROOT" 'c-child é/"\' 'github:repo:read,aws:s3:read' \
    '{"github:repo:read":{"resources":["myorg/api*"],"maxUses":3}}' \
    --ttl-minutes 30 --federation '{"maxHops":1}' \
    --caps '{"canSpawn":false,"custom":{"x/y":false,"2":false}}'
if [ "$GOT" = yes ]; then
    C_CHILD=$(cat "$TMP/c.out")
    pass "C delegates a child from the C root"
else
    C_CHILD=
    fail "C delegates a child from the C root" "$GOT: $(cat "$TMP/c.err")"
fi
if [ -n "$C_CHILD" ]; then
    token_id "$C_ROOT"
    ROOT_ID=$TID
    c_show "$C_CHILD"
    CHILD_JSON=$SHOWN
    desc="C child carries tokenId, ancestors, ancestorAgents, keyVersion and two budgets"
    case $CHILD_JSON in
    *'"tokenId":"'*'"ancestors":["'"$ROOT_ID"'"],"ancestorAgents":["c-root \"q\" \\ / é–€😀"],"keyVersion":1,"signature":"'*)
        case $CHILD_JSON in
        *'"budgets":[{"id":"'"$ROOT_ID"':github:repo:*","maxUses":10}]'*'"budgets":[{"id":"'*':github:repo:read","maxUses":3}]'* |\
        *'"budgets":[{"id":"'*':github:repo:read","maxUses":3}]'*'"budgets":[{"id":"'"$ROOT_ID"':github:repo:*","maxUses":10}]'*)
            pass "$desc" ;;
        *) fail "$desc" "$CHILD_JSON" ;;
        esac ;;
    *) fail "$desc" "$CHILD_JSON" ;;
    esac
    verify_both "C child verifies in C and Node" "$KEY" "$C_CHILD" yes yes
    checks c_child "$KEY" "$C_CHILD" <<'EOF'
github:repo:read myorg/api-v2 yes
github:repo:read myorg/web no
github:repo:write myorg/api no
aws:s3:read bucket-9 yes
EOF

    c_run delegate "$KEY" "$C_CHILD" - 'github:repo:read' \
        --no-inherit-identity --no-delegate
    if [ "$GOT" = yes ]; then
        C_GRAND=$(cat "$TMP/c.out")
        token_id "$C_CHILD"
        CHILD_ID=$TID
        c_show "$C_GRAND"
        GRAND_JSON=$SHOWN
        case $GRAND_JSON in
        *'"agentId":"agent-'*'"delegatable":false'*'"ancestors":["'"$ROOT_ID"'","'"$CHILD_ID"'"],"ancestorAgents":["c-root '*'","c-child é/\"\\"],"keyVersion":1,"signature"'*)
            pass "C grandchild (random agentId, no identity, not delegatable) has both ancestors and their agents" ;;
        *) fail "C grandchild (random agentId, no identity, not delegatable) has both ancestors and their agents" \
                "$GRAND_JSON" ;;
        esac
        verify_both "C grandchild verifies in C and Node" "$KEY" "$C_GRAND" yes yes
        checks c_grandchild "$KEY" "$C_GRAND" <<'EOF'
github:repo:read myorg/api yes
github:repo:read myorg/web no
aws:s3:read bucket-9 no
EOF
    else
        fail "C delegates a grandchild" "$GOT: $(cat "$TMP/c.err")"
    fi
fi

# Node delegates from the C root: the child verifies in C.
n_run delegate "$KEY" "$C_ROOT"
if [ "$GOT" = yes ]; then
    N_OF_C=$(sed -n 's/^{"token":"\([A-Za-z0-9_-]*\)"}$/\1/p' "$TMP/n.out")
    pass "Node delegates from the C root"
    verify_both "node child of the C root verifies in C and Node" "$KEY" "$N_OF_C" yes yes
    checks node_child_of_c "$KEY" "$N_OF_C" <<'EOF'
github:repo:read myorg/widgets yes
github:repo:read other/repo-1 no
github:repo:write myorg/widgets no
EOF
else
    fail "Node delegates from the C root" "$(cat "$TMP/n.out" "$TMP/n.err")"
fi
# ... and from the C child, which carries ancestorAgents (Node does not
# carry it on: its child names the C child in parentId only).
if [ -n "$C_CHILD" ]; then
    n_run delegate "$KEY" "$C_CHILD"
    if [ "$GOT" = yes ]; then
        N_OF_CC=$(sed -n 's/^{"token":"\([A-Za-z0-9_-]*\)"}$/\1/p' "$TMP/n.out")
        pass "Node delegates from the C child"
        verify_both "node child of the C child verifies in C and Node" "$KEY" "$N_OF_CC" yes yes
    else
        fail "Node delegates from the C child" "$(cat "$TMP/n.out" "$TMP/n.err")"
    fi
fi

# Identity numbers that JSON.stringify would rewrite (1.0 -> 1) would make a
# token Node cannot verify: C refuses them as input.
c_run mint-root "$KEY" c-num 'github:repo:read' --identity '{"systemId":"s","n":1.0}'
if [ "$GOT" = no ]; then
    pass "C refuses identity input that JSON.stringify would rewrite (1.0)"
else
    fail "C refuses identity input that JSON.stringify would rewrite (1.0)" "$GOT"
fi

# ---- refusals ------------------------------------------------------------
echo "interop: tampered tokens and other secrets"
n_run tamper "$N_ROOT"
T_NODE=$(sed -n 's/^{"token":"\([A-Za-z0-9_-]*\)"}$/\1/p' "$TMP/n.out")
verify_both "tampered node root is refused by C and Node" "$KEY" "$T_NODE" no no
n_run tamper "$C_ROOT"
T_C=$(sed -n 's/^{"token":"\([A-Za-z0-9_-]*\)"}$/\1/p' "$TMP/n.out")
verify_both "tampered C root is refused by C and Node" "$KEY" "$T_C" no no
checks tampered_c_root "$KEY" "$T_C" <<'EOF'
github:repo:read myorg/widgets no
EOF

N_OTHER=$(cat "$TMP/node/node_otherkey.tok")
verify_both "node root signed with another secret is refused by C and Node" \
    "$KEY" "$N_OTHER" no no
verify_both "... and verifies in both with that secret" "$OTHER" "$N_OTHER" yes yes
c_run mint-root "$OTHER" c-other 'github:repo:*' "$CONS" --identity "$IDENT"
if [ "$GOT" = yes ]; then
    C_OTHER=$(cat "$TMP/c.out")
    verify_both "C root signed with another secret is refused by C and Node" \
        "$KEY" "$C_OTHER" no no
    verify_both "... and verifies in both with that secret" "$OTHER" "$C_OTHER" yes yes
else
    fail "C mints with another secret" "$GOT: $(cat "$TMP/c.err")"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
