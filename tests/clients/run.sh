#!/bin/sh
# The client suites of DESIGN §10 against a real leader and follower on
# 127.0.0.1 over TLS: tests/clients/fixture.py starts them and runs the
# suites below at once, from the top of the tree (see it for the
# environment a suite gets). Every server is killed on exit.
# Usage: tests/clients/run.sh BUILD/agent-iam
name=clients-test
usage_path=tests/clients/run.sh
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/../lib/tls_env.sh"

# One line per suite (a shell command), e.g. add 'python3 -m unittest ...';
# "alone:COMMAND" runs before the others, by itself (fixture.py).
suites_file=$tmp/suites
: >"$suites_file"
add() { printf '%s\n' "$1" >>"$suites_file"; }
# alone: it rotates the signing key, which the others must not see midway
add 'alone:/usr/bin/python3 tests/openapi/openapi_test.py'
# clients/python: the quick tests, and beside them the 70 s refresh test
add 'python3 -m unittest discover -s clients/python/tests -t clients/python -v'
add 'python3 -m unittest discover -s clients/python/tests -t clients/python -p "slow_*.py" -v'
# clients/node: node --test, its files at once
add 'node --test clients/node/test/*.test.mjs'

touch "$tmp/pids"
cd "$top" || exit 1
# shellcheck disable=SC2046
set --
while IFS= read -r s; do set -- "$@" "$s"; done <"$suites_file"
if [ $# -eq 0 ]; then
    echo "$name: no suite to run" >&2
    exit 1
fi
PYTHONPATH="$here/../lib${PYTHONPATH:+:$PYTHONPATH}" \
    python3 "$here/fixture.py" "$bin" "$tmp" "$@"
