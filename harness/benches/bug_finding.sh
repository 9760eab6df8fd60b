#!/usr/bin/env bash
# Bug-finding power: for each planted fault of raft-register, `faultline verify` runs
# CAMPAIGNS campaigns of SECONDS seconds (fresh seeds from SEED; the nemesis each fault
# names; each campaign stops at its first violation) and this prints one table row per
# fault: in how many campaigns the claim was violated, and when the live check first saw
# the violation. Needs Docker and root, like `faultline test`.
#
#   bash harness/benches/bug_finding.sh                 # 5 campaigns of 60 s per fault
#   CAMPAIGNS=3 SECONDS_EACH=30 FAULTS="stale-reads" bash harness/benches/bug_finding.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CAMPAIGNS=${CAMPAIGNS:-5}
SECONDS_EACH=${SECONDS_EACH:-60}
SEED=${SEED:-1}
FAULTS=${FAULTS:-"stale-reads early-ack no-fsync lease-reads"}
STORE=${STORE:-$(mktemp -d)/store}
cargo build --release -q -p faultline -p faultline-node
bin=target/release/faultline
echo "| fault | nemesis | caught | first violation seen (median, max) |"
echo "|---|---|---|---|"
for f in $FAULTS; do
  log=$(mktemp)
  set +e
  "$bin" verify --fault "$f" --campaigns "$CAMPAIGNS" --time-limit "$SECONDS_EACH" \
    --seed "$SEED" --store "$STORE" --node-binary target/release/faultline-node >"$log" 2>"$log.err"
  code=$?
  set -e
  nemesis=$(grep -o 'nemesis [a-z,]*, seed' "$log.err" | head -1 | awk '{print $2}' | sed 's/,$//')
  line=$(grep '^detection:' "$log" || echo "detection: (no summary; exit $code, see $log.err)")
  caught=$(echo "$line" | sed -n 's/.*violated in \([0-9]* of [0-9]*\) campaign.*/\1/p')
  times=$(echo "$line" | sed -n 's/.*after \([0-9.]* s\) (median), \([0-9.]* s\) (max).*/\1, \2/p')
  echo "| $f | ${nemesis:-?} | ${caught:-?} | ${times:--} |"
done
