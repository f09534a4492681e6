#!/usr/bin/env bash
# Lab plumbing test, run on the host: tests/lab/run.sh passes the exit status, stdout and stderr,
# the cwd and the environment through; --state persists across boots; --timeout kills QEMU.
#   plumbing.sh OUTDIR
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: plumbing.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
run() { bash "$here/run.sh" --outdir "$out" "$@"; }
fails=0; checks=0
expect() { checks=$((checks + 1)); if [ "$2" = "$3" ]; then echo "ok   $1 ($3)"; else echo "FAIL $1: expected '$2', got '$3'"; fails=$((fails + 1)); fi; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/cwd dir" "$tmp/state"

# Boot 1: status, streams, cwd (with a space), -e, SRIOVD_* forwarding, arguments with spaces.
rc=0
(cd "$tmp/cwd dir" && SRIOVD_LAB_PROBE='a b' run --name plumbing-1 --state "$tmp/state" -e 'X=1 2' -- \
   bash -c 'echo "out:$PWD:$X:$SRIOVD_LAB_PROBE:$LAB:$1"; echo err >&2; echo kept > /lab/state/f; \
            touch /etc/lab-overlay-write; exit 42' arg0 "two words") >"$tmp/o" 2>"$tmp/e" || rc=$?
[ "$rc" = 77 ] && { cat "$tmp/e"; exit 77; }
expect "exit status passed through" 42 "$rc"
expect "stdout" "out:$tmp/cwd dir:1 2:a b:1:two words" "$(cat "$tmp/o")"
expect "stderr carries the command's stderr" err "$(grep -v '^lab: ' "$tmp/e")"
expect "timing line" 1 "$(grep -c '^lab: plumbing-1: exit 42; boot ' "$tmp/e")"
expect "state written through to the host" kept "$(cat "$tmp/state/f" 2>/dev/null)"
expect "overlay writes stay in the guest" no "$([ -e /etc/lab-overlay-write ] && echo yes || echo no)"

# Boot 2: the state directory is still there; the kernel's module autoloading reaches the chroot.
rc=0
o=$(run --name plumbing-2 --state "$tmp/state" -- bash -c 'cat /lab/state/f; ls /lab/out/cmd.sh;
      ip link add labbr0 type bridge && echo bridge-autoloaded; exit 0' 2>/dev/null) || rc=$?
expect "second boot exit" 0 "$rc"
expect "state kept across boots" "kept /lab/out/cmd.sh bridge-autoloaded" "$(echo $o)"

qemus_left() {
  local c n=0
  for c in /proc/[0-9]*/cmdline; do
    [[ "$(tr '\0' ' ' < "$c" 2>/dev/null)" == *qemu-system*"path=$out/runs/"* ]] && n=$((n + 1))
  done
  echo "$n"
}

# Boot 3: the hard timeout kills QEMU and says so.
rc=0; t0=$(date +%s)
run --name plumbing-timeout --timeout 12 -- sleep 1000 >/dev/null 2>"$tmp/e3" || rc=$?
expect "timeout exit" 124 "$rc"
expect "timeout reported" 1 "$(grep -c 'TIMEOUT' "$tmp/e3")"
expect "no QEMU left behind" 0 "$(qemus_left)"
echo "timeout run took $(( $(date +%s) - t0 ))s"

# Boot 4: run.sh stopped by SIGTERM (as ctest does on its own timeout) takes QEMU down with it.
bash "$here/run.sh" --outdir "$out" --name plumbing-sigterm -- sleep 1000 >/dev/null 2>&1 & rpid=$!
sleep 2; kill -TERM "$rpid"; rc=0; wait "$rpid" || rc=$?
sleep 0.5
expect "SIGTERM exit" 143 "$rc"
expect "no QEMU left after SIGTERM" 0 "$(qemus_left)"

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" = 0 ]
