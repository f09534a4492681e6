#!/usr/bin/env bash
# tests/lab/run.sh — run one command inside the lab guest: Debian's kernel in QEMU (TCG) with an
# intel-iommu, an SR-IOV NVMe controller, netdevsim and (QEMU >= 8) an igb NIC.
#
#   run.sh [--outdir DIR] [--state DIR] [--timeout S] [--name NAME] [--mem SIZE] [-e VAR=VALUE]...
#          -- COMMAND [ARG...]
#
# COMMAND runs as root under bash in a chroot of the host's root filesystem (read-only 9p with a
# tmpfs overlay: writes succeed and vanish at power-off), in the host's current directory, so
# host-built binaries and scripts run unchanged. Its stdout, stderr and exit status come back;
# run.sh prints them and exits with that status. In the guest:
#   /lab/state   --state DIR, shared writable; persists across boots (absent: an empty tmpfs dir)
#   /lab/out     this run's results directory on the host (OUTDIR/runs/<id>/), writable
#   env          PATH HOME=/root LANG=C LAB=1 LAB_STATE LAB_OUT LAB_IGB=0|1 LAB_NVME_VFS
#                LAB_KVER, plus every -e VAR=VALUE and every host SRIOVD_* variable
#   devices      NVMe PF (serial lab1) with sriov_totalvfs=$LAB_NVME_VFS behind its own root port;
#                netdevsim1 (port eth0, max_vfs 64); igb (82576, 7 VFs) when LAB_IGB=1, driver
#                igb loaded, igbvf not; debugfs on /sys/kernel/debug; lo up; no udev
# Options:
#   --outdir DIR   where build.sh put the kernel/initramfs (default $LAB_OUTDIR or <repo>/build/lab);
#                  built on demand. The guest console goes to DIR/runs/<id>/console.log
#                  (DIR/console.log points at the latest)
#   --state DIR    host directory shared writable at /lab/state (created if missing)
#   --timeout S    hard limit for the whole QEMU run (default $LAB_TIMEOUT or 150); QEMU is killed
#   --name NAME    label for the timing line and DIR/timings.tsv (default: the command's basename)
#   --mem SIZE     guest memory (default $LAB_MEM or 1G)
#   -e VAR=VALUE   extra environment for COMMAND
#   --require igb  exit 77 at once (no boot) when this QEMU has no igb device (1 if CI=true)
#   --nvme-vfs N   the NVMe PF's TotalVFs (default $LAB_NVME_VFS or 16; 1..127)
# Env: LAB_QEMU (another qemu-system-x86_64), LAB_NVME_VFS (NVMe TotalVFs, default 16, max 127),
#      LAB_APPEND (extra kernel command line), LAB_OUTDIR, LAB_TIMEOUT, LAB_MEM.
# Exit: COMMAND's status; 77 (ctest skip) when QEMU or the kernel is not installed (1 if CI=true);
# 124 on timeout; 125 when the guest failed before COMMAND ran.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
outdir=${LAB_OUTDIR:-$repo/build/lab}
state=""
timeout_s=${LAB_TIMEOUT:-150}
name=""
mem=${LAB_MEM:-1G}
nvme_vfs=${LAB_NVME_VFS:-16}
extra_env=()
requires=()

usage() { sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --outdir) outdir=$2; shift 2 ;;
    --state) state=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --require) requires+=("$2"); shift 2 ;;
    --nvme-vfs) nvme_vfs=$2; shift 2 ;;
    -e) [[ "$2" == [A-Za-z_]*=* ]] || usage; extra_env+=("$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown option '$1' (the command goes after --)" >&2; usage ;;
  esac
done
[ $# -gt 0 ] || usage
[[ $nvme_vfs =~ ^[0-9]+$ ]] && [ "$nvme_vfs" -ge 1 ] && [ "$nvme_vfs" -le 127 ] \
  || { echo "run.sh: --nvme-vfs must be 1..127" >&2; exit 2; }
[ -n "$name" ] || name=$(basename "$1")

skip() {
  if [ "${CI:-}" = true ]; then echo "lab: FAIL (CI=true, cannot skip): $*" >&2; exit 1; fi
  echo "lab: SKIP: $*" >&2; exit 77
}
want_qemu=${LAB_QEMU:-$(command -v qemu-system-x86_64 || true)}
[ -n "$want_qemu" ] && [ -x "$want_qemu" ] || skip "qemu-system-x86_64 not installed (scripts/install-deps.sh --test)"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
load_env() {
  KVER=""; VMLINUX=""; INITRD=""; BIOS=""; QEMU=""; QEMU_HAS_IGB=0; QEMU_VERSION=""
  # shellcheck disable=SC1091
  [ -f "$outdir/lab.env" ] && . "$outdir/lab.env"
  [ -n "$KVER" ] && [ -s "$VMLINUX" ] && [ -s "$INITRD" ] && [ "$QEMU" = "$want_qemu" ]
}
if ! load_env; then
  rc=0; "$here/build.sh" "$outdir" || rc=$?
  [ "$rc" = 0 ] || exit "$rc"
  load_env || { echo "lab: build.sh left no usable $outdir/lab.env" >&2; exit 1; }
fi

for r in ${requires[@]+"${requires[@]}"}; do
  case "$r" in
    igb) [ "$QEMU_HAS_IGB" = 1 ] || skip "QEMU $QEMU_VERSION has no igb device (needs QEMU >= 8: bookworm-backports; scripts/install-deps.sh --test)" ;;
    *) echo "run.sh: unknown --require '$r'" >&2; exit 2 ;;
  esac
done

# --- this run's directory (the guest's /lab/out) -------------------------------------------------
mkdir -p "$outdir/runs"
run=$outdir/runs/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$run"
ls -1dt "$outdir"/runs/*/ 2>/dev/null | tail -n +31 | xargs -r rm -rf
ln -sfn "runs/${run##*/}/console.log" "$outdir/console.log"

if [ -n "$state" ]; then mkdir -p "$state"; state=$(cd "$state" && pwd); fi

{
  echo "# written by tests/lab/run.sh"
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C TERM=dumb"
  echo "export LAB=1 LAB_STATE=/lab/state LAB_OUT=/lab/out LAB_IGB=$QEMU_HAS_IGB LAB_NVME_VFS=$nvme_vfs LAB_KVER=$KVER"
  # The guest's scripts skip nothing under CI either (smoke/lib.sh).
  if [ "${CI:-}" = true ]; then echo "export CI=true"; fi
  while IFS= read -r v; do printf 'export %s=%q\n' "$v" "${!v}"; done < <(compgen -e | grep '^SRIOVD_' || true)
  for kv in ${extra_env[@]+"${extra_env[@]}"}; do printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"; done
  printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$run/cmd.sh"

# --- QEMU ----------------------------------------------------------------------------------------
n=$nvme_vfs
# no_timer_check: check_timer() counts jiffies over a short busy wait and, behind an interrupt-
# remapping IOMMU, panics when it saw too few ("timer doesn't work through Interrupt-remapped
# IO-APIC"); under TCG on a loaded 2-core host the vCPU can be descheduled through that window,
# and about one boot in twenty died there. The timer works; the check cannot be trusted under TCG.
args=(
  -nodefaults -no-user-config -display none -no-reboot
  -machine q35 -accel tcg -cpu max -m "$mem" -smp 2
  -device intel-iommu,intremap=on,caching-mode=on
  -kernel "$VMLINUX" -initrd "$INITRD"
  -append "console=ttyS0 intel_iommu=on iommu=pt panic=-1 quiet cryptomgr.notests no_timer_check${LAB_APPEND:+ $LAB_APPEND}"
  -chardev "file,id=con,path=$run/console.log" -serial chardev:con
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
  -virtfs "local,path=$run,mount_tag=labout,security_model=none"
  -device pcie-root-port,id=rp1,chassis=1,slot=1
  -device nvme-subsys,id=s0
  -device "nvme,serial=lab1,subsys=s0,bus=rp1,sriov_max_vfs=$n,sriov_vq_flexible=$((2 * n)),sriov_vi_flexible=$n,max_ioqpairs=$((2 * n + 2)),msix_qsize=$((n + 1))"
)
[ -n "$BIOS" ] && args+=(-bios "$BIOS")
[ -n "$state" ] && args+=(-virtfs "local,path=$state,mount_tag=labstate,security_model=none")
if [ "$QEMU_HAS_IGB" = 1 ]; then
  args+=(-device pcie-root-port,id=rp2,chassis=2,slot=2 -netdev hubport,id=n0,hubid=9 -device igb,netdev=n0,bus=rp2)
fi
printf '%q ' "$QEMU" "${args[@]}" > "$run/qemu.cmdline"; echo >> "$run/qemu.cmdline"

now() { date +%s.%N; }
t0=$(now)
qpid=""
cleanup() {
  [ -n "$qpid" ] || return 0
  kill -TERM "$qpid" 2>/dev/null   # timeout passes TERM on to QEMU
  sleep 0.5
  kill -KILL -- "-$qpid" 2>/dev/null || true   # timeout's own process group: QEMU included
}
trap 'cleanup; exit 143' TERM INT HUP
# `timeout` runs in its own process group, so a killed run.sh must take it down itself (trap).
timeout -k 5 "$timeout_s" "$QEMU" "${args[@]}" </dev/null >"$run/qemu.log" 2>&1 &
qpid=$!
qrc=0; wait "$qpid" || qrc=$?
qpid=""
t1=$(now)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

# --- results -------------------------------------------------------------------------------------
[ -f "$run/stdout" ] && cat "$run/stdout"
[ -f "$run/stderr" ] && cat "$run/stderr" >&2
status=$(cat "$run/status" 2>/dev/null || true)
timing=$(cat "$run/timing" 2>/dev/null || true)
tv() { echo "$timing" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
if [ -n "$timing" ]; then
  ready=$(tv ready); cmd_s=$(awk -v a="$(tv ready)" -v b="$(tv end)" 'BEGIN { printf "%.2f", b - a }')
  boot=$(awk -v w="$wall" -v c="$cmd_s" 'BEGIN { printf "%.2f", w - c }')
else
  ready=-; cmd_s=-; boot=-
fi
printf '%s\t%s\t%s\tboot=%s\tready_uptime=%s\tcommand=%s\ttotal=%s\tstatus=%s\n' \
  "$(date -Is)" "$name" "$KVER" "$boot" "$ready" "$cmd_s" "$wall" "${status:-none}" >> "$outdir/timings.tsv"

if [ -z "$status" ]; then
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "lab: TIMEOUT: $name did not finish within ${timeout_s}s; QEMU killed (console: $run/console.log)" >&2
    tail -n 20 "$run/console.log" >&2 2>/dev/null || true
    exit 124
  fi
  echo "lab: ERROR: the guest gave no exit status (QEMU exit $qrc; console: $run/console.log)" >&2
  cat "$run/qemu.log" >&2 2>/dev/null || true
  tail -n 30 "$run/console.log" >&2 2>/dev/null || true
  exit 125
fi
if [ "$status" = 125 ] && [ -f "$run/lab-error" ]; then
  cat "$run/lab-error" >&2
  tail -n 30 "$run/console.log" >&2 2>/dev/null || true
fi
echo "lab: $name: exit $status; boot ${boot}s (guest ready at ${ready}s uptime), command ${cmd_s}s, total ${wall}s [QEMU $QEMU_VERSION, kernel $KVER]" >&2
exit "$status"
