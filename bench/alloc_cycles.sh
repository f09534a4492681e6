#!/usr/bin/env bash
# Durable allocate + release cycles over REST on a simulated host (target >= 1,000 cycles/s with
# p99 <= 5 ms). Prints a markdown section for bench/RESULTS.md.
#   bench/alloc_cycles.sh BUILD_DIR
# The daemon runs `serve --sim` on the dual-socket profile; the pool is the 8 VFs of ens3f0. Each
# cycle is POST /v1/allocations (vfio mode: driver_override, unbind, bind; the lease synced) +
# DELETE (VF attribute reset, function reset, rebind; the release synced).
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /dev/shm/sriovd-alloc.XXXXXX)
disk=$(mktemp -d "$build/alloc-bench-state.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work" "$disk"; }
trap cleanup EXIT
run() {  # STATE_DIR CLIENTS → JSON line
  rm -rf "$work/sys" "$1"/*
  "$build/tests/fixtures/sriovd-fakehost" --profile dual-socket --out "$work/sys" >/dev/null
  "$build/agent/sriovd" serve --sim --sysfs-root "$work/sys" --state-dir "$1" --listen "unix:$work/s.sock" 2>"$work/log" &
  pid=$!
  "$build/cli/sriovd-cli" --socket "$work/s.sock" --wait 10 pool create cx6 --pf ens3f0 >/dev/null
  "$build/bench/sriovd-bench-alloc" "$work/s.sock" cx6 1 "$2" >/dev/null  # warm-up
  local t0 t1
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")  # the daemon's CPU time, clock ticks
  "$build/bench/sriovd-bench-alloc" "$work/s.sock" cx6 8 "$2" > "$work/result.json"
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  python3 -c "import json,os,sys; d=json.load(open(sys.argv[1])); d['cpu_ms_per_cycle']=(int(sys.argv[3])-int(sys.argv[2]))*1000/os.sysconf('SC_CLK_TCK')/max(1,d['cycles']); print(json.dumps(d))" \
    "$work/result.json" "$t0" "$t1"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
fsync_us=$(python3 - "$disk" <<'PY'
import os, sys, time
fn = os.path.join(sys.argv[1], "probe")
fd = os.open(fn, os.O_WRONLY | os.O_CREAT, 0o600)
t = time.perf_counter()
for _ in range(100):
    os.write(fd, b"x" * 100); os.fsync(fd)
print(round((time.perf_counter() - t) / 100 * 1e6))
os.close(fd); os.unlink(fn)
PY
)
field() { python3 -c "import json,sys; print(round(json.loads(sys.argv[1])[sys.argv[2]], 2))" "$1" "$2"; }
echo
echo "## Durable allocate + release cycles over REST (target >= 1,000 cycles/s, p99 <= 5 ms)"
echo
echo "\`bench/alloc_cycles.sh build\`: \`sriovd serve --sim\` on the dual-socket host, a vfio pool of the 8 VFs of ens3f0, \`build/bench/sriovd-bench-alloc SOCKET cx6 8 CLIENTS\` (POST /v1/allocations then DELETE, over the unix socket with keep-alive, 8 s after a 1 s warm-up). Every lease is committed to SQLite and synced (WAL, synchronous=FULL) before the answer; the operation journal's steps in between are written without a sync (they only have to outlive the process)."
echo
echo "| state directory | clients | cycles/s | p50 cycle | p99 cycle | daemon CPU per cycle |"
echo "|---|---|---|---|---|---|"
for clients in 1 4; do
  r=$(run "$work/state" "$clients")
  echo "| tmpfs | $clients | $(field "$r" cycles_per_s) | $(field "$r" p50_ms) ms | $(field "$r" p99_ms) ms | $(field "$r" cpu_ms_per_cycle) ms |"
done
r=$(run "$disk" 4)
echo "| this machine's disk (one fsync: ${fsync_us} µs) | 4 | $(field "$r" cycles_per_s) | $(field "$r" p50_ms) ms | $(field "$r" p99_ms) ms | $(field "$r" cpu_ms_per_cycle) ms |"
