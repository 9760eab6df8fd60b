#!/usr/bin/env bash
# Sharded verification on one Docker host: the same series (CAMPAIGNS campaigns of
# SECONDS_EACH seconds from SEED) run whole, then as SHARDS shards at once, then merged.
# Prints the wall-clock time of each and whether the merge says what the whole series
# said (same campaign seeds, fault mixes, per-campaign verdicts and exit code).
#
#   bash harness/benches/verify_shards.sh                    # 4 campaigns of 5 s, 2 shards
#   CAMPAIGNS=8 SHARDS=4 SECONDS_EACH=10 bash harness/benches/verify_shards.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CAMPAIGNS=${CAMPAIGNS:-4}
SHARDS=${SHARDS:-2}
SECONDS_EACH=${SECONDS_EACH:-5}
SEED=${SEED:-40}
NODES=${NODES:-3}
work=$(mktemp -d)
cargo build -q -p faultline -p faultline-node
bin=${CARGO_TARGET_DIR:-target}/debug/faultline
node=${CARGO_TARGET_DIR:-target}/debug/faultline-node
series() { # STORE [flags...]
  local store=$1; shift
  "$bin" verify --campaigns "$CAMPAIGNS" --seed "$SEED" --nodes "$NODES" \
    --time-limit "$SECONDS_EACH" --recovery 1 --store "$store" --node-binary "$node" "$@"
}
start=$(date +%s.%N)
series "$work/whole" >"$work/whole.out" 2>"$work/whole.err" || true
whole_s=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
pids=()
for k in $(seq 0 $((SHARDS - 1))); do
  series "$work/shard$k" --shard "$k/$SHARDS" >"$work/shard$k.out" 2>"$work/shard$k.err" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
sharded_s=$(echo "$(date +%s.%N) - $start" | bc)
set +e
"$bin" verify --merge "$work"/shard*/raft-register/verify-* --store "$work/merged" >"$work/merged.out" 2>&1
merged_code=$?
set -e
key='[.runs[] | {campaign, seed, nemesis, exit_code, models}]'
same=$(diff <(jq -S "$key" "$work"/whole/raft-register/verify-*/verify.json) \
            <(jq -S "$key" "$work"/merged/raft-register/verify-*/verify.json) >/dev/null && echo yes || echo NO)
whole_code=$(jq .exit_code "$work"/whole/raft-register/verify-*/verify.json)
echo "| campaigns | shards | whole series | $SHARDS shards at once | merge exit (whole) | merge = whole |"
echo "|---|---|---|---|---|---|"
printf '| %s x %s s | %s | %.1f s | %.1f s | %s (%s) | %s |\n' "$CAMPAIGNS" "$SECONDS_EACH" "$SHARDS" \
  "$whole_s" "$sharded_s" "$merged_code" "$whole_code" "$same"
echo "(outputs in $work)"
