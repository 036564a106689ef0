# tests/cli/lib.sh - what the CLI test scripts share; sourced (. lib.sh)
# after bin is set. Gives $tmp (removed at exit), ok, no and finish.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
# finish: the tally, and the script's exit status
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
