#!/usr/bin/env bash
# The demo: installs what sriovd needs, builds it, writes a simulated dual-socket host (E810,
# X710, ConnectX-6 Dx, NVMe, a GPU sharing its IOMMU group with its audio function...), starts
# sriovd on it with the simulated kernel (--sim: VFs, VF attributes and driver changes act on
# the simulated host) and shows what sriovd-cli sees. The daemon keeps running until Ctrl-C, so
# you can go on using sriovd-cli from another shell with the SRIOVD_SOCKET it prints.
#   scripts/demo.sh [--profile NAME] [--port N]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
profile=dual-socket
port=${SRIOVD_DEMO_PORT:-8080}
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
scripts/build.sh --target sriovd sriovd-cli sriovd-fakehost
build=${SRIOVD_BUILD_DIR:-build}

work=$(mktemp -d "${TMPDIR:-/tmp}/sriovd-demo.XXXXXX")
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

"$build/tests/fixtures/sriovd-fakehost" --profile "$profile" --out "$work/sys"
export SRIOVD_SOCKET="$work/sriovd.sock"
"$build/daemon/sriovd" serve --sim --sysfs-root "$work/sys" --state-dir "$work/state" \
  --listen "unix:$SRIOVD_SOCKET" --listen "tcp:127.0.0.1:$port" &
daemon_pid=$!

cli="$build/cli/sriovd-cli"
run() { echo; echo "\$ sriovd-cli $*"; "$cli" "$@"; }
"$cli" --wait 10 host >/dev/null
run host
run devices
run groups
cat <<MSG

sriovd is serving the simulated host in $work/sys
  unix socket: $SRIOVD_SOCKET      TCP: http://127.0.0.1:$port
Try, from another shell:
  export SRIOVD_SOCKET=$SRIOVD_SOCKET
  $cli devices --class-id 02                      # network controllers
  $cli vfs 0000:17:00.0 4                         # 4 VFs on the E810
  $cli vf --help                                  # VF attributes: --mac --vlan --qos --max-rate --trust ...
  $cli bind 0000:87:00.0 vfio-pci --group         # the GPU and its audio function to vfio-pci
  $cli groups
  curl -s http://127.0.0.1:$port/v1/devices?driver=none
Press Ctrl-C to stop.
MSG
wait "$daemon_pid"
