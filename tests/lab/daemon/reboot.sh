#!/usr/bin/env bash
# Lab test, run on the host: the whole daemon on the guest's real /sys, across a reboot.
#   reboot.sh OUTDIR SRIOVD SRIOVD_CLI
# Boot 1 configures the host through sriovd-cli (tests/lab/daemon/guest.sh boot1); boot 2 is a
# fresh kernel with the same --state dir, where the daemon alone must restore it (guest.sh boot2).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: reboot.sh OUTDIR SRIOVD SRIOVD_CLI}
sriovd=$(realpath "${2:?}")
cli=$(realpath "${3:?}")
mkdir -p "$out" && out=$(cd "$out" && pwd)
state=$(mktemp -d "$out/daemon-reboot-state.XXXXXX")
trap 'rm -rf "$state"' EXIT

t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

rc1=0; t1=$(date +%s.%N)
bash "$here/../run.sh" --outdir "$out" --name lab_daemon_reboot-1 --state "$state" --timeout 150 -- \
  bash "$here/guest.sh" boot1 "$sriovd" "$cli" || rc1=$?
echo "boot 1: exit $rc1, $(elapsed "$t1") s on the host"
[ "$rc1" = 77 ] && exit 77
[ "$rc1" = 0 ] || { echo "FAIL: boot 1 failed (exit $rc1); boot 2 not run"; exit 1; }

rc2=0; t2=$(date +%s.%N)
bash "$here/../run.sh" --outdir "$out" --name lab_daemon_reboot-2 --state "$state" --timeout 150 -- \
  bash "$here/guest.sh" boot2 "$sriovd" "$cli" || rc2=$?
echo "boot 2: exit $rc2, $(elapsed "$t2") s on the host"
echo "total: $(elapsed "$t0") s"
[ "$rc2" = 0 ] || { echo "FAIL: boot 2 failed (exit $rc2)"; exit 1; }
echo "PASS: configured through sriovd-cli, restored by the daemon after a reboot"
