#!/usr/bin/env bash
# Soak: mixed load on the simulated 1,040-function host for SECONDS (default 600), with 64 and
# then 256 clients plus 8 event streams each time (targets: no errors besides intended 409s, no
# request over 1 s, RSS growth after warm-up <= 1 MiB, open descriptors not growing). Prints a
# markdown section for bench/RESULTS.md (bench/put_section.sh soak FILE puts it in).
#   bench/soak.sh BUILD_DIR [SECONDS] [CLIENTS...]
set -euo pipefail
build=$(cd "$1" && pwd)
seconds=${2:-600}
shift $(($# < 2 ? $# : 2))
counts=("${@:-64 256}")
read -r -a counts <<<"${counts[*]}"
work=$(mktemp -d /dev/shm/sriovd-soak.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
warmup=60
rows=
for clients in "${counts[@]}"; do
  rm -rf "$work/sys" "$work/state"
  "$build/tests/fixtures/sriovd-fakehost" --profile large --out "$work/sys" >/dev/null
  "$build/daemon/sriovd" serve --sim --sysfs-root "$work/sys" --state-dir "$work/state" \
    --listen "unix:$work/s.sock" 2>"$work/log" &
  pid=$!
  "$build/cli/sriovd-cli" --socket "$work/s.sock" --wait 30 pool create soak --pf ens1f0 --mode netdev >/dev/null
  set +e
  "$build/bench/sriovd-bench-soak" "$work/s.sock" "$pid" "$seconds" "$warmup" "$clients" 8 soak ens2f0 \
    >"$work/soak-$clients.json"
  set -e
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  cp "$work/soak-$clients.json" "$build/soak-$clients.json"
  rows+=$(python3 - "$work/soak-$clients.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = sum(n for s, n in d["statuses"].items() if s.startswith("2"))
c409 = d["statuses"].get("409", 0)
grow = (d["rss_max_after_kib"] - d["rss_warm_kib"]) / 1024
print(f"| {d['clients']} + {d['streams']} streams | {d['requests']:,} ({d['requests_per_s']:.0f}/s) | {ok:,} | {c409:,} | "
      f"{d['unexpected']} | {d['p50_ms']:.2f} / {d['p99_ms']:.1f} / {d['max_ms']:.0f} ms | {d['over_1s']} | "
      f"{d['events']:,} ({d['streams_ended_early']} ended early) | {d['rss_warm_kib']/1024:.1f} → {d['rss_max_after_kib']/1024:.1f} MiB (**{grow:+.2f} MiB**) | "
      f"{d['fds_warm']} → {d['fds_max_after']} (end {d['fds_end']}) |")
PY
)$'\n'
done
echo "<!-- soak:begin (written by bench/soak.sh) -->"
echo
echo "## Soak: mixed load on the 1,040-function host (targets: no errors but intended 409s, no request over 1 s, RSS +<= 1 MiB after warm-up, descriptors flat)"
echo
echo "\`bench/soak.sh build $seconds\`: \`sriovd serve --sim\` on the \`large\` host, a netdev pool of ens1f0's 63 VFs; \`sriovd-bench-soak\` runs each client on its own keep-alive connection for $seconds s: single devices 55%, the pool 10%, the host 5%, one PF's VFs 2%, the whole list 1%, allocate + release 15% (409 when all 63 are leased is intended), a VF attribute change on ens2f0's VFs 12%; 8 clients follow \`GET /v1/events\` throughout. RSS and descriptors every 5 s; the baseline is the sample at the end of the ${warmup} s warm-up; max_connections is the default 64."
echo
echo "| clients | requests | 2xx | 409 | other answers | p50 / p99 / max | over 1 s | events received | RSS after warm-up → max | descriptors after warm-up → max |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s' "$rows"
echo "<!-- soak:end -->"
