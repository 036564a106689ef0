#!/bin/sh
# run.sh - run libFuzzer targets one after the other (make fuzz).
#   sh fuzz/run.sh OUT SECONDS TARGET...
# OUT holds the binaries (OUT/fuzz_TARGET); each target fuzzes a working
# corpus OUT/corpus/TARGET seeded from fuzz/corpus/TARGET, with
# fuzz/TARGET.dict when there is one, for SECONDS; findings land in
# OUT/artifacts/TARGET/, the output in OUT/TARGET.log. Prints one line of
# figures per target; exits 1 when any target found something.
set -u

out=$1
secs=$2
shift 2
here=$(dirname "$0")
status=0

max_len() {
    case "$1" in
    token) echo 24000 ;;
    provider) echo 16384 ;;
    sts) echo 65600 ;; # past XML_MAX_LEN, so the limit is tried
    *) echo 65536 ;;   # SRV_BODY_MAX, and as much of a feed as is useful
    esac
}

printf '%-10s %8s %12s %8s %8s %8s  %s\n' target seconds executions exec/s cov ft result
for t in "$@"; do
    bin=$out/fuzz_$t
    corpus=$out/corpus/$t
    art=$out/artifacts/$t
    log=$out/$t.log
    tmp=$out/tmp/$t
    mkdir -p "$corpus" "$art" "$tmp"
    cp -n "$here/corpus/$t"/* "$corpus"/ 2>/dev/null
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    start=$(date +%s)
    # shellcheck disable=SC2086
    TMPDIR=$tmp "$bin" -max_total_time="$secs" -max_len="$(max_len "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$art/" $dict "$corpus" >"$log" 2>&1
    rc=$?
    end=$(date +%s)
    rm -rf "$tmp"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FOUND (exit $rc; see $log and $art)"
        status=1
    fi
    printf '%-10s %8s %12s %8s %8s %8s  %s\n' "$t" "$((end - start))" \
        "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit $status
