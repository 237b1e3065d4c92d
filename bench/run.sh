#!/usr/bin/env bash
# The torsion bench: builds everything in release, runs every scenario
# against torsion and its peers (Tokio, hyper, nginx) in turn, and prints
# a table of medians and torsion/peer ratios.
#
#   bench/run.sh                         # everything, 3 runs of 3 s each
#   bench/run.sh --repeats 5 --duration 5
#   bench/run.sh --only echo-pingpong,http-hello
#
# Servers are pinned to CPU 0 and loads to CPU 1 (taskset), both at nice
# -10 when run as root; servers listen on 127.0.0.1 only; every load stops
# by itself. The table is also written to bench/target/bench-results.md and
# every run's raw figures to bench/target/bench-raw.tsv. Arguments are
# passed to bench-runner (see `bench/target/release/bench-runner --help`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || ! need taskset || ! need openssl; then
    echo "== installing wrk, nginx, util-linux (taskset), openssl (a certificate for HTTPS)" >&2
    if [ "$(id -u)" = 0 ] && need apt-get; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq wrk nginx-light util-linux openssl >/dev/null ||
            apt-get install -y -qq wrk nginx util-linux openssl >/dev/null ||
            echo "warning: could not install wrk/nginx/openssl; those scenarios will be skipped" >&2
        # Debian starts the packaged nginx service on install where it can;
        # the bench runs its own, on 127.0.0.1 only.
        if need service; then service nginx stop >/dev/null 2>&1 || true; fi
    else
        echo "warning: wrk/nginx/openssl missing and cannot apt-get install them; those scenarios will be skipped" >&2
    fi
fi

echo "== building torsion (release): the CLI and the examples" >&2
(cd "$root" && cargo build --release -p torsion-cli) ||
    echo "warning: building torsion-cli failed; using target/release/torsion if present" >&2
(cd "$root" && cargo build --release --examples) ||
    echo "warning: building the examples failed; scenarios that need them may be skipped" >&2
echo "== building the bench harness (release)" >&2
(cd "$here" && cargo build --release --bins)

pidfile=$(mktemp "${TMPDIR:-/tmp}/torsion-bench-pids.XXXXXX")
cleanup() {
    # Stop any server the runner started and did not stop (it stops them
    # itself; this is for an interrupted run). Only pids it recorded, and
    # only while they still run a program from this checkout or nginx.
    while read -r pid; do
        [ -n "$pid" ] || continue
        if [ -r "/proc/$pid/cmdline" ] &&
            tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -e "$root" -e nginx; then
            kill "$pid" 2>/dev/null || true
        fi
    done <"$pidfile"
    rm -f "$pidfile"
}
trap cleanup EXIT INT TERM

nice_arg=()
if [ "$(id -u)" != 0 ]; then nice_arg=(--nice 0); fi

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
BENCH_PIDFILE=$pidfile "$here/target/release/bench-runner" \
    --root "$root" \
    --out "$here/target/bench-results.md" \
    --raw "$here/target/bench-raw.tsv" \
    "${nice_arg[@]}" "$@"
echo "== load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
