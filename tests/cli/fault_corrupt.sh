#!/bin/sh
# Fault test (c): a damaged home from the CLI. A database that is random
# bytes, a text file, another program's SQLite database or a damaged one;
# a home, key file or database readable by others; a wrong or missing
# master key. Each: exit 1, one clear line on stderr naming the file, and
# the file left byte for byte as it was (nothing created in its place).
# Usage: tests/cli/fault_corrupt.sh BUILD/agent-iam
set -u
bin=$1
tmp=$(mktemp -d)
trap 'chmod -R u+rwX "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
h=$tmp/home
db=$h/agent-iam.db
key=$h/master.key
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }

# refused NAME PATTERN FILE -- command...: exit 1, one line matching
# PATTERN, FILE unchanged
refused() {
    name=$1 pat=$2 file=$3
    shift 4
    cp -p "$file" "$tmp/before" 2>/dev/null || : >"$tmp/before"
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$got" -ne 1 ]; then
        no "$name (exit $got, want 1; stderr: $(head -c 300 "$tmp/err"))"
    elif [ "$lines" -ne 1 ]; then
        no "$name ($lines lines on stderr: $(head -c 300 "$tmp/err"))"
    elif ! grep -q -- "$pat" "$tmp/err"; then
        no "$name (stderr lacks \"$pat\": $(cat "$tmp/err"))"
    elif [ -e "$file" ] && ! cmp -s "$file" "$tmp/before"; then
        no "$name (the file changed)"
    elif [ -s "$tmp/out" ]; then
        no "$name (printed on stdout: $(head -c 100 "$tmp/out"))"
    else
        ok "$name"
    fi
}

fresh_home() {
    rm -rf "$h"
    "$bin" --home "$h" revoke first-idAAAAAAAAAAAAAA >/dev/null 2>&1 || no "home created"
}

fresh_home
cp "$db" "$tmp/good.db"
cp "$key" "$tmp/good.key"

head -c 16384 /dev/urandom >"$db"
rm -f "$db-wal" "$db-shm"
refused "random bytes: revoke" "not an agent-iam database" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA
refused "random bytes: unrevoke" "$db" "$db" -- \
    "$bin" --home "$h" unrevoke first-idAAAAAAAAAAAAAA
refused "random bytes: status" "$db" "$db" -- "$bin" --home "$h" status
[ ! -e "$db-wal" ] && ok "random bytes: no WAL file made" || no "random bytes: a WAL file was made"

printf 'this is not a database\nsecond line\n' >"$db"
refused "text file" "not an agent-iam database" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA

rm -f "$db"
sqlite3 "$db" "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');"
chmod 600 "$db"
refused "another program's SQLite database" "not agent-iam's" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA
[ "$(sqlite3 "$db" "SELECT body FROM notes")" = mine ] \
    && ok "the foreign database still holds its row" || no "foreign database damaged"

# agent-iam's own database with its pages (after the 100-byte header)
# overwritten
cp "$tmp/good.db" "$tmp/damaged.db"
size=$(wc -c <"$tmp/good.db")
head -c $((size - 100)) /dev/urandom \
    | dd of="$tmp/damaged.db" bs=1 seek=100 conv=notrunc 2>/dev/null
cp "$tmp/damaged.db" "$db"
rm -f "$db-wal" "$db-shm"
refused "damaged agent-iam database" "$db" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA

# modes
fresh_home
chmod 755 "$h"
refused "home readable by others" "chmod 700 $h" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA
chmod 750 "$h"
refused "home readable by group" "chmod 700 $h" "$db" -- \
    "$bin" --home "$h" status
chmod 700 "$h"
chmod 644 "$key"
refused "master.key readable by others" "chmod 600 $key" "$key" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA
chmod 640 "$key"
refused "master.key readable by group" "chmod 600 $key" "$key" -- \
    "$bin" --home "$h" unrevoke first-idAAAAAAAAAAAAAA
chmod 600 "$key"
chmod 644 "$db"
refused "database readable by others" "chmod 600 $db" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA
chmod 600 "$db"
"$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA >/dev/null 2>&1 && ok "fixed modes: works again" \
    || no "fixed modes: still refused"

# keys
fresh_home
cp "$key" "$tmp/good.key"
head -c 32 /dev/urandom >"$key"
refused "wrong master key" "wrong master key" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA
n=$(sqlite3 "$db" "SELECT count(*) FROM revocations")
[ "$n" = 1 ] && ok "wrong master key: nothing written" || no "wrong master key: $n rows"
head -c 31 /dev/urandom >"$key"
refused "short master key" "32 bytes" "$db" -- "$bin" --home "$h" status
rm -f "$key"
refused "missing master key" "master.key is missing" "$db" -- \
    "$bin" --home "$h" revoke some-idAAAAAAAAAAAAAAA
[ ! -e "$key" ] && ok "missing master key: none made" || no "missing master key: a new key was made"
cp -p "$tmp/good.key" "$key"
chmod 600 "$key"
"$bin" --home "$h" unrevoke first-idAAAAAAAAAAAAAA >/dev/null 2>&1 && ok "right key: works again" \
    || no "right key: still refused"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
