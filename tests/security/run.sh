#!/bin/sh
# The service under attack (DESIGN.md §8): each tests/security/*_test.py
# starts real `agent-iam serve` / `agent-iam follower` processes on
# 127.0.0.0/8 over TLS (certificates from tests/lib/tls_env.sh) and
# reproduces one kind of abuse, with bounded loops and timeouts. Each
# driver is `driver.py BIN TMPDIR`, prints "ok"/"FAIL" lines and exits 1
# on a failure; every process it starts is killed on exit.
# Usage: tests/security/run.sh BUILD/agent-iam [NAME...]
#   NAME: run only the drivers whose file name contains it.
name=security-test
usage_path=tests/security/run.sh
here=$(cd "$(dirname "$0")" && pwd)
bin_arg=$1
shift 2>/dev/null
only="$*"
set -- "$bin_arg"
. "$here/../lib/tls_env.sh"

export PYTHONPATH="$here/../lib${PYTHONPATH:+:$PYTHONPATH}"
rc=0
for t in "$here"/*_test.py; do
    base=$(basename "$t" .py)
    if [ -n "$only" ]; then
        hit=0
        for o in $only; do
            case $base in *"$o"*) hit=1 ;; esac
        done
        [ $hit -eq 1 ] || continue
    fi
    mkdir -p "$tmp/$base"
    cp "$tmp/ca.pem" "$tmp/server.pem" "$tmp/server.key" "$tmp/$base/"
    echo "== $base"
    if ! python3 "$t" "$bin" "$tmp/$base"; then
        echo "FAIL $base"
        rc=1
        for f in "$tmp/$base"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f") (last 30 lines)"
            tail -n 30 "$f"
        done
    fi
    # the driver's processes, if it died without killing them
    if [ -f "$tmp/$base/pids" ]; then
        cat "$tmp/$base/pids" >>"$tmp/pids"
    fi
done
exit $rc
