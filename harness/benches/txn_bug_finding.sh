#!/usr/bin/env bash
# Bug-finding power on transactions: for each planted txn fault of raft-register,
# `faultline verify --workload list-append` runs CAMPAIGNS campaigns of SECONDS_EACH
# seconds (fresh seeds from SEED; the nemesis and the campaign shape each fault names)
# and this prints one table row per fault: in how many campaigns strict serializability
# was violated, the first whole second at which the history cut there already violated
# it (transactional histories are checked at the end of each campaign, then every
# one-second prefix until one fails), and the anomaly types named. Then etcd's
# list-append under partitions and kills, one campaign per seed (ETCD_SEEDS; skipped
# without /usr/bin/etcd). Needs Docker and root, like `faultline test`.
#
#   bash harness/benches/txn_bug_finding.sh               # 3 campaigns of 60 s per fault
#   CAMPAIGNS=1 SECONDS_EACH=15 FAULTS="txn-split" ETCD_SEEDS="" bash harness/benches/txn_bug_finding.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CAMPAIGNS=${CAMPAIGNS:-3}
SECONDS_EACH=${SECONDS_EACH:-60}
SEED=${SEED:-1}
FAULTS=${FAULTS:-"txn-stale-reads txn-split txn-lost-update"}
ETCD_SEEDS=${ETCD_SEEDS-"1 2 3"}
STORE=${STORE:-$(mktemp -d)/store}
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p faultline -p faultline-node
bin=$target_dir/release/faultline
node=$target_dir/release/faultline-node
echo "| fault | nemesis | caught | first violated by the history up to (median, max) | anomalies (per campaign) |"
echo "|---|---|---|---|---|"
for f in $FAULTS; do
  log=$(mktemp)
  set +e
  "$bin" verify --workload list-append --fault "$f" --campaigns "$CAMPAIGNS" \
    --time-limit "$SECONDS_EACH" --seed "$SEED" --store "$STORE" --node-binary "$node" \
    >"$log" 2>"$log.err"
  code=$?
  set -e
  nemesis=$(grep -o 'nemesis [a-z,]*, seed' "$log.err" | head -1 | awk '{print $2}' | sed 's/,$//')
  line=$(grep '^detection:' "$log" || echo "detection: (no summary; exit $code, see $log.err)")
  caught=$(echo "$line" | sed -n 's/.*violated in \([0-9]* of [0-9]*\) campaign.*/\1/p')
  times=$(echo "$line" | sed -n 's/.*up to \([0-9.]* s\) (median), \([0-9.]* s\) (max).*/\1, \2/p')
  anomalies=$(grep '^  anomalies:' "$log" | sed 's/^  anomalies: //; s/;.*//' | paste -sd '|' - | sed 's/|/ <br> /g')
  echo "| $f | ${nemesis:-?} | ${caught:-?} | ${times:--} | ${anomalies:--} |"
done
if [ -n "$ETCD_SEEDS" ] && [ -x /usr/bin/etcd ]; then
  echo
  echo "| etcd list-append, partition,kill, $SECONDS_EACH s | seed | exit | strongest held | ops (ok) |"
  echo "|---|---|---|---|---|"
  for s in $ETCD_SEEDS; do
    set +e
    "$bin" test --target etcd --nodes 3 --workload list-append --nemesis partition,kill \
      --time-limit "$SECONDS_EACH" --seed "$s" --store "$STORE" --json >"$STORE.etcd.$s.json" 2>/dev/null
    code=$?
    set -e
    python3 - "$STORE.etcd.$s.json" "$s" "$code" <<'PY'
import json, sys
path, seed, code = sys.argv[1:4]
try:
    d = json.loads(open(path).read().strip().splitlines()[-1])
    print(f"| | {seed} | {code} | {', '.join(d['strongest']) or 'none'} | {d['ops']['total']} ({d['ops']['ok']}) |")
except Exception as e:
    print(f"| | {seed} | {code} | (no summary: {e}) | |")
PY
  done
fi
