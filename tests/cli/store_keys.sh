#!/bin/sh
# CLI tests of a local home's keys: key list, rotate-key, key import and
# export (the Node package's raw token_secret), status, --home against
# AGENT_IAM_HOME, --json anywhere, and homes with unsafe permissions.
# Usage: tests/cli/store_keys.sh BUILD/agent-iam
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

h=$tmp/home
expect "key list on a new home" 0 "" -- "$bin" --home "$h" key list
grep -q "^1 *signing" "$tmp/out" && ok "version 1 signs" || no "version 1 signs"
[ "$(stat -c %a "$h")" = 700 ] && ok "home is 0700" || no "home is 0700"
[ "$(stat -c %a "$h/master.key")" = 600 ] && ok "master.key is 0600" || no "master.key is 0600"
[ "$(stat -c %a "$h/agent-iam.db")" = 600 ] && ok "agent-iam.db is 0600" || no "agent-iam.db is 0600"

expect "rotate-key" 0 "" -- "$bin" rotate-key --home "$h" --grace 2h
grep -q "signing key version 2" "$tmp/out" && ok "rotate-key prints the version" || no "rotate-key prints the version"
expect "key list --json after the command" 0 "" -- "$bin" key list --json --home "$h"
grep -q '"state": "verifying"' "$tmp/out" && grep -q '"verifyUntil"' "$tmp/out" \
    && ok "old key verifies until its grace ends" || no "old key verifies until its grace ends"
expect "rotate-key with a bad grace" 2 "duration" -- "$bin" --home "$h" rotate-key --grace soon
expect "rotate-key with an unknown option" 2 "unknown option" -- "$bin" --home "$h" rotate-key --gracefully
expect "status --json" 0 "" -- "$bin" --home "$h" --json status
grep -q '"signingKeyVersion": 2' "$tmp/out" && ok "status shows the signing version" || no "status shows the signing version"

# --grace 0 cuts off every token in circulation: it says so, and on a
# terminal it wants --force (tests/lib/pty_run.py gives the terminal)
g=$tmp/grace0
pty="python3 $(dirname "$0")/../lib/pty_run.py"
"$bin" --home "$g" token create-root --agent-id a --scopes a:b:c >"$tmp/g.tok" 2>/dev/null ||
    no "grace0 token"
"$bin" --home "$g" rotate-key --grace 1h >/dev/null 2>&1 || no "grace0 rotation"
$pty "$tmp/tty" "$bin" --home "$g" rotate-key --grace 0
rc=$?
[ "$rc" -eq 2 ] && grep -q "retires the 2 keys that verify now" "$tmp/tty" &&
    grep -q "give --force" "$tmp/tty" && ok "on a terminal --grace 0 says what it cuts off and wants --force" ||
    no "on a terminal --grace 0 wants --force (exit $rc: $(cat "$tmp/tty"))"
expect "nothing was rotated" 0 "" -- "$bin" --home "$g" --json status
grep -q '"signingKeyVersion": 2' "$tmp/out" && ok "still version 2" || no "still version 2 ($(cat "$tmp/out"))"
expect "the token still verifies" 0 "" -- "$bin" --home "$g" token verify "@$tmp/g.tok"
$pty "$tmp/tty" "$bin" --home "$g" rotate-key --grace 0 --force
rc=$?
[ "$rc" -eq 0 ] && grep -q "signing key version 3" "$tmp/tty" && grep -q "warning: --grace 0" "$tmp/tty" &&
    ok "--force on a terminal rotates, with the warning" || no "--force on a terminal (exit $rc: $(cat "$tmp/tty"))"
expect "the token no longer verifies" 1 "" -- "$bin" --home "$g" token verify "@$tmp/g.tok"
expect "a new home's first key: no warning" 0 "" -- "$bin" --home "$tmp/g2" rotate-key --grace 0
[ ! -s "$tmp/err" ] && ok "nothing on stderr" || no "nothing on stderr ($(cat "$tmp/err"))"
expect "without a terminal --grace 0 goes on, with the warning" 0 \
    "retires the 1 key that verifies now" -- "$bin" --home "$g" rotate-key --grace 0 </dev/null
grep -q "signing key version 4" "$tmp/out" && ok "version 4" || no "version 4 ($(cat "$tmp/out"))"

# import the Node package's token_secret into a fresh home, export it back
head -c 32 /dev/urandom >"$tmp/token_secret"
n=$tmp/node
expect "key import" 0 "" -- "$bin" --home "$n" key import --file "$tmp/token_secret"
expect "key export" 0 "" -- "$bin" --home "$n" key export --version 1
cmp -s "$tmp/out" "$tmp/token_secret" && ok "export gives the imported bytes" || no "export gives the imported bytes"
expect "export of a missing version" 1 "no signing key version 9" -- "$bin" --home "$n" key export --version 9
expect "export without --version" 2 "version" -- "$bin" --home "$n" key export
head -c 31 /dev/urandom >"$tmp/short"
expect "import of 31 bytes" 1 "exactly 32" -- "$bin" --home "$n" key import --file "$tmp/short"
head -c 33 /dev/urandom >"$tmp/long"
expect "import of 33 bytes" 1 "exactly 32" -- "$bin" --home "$n" key import --file "$tmp/long"
expect "import after a rotation needs --force" 1 "--force" -- "$bin" --home "$h" key import --file "$tmp/token_secret"
expect "import --force" 0 "" -- "$bin" --home "$h" key import --file "$tmp/token_secret" --force

# --home wins over AGENT_IAM_HOME; the variable alone works
expect "AGENT_IAM_HOME" 0 "" -- env AGENT_IAM_HOME="$tmp/envhome" "$bin" status
[ -f "$tmp/envhome/agent-iam.db" ] && ok "AGENT_IAM_HOME used" || no "AGENT_IAM_HOME used"
expect "--home beats AGENT_IAM_HOME" 0 "" -- env AGENT_IAM_HOME="$tmp/envhome" "$bin" --home "$tmp/flaghome" status
[ -f "$tmp/flaghome/agent-iam.db" ] && ok "--home used" || no "--home used"

# unsafe permissions are refused with the fix
chmod 755 "$h"
expect "home open to others" 1 "chmod 700" -- "$bin" --home "$h" status
chmod 700 "$h"
chmod 644 "$h/master.key"
expect "master.key readable by others" 1 "chmod 600" -- "$bin" --home "$h" status
chmod 600 "$h/master.key"
cp "$h/master.key" "$tmp/key.save"
head -c 32 /dev/urandom >"$h/master.key"
expect "wrong master key" 1 "wrong master key" -- "$bin" --home "$h" key list
cp "$tmp/key.save" "$h/master.key"
expect "right master key again" 0 "" -- "$bin" --home "$h" key list

finish
