#!/usr/bin/env bash
# The body of the faultline GitHub Action (action.yml), kept here so that it can be run and
# tested outside GitHub: `.ci/test-as-user.sh` runs it as a fresh non-root user.
#
# Inputs (environment):
#   FL_MODE        test (a campaign) or check (histories)           [test]
#   FL_ARGS        extra arguments for `faultline test` / `check`   []
#   FL_BINARY      a faultline binary to use instead of building     []
#   FL_NODE_BINARY the node program (default: next to faultline)     []
#   FL_STORE       the result store                                  [store]
#   FL_INSTALL     install the Debian packages first (true/false)    [true]
# faultline itself appends report.md to $GITHUB_STEP_SUMMARY when that is set.
# Outputs: lines `code=N`, `run=DIR` and `binary=PATH` appended to $GITHUB_OUTPUT (when
# set) and printed. Exits 0 whatever faultline's verdict: the caller gates on `code`.
set -uo pipefail

mode="${FL_MODE:-test}"
store="${FL_STORE:-store}"
out="${GITHUB_OUTPUT:-/dev/null}"

say() { printf 'faultline-action: %s\n' "$*" >&2; }

if [ "${FL_INSTALL:-true}" = "true" ]; then
  # Hosted runners already have Docker (docker-ce); docker.io would conflict with it.
  pkgs="libfaketime faketime nftables iptables iproute2"
  command -v docker >/dev/null 2>&1 || pkgs="$pkgs docker.io"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq $pkgs >/dev/null || {
    say "apt-get install $pkgs failed"; echo "code=255" >> "$out"; exit 0; }
fi

bin="${FL_BINARY:-}"
if [ -z "$bin" ]; then
  say "building faultline and faultline-node (release)"
  cargo build --release -p faultline -p faultline-node || {
    say "the build failed"; echo "code=255" >> "$out"; exit 0; }
  bin="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/faultline"
fi
echo "binary=$bin" >> "$out"

node_args=()
[ -n "${FL_NODE_BINARY:-}" ] && node_args=(--node-binary "$FL_NODE_BINARY")

set +e
case "$mode" in
  test)
    # shellcheck disable=SC2086
    "$bin" test --store "$store" "${node_args[@]}" ${FL_ARGS:-}
    code=$? ;;
  check)
    # shellcheck disable=SC2086
    "$bin" check --report "$store/check" ${FL_ARGS:-}
    code=$? ;;
  *)
    say "unknown mode $mode (test or check)"; code=254 ;;
esac

run=""
if [ "$mode" = "check" ]; then
  [ -d "$store/check" ] && run="$store/check"
elif [ -L "$store/latest" ]; then
  run="$store/$(readlink "$store/latest")"
elif [ -f "$store/latest" ]; then
  run="$store/$(cat "$store/latest")"
fi
echo "code=$code" >> "$out"
echo "run=$run" >> "$out"
say "exit code $code, run folder ${run:-none}"
exit 0
