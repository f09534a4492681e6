# Helpers for the lab smoke tests (bash, sourced inside the guest).
# shellcheck shell=bash
set -uo pipefail

read -r LAB_T0 _ < /proc/uptime
# since: seconds since the test started (no fork: every exec costs ~50 ms of TCG time).
since() { local now; read -r now _ < /proc/uptime; awk_free_sub "$now" "$LAB_T0"; }
awk_free_sub() {  # A B (both "s.cc") -> A-B as s.cc
  local a=${1/./} b=${2/./} d
  d=$(( 10#$a - 10#$b )); printf '%d.%02d' $((d / 100)) $((d % 100))
}
lab_failures=0
lab_checks=0

pass() { lab_checks=$((lab_checks + 1)); echo "ok   [$(since)s] $*"; }
fail() { lab_checks=$((lab_checks + 1)); lab_failures=$((lab_failures + 1)); echo "FAIL [$(since)s] $*"; }
# skip_test REASON: the test cannot run here: exit 77 (a ctest skip), or 1 under CI=true (run.sh
# passes it into the guest), where every test must run.
skip_test() {
  if [ "${CI:-}" = true ]; then echo "lab: FAIL (CI=true, cannot skip): $*"; exit 1; fi
  echo "lab: SKIP: $*"; exit 77
}
# left_out REASON: a part of a test cannot run here and is left out; a failed check under CI=true.
left_out() {
  if [ "${CI:-}" = true ]; then fail "CI=true, cannot leave out: $*"; else echo "note: left out: $*"; fi
}
# expect DESCRIPTION EXPECTED ACTUAL
expect() { if [ "$2" = "$3" ]; then pass "$1 ($3)"; else fail "$1: expected '$2', got '$3'"; fi; }
# expect_match DESCRIPTION REGEX TEXT
expect_match() { if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1: /$2/ not in: $3"; fi; }

# errno_name MESSAGE: glibc's strerror text (what bash and iproute2 print) -> E-name.
errno_name() {
  case "$1" in
    *"Device or resource busy"*) echo EBUSY ;;
    *"Numerical result out of range"*) echo ERANGE ;;
    *"Invalid argument"*) echo EINVAL ;;
    *"Operation not supported"*) echo EOPNOTSUPP ;;
    *"Protocol not supported"*) echo EPROTONOSUPPORT ;;
    *"No such device"*) echo ENODEV ;;
    *"No such file or directory"*) echo ENOENT ;;
    *"Operation not permitted"*) echo EPERM ;;
    *"Permission denied"*) echo EACCES ;;
    *"Resource temporarily unavailable"*) echo EAGAIN ;;
    *"Cannot allocate memory"*) echo ENOMEM ;;
    *"I/O error"* | *"Input/output error"*) echo EIO ;;
    *) echo "?($1)" ;;
  esac
}
# sysfs_write VALUE FILE: writes with bash (not dash, whose echo reports every failure as EIO);
# prints OK or the errno name.
sysfs_write() {
  local err
  if err=$( { printf '%s\n' "$1" > "$2"; } 2>&1 ); then echo OK; else errno_name "$err"; fi
}
# iplink ARGS...: runs `ip link ARGS`; prints OK or the errno name of the kernel's answer.
iplink() {
  local err
  if err=$(ip link "$@" 2>&1); then echo OK; else errno_name "$err"; fi
}

pci_by_id() {  # VENDOR DEVICE -> first matching PCI address (PFs only)
  local d
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ] && [ ! -e "$d/physfn" ] \
      && { basename "$d"; return 0; }
  done
  return 1
}
driver_of() { local l; l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) && basename "$l" || echo none; }
group_of() { basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"; }

lab_done() {
  echo "lab: $lab_checks checks, $lab_failures failed, $(since)s in the guest"
  [ "$lab_failures" = 0 ]
}
