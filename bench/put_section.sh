#!/usr/bin/env bash
# Puts a marked section into bench/RESULTS.md (or RESULTS):
#   bench/put_section.sh NAME SECTION_FILE [RESULTS]
# SECTION_FILE holds the section with its own markers, `<!-- NAME:begin ...` to
# `<!-- NAME:end -->`. It replaces the section of that name, or goes in before the fuzzing
# section (which stays last), or at the end. The sections written by their own long runs
# (compare, requests, fuzz) are kept by bench/run.sh when it rewrites the file.
set -euo pipefail
name=${1:?usage: put_section.sh NAME SECTION_FILE [RESULTS]}
section=${2:?usage: put_section.sh NAME SECTION_FILE [RESULTS]}
results=${3:-$(cd "$(dirname "$0")" && pwd)/RESULTS.md}
if grep -q "^<!-- $name:begin" "$results"; then
  awk -v f="$section" -v n="$name" '
    $0 ~ "^<!-- " n ":begin" { while ((getline l < f) > 0) print l; skip = 1; next }
    $0 ~ "^<!-- " n ":end -->" { skip = 0; next }
    !skip' "$results" >"$results.new"
elif [ "$name" != fuzz ] && grep -q '^<!-- fuzz:begin' "$results"; then
  awk -v f="$section" '
    /^<!-- fuzz:begin/ && !done { while ((getline l < f) > 0) print l; print ""; done = 1 }
    { print }' "$results" >"$results.new"
else
  { cat "$results"; echo; cat "$section"; } >"$results.new"
fi
mv "$results.new" "$results"
