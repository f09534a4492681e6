#!/usr/bin/env bash
# A long campaign of tests/integration/request_fuzz_test: COUNT random requests (default one
# million) against the daemon on the simulated host; writes its section of bench/RESULTS.md
# between the requests markers (bench/run.sh keeps it).
#   bench/request_fuzz.sh [BUILD_DIR] [COUNT]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
count=${2:-1000000}
seed=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
status=0
SRIOVD_REQUEST_FUZZ_COUNT=$count SRIOVD_REQUEST_FUZZ_SEED=$seed \
  "$build/tests/integration/request_fuzz_test" >"$log" 2>&1 || status=$?
elapsed=$(( SECONDS - start ))
statuses=$(sed -n 's/.*answers by status: //p' "$log")
section=$(mktemp)
{
  echo "<!-- requests:begin (written by bench/request_fuzz.sh) -->"
  echo "## Random requests against the daemon"
  echo
  echo "\`bench/request_fuzz.sh build $count\` on $(date -u '+%F %H:%M') UTC: \`tests/integration/request_fuzz_test\` with SRIOVD_REQUEST_FUZZ_COUNT=$count, SRIOVD_REQUEST_FUZZ_SEED=$seed (random methods, junk paths and queries with bad percent-escapes and bytes that are not UTF-8, random JSON and binary bodies under any content type; one connection per request), against \`sriovd serve --sim\` on the dual-socket host, in ${elapsed} s."
  echo
  echo "- answers by status:${statuses:- (none: the test did not finish)}"
  if [ "$status" = 0 ]; then
    echo "- no 5xx, every error a problem+json in valid JSON, no exception text in any answer; afterwards the daemon served the same devices, groups, pool and lease, and stopped cleanly."
  else
    echo "- **failed** (exit $status):"
    echo '```'
    grep -E "ERROR|MESSAGE" "$log" | head -20
    echo '```'
  fi
  echo "<!-- requests:end -->"
} >"$section"
"$here/bench/put_section.sh" requests "$section"
cat "$section"
rm -f "$section"
exit "$status"
