#!/usr/bin/env bash
# Prints the Markdown section of bench/RESULTS.md on the systemd unit's exposure:
#   bench/unit_security.sh [BUILD_DIR]
# `systemd-analyze security --offline=true` on systemd/sriovd.service.in (ExecStart pointed at the
# built binary), the figure systemd computes from the sandboxing options (0 = fully confined,
# 10 = unconfined); target <= 2.0.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
unit_in="$here/systemd/sriovd.service.in"
figure=$("$here/systemd/check-unit.sh" exposure "$unit_in" "$build/agent")
work=$(mktemp -d "${TMPDIR:-/tmp}/sriovd-bench-unit.XXXXXX")
trap 'rm -rf "$work"' EXIT
sed "s|@SRIOVD_BINDIR@|$build/agent|g" "$unit_in" > "$work/sriovd.service"
echo
echo "## systemd unit exposure (target <= 2.0)"
echo
echo "\`systemd-analyze security --offline=true systemd/sriovd.service\` ($(systemd-analyze --version | head -n1)): **${figure}** (0 = fully confined, 10 = unconfined). What still counts against it, each with the reason it stays:"
echo
echo '```'
systemd-analyze security --offline=true "$work/sriovd.service" 2>&1 | grep '✗' | sed 's/  */ /g' || true
echo '```'
echo
echo "Root with CAP_NET_ADMIN only (sysfs writes need the files' owner, rtnetlink VF changes need CAP_NET_ADMIN); /sys writable (ProtectKernelTunables= would make sriov_numvfs read-only); the host's network (rtnetlink on the host's links); AF_INET/AF_INET6 for the TCP listeners; IP traffic limited to localhost unless a drop-in allows the clients of a TLS listener."
