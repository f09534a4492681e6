#!/usr/bin/env bash
# Configuring 64 netdevsim VFs in the QEMU lab guest: sriovd's netlink path (kernel::LinuxKernel,
# one set_vf per attribute group, as the agent does) vs one `ip link set eth0 vf N ...` per VF.
# Both in the same boot; see bench/lab_vf_config.cpp.
#   bench/lab_vf_config.sh [BUILD_DIR] [ROUNDS]     (default: build, 5)
# Prints the rounds and a last line "RESULT vfs=64 rounds=R sriovd_ms=… ip_ms=… ratio=… verified=yes".
# Exit: 0, 1 (a failure), 77 (the lab is unavailable: no QEMU or kernel; see tests/lab/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
rounds=${2:-5}
bin="$build/bench/sriovd-bench-lab-vf-config"
[ -x "$bin" ] || { echo "lab_vf_config: $bin missing (ninja -C $build sriovd-bench-lab-vf-config)" >&2; exit 1; }
numvfs=/sys/bus/netdevsim/devices/netdevsim1/sriov_numvfs
exec bash "$here/tests/lab/run.sh" --outdir "$build/lab" --name bench_lab_vf_config --timeout 300 -- \
  bash -c 'set -e; echo 64 > '"$numvfs"'; echo "eth0: $(cat '"$numvfs"') VFs enabled"; exec "$0" --ifname eth0 --vfs 64 --rounds "$1"' \
  "$bin" "$rounds"
