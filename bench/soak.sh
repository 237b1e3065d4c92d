#!/usr/bin/env bash
# The soak: runs `torsion web`, `echo`, `chat` and `portforward` (in front
# of a second `torsion echo`, its backend) under a mixed load for a set
# time, samples each server's RSS, descriptors and CPU every second, checks
# that memory and descriptors end flat and that nothing is lost, and plots
# the samples.
#
#   bench/soak.sh                        # 10 minutes
#   bench/soak.sh --duration 60          # one minute
#   bench/soak.sh --out DIR              # where the CSV, summary and PNG go
#   bench/soak.sh --out DIR --plot-only --duration 600   # plot DIR/soak.csv again
#
# Other arguments go to soak-load (see `bench/target/release/soak-load
# --help`: --workers, --long-lived, --readers, --seed). Everything listens
# on 127.0.0.1 port 0 (the port each server took is read from its log);
# the load stops by itself; the servers are stopped with SIGTERM at the end.
# Exit status: 0 when the checks pass, 1 when one fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

duration=600
out="$here/target/soak"
plot_only=
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --plot-only) plot_only=1; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1"); shift ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need gnuplot; then
    echo "== installing gnuplot (the plot)" >&2
    if [ "$(id -u)" = 0 ] && need apt-get; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq gnuplot-nox >/dev/null; } ||
            echo "warning: could not install gnuplot; no plot" >&2
    else
        echo "warning: gnuplot missing and cannot apt-get install it; no plot" >&2
    fi
fi

# Draws $out/soak.png from $out/soak.csv (per-server files go to $work).
plot() {
    if need gnuplot; then
        # One file per server (gnuplot draws a line through one file's rows),
        # and the start and end of the load with the thirds between them.
        # Column 9: CPU over the last 10 s (the 1 s figure is in whole ticks,
        # too coarse to read at a few %).
        hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
        for name in web echo chat portforward backend; do
            awk -F, -v n="$name" -v hz="$hz" 'BEGIN { OFS = "," }
                $2 == n { k++; t[k] = $1; c[k] = $6; j = k > 10 ? k - 10 : 1
                          print $0, (k > j ? (c[k] - c[j]) / hz / (t[k] - t[j]) * 100 : 0) }' \
                "$out/soak.csv" >"$work/$name.dat"
        done
        marks=$(awk -F, '$3 == "load" && !a { a = $1 } $3 == "wind-down" && !b { b = $1 }
            END { print a, a + (b - a) / 3, a + 2 * (b - a) / 3, b }' "$out/soak.csv")
        gnuplot <<EOF
set datafile separator ","
set terminal png size 860,720 font "DejaVuSans,8"
set output "$out/soak.png"
set multiplot layout 3,1 title "torsion soak: $duration s of mixed load, one sample a second (gray lines: load start, thirds, load end)"
set grid
set lmargin 10
do for [x in "$marks"] {
    x = x + 0
    set arrow from first x, graph 0 to first x, graph 1 nohead dashtype 2 lc rgb "gray40"
}
files = "web echo chat portforward backend"
set key top left horizontal
set ylabel "RSS, MiB"
set yrange [0:*]
plot for [s in files] "$work/".s.".dat" using 1:(\$4/1024) with lines lw 1.5 title s
unset key
set ylabel "open descriptors"
plot for [s in files] "$work/".s.".dat" using 1:5 with lines lw 1.5 title s
set ylabel "CPU, % of a core (10 s mean)"
set xlabel "seconds"
plot for [s in files] "$work/".s.".dat" using 1:9 with lines lw 1.5 title s
unset multiplot
EOF
        echo "== plot: $out/soak.png" >&2
    fi
}

if [ -n "$plot_only" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/torsion-soak.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    plot
    exit 0
fi

echo "== building torsion (release) and soak-load" >&2
(cd "$root" && cargo build --release -p torsion-cli)
(cd "$here" && cargo build --release --bin soak-load)
torsion="$root/target/release/torsion"

work=$(mktemp -d "${TMPDIR:-/tmp}/torsion-soak.XXXXXX")
mkdir "$work/www"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Starts `torsion ARGS...` logging to $work/NAME.log; sets $pid and $addr
# (the address it listens on, from its "listening on" line).
start() {
    local name=$1
    shift
    "$torsion" "$@" 2>"$work/$name.log" &
    pid=$!
    pids+=("$pid")
    addr=
    for _ in $(seq 100); do
        addr=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/$name.log" | head -n1 | cut -d' ' -f3 || true)
        [ -n "$addr" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$addr" ]; then
        echo "soak: $name did not start:" >&2
        cat "$work/$name.log" >&2
        exit 1
    fi
    echo "== $name: pid $pid, $addr" >&2
}

any=tcp:0:interface=127.0.0.1
start echo echo --listen $any
echo_pid=$pid echo_addr=$addr
start chat chat --listen $any
chat_pid=$pid chat_addr=$addr
start web web --path "$work/www" --listen $any
web_pid=$pid web_addr=$addr
start backend echo --listen $any
backend_pid=$pid backend_addr=$addr
start portforward portforward --listen $any --connect "tcp:host=127.0.0.1:port=${backend_addr##*:}"
pf_pid=$pid pf_addr=$addr

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); soak for $duration s" >&2
status=0
"$here/target/release/soak-load" \
    --echo "$echo_addr" --chat "$chat_addr" --web "$web_addr" --portforward "$pf_addr" \
    --web-root "$work/www" \
    --pid "web=$web_pid" --pid "echo=$echo_pid" --pid "chat=$chat_pid" \
    --pid "portforward=$pf_pid" --pid "backend=$backend_pid" \
    --duration "$duration" --csv "$out/soak.csv" --summary "$out/soak-summary.md" \
    "${pass[@]}" || status=$?

for name in echo chat web backend portforward; do
    warnings=$(grep -c -e ' WARN ' -e ' ERROR ' "$work/$name.log" || true)
    echo "== $name log: $warnings warnings or errors" >&2
    grep -e ' WARN ' -e ' ERROR ' "$work/$name.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -n5 >&2 || true
done

plot
echo "== samples: $out/soak.csv, summary: $out/soak-summary.md" >&2
exit $status
