#!/usr/bin/env bash
# Two builds of sriovd side by side on the same machine in the same run: did a change make any
# figure worse? Each figure is measured for BEFORE and AFTER alternately, in rounds, on the same
# simulated trees (written by AFTER's sriovd-fakehost), so load on the machine falls on both.
#   [SRIOVD_COMPARE_ROUNDS=N] bench/compare_builds.sh BEFORE_BUILD AFTER_BUILD [LABEL]
# The builds are build directories (scripts/build.sh) of any two commits; the daemon is found in
# daemon/ (since the composition root moved there) or agent/ (before). Prints a markdown section
# and writes it into bench/RESULTS.md between the compare markers (bench/run.sh keeps it).
#
# Per fixture layout (large: 1,040 functions; dual-socket: 30; igb: a small host):
#   - `sriovd inventory` output: byte-identical between the two builds, or the script fails;
#   - cold inventory (whole process) with lspci as the common peer: hyperfine medians;
#   - start to READY=1 and RSS when ready (AFTER's sriovd-bench-startup runs both daemons).
# On the large host: GET /v1/devices/{address} requests/s (wrk), and durable allocate + release
# cycles/s in the netdev and vfio pools (dual-socket host, AFTER's sriovd-bench-alloc client).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
before=$(cd "${1:?usage: compare_builds.sh BEFORE_BUILD AFTER_BUILD [LABEL]}" && pwd)
after=$(cd "${2:?usage: compare_builds.sh BEFORE_BUILD AFTER_BUILD [LABEL]}" && pwd)
label=${3:-}
# Rounds of the REST and allocation figures (each round runs both builds): their run-to-run
# spread on a 2-core machine is several percent, so more rounds give a steadier median.
rounds=${SRIOVD_COMPARE_ROUNDS:-2}
for tool in hyperfine wrk lspci curl python3; do
  command -v "$tool" >/dev/null || { echo "compare_builds: $tool missing (scripts/install-deps.sh --test)" >&2; exit 1; }
done
daemon_of() {
  local b=$1
  for p in daemon/sriovd agent/sriovd; do
    if [ -x "$b/$p" ]; then echo "$b/$p"; return; fi
  done
  echo "compare_builds: no sriovd in $b/daemon or $b/agent" >&2
  exit 1
}
old=$(daemon_of "$before")
new=$(daemon_of "$after")
fakehost="$after/tests/fixtures/sriovd-fakehost"
startup="$after/bench/sriovd-bench-startup"
alloc="$after/bench/sriovd-bench-alloc"
cli="$after/cli/sriovd-cli"
for b in "$fakehost" "$startup" "$alloc" "$cli"; do
  [ -x "$b" ] || { echo "compare_builds: $b missing (build AFTER with its bench targets)" >&2; exit 1; }
done
work=$(mktemp -d /dev/shm/sriovd-compare.XXXXXX 2>/dev/null || mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
med() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
fmt() { python3 -c "import sys; print(f'{float(sys.argv[1]):.{int(sys.argv[2])}f}')" "$1" "$2"; }
jget() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])" "$1" "$2"; }
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

out="$work/section.md"
{
  echo "<!-- compare:begin (written by bench/compare_builds.sh) -->"
  echo "## Before and after, in one run"
  echo
  echo "\`SRIOVD_COMPARE_ROUNDS=$rounds bench/compare_builds.sh BEFORE AFTER\`${label:+ ($label)} on $(date -u '+%F %H:%M') UTC, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start."
  echo "BEFORE: \`$(git -C "$before/.." log -1 --format='%h %s' 2>/dev/null | cut -c1-90 || echo "$before")\`; AFTER: \`$(git -C "$after/.." log -1 --format='%h %s' 2>/dev/null | cut -c1-90 || echo "$after")\`."
  echo "Each figure alternates BEFORE and AFTER in rounds; AFTER/BEFORE below 1 is faster (time) or above 1 is faster (rates)."
  echo
  echo "| layout | functions | inventory output | lspci | inventory BEFORE | inventory AFTER | AFTER/BEFORE | start to ready BEFORE | AFTER | RSS BEFORE | AFTER |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$out"

for profile in large dual-socket igb; do
  sys="$work/$profile/sys"
  "$fakehost" --profile "$profile" --out "$sys" >/dev/null
  functions=$(find "$sys/bus/pci/devices" -mindepth 1 -maxdepth 1 | wc -l)
  # The same bytes, or the change altered behaviour.
  "$old" inventory --sysfs-root "$sys" >"$work/old.txt"
  "$new" inventory --sysfs-root "$sys" >"$work/new.txt"
  if cmp -s "$work/old.txt" "$work/new.txt"; then
    same="identical ($(wc -c <"$work/new.txt") bytes)"
  else
    diff "$work/old.txt" "$work/new.txt" | head -20 >&2
    echo "compare_builds: sriovd inventory output differs on the $profile layout" >&2
    exit 1
  fi
  lspci_cmd="lspci -vmm -D -k -A linux-sysfs -O sysfs.path=$sys/bus/pci"
  l=() o=() n=()
  for round in 1 2 3; do
    # Alternate which build hyperfine runs first.
    if [ $((round % 2)) = 1 ]; then order=("$old" "$new"); else order=("$new" "$old"); fi
    hyperfine -N -w 5 -r 30 --export-json "$work/h.json" "$lspci_cmd" \
      "${order[0]} inventory --sysfs-root $sys" "${order[1]} inventory --sysfs-root $sys" >/dev/null 2>&1
    read -r ml m1 m2 < <(python3 -c "import json; r=json.load(open('$work/h.json'))['results']; print(*[x['median']*1000 for x in r])")
    l+=("$ml")
    if [ "${order[0]}" = "$old" ]; then o+=("$m1"); n+=("$m2"); else n+=("$m1"); o+=("$m2"); fi
  done
  lspci_ms=$(med "${l[@]}"); old_ms=$(med "${o[@]}"); new_ms=$(med "${n[@]}")
  so=() sn=() ro=() rn=()
  for round in 1 2 3; do
    a=$("$startup" "$old" "$sys" 7); b=$("$startup" "$new" "$sys" 7)
    so+=("$(jget "$a" start_to_ready_ms)"); ro+=("$(jget "$a" rss_kib)")
    sn+=("$(jget "$b" start_to_ready_ms)"); rn+=("$(jget "$b" rss_kib)")
  done
  printf '| %s | %s | %s | %s ms | %s ms | %s ms | %sx | %s ms | %s ms | %s MiB | %s MiB |\n' \
    "$profile" "$functions" "$same" "$(fmt "$lspci_ms" 1)" "$(fmt "$old_ms" 1)" "$(fmt "$new_ms" 1)" \
    "$(ratio "$new_ms" "$old_ms")" "$(fmt "$(med "${so[@]}")" 1)" "$(fmt "$(med "${sn[@]}")" 1)" \
    "$(fmt "$(python3 -c "print($(med "${ro[@]}")/1024)")" 1)" "$(fmt "$(python3 -c "print($(med "${rn[@]}")/1024)")" 1)" >>"$out"
done

# GET /v1/devices/{address} on the large host: each daemon in turn, $rounds rounds.
sys="$work/large/sys"
get_rps() {  # DAEMON → requests/s
  local port; port=$(free_port)
  rm -rf "$work/state"
  "$1" serve --sysfs-root "$sys" --state-dir "$work/state" --listen "unix:$work/s.sock" \
    --listen "tcp:127.0.0.1:$port" 2>"$work/serve.log" &
  pid=$!
  "$cli" --socket "$work/s.sock" --wait 10 host >/dev/null
  local url="http://127.0.0.1:$port/v1/devices/$get_addr"
  curl -sf "$url" >/dev/null
  wrk -t2 -c64 -d2s "$url" >/dev/null
  wrk -t2 -c64 -d8s "$url" | awk '/Requests\/sec/ {print $2}'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
get_addr=$(find "$sys/bus/pci/devices" -mindepth 1 -maxdepth 1 -name '*' -exec test -e '{}/physfn' ';' -print | sort | sed -n 6p | xargs basename)
go=() gn=()
for round in $(seq "$rounds"); do
  # Which build goes first swaps each round: a warm cache or a slower moment falls on both.
  if [ $((round % 2)) = 1 ]; then
    go+=("$(get_rps "$old")"); gn+=("$(get_rps "$new")")
  else
    gn+=("$(get_rps "$new")"); go+=("$(get_rps "$old")")
  fi
done
get_old=$(med "${go[@]}"); get_new=$(med "${gn[@]}")

# Durable allocate + release cycles (the figure of bench/alloc_cycles.sh, 4 clients), per mode.
cycles() {  # DAEMON MODE → cycles/s
  rm -rf "$work/alloc" "$work/astate"
  "$fakehost" --profile dual-socket --out "$work/alloc" >/dev/null
  mkdir -p "$work/astate"
  "$1" serve --sim --sysfs-root "$work/alloc" --state-dir "$work/astate" --listen "unix:$work/a.sock" 2>"$work/alloc.log" &
  pid=$!
  "$cli" --socket "$work/a.sock" --wait 10 pool create cx6 --pf ens3f0 --mode "$2" >/dev/null
  "$alloc" "$work/a.sock" cx6 1 4 >/dev/null
  local r; r=$("$alloc" "$work/a.sock" cx6 8 4)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  jget "$r" cycles_per_s
}
declare -A co=() cn=()
for mode in netdev vfio; do
  a=() b=()
  for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then
      a+=("$(cycles "$old" "$mode")"); b+=("$(cycles "$new" "$mode")")
    else
      b+=("$(cycles "$new" "$mode")"); a+=("$(cycles "$old" "$mode")")
    fi
  done
  co[$mode]=$(med "${a[@]}"); cn[$mode]=$(med "${b[@]}")
done
{
  echo
  echo "| figure | BEFORE | AFTER | AFTER/BEFORE |"
  echo "|---|---|---|---|"
  echo "| GET /v1/devices/{address}, large host (\`wrk -t2 -c64 -d8s\`, median of $rounds) | $(fmt "$get_old" 0) req/s | $(fmt "$get_new" 0) req/s | $(ratio "$get_new" "$get_old")x |"
  for mode in netdev vfio; do
    echo "| allocate + release, $mode pool, 4 clients (\`sriovd-bench-alloc SOCKET cx6 8 4\`, median of $rounds) | $(fmt "${co[$mode]}" 0) cycles/s | $(fmt "${cn[$mode]}" 0) cycles/s | $(ratio "${cn[$mode]}" "${co[$mode]}")x |"
  done
  echo
  echo "Inventory: \`hyperfine -N -w 5 -r 30\` of lspci and both builds' \`sriovd inventory --sysfs-root <root>\`, medians of 3 rounds (the builds' order swapped each round). Start to ready: \`sriovd-bench-startup SRIOVD <root> 7\`, median of 3 rounds."
  echo "<!-- compare:end -->"
} >>"$out"

"$here/bench/put_section.sh" compare "$out"
cat "$out"
