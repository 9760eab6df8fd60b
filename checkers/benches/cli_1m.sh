#!/usr/bin/env bash
# The command-line path on a large history: `faultline check FILE --model MODEL` on a
# generated 1,000,000-operation kv history (1,000 keys, 50 processes, 0.2 % info), parse
# and pairing included, with wall time, CPU time and peak RSS per run (GNU time).
#
#   bash checkers/benches/cli_1m.sh [RUNS] [MODEL...]
#
# Defaults: 5 runs of `--model kv`. The history is generated once into $BENCH_DIR
# (default target/bench-cli) and reused. Builds the release binary first. Prints one line
# per run and then the minimum and median of each column; on a shared machine compare the
# CPU columns (user + sys) and the peak RSS, which depend little on load, rather than the
# wall time.
#
# Goal (the issue "Speed where it regressed"): <= 1.0 s wall and <= 1 GiB peak RSS for
# kv, linearizable and register alike.
set -euo pipefail

runs=${1:-5}
shift || true
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(kv)

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${BENCH_DIR:-$root/target/bench-cli}
bin=$root/target/release/faultline
timer=/usr/bin/time
[ -x "$timer" ] || { echo "needs GNU time at $timer (apt-get install time)" >&2; exit 2; }

cargo build --release -p faultline --manifest-path "$root/Cargo.toml" >&2
mkdir -p "$dir"
file=$dir/kv1m.jsonl
if [ ! -s "$file" ]; then
    "$bin" gen --ops 1000000 --keys 1000 --processes 50 --info-rate 0.002 -o "$file" >&2
fi

for model in "${models[@]}"; do
    echo "faultline check kv1m.jsonl --model $model ($runs runs)"
    printf '%8s %8s %8s %8s %10s %10s %10s\n' wall_s user_s sys_s cpu_s peak_MiB parse_ms check_ms
    rows=()
    for _ in $(seq "$runs"); do
        out=$("$timer" -f '%e %U %S %M' -o "$dir/time.txt" "$bin" check "$file" --model "$model" --json || true)
        read -r wall user sys kb < "$dir/time.txt"
        parse=$(printf '%s' "$out" | sed -n 's/.*"parse_ms":\([0-9.]*\).*/\1/p')
        check=$(printf '%s' "$out" | sed -n 's/.*"check_ms":\([0-9.]*\).*/\1/p')
        row=$(awk -v w="$wall" -v u="$user" -v s="$sys" -v k="$kb" -v p="$parse" -v c="$check" \
            'BEGIN { printf "%8.2f %8.2f %8.2f %8.2f %10.0f %10.0f %10.0f ", w, u, s, u + s, k / 1024, p, c }')
        echo "$row"
        rows+=("$row")
    done
    for stat in min median; do
        printf '%s\n' "${rows[@]}" | awk -v stat="$stat" '
            { for (i = 1; i <= NF; i++) v[i, NR] = $i; n = NR; f = NF }
            END {
                printf "%s:\n", stat
                for (i = 1; i <= f; i++) {
                    for (r = 1; r <= n; r++) a[r] = v[i, r]
                    # insertion sort: n is small
                    for (r = 2; r <= n; r++) { x = a[r]; s = r - 1; while (s > 0 && a[s] > x) { a[s + 1] = a[s]; s-- } a[s + 1] = x }
                    m = (stat == "min") ? a[1] : a[int((n + 1) / 2)]
                    printf (i <= 4 ? "%8.2f " : "%10.0f "), m
                }
                printf "\n"
            }'
    done
done
