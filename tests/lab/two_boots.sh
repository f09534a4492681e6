#!/usr/bin/env bash
# Lab test driver, run on the host: one guest script over two boots with the state kept between them.
#   two_boots.sh OUTDIR NAME GUEST_SCRIPT [ARGS...]
# Boot 1 runs `bash GUEST_SCRIPT boot1 ARGS...` in the guest; boot 2, a fresh kernel with the same
# --state dir (/lab/state), runs `bash GUEST_SCRIPT boot2 ARGS...`, and only when boot 1 passed.
# The runs are named NAME-1 and NAME-2 (timings, OUTDIR/runs). Exit: 0 both passed, 77 skip, 1.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: two_boots.sh OUTDIR NAME GUEST_SCRIPT [ARGS...]}
name=${2:?}
guest=$(realpath "${3:?}")
shift 3
mkdir -p "$out" && out=$(cd "$out" && pwd)
state=$(mktemp -d "$out/$name-state.XXXXXX")
trap 'rm -rf "$state"' EXIT

t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

for boot in 1 2; do
  rc=0; t=$(date +%s.%N)
  bash "$here/run.sh" --outdir "$out" --name "$name-$boot" --state "$state" --timeout "${LAB_TIMEOUT:-150}" -- \
    bash "$guest" "boot$boot" "$@" || rc=$?
  echo "boot $boot: exit $rc, $(elapsed "$t") s on the host"
  [ "$rc" = 77 ] && exit 77
  if [ "$rc" != 0 ]; then
    [ "$boot" = 1 ] && echo "FAIL: $name: boot 1 failed (exit $rc); boot 2 not run" || echo "FAIL: $name: boot 2 failed (exit $rc)"
    exit 1
  fi
done
echo "total: $(elapsed "$t0") s"
echo "PASS: $name: both boots"
