#!/usr/bin/env bash
# Builds every libFuzzer target with clang 16+ (ASan+UBSan, in build-fuzz/ or $SRIOVD_FUZZ_BUILD_DIR)
# and runs them one after another, MINUTES shared between them, then writes the results as one
# table into bench/RESULTS.md, between the fuzzing markers (a run of every target replaces the
# table; a run with --only replaces its targets' rows).
#
#   scripts/fuzz.sh [--min-execs N] [--cap SECONDS] [--time TARGET=SECONDS]... [--only REGEX]
#                   [--no-results] [--no-build] MINUTES
#
# --min-execs N   a target that has run fewer than N inputs when its share is up goes on until it
#                 has (slow targets, such as schema validation, need more than an even share)
# --cap S         but no target runs longer than S seconds in all (the table shows the shortfall)
# --time T=S      target T runs S seconds instead of its share (repeatable)
# --only REGEX    run only the targets whose name matches
# --no-results    leave bench/RESULTS.md alone (a quick local run)
# --no-build      run what build-fuzz/ holds as it is (another build may be under way there)
#
# Each target starts from its seed corpus (the CORPUS of sriovd_fuzzer, read only) and writes
# what it finds into a scratch directory, build-fuzz/fuzz-scratch/TARGET, emptied at every run.
# A crash, leak or timeout stops that target, keeps the reproducer in
# build-fuzz/fuzz-crashes/TARGET/ and makes the script exit 1 once every target has run. To make
# a finding a seed, copy it from the scratch directory into the corpus: the normal build replays
# every corpus as a test.
#
# One fuzzer runs at a time: the machine is shared, and each target's exec/s is comparable
# between runs only if it had a core to itself. Run it niced: `nice -n 10 scripts/fuzz.sh 30`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

usage() { sed -n '7,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

min_execs=0
cap=0
only=.
write_results=1
do_build=1
declare -A seconds_for=()
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --min-execs) min_execs=${2:?}; shift 2 ;;
    --cap) cap=${2:?}; shift 2 ;;
    --time) seconds_for[${2%%=*}]=${2#*=}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --no-results) write_results=0; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
minutes=$1
case "$minutes$min_execs$cap" in *[!0-9]*) usage ;; esac

# What each target reads, for the table; a target not listed here shows its source's first line.
declare -A parses=(
  [fuzz_rtnl]="rtnetlink messages: RTM_NEWLINK with VF info, NLMSG_ERROR/DONE, addresses, routes, RTM_SETLINK, whole datagrams"
  [fuzz_sysfs_decode]="sysfs attribute text and link targets, PCI addresses"
  [fuzz_uevent]="kernel uevent datagrams (netlink kobject_uevent)"
  [fuzz_pool]="pool definitions (JSON) and pf_names ranges"
  [fuzz_config]="the configuration file"
  [fuzz_tokens]="the token file and presented bearer tokens"
  [fuzz_listen]="listen addresses (unix:PATH, tcp:HOST:PORT, tcp:[IPv6]:PORT)"
  [fuzz_sse]="Server-Sent Events streams, split anywhere"
  [fuzz_links]="relative link targets of a sysfs tree"
  [fuzz_domain_xml]="libvirt domain XML"
  [fuzz_k8s_parsers]="sriovd-k8s's HTTP response reader and pool, lease and device JSON"
  [fuzz_mac_address]="MAC address text"
  [fuzz_kstrtox]="what is written to sysfs attributes, as the simulator's kstrtox emulation parses it"
  [fuzz_request_bodies]="REST request bodies: schema validation, then the VfConfig, pool and allocation decoding"
)

# clang 16 or newer ($SRIOVD_FUZZ_CXX to choose): the code captures structured bindings in
# lambdas (C++20), which clang 14, Debian 12's default, refuses. Debian 12 has clang-16, with
# libFuzzer in libclang-rt-16-dev.
cxx=${SRIOVD_FUZZ_CXX:-}
if [ -z "$cxx" ]; then
  for v in 19 18 17 16; do
    if command -v "clang++-$v" >/dev/null; then cxx=clang++-$v; break; fi
  done
fi
if [ -z "$cxx" ]; then
  echo "fuzz.sh: needs clang 16 or newer with libFuzzer (apt-get install clang-16 libclang-rt-16-dev)" >&2
  exit 2
fi
cc=${cxx/clang++/clang}

build=${SRIOVD_FUZZ_BUILD_DIR:-build-fuzz}
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=true
if [ "$do_build" = 1 ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSRIOVD_FUZZ=ON -DSRIOVD_BENCH=OFF \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" >/dev/null
fi

targets=()
for m in "$build"/fuzzers/*.txt; do
  name=$(basename "$m" .txt)
  [[ $name =~ $only ]] || continue
  # Without a build, only the targets built already.
  if [ "$do_build" = 0 ] && [ ! -x "$(head -1 "$m")" ]; then continue; fi
  targets+=("$name")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz target matches '$only'" >&2; exit 2; }
if [ "$do_build" = 1 ]; then
  cmake --build "$build" -j"${SRIOVD_BUILD_JOBS:-$(nproc)}" --target "${targets[@]}"
fi

share=$(( minutes * 60 / ${#targets[@]} ))
[ "$share" -ge 1 ] || share=1
scratch_root="$build/fuzz-scratch"
crash_root="$build/fuzz-crashes"
logs="$build/fuzz-logs"
mkdir -p "$logs"
# UBSan only reports by default; halting makes undefined behaviour a finding, with its input.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rows=()
failed=()

# final_stat NAME LOG: a libFuzzer final statistic (0 if the run ended before printing it).
final_stat() { awk -v k="stat::$1:" '$1 == k { v = $2 } END { print v + 0 }' "$2"; }
# The last status line's corpus ("corp: 123/45Kb" → "123") and edge coverage.
status_field() { awk -v k="$1:" '{ for (i = 1; i < NF; ++i) if ($i == k) v = $(i + 1) } END { sub("/.*", "", v); print v + 0 }' "$2"; }

for t in "${targets[@]}"; do
  { read -r binary; read -r corpus || true; } <"$build/fuzzers/$t.txt"
  scratch="$scratch_root/$t"
  crashes="$crash_root/$t"
  rm -rf "$scratch"
  mkdir -p "$scratch" "$crashes"
  # Reproducers of earlier runs stay; this run's are those newer than the mark.
  touch "$logs/$t.start"
  seeds=0
  dirs=("$scratch")
  if [ -n "$corpus" ] && [ -d "$corpus" ]; then
    seeds=$(find "$corpus" -type f | wc -l)
    dirs+=("$corpus")
  fi
  seconds=${seconds_for[$t]:-$share}
  # An input that runs 30 s is a hang and a finding; tighter limits were crossed by sound inputs
  # when other work shared the cores.
  common=(-print_final_stats=1 -timeout=30 -rss_limit_mb=2048 -artifact_prefix="$crashes/")
  echo "== $t: ${seconds}s (at least $min_execs inputs), seeds from ${corpus:-(none)}" >&2
  execs=0 status=0 round=0
  log="$logs/$t.0.log"
  start=$SECONDS
  "$binary" "${common[@]}" -max_total_time="$seconds" "${dirs[@]}" >"$log" 2>&1 || status=$?
  while :; do
    execs=$(( execs + $(final_stat number_of_executed_units "$log") ))
    [ "$status" -eq 0 ] && [ "$execs" -lt "$min_execs" ] || break
    limit=()
    if [ "$cap" -gt 0 ]; then
      left=$(( cap - (SECONDS - start) ))
      [ "$left" -gt 0 ] || break
      limit=(-max_total_time="$left")
    fi
    round=$(( round + 1 ))
    log="$logs/$t.$round.log"
    "$binary" "${common[@]}" "${limit[@]}" -runs=$(( min_execs - execs )) "${dirs[@]}" >"$log" 2>&1 || status=$?
  done
  elapsed=$(( SECONDS - start ))
  # Crashes, leaks, timeouts and out-of-memory inputs; not the slow-unit-* files libFuzzer keeps
  # for inputs over 10 s, which a starved core produces from sound inputs.
  found=$(find "$crashes" -type f -newer "$logs/$t.start" ! -name 'slow-unit-*' | wc -l)
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    echo "!! $t exited $status; reproducers in $crashes, log $log" >&2
    grep -m1 -E '^==[0-9]+==ERROR|^SUMMARY|runtime error' "$log" >&2 || true
  fi
  # Over the target's whole time, as libFuzzer's own average (corpus loading included).
  per_sec=$(( execs / (elapsed > 0 ? elapsed : 1) ))
  corp=$(status_field corp "$log")
  cov=$(status_field cov "$log")
  what=${parses[$t]:-"(not described in fuzz.sh)"}
  rows+=("| $t | $what | $(printf "%'d" "$execs") | $(printf "%'d" "$per_sec") | ${elapsed} s | $found | $seeds → $corp | $cov |")
  echo "   $t: $execs inputs, $per_sec/s, ${elapsed}s, corpus $seeds → $corp, $found crash(es)" >&2
done

# The fuzzing section of bench/RESULTS.md. A run with --only updates its targets' rows and keeps
# the others (with the line of the run that made them); a run of every target starts afresh.
results=bench/RESULTS.md
old=$(mktemp)
if [ "$only" != . ] && [ -f "$results" ]; then
  awk '/^<!-- fuzz:begin/ { on = 1 } on { print } /^<!-- fuzz:end -->/ { on = 0 }' "$results" >"$old"
fi
kept_rows() {
  local r name
  while IFS= read -r r; do
    name=$(awk -F'|' '{ gsub(/ /, "", $2); print $2 }' <<<"$r")
    [[ " ${targets[*]} " == *" $name "* ]] || printf '%s\n' "$r"
  done < <(grep '^| fuzz_' "$old" || true)
}
table() {
  local all
  all=$( { kept_rows; printf '%s\n' "${rows[@]}"; } | sort -t'|' -k2,2)
  echo "<!-- fuzz:begin (written by scripts/fuzz.sh) -->"
  echo "## Fuzzing"
  echo
  echo "libFuzzer with ASan+UBSan (UBSan halting), one target at a time, each seeded from its corpus (\`-print_final_stats=1 -timeout=30 -rss_limit_mb=2048\`, then \`-runs=\` rounds until the minimum count). Corpus: seed files → units libFuzzer kept at the end; edges: the coverage counter at the end; exec/s over the target's whole time."
  echo
  # An earlier run's line stays while a row it made does: the row of a target this run leaves
  # alone is the one the newest earlier line naming that target made.
  local line t i=0
  local -a lines=()
  local -A newest=()
  while IFS= read -r line; do
    lines+=("$line")
    for t in ${line##*: }; do newest[$t]=$i; done
    i=$(( i + 1 ))
  done < <(grep '^- `scripts/fuzz.sh' "$old" || true)
  for i in "${!lines[@]}"; do
    for t in ${lines[$i]##*: }; do
      if [[ " ${targets[*]} " != *" $t "* ]] && [ "${newest[$t]}" = "$i" ]; then
        printf '%s\n' "${lines[$i]}"
        break
      fi
    done
  done
  echo "- \`scripts/fuzz.sh ${args[*]}\` (niceness $(nice)) on $(date -u '+%F %H:%M') UTC, $("$cxx" --version | head -1), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end: ${targets[*]}"
  echo
  echo "| target | what it parses | executions | exec/s | time | crashes | corpus | edges |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "$all"
  echo
  local findings missing="" m name
  for m in "$build"/fuzzers/*.txt; do
    name=$(basename "$m" .txt)
    grep -q "^| $name |" <<<"$all" || missing+="$name "
  done
  [ -z "$missing" ] || echo "Not run yet (no row): ${missing% }."
  findings=$(awk -F'|' '$7 + 0 > 0 { gsub(/ /, "", $2); printf "%s ", $2 }' <<<"$all")
  if [ -n "$findings" ]; then
    echo "Targets that stopped on a finding: ${findings% }."
  else
    echo "No crash, leak or timeout."
  fi
  echo "<!-- fuzz:end -->"
}

if [ "$write_results" = 1 ]; then
  section=$(mktemp)
  table >"$section"
  bench/put_section.sh fuzz "$section" "$results"
  rm -f "$section"
  echo "fuzz.sh: results written to $results" >&2
else
  table
fi
rm -f "$old"

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]} (reproducers under $crash_root)" >&2
  exit 1
fi
