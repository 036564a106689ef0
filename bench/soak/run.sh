#!/bin/sh
# make soak: a leader and two followers on 127.0.0.1 over TLS under mixed
# agent traffic (check, whoami, delegate, refresh, API-key credentials,
# revocations) for 30 minutes, the resident set and open descriptors of
# each sampled every minute; a table and a verdict on the second half
# (does memory level off?). A benchmark, not a timed test: it takes the
# whole run. The work is done by bench/soak/driver.py (Python 3 standard
# library, the servers started with tests/lib/service.py); the CA, the
# certificate and the end of every process the driver started (listed in
# $tmp/pids), whatever happens, come from tests/lib/tls_env.sh.
#
# Exit 1 when a server does not start, dies, answers 5xx (other than 503)
# or fails a request outright, exits non-zero at SIGTERM, or grows over
# the second half (more than 1 MiB and 3 % of its RSS).
# Usage: sh bench/soak/run.sh BUILD/agent-iam [--minutes N] [--interval S]
#        [--rate R]   (N minutes, default 30; a sample every S seconds,
#        default 60; R requests a second in all, default as fast as the
#        driver goes)
name=soak
usage_path=bench/soak/run.sh
here=$(cd "$(dirname "$0")" && pwd)
bin_arg=${1:-}
shift 2>/dev/null
opts="$*"
set -- "$bin_arg"
. "$here/../../tests/lib/tls_env.sh"

DRIVER=""
# shellcheck disable=SC2317 # (called by the trap)
stop_driver() {
    if [ -n "$DRIVER" ]; then
        kill -TERM "$DRIVER" 2>/dev/null
        wait "$DRIVER" 2>/dev/null
    fi
}
trap 'stop_driver; cleanup' EXIT
trap 'exit 130' INT TERM HUP

echo "Soak: $(nproc) CPUs, $(uname -r), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1);" \
     "$(date -u '+%Y-%m-%d %H:%M UTC')"
export PYTHONPATH="$here/../../tests/lib${PYTHONPATH:+:$PYTHONPATH}"
# The driver runs in the background so that the INT/TERM trap runs at once.
# shellcheck disable=SC2086 # (the options are words without spaces)
python3 "$here/driver.py" "$bin" "$tmp" $opts &
DRIVER=$!
wait "$DRIVER"
status=$?
DRIVER=""
exit $status
