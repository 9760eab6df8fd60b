#!/usr/bin/env bash
# Verifies the zookeeper target (Debian's zookeeper 3.8 on its Java runtime) the way a user
# would: `faultline verify --target zookeeper` with the default fault mix (verify rotates
# partition, kill, pause, clock, leader and mixes of them), once per read mode against
# ZooKeeper's own claim (sequential consistency), and once per read mode with
# `--claim linearizable`, the negative control: plain reads are allowed to be stale, so
# linearizability should fail there. Each series prints its verdict; a violation prints its
# witness and the command that reproduces it. Needs Docker (root or the docker group) and
# `apt-get install zookeeper default-jre-headless`.
#
#   bash harness/benches/zookeeper_verify.sh                  # 5 campaigns of 30 s per series
#   CAMPAIGNS=3 SECONDS_EACH=20 RUNS="plain:sequential" bash harness/benches/zookeeper_verify.sh
#   PROFILE=release bash harness/benches/zookeeper_verify.sh  # a release build
set -uo pipefail
cd "$(dirname "$0")/../.."
CAMPAIGNS=${CAMPAIGNS:-5}
SECONDS_EACH=${SECONDS_EACH:-30}
SEED=${SEED:-31}
NODES=${NODES:-3}
PROFILE=${PROFILE:-debug}
RUNS=${RUNS:-plain:sequential sync:sequential plain:linearizable sync:linearizable}
STORE=${STORE:-$(mktemp -d)}
if [ "$PROFILE" = release ]; then
  cargo build -q --release -p faultline -p faultline-node || exit 2
else
  cargo build -q -p faultline -p faultline-node || exit 2
fi
# A copy, so that rebuilding while the series runs does not pull the binary away.
mkdir -p "$STORE/bin"
cp "${CARGO_TARGET_DIR:-target}/$PROFILE/faultline" "$STORE/bin/faultline"
bin=$STORE/bin/faultline
for run in $RUNS; do
  mode=${run%%:*} claim=${run##*:}
  echo "== reads=$mode claim=$claim: $CAMPAIGNS campaigns of ${SECONDS_EACH}s, $NODES nodes, seed $SEED"
  start=$(date +%s)
  "$bin" verify --target zookeeper --target-opt "reads=$mode" --claim "$claim" \
    --nodes "$NODES" --campaigns "$CAMPAIGNS" --time-limit "$SECONDS_EACH" --seed "$SEED" \
    --store "$STORE/$mode-$claim" "$@"
  code=$?
  echo "== reads=$mode claim=$claim: exit $code after $(( $(date +%s) - start )) s (store $STORE/$mode-$claim)"
done
