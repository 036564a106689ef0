#!/bin/sh
# CLI tests of `agent-iam backup FILE`: a copy of a home with keys and
# revocations is 0600, passes integrity_check and opens as a home (with a
# copy of master.key) showing the same key version and revocations; an
# existing file is refused without --force; backups taken while
# `agent-iam serve` runs on the home and handles revokes in a loop are
# consistent; a bad path fails (exit 1, one clear line), a bad flag is a
# usage error (exit 2), nothing is left behind on failure.
# Usage: tests/cli/backup.sh BUILD/agent-iam
set -u
free_port=$(cd "$(dirname "$0")/../lib" && pwd)/free_port.py
bin=$1
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac # the script works in $tmp
tmp=$(mktemp -d)
pid=
loop=
fpid=
cleanup() {
    [ -n "$loop" ] && kill "$loop" 2>/dev/null
    [ -n "$fpid" ] && kill "$fpid" 2>/dev/null
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
unset AGENT_IAM_LEADER_URL AGENT_IAM_AUTH_TOKEN AGENT_IAM_CA_CERT AGENT_IAM_HOME

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
has() { grep -q -- "$2" "$tmp/out" && ok "$1" || no "$1 (stdout lacks \"$2\": $(head -c 300 "$tmp/out"))"; }
# jget MEMBER [FILE]: a member of the JSON object in $tmp/out (or FILE)
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "${2:-$tmp/out}" "$1"; }
mode() { stat -c %a "$1"; }
# integrity FILE: PRAGMA integrity_check of a database file, with python's
# sqlite3 (the sqlite3 shell may be missing)
integrity() {
    python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$1" 2>&1
}
# restored DIR FILE: a home made of a backup and a copy of master.key
restored() {
    rm -rf "$1"
    mkdir -m 700 "$1" && cp "$2" "$1/agent-iam.db" && cp "$h/master.key" "$1/master.key" &&
        chmod 600 "$1/agent-iam.db" "$1/master.key"
}

h=$tmp/home
cd "$tmp" || exit 1
loc() { "$bin" --home "$h" "$@"; }
# tid PREFIX: a tokenId (22 base64url characters) that begins with PREFIX
tid() { printf '%s%s' "$1" AAAAAAAAAAAAAAAAAAAAAA | cut -c1-22; }

# ---- a home with keys and revocations ---------------------------------------
loc token create-root --agent-id bot --scopes github:repo:read >root.tok 2>/dev/null &&
    loc rotate-key --grace 1h >/dev/null && loc rotate-key >/dev/null &&
    loc token create-root --agent-id bad-agent --scopes github:repo:read >bad.tok 2>/dev/null &&
    loc revoke "$(tid tok-one)" --reason test >/dev/null &&
    loc revoke "$(tid tok-two)" >/dev/null &&
    loc revoke --agent bad-agent >/dev/null &&
    loc apikey add --name openai --provider openai --key sk-backup-test >/dev/null &&
    ok "a home with keys, revocations and an API key" ||
    no "a home with keys, revocations and an API key"
expect "status of the home" 0 "" -- loc --json status
cp "$tmp/out" orig.json

# ---- backup and what it wrote -----------------------------------------------
expect "backup FILE" 0 "" -- loc backup b1.db
has "it names the file" "^backup written: *$tmp/b1.db$"
has "it gives the size" "^size: *[0-9][0-9]* bytes (mode 0600)$"
has "it gives the changelog seq" "^changelog seq: *$(jget changelogSeq orig.json)$"
has "it says the copy is sealed under master.key" "sealed under $h/master.key"
[ "$(mode b1.db)" = 600 ] && ok "the backup is 0600" || no "the backup is 0600 ($(mode b1.db))"
[ "$(integrity b1.db)" = ok ] && ok "integrity_check of the backup" || no "integrity_check of the backup ($(integrity b1.db))"
ls b1.db?* >/dev/null 2>&1 && no "no journal or temporary file left ($(ls b1.db?*))" ||
    ok "no journal or temporary file left"
[ "$(head -c 15 b1.db)" = "SQLite format 3" ] && ok "it is an SQLite file" || no "it is an SQLite file"
grep -q sk-backup-test b1.db && no "the API key is in clear in the backup" || ok "the API key is sealed in the backup"

restored r1 b1.db
expect "status of a home holding the copy and master.key" 0 "" -- "$bin" --json status --home r1
for m in signingKeyVersion revocations changelogSeq schema; do
    [ "$(jget $m)" = "$(jget $m orig.json)" ] && ok "the copy has the same $m" ||
        no "the copy has the same $m ($(jget $m) vs $(jget $m orig.json))"
done
expect "the copy enforces the agent's revocation" 1 "revoked" -- "$bin" --home r1 token verify @bad.tok
"$bin" --home r1 token verify @root.tok >/dev/null 2>&1 && ok "a token of the home verifies with the copy" ||
    no "a token of the home verifies with the copy"
expect "the copy decrypts its API key" 0 "" -- "$bin" --home r1 apikey list
has "the API key is listed" "^openai "
mkdir -m 700 r2 && cp b1.db r2/agent-iam.db && head -c 32 /dev/urandom >r2/master.key && chmod 600 r2/master.key
expect "the copy with another master.key is refused" 1 "wrong master key" -- "$bin" --home r2 status

expect "backup --json" 0 "" -- loc --json backup b2.db
[ "$(jget path)" = "$tmp/b2.db" ] && ok "--json path" || no "--json path ($(cat "$tmp/out"))"
[ "$(jget bytes)" = "$(stat -c %s b2.db)" ] && ok "--json bytes" || no "--json bytes"
[ "$(jget changelogSeq)" = "$(jget changelogSeq orig.json)" ] && ok "--json changelogSeq" || no "--json changelogSeq"
[ "$(jget integrity)" = ok ] && [ "$(jget sealed)" = True ] && [ "$(jget masterKey)" = "$h/master.key" ] &&
    ok "--json says it is sealed under master.key" || no "--json says it is sealed under master.key"

# ---- overwriting --------------------------------------------------------------
loc revoke "$(tid tok-three)" >/dev/null
cp b1.db b1.before
expect "an existing file is refused" 1 "exists (--force replaces it)" -- loc backup b1.db
cmp -s b1.db b1.before && ok "the existing file is untouched" || no "the existing file is untouched"
expect "--force replaces it" 0 "" -- loc backup b1.db --force
[ "$(mode b1.db)" = 600 ] && ok "the replaced backup is 0600" || no "the replaced backup is 0600"
restored r1 b1.db
expect "status of the replaced copy" 0 "" -- "$bin" --json status --home r1
[ "$(jget revocations)" = $(($(jget revocations orig.json) + 1)) ] && ok "it has the new revocation" ||
    no "it has the new revocation"
chmod 644 b2.db
expect "--force over a 0644 file" 0 "" -- loc backup --force b2.db
[ "$(mode b2.db)" = 600 ] && ok "the result is 0600" || no "the result is 0600 ($(mode b2.db))"
mkdir adir
expect "a directory is refused, even with --force" 1 "not a regular file" -- loc backup adir --force
ln -s b2.db link.db
expect "a symlink is refused, even with --force" 1 "not a regular file" -- loc backup link.db --force
[ -L link.db ] && ok "the symlink is untouched" || no "the symlink is untouched"

# ---- failures -----------------------------------------------------------------
expect "a path in a missing directory" 1 "cannot write $tmp/none/b.db: .*No such file or directory" -- \
    loc backup "$tmp/none/b.db"
[ "$(wc -l <"$tmp/err")" -eq 1 ] && ok "its message is one line" || no "its message is one line"
mkdir -m 500 ro
if [ "$(id -u)" -ne 0 ]; then
    expect "a read-only directory" 1 "cannot create" -- loc backup ro/b.db
fi
expect "a file in the home is refused" 1 "is in the home" -- loc backup "$h/copy.db"
expect "--force cannot replace the live database" 1 "is in the home" -- loc backup "$h/agent-iam.db" --force
expect "an unknown flag is a usage error" 2 "unknown option --fast" -- loc backup b3.db --fast
expect "no file is a usage error" 2 "usage" -- loc backup
expect "two files are a usage error" 2 "usage" -- loc backup b3.db b4.db
[ ! -e b3.db ] && ok "nothing written on a usage error" || no "nothing written on a usage error"
expect "a missing home is not created" 1 "no-home" -- "$bin" --home "$tmp/no-home" backup b3.db
[ ! -e "$tmp/no-home" ] && [ ! -e b3.db ] && ok "no home and no file made" || no "no home and no file made"
ls ./*tmp* >/dev/null 2>&1 && no "no temporary files left ($(ls ./*tmp*))" || ok "no temporary files left"

# ---- while the leader runs and revokes ----------------------------------------
port=$(python3 "$free_port")
T=admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --home "$h" --host 127.0.0.1 --port "$port" --admin-token "$T" \
    --insecure-http --access-log off >server.log 2>&1 &
pid=$!
i=0
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        no "the leader starts (log: $(head -c 500 server.log))"
        echo "$pass passed, $fail failed"
        exit 1
    fi
    sleep 0.1
done
ok "the leader runs on the home"
before=$(loc --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["revocations"])')
# revokes through the leader, and on the home directly, as fast as they go
(
    n=0
    while :; do
        n=$((n + 1))
        "$bin" revoke "$(tid "loop-$n")" --reason loop --leader-url "http://127.0.0.1:$port" \
            --auth-token "$T" >/dev/null 2>&1
        loc revoke "$(tid "local-$n")" >/dev/null 2>&1
    done
) &
loop=$!
sleep 0.5
k=1
good=0
while [ $k -le 5 ]; do
    if loc --json backup "live$k.db" >"live$k.json" 2>"live$k.err" &&
        [ "$(integrity "live$k.db")" = ok ]; then
        good=$((good + 1))
    else
        no "backup $k under load: $(cat "live$k.err") $(integrity "live$k.db")"
    fi
    sleep 0.2
    k=$((k + 1))
done
[ $good -eq 5 ] && ok "5 backups under load, each passes integrity_check"
kill "$loop" 2>/dev/null
wait "$loop" 2>/dev/null
loop=
after=$(loc --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["revocations"])')
[ "$after" -gt "$before" ] && ok "the leader revoked meanwhile ($before -> $after)" ||
    no "the leader revoked meanwhile ($before -> $after)"
# Each copy is one moment: its revocation count and changelog seq agree
# with each other and grow from one backup to the next.
prev_seq=0
prev_rev=0
k=1
mono=true
while [ $k -le 5 ]; do
    if restored "rl$k" "live$k.db" && "$bin" --json status --home "rl$k" >"st$k.json" 2>"st$k.err"; then
        seq=$(jget changelogSeq "st$k.json")
        rev=$(jget revocations "st$k.json")
        [ "$seq" = "$(jget changelogSeq "live$k.json")" ] || { mono=false; no "copy $k: seq $seq, backup said $(jget changelogSeq "live$k.json")"; }
        [ "$seq" -ge "$prev_seq" ] && [ "$rev" -ge "$prev_rev" ] || mono=false
        # one revocation row per revocation change (all revokes are new ids)
        [ $((rev - before)) -le $((seq - $(jget changelogSeq orig.json))) ] || { mono=false; no "copy $k: $rev revocations for seq $seq"; }
        prev_seq=$seq
        prev_rev=$rev
    else
        mono=false
        no "copy $k opens as a home: $(cat "st$k.err")"
    fi
    k=$((k + 1))
done
$mono && ok "each live copy opens, its seq and revocations agree and grow"
[ "$prev_rev" -gt "$before" ] && ok "the last copy has revocations made under load" ||
    no "the last copy has revocations made under load ($prev_rev, before $before)"
kill "$pid" 2>/dev/null
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] && ok "the leader stops cleanly" || no "the leader stops cleanly (exit $rc)"

# ---- restore under a follower ---------------------------------------------------
# A leader restored from a backup goes back to the backup's seq and hands
# the later seqs out again; the copy carries no leader id, so the restored
# leader has a new one and a follower (even one that was away, and would
# otherwise ask for changes after a seq the leader reuses) reloads the
# snapshot.
leader_id() { python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key=\"leader_id\"").fetchone(); print(r[0] if r else "")' "$1"; }
[ -n "$(leader_id "$h/agent-iam.db")" ] && [ -z "$(leader_id live1.db)" ] &&
    ok "the backup has no leader id (the home has one)" || no "the backup has no leader id (the home has one)"
L=http://127.0.0.1:$port
FT=follower-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_leader() {
    "$bin" serve --home "$h" --host 127.0.0.1 --port "$port" --admin-token "$T" \
        --auth-token "$FT" --insecure-http --access-log off >>server.log 2>&1 &
    pid=$!
    i=0
    until curl -sf "$L/healthz" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.1
    done
}
fport=$(python3 "$free_port")
start_follower() {
    "$bin" follower --home "$tmp/fh" --host 127.0.0.1 --port "$fport" --insecure-http \
        --leader-url "$L" --auth-token "$FT" --follower-id fb --public-metrics \
        --access-log off >>follower.log 2>&1 &
    fpid=$!
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# in_step: the follower has applied the leader's last seq and holds as many
# revocations as the leader's home
in_step() {
    want=$(loc --json status | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["changelogSeq"], d["revocations"])')
    i=0
    while [ $i -lt 100 ]; do
        got=$(curl -s "http://127.0.0.1:$fport/v1/status" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["appliedSeq"], d["revocations"])' 2>/dev/null)
        [ "$got" = "$want" ] && return 0
        i=$((i + 1)); sleep 0.1
    done
    echo "follower at \"$got\", leader at \"$want\"" >&2
    return 1
}
rv() { "$bin" revoke "$(tid "$1")" --leader-url "$L" --auth-token "$T" >/dev/null; }
if start_leader; then
    start_follower
    rv r1 && rv r2
    in_step 2>in_step.err && ok "a follower follows the leader" || no "a follower follows the leader: $(cat in_step.err)"
    loc backup rb.db >/dev/null 2>&1 && ok "backup before the loss" || no "backup before the loss"
    rv r3 && rv r4 && rv r5 &&
        "$bin" unrevoke "$(tid r1)" --leader-url "$L" --auth-token "$T" >/dev/null
    in_step 2>in_step.err && ok "the follower has the changes after the backup" ||
        no "the follower has the changes after the backup: $(cat in_step.err)"
    stop "$fpid"; stop "$pid"; pid=
    rm -f "$h/agent-iam.db-wal" "$h/agent-iam.db-shm"
    cp rb.db "$h/agent-iam.db"
    if start_leader; then
        ok "the leader restarts on the restored home"
        # past the follower's seq: without a reload it would take only the
        # last of these, and keep r3..r5 revoked and r1 not
        rv s1 && rv s2 && rv s3 && rv s4 && rv s5
        : >follower.log
        start_follower
        in_step 2>in_step.err && ok "the follower away across the restore converges on the restored leader" ||
            no "the follower away across the restore converges on the restored leader: $(cat in_step.err)"
        grep -q "reloading the snapshot" follower.log && ok "it reloaded the snapshot" ||
            no "it reloaded the snapshot ($(cat follower.log))"
        stop "$fpid"; stop "$pid"; pid=
    else
        no "the leader restarts on the restored home ($(tail -3 server.log))"
    fi
else
    no "the leader starts again ($(tail -3 server.log))"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
