#!/bin/sh
# tests/lint/run.sh - the include checker (scripts/lint-layers.py) on two
# fixture trees: good/ passes silently; bad/ fails with one line per wrong
# include (bad.expected); with --allow, an allowed include is quiet and an
# entry that matches nothing fails (bad-allow.expected). Run by `make lint`.
cd "$(dirname "$0")" || exit 1
lint=../../scripts/lint-layers.py
fail=0
t() { # NAME WANT_RC EXPECTED_FILE ARGS...
    name=$1 want=$2 exp=$3; shift 3
    out=$(python3 "$lint" "$@"); rc=$?
    if [ "$rc" -ne "$want" ] || [ "$out" != "$(cat "$exp")" ]; then
        echo "tests/lint: $name: exit $rc (want $want), output:"; echo "$out"
        fail=1
    fi
}
t good 0 /dev/null good
t bad 1 bad.expected bad
t allow 1 bad-allow.expected bad --allow src/leader/l.c:server/tls.h --allow src/core/a.c:core/gone.h
[ "$fail" -eq 0 ] && echo "tests/lint: 3 passed"
exit "$fail"
