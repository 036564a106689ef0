# demo-lib.sh - what scripts/demo.sh and scripts/demo-cluster.sh share,
# sourced after `set -u` and bin=$1: $bin made absolute, a temporary
# directory to work in (removed at exit, with every pid in $pids killed),
# and the narration: step, ok, fail (which shows the logs' tails).
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
dir=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
cd "$dir" || exit 1
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'DEMO FAILED: %s\n' "$*"; for f in *.log; do echo "--- $f"; tail -5 "$f"; done; exit 1; }
ok() { printf '   ok: %s\n' "$*"; }
