#!/usr/bin/env bash
# Lints the project's own C++ sources (the files git tracks; not the generated protobuf and
# schema code in the build tree) and exits non-zero on any finding:
#   clang-format --dry-run -Werror       against .clang-format
#   clang-tidy (16+)                     .clang-tidy's checks, with build/compile_commands.json;
#                                        headers are checked where a linted source includes them
#   scripts/lint.sh                      the whole tree
#   scripts/lint.sh PATH...              only the sources under these folders (or these files)
# SRIOVD_BUILD_DIR is the build to take compile commands from (default build; built first by
# scripts/build.sh when it has none, since generated headers must exist); SRIOVD_LINT=format or
# tidy runs one half only; SRIOVD_LINT_JOBS clang-tidy processes at a time (default 2).
# Units found clean are remembered (scripts/tidy_cached.py, ~/.cache/sriovd-tidy) and not run
# again until their preprocessed text, flags or the configuration change.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build=${SRIOVD_BUILD_DIR:-build}
what=${SRIOVD_LINT:-all}
jobs=${SRIOVD_LINT_JOBS:-2}

paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(.)
mapfile -t files < <(git ls-files -- "${paths[@]}" | grep -E '\.(cpp|h)$' || true)
if [ ${#files[@]} -eq 0 ]; then echo "lint: no C++ sources under ${paths[*]}" >&2; exit 2; fi

status=0
if [ "$what" = all ] || [ "$what" = format ]; then
  echo "lint: clang-format on ${#files[@]} files"
  clang-format --dry-run -Werror "${files[@]}" || status=1
fi

if [ "$what" = all ] || [ "$what" = tidy ]; then
  [ -f "$build/compile_commands.json" ] || SRIOVD_BUILD_DIR=$build scripts/build.sh >/dev/null
  build_abs=$(cd "$build" && pwd)
  # Only sources the build compiles (a translation unit needs its flags); headers come along.
  mapfile -t units < <(printf '%s\n' "${files[@]}" | grep '\.cpp$' \
    | python3 -c '
import json, os, sys
known = {os.path.realpath(e["file"]) for e in json.load(open(sys.argv[1]))}
for line in sys.stdin:
    path = line.strip()
    if os.path.realpath(path) in known: print(path)' "$build/compile_commands.json")
  # A header is reported when it is one of the linted folders': the build reaches project headers
  # through its staging directories (<build>/include/<stage>/<folder>/name.h, cmake/sriovd.cmake).
  folders=$(printf '%s\n' "${files[@]}" | xargs -n1 dirname | sort -u | sed 's/[.[\*^$+?(){}|]/\\&/g' | paste -sd'|')
  filter="^$build_abs/include/[^/]+/($folders)/[^/]+\\.h\$"
  echo "lint: clang-tidy on ${#units[@]} translation units, $jobs at a time"
  start=$(date +%s)
  if [ ${#units[@]} -gt 0 ]; then
    python3 scripts/tidy_cached.py "$build" "$filter" "$jobs" "${units[@]}" || status=1
  fi
  echo "lint: clang-tidy took $(( $(date +%s) - start )) s"
fi
if [ "$status" != 0 ]; then echo "lint: findings above" >&2; fi
exit "$status"
