#!/usr/bin/env bash
# Runs the GitHub Action's script (.ci/action.sh) and the README's commands as a fresh
# non-root user in the docker group, the way a hosted runner would: no root, no sudo for
# faultline. Run as root on a Docker host, after `cargo build -p faultline -p faultline-node`
# (the built binaries are copied where the user can read them; building as that user would
# need its own Rust toolchain).
#
#   sudo .ci/test-as-user.sh [TARGET_DIR/PROFILE]     (default: target/debug)
#
# Checks: a short default-nemesis campaign exits 0 through node agents with every family
# of the default list; the step summary got report.md; the run folder and its files
# belong to the user; `faultline clean` as the user works; and a clear message appears
# when the user is not in the docker group.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
profile="${1:-$repo/target/debug}"
user="${FL_CI_USER:-flci}"
work="/tmp/faultline-ci-$$"

[ "$(id -u)" -eq 0 ] || { echo "run as root (it creates the user $user)"; exit 2; }
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
usermod -aG docker "$user"
mkdir -p "$work/bin"
cp "$profile/faultline" "$profile/faultline-node" "$work/bin/"
cp "$repo/.ci/action.sh" "$work/"
chown -R "$user:" "$work"
as_user() { runuser -u "$user" -- env -C "$work" HOME="/home/$user" "$@"; }

echo "== as $user (uid $(id -u "$user"), groups $(id -Gn "$user")): the action's script"
as_user env FL_INSTALL=false FL_BINARY="$work/bin/faultline" \
  FL_ARGS="--nodes 3 --time-limit 20 --seed 16" \
  GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary.md" \
  bash "$work/action.sh"
cat "$work/output"
grep -qx "code=0" "$work/output" || { echo "FAIL: the campaign did not exit 0"; exit 1; }
run="$(sed -n 's/^run=//p' "$work/output")"
[ -f "$work/$run/report.html" ] || { echo "FAIL: no report.html in $run"; exit 1; }
grep -q "faultline" "$work/summary.md" || { echo "FAIL: the step summary is empty"; exit 1; }
grep -q '"faults": "agent"' "$work/$run/run.json" || { echo "FAIL: not through agents"; exit 1; }
owner="$(find "$work/store" -not -user "$user" | head -5)"
[ -z "$owner" ] || { echo "FAIL: files not owned by $user: $owner"; exit 1; }
python3 - "$work/$run/run.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
extra = run.get("extra", run)
print("nemesis:", extra.get("nemesis"), "| mechanisms:", run.get("mechanisms"))
print("fault timing:", extra.get("fault_timing"))
PY

echo "== as $user: faultline clean (only runs whose harness is gone)"
as_user "$work/bin/faultline" clean

echo "== a user outside the docker group gets a clear message"
nogroup="${user}x"
id "$nogroup" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$nogroup"
set +e
msg="$(runuser -u "$nogroup" -- env -C /tmp "$work/bin/faultline" test --time-limit 1 --store "/tmp/$nogroup-store" 2>&1)"
code=$?
set -e
echo "$msg" | tail -2
[ "$code" -ne 0 ] && echo "$msg" | grep -q "usermod -aG docker" \
  || { echo "FAIL: no docker-group hint (exit $code)"; exit 1; }

rm -rf "$work"
echo "PASS"
