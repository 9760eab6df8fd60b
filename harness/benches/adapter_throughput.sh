#!/usr/bin/env bash
# Adapter throughput against the built-in client: the same 3-node faultline-node
# raft-register cluster, 16 client processes at full speed, no faults, through
#   http-kv:   the built-in client (examples/targets/faultline-node.toml);
#   adapter:   a compiled adapter (faultline-http-adapter, one per process);
#   python:    the Python adapter examples/targets/http_kv_adapter.py (one per process).
# Prints each campaign's ops/s (completed operations over the main phase).
#
#   bash harness/benches/adapter_throughput.sh [SECONDS] [RUNS]
#
# Needs Docker, root, python3. Builds release binaries into $CARGO_TARGET_DIR (or target/).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-20}"
runs="${2:-1}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p faultline -p faultline-node -p faultline-targets
fl="$target_dir/release/faultline"
node="$target_dir/release/faultline-node"
work="$(mktemp -d /tmp/faultline-adapter-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The example file with its program pointed at this build.
sed "s#^binary = .*#binary = \"$node\"#" examples/targets/faultline-node.toml > "$work/http-kv.toml"
# The same system through an adapter: $1 = file name, $2 = the adapter's command (TOML).
adapter_file() {
  sed -e "s#^binary = .*#binary = \"$node\"#" \
      -e "s#^type = \"http-kv\"#type = \"adapter\"\ncommand = $2#" \
      -e 's#^http = "/status"#adapter = true#' \
      -e "s#^name = \"faultline-node\"#name = \"faultline-node-$1\"#" \
      examples/targets/faultline-node.toml > "$work/$1.toml"
  "$fl" target check "$work/$1.toml" > /dev/null
}
adapter_file adapter "[\"$target_dir/release/faultline-http-adapter\"]"
adapter_file python "[\"python3\", \"$PWD/examples/targets/http_kv_adapter.py\"]"

for run in $(seq 1 "$runs"); do
  for client in http-kv adapter python; do
    out="$("$fl" test --target "$work/$client.toml" --nodes 3 --concurrency 16 --rate 0 \
      --nemesis none --time-limit "$secs" --recovery 1 --seed "$run" --store "$work/store" 2>/dev/null || true)"
    line="$(grep '^operations:' <<<"$out")"
    verdict="$(grep '^exit' <<<"$out" | cut -c1-6)"
    echo "run $run $client: ${line#operations: } [$verdict]"
  done
done
