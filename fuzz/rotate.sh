#!/usr/bin/env bash
# Runs fuzz targets one after the other for SECONDS each, niced, and logs
# the figures of each run (wall time, executions, coverage, crashes) to
# work/figures.tsv. New inputs go to work/<target>/ and crashes to
# artifacts/<target>/; merge them into corpus/ afterwards (README.md).
#
#     ./rotate.sh SECONDS [TARGET...]      # default: every target
#
# Build first: cargo fuzz build -s none --features libfuzzer (from the
# repository root).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: rotate.sh SECONDS [TARGET...]}
shift
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(h1_server tls_records line_decoder string_decoders endpoint_string
        http_range http_cookie http_conditional http_query)
fi
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p work/logs
[ -f work/figures.tsv ] ||
    printf 'target\tstart\tseconds\texecs\tcov\tft\tcorpus\tcrashes\n' >work/figures.tsv
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "artifacts/$t"
    case $t in h1_server | tls_records) max_len=8192 ;; *) max_len=4096 ;; esac
    start=$(date -u +%FT%TZ)
    log="work/logs/$t-$start.log"
    t0=$(date +%s)
    nice -n 19 "$bin/$t" -max_total_time="$secs" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        "work/$t" "corpus/$t" >"$log" 2>&1 || true
    wall=$(($(date +%s) - t0))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    crashes=$(find "artifacts/$t" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$start" "$wall" "${execs:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" >>work/figures.tsv
done
