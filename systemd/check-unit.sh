#!/usr/bin/env bash
# Checks the sriovd unit the way systemd would read it, without systemd running as PID 1:
#   systemd/check-unit.sh verify   UNIT_IN BINDIR MANDIR   systemd-analyze verify, no output allowed
#   systemd/check-unit.sh security UNIT_IN BINDIR [MAX]    exposure (systemd-analyze security
#                                                           --offline) at most MAX (default 2.0)
#   systemd/check-unit.sh exposure UNIT_IN BINDIR          prints the exposure figure
# UNIT_IN is systemd/sriovd.service.in; its ExecStart is pointed at BINDIR, where the built
# binaries are (systemd-analyze verify checks that the command exists). MANDIR holds the
# generated man pages the unit's Documentation= names (verify runs man(1) on them).
set -euo pipefail
mode=$1 unit_in=$2 bindir=$3
# Missing systemd-analyze is a skip (77), except under CI=true, where every test must run.
if ! command -v systemd-analyze >/dev/null; then
  echo "check-unit: systemd-analyze missing (systemd; scripts/install-deps.sh --test)" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/sriovd-unit.XXXXXX")
trap 'rm -rf "$work"' EXIT
unit="$work/sriovd.service"
sed "s|@SRIOVD_BINDIR@|$bindir|g" "$unit_in" > "$unit"

case "$mode" in
  verify)
    mandir=$4
    out=$(MANPATH="$mandir" systemd-analyze verify "$unit" 2>&1) || { echo "$out"; exit 1; }
    if [ -n "$out" ]; then echo "$out"; echo "check-unit: systemd-analyze verify printed warnings" >&2; exit 1; fi
    echo "systemd-analyze verify: clean"
    ;;
  security|exposure)
    report=$(systemd-analyze security --offline=true "$unit" 2>&1 || true)
    figure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
    [ -n "$figure" ] || { echo "$report"; echo "check-unit: no exposure figure" >&2; exit 1; }
    if [ "$mode" = exposure ]; then echo "$figure"; exit 0; fi
    max=${4:-2.0}
    grep '✗' <<<"$report" || true
    echo "exposure $figure (at most $max)"
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$figure" "$max"
    ;;
  *) echo "check-unit: unknown mode $mode" >&2; exit 2 ;;
esac
