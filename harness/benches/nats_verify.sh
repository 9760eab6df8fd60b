#!/usr/bin/env bash
# Verifies the nats target (Debian's nats-server, JetStream KV) the way a user would:
# `faultline verify --target nats` with the default fault mix (partition, kill, pause;
# clock is dropped with a note since it cannot reach a Go program), once per read mode
# with the default kv workload (reads, writes, cas) and once per read mode with the
# register workload (reads and writes only: no cas, so the cas race does not hide the rest).
# Each series prints its verdict; a violation prints its witness and the command that
# reproduces it. Needs Docker, root and /usr/sbin/nats-server (apt-get install nats-server).
#
#   bash harness/benches/nats_verify.sh                      # 5 campaigns of 60 s per mode
#   CAMPAIGNS=3 SECONDS_EACH=20 RUNS="leader:kv" bash harness/benches/nats_verify.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
CAMPAIGNS=${CAMPAIGNS:-5}
SECONDS_EACH=${SECONDS_EACH:-60}
SEED=${SEED:-19}
NODES=${NODES:-5}
RUNS=${RUNS:-leader:kv direct:kv leader:register direct:register}
STORE=${STORE:-$(mktemp -d)}
cargo build -q -p faultline -p faultline-node || exit 2
# A copy, so that rebuilding while the series runs does not pull the binary away.
mkdir -p "$STORE/bin"
cp "${CARGO_TARGET_DIR:-target}/debug/faultline" "$STORE/bin/faultline"
bin=$STORE/bin/faultline
for run in $RUNS; do
  mode=${run%%:*} workload=${run##*:}
  echo "== reads=$mode workload=$workload: $CAMPAIGNS campaigns of ${SECONDS_EACH}s, $NODES nodes, seed $SEED"
  start=$(date +%s)
  "$bin" verify --target nats --target-opt "reads=$mode" --workload "$workload" \
    --nodes "$NODES" --campaigns "$CAMPAIGNS" --time-limit "$SECONDS_EACH" --seed "$SEED" \
    --store "$STORE/$mode-$workload" "$@"
  code=$?
  echo "== reads=$mode workload=$workload: exit $code after $(( $(date +%s) - start )) s (store $STORE/$mode-$workload)"
done
