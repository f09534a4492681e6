#!/usr/bin/env bash
# The time from a lease to the domain using it started, in the QEMU lab guest (for information):
# lab_vm_passthrough's first case (tests/lab/vm/guest.sh) leases an NVMe VF from a vfio pool,
# attaches it to a defined domain's configuration and starts the domain (its own libvirtd; QEMU
# under TCG inside the TCG guest; started paused, as the domain has no OS) and prints a TIMING
# line. Runs that test RUNS times (default 3) and prints each line, then
# "RESULT runs=N lease_to_started_s=<median> lease_s=… attach_s=… start_s=…" (medians).
#   bench/lab_lease_to_running.sh [BUILD_DIR] [RUNS]
# Exit: 0, 1 (a run failed or printed no TIMING line).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
runs=${2:-3}
lines=()
for i in $(seq 1 "$runs"); do
  out=$(ctest --test-dir "$build" -R '^lab_vm_passthrough$' -V 2>&1) || { echo "$out" | tail -n 30; echo "run $i failed" >&2; exit 1; }
  line=$(grep -o 'TIMING .*' <<<"$out" | tail -n1)
  [ -n "$line" ] || { echo "run $i printed no TIMING line" >&2; exit 1; }
  echo "run $i: ${line#TIMING }"
  lines+=("$line")
done
median() {
  printf '%s\n' "${lines[@]}" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p" | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "RESULT runs=$runs lease_to_started_s=$(median lease_to_started_s) lease_s=$(median lease_s) attach_s=$(median attach_s) start_s=$(median start_s)"
