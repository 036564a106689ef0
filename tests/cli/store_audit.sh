#!/bin/sh
# CLI tests of the audit log of a local home: audit tail [-n N] (text and
# --json), audit verify on an intact log, and on logs tampered with the
# sqlite3 command-line tool (a row edited, deleted, inserted): exit 1
# naming the first bad row. Admin commands (rotate-key) write the rows.
# Usage: tests/cli/store_audit.sh BUILD/agent-iam
set -u
bin=$1
. "$(dirname "$0")/lib.sh"

# expect NAME WANT_EXIT STDERR_PATTERN -- command...
expect() {
    name=$1 want=$2 pat=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        no "$name (exit $got, want $want; stderr: $(head -c 300 "$tmp/err"))"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/err"; then
        no "$name (stderr lacks \"$pat\": $(head -c 300 "$tmp/err"))"
    else
        ok "$name"
    fi
}

# has NAME PATTERN: the last command's stdout contains PATTERN.
has() {
    grep -q -- "$2" "$tmp/out" && ok "$1" || no "$1 (stdout lacks \"$2\": $(head -c 300 "$tmp/out"))"
}

# A home with four audit rows: each rotate-key writes one.
mkhome() {
    for _ in 1 2 3 4; do
        "$bin" --home "$1" rotate-key >/dev/null 2>"$tmp/mk.err" ||
            no "rotate-key in $1: $(cat "$tmp/mk.err")"
    done
}

if ! command -v sqlite3 >/dev/null 2>&1; then
    no "the sqlite3 tool is missing (scripts/install-deps.sh installs it)"
    echo "$pass passed, $fail failed"
    exit 1
fi

h=$tmp/home
mkhome "$h"

# ---- tail ---------------------------------------------------------------
expect "audit tail" 0 "" -- "$bin" --home "$h" audit tail
[ "$(grep -c 'rotate-key' "$tmp/out")" = 4 ] && ok "tail shows the four rows" \
    || no "tail shows the four rows: $(cat "$tmp/out")"
has "tail has a header" "^TIME *ACTOR *ACTION *TOKEN *AGENT *DECISION *REASON$"
has "tail row: time, actor, action, token, agent, decision, reason" \
    "^[0-9-]*T[0-9:.]*Z  *cli  *rotate-key  *-  *-  *ok  *new signing key version 4$"
# columns stay in line when a row names a token and a long agent id
a=$tmp/aligned
"$bin" --home "$a" token create-root --agent-id an-orchestrator-with-a-long-name \
    --scopes a:b:c >"$tmp/a.tok" 2>/dev/null || no "aligned: create-root"
"$bin" --home "$a" token delegate --parent "@$tmp/a.tok" --agent-id kid --scopes a:b:c \
    >/dev/null 2>&1 || no "aligned: delegate"
"$bin" --home "$a" token check "@$tmp/a.tok" x:y:z r >/dev/null 2>&1
"$bin" --home "$a" revoke --agent kid >/dev/null 2>&1 || no "aligned: revoke"
expect "audit tail with tokens and agents" 0 "" -- "$bin" --home "$a" audit tail
python3 - "$tmp/out" <<'PY' && ok "every column starts under its header" ||
import sys
lines = open(sys.argv[1]).read().splitlines()
head, rows = lines[0], lines[1:]
starts = [i for i in range(len(head)) if head[i] != " " and (i == 0 or head[i - 1] == " ")]
# the home's first key (made by its first root token) is a row too
assert len(starts) == 7 and len(rows) == 5, (head, rows)
assert " key-create " in rows[0], rows[0]
for r in rows:
    for s in starts:
        assert (s == 0 or r[s - 1] == " ") and r[s] != " ", (s, r)
for r in rows[1:]:
    assert "an-orchestrator-with-a-long-name" in r or "kid" in r, r
PY
    no "every column starts under its header ($(cat "$tmp/out"))"
expect "audit tail -n 2" 0 "" -- "$bin" --home "$h" audit tail -n 2
[ "$(grep -c 'rotate-key' "$tmp/out")" = 2 ] && ok "-n 2 shows two rows" || no "-n 2 shows two rows"
has "-n 2 shows the last rows" "version 3"
grep -q "version 2" "$tmp/out" && no "-n 2 left out the older rows" || ok "-n 2 left out the older rows"
expect "audit tail -n1 (attached)" 0 "" -- "$bin" --home "$h" audit tail -n1
[ "$(grep -c 'rotate-key' "$tmp/out")" = 1 ] && ok "-n1 shows one row" || no "-n1 shows one row"
expect "audit tail --json" 0 "" -- "$bin" --home "$h" audit tail --json
[ "$(grep -c '"action": "rotate-key"' "$tmp/out")" = 4 ] && ok "--json has four objects" \
    || no "--json has four objects: $(cat "$tmp/out")"
has "--json is an array" "^\["
has "--json row id" '"id": 1,'
has "--json actor" '"actor": "cli"'
has "--json decision" '"decision": "ok"'
has "--json reason" '"reason": "new signing key version 4"'
has "--json absent token id is null" '"tokenId": null'
has "--json time" '"at": "[0-9-]*T[0-9:.]*Z"'
expect "--json before the command, -n 1" 0 "" -- "$bin" --json --home "$h" audit tail -n 1
has "-n 1 --json is the last row" '"id": 4,'
[ "$(grep -c '"id"' "$tmp/out")" = 1 ] && ok "-n 1 --json has one object" || no "-n 1 --json has one object"
expect "tail -n 0 is a usage error" 2 "usage" -- "$bin" --home "$h" audit tail -n 0
expect "tail -n 100001 is a usage error" 2 "1 to 100000" -- "$bin" --home "$h" audit tail -n 100001
expect "tail -n 100000 is fine" 0 "" -- "$bin" --home "$h" audit tail -n 100000
expect "tail -n abc is a usage error" 2 "usage" -- "$bin" --home "$h" audit tail -n abc
expect "tail -n -3 is a usage error" 2 "usage" -- "$bin" --home "$h" audit tail -n -3
expect "tail -n 2.5 is a usage error" 2 "usage" -- "$bin" --home "$h" audit tail -n 2.5
expect "tail -n without a number" 2 "usage" -- "$bin" --home "$h" audit tail -n
expect "tail with an unknown option" 2 "unknown option" -- "$bin" --home "$h" audit tail --follow
expect "tail with an argument" 2 "usage" -- "$bin" --home "$h" audit tail 5
expect "audit without a command" 2 "usage" -- "$bin" --home "$h" audit
expect "audit with an unknown command" 2 "unknown audit command" -- "$bin" --home "$h" audit frob
expect "tail of an empty log" 0 "" -- "$bin" --home "$tmp/empty" audit tail --json
has "empty log: empty array" '^\[\]$'

# ---- verify -------------------------------------------------------------
expect "audit verify on an intact log" 0 "" -- "$bin" --home "$h" audit verify
has "verify counts the rows" "intact: 4 rows"
expect "audit verify --json" 0 "" -- "$bin" --home "$h" audit verify --json
has "verify --json intact" '"intact": true'
has "verify --json rows" '"rows": 4'
expect "verify with an argument" 2 "usage" -- "$bin" --home "$h" audit verify now
expect "verify of an empty log" 0 "" -- "$bin" --home "$tmp/empty" audit verify
has "empty log is intact" "intact: 0 rows"

# tamper NAME SQL ROW [WORDS]: a fresh home, SQL run by sqlite3, then
# verify must exit 1 naming ROW (and WORDS).
tamper() {
    name=$1 sql=$2 row=$3 words=${4:-}
    t=$tmp/$(echo "$name" | tr -c 'a-z0-9\n' '_')
    mkhome "$t"
    if ! sqlite3 "$t/agent-iam.db" "$sql" 2>"$tmp/sq.err"; then
        no "$name: sqlite3 failed: $(cat "$tmp/sq.err")"
        return
    fi
    expect "$name: verify exits 1" 1 "row $row\\b" -- "$bin" --home "$t" audit verify
    [ -z "$words" ] || grep -q -- "$words" "$tmp/err" && ok "$name: says why" \
        || no "$name: stderr lacks \"$words\": $(cat "$tmp/err")"
    expect "$name: verify --json exits 1" 1 "" -- "$bin" --home "$t" --json audit verify
    has "$name: --json names the row" "\"badRow\": $row\\b"
    has "$name: --json not intact" '"intact": false'
}

tamper "edited row" "UPDATE audit SET reason='x' WHERE id=2" 2 "altered"
tamper "edited time" "UPDATE audit SET at = at + 1 WHERE id=3" 3 "altered"
tamper "deleted row" "DELETE FROM audit WHERE id=2" 3 "row 2 is missing"
tamper "deleted first row" "DELETE FROM audit WHERE id=1" 2 "row 1 is missing"
tamper "deleted last row" "DELETE FROM audit WHERE id=4" 4 "deleted"
tamper "inserted row at the end" \
    "INSERT INTO audit (id, at, actor, action, decision, reason, prev, mac)
     VALUES (5, 0, 'cli', 'rotate-key', 'ok', 'forged',
             (SELECT mac FROM audit WHERE id=4), randomblob(32))" 5 "inserted"
tamper "inserted row in the middle" \
    "UPDATE audit SET id = id + 100 WHERE id >= 2;
     INSERT INTO audit (id, at, actor, action, decision, reason, prev, mac)
     VALUES (2, 0, 'cli', 'rotate-key', 'ok', 'forged',
             (SELECT mac FROM audit WHERE id=1), randomblob(32))" 2 "inserted"

# A tampered log still shows its rows, and admin commands still work
# (they append after the damage, which stays reported).
t=$tmp/edited_row
expect "tail of a tampered log" 0 "" -- "$bin" --home "$t" audit tail
has "tail shows the edited value" " x$"
expect "rotate-key on a tampered log" 0 "" -- "$bin" --home "$t" rotate-key
expect "verify still names the edited row" 1 "row 2\\b" -- "$bin" --home "$t" audit verify

finish
