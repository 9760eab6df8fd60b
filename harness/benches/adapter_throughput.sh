#!/usr/bin/env bash
# Adapter throughput against the built-in client: the same 3-node faultline-node
# raft-register cluster, 16 client processes at full speed, no faults, once through the
# built-in http-kv client (examples/targets/faultline-node.toml) and once through a Python
# adapter speaking the adapter protocol (examples/targets/http_kv_adapter.py, one adapter
# per process). Prints each campaign's ops/s (completed operations over the main phase).
#
#   bash harness/benches/adapter_throughput.sh [SECONDS] [RUNS]
#
# Needs Docker, root, python3. Builds release binaries into $CARGO_TARGET_DIR (or target/).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-20}"
runs="${2:-1}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p faultline -p faultline-node
fl="$target_dir/release/faultline"
node="$target_dir/release/faultline-node"
work="$(mktemp -d /tmp/faultline-adapter-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The example file with its program pointed at this build.
sed "s#^binary = .*#binary = \"$node\"#" examples/targets/faultline-node.toml > "$work/http-kv.toml"
# The same system through the adapter.
sed -e "s#^binary = .*#binary = \"$node\"#" \
    -e 's#^type = "http-kv"#type = "adapter"\ncommand = ["python3", "'"$PWD"'/examples/targets/http_kv_adapter.py"]#' \
    -e 's#^http = "/status"#adapter = true#' \
    -e 's#^name = "faultline-node"#name = "faultline-node-adapter"#' \
    examples/targets/faultline-node.toml > "$work/adapter.toml"
"$fl" target check "$work/adapter.toml" > /dev/null

for run in $(seq 1 "$runs"); do
  for client in http-kv adapter; do
    out="$("$fl" test --target "$work/$client.toml" --nodes 3 --concurrency 16 --rate 0 \
      --nemesis none --time-limit "$secs" --recovery 1 --seed "$run" --store "$work/store" 2>/dev/null || true)"
    line="$(grep '^operations:' <<<"$out")"
    verdict="$(grep '^exit' <<<"$out" | cut -c1-6)"
    echo "run $run $client: ${line#operations: } [$verdict]"
  done
done
