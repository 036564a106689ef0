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

touch "$tmp/pids"
cd "$top" || exit 1
# One argument per suite (a shell command); "alone:COMMAND" runs before
# the others, by itself (fixture.py).
#  - the OpenAPI test alone: it rotates the signing key, which the others
#    must not see midway;
#  - clients/python: the quick tests, and beside them the 70 s refresh test;
#  - clients/node: node --test, its files at once.
set -- \
    'alone:/usr/bin/python3 tests/openapi/openapi_test.py' \
    'python3 -m unittest discover -s clients/python/tests -t clients/python -v' \
    'python3 -m unittest discover -s clients/python/tests -t clients/python -p "slow_*.py" -v' \
    'node --test clients/node/test/*.test.mjs'
PYTHONPATH="$here/../lib${PYTHONPATH:+:$PYTHONPATH}" \
    python3 "$here/fixture.py" "$bin" "$tmp" "$@"
