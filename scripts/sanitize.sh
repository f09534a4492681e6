#!/usr/bin/env bash
# Builds sriovd under a sanitizer and runs every test but the lab's (the QEMU guest runs the
# normal build's binaries): scripts/sanitize.sh asan|tsan [ctest arguments]
#   asan   ASan+UBSan in build-asan/ (leaks reported, UBSan halting)
#   tsan   TSan in build-tsan/
# Both build with clang at -O1 and check the lock annotations (-Wthread-safety as errors). A report
# fails the test that made it: the sanitizers exit non-zero and the tests' daemons carry the
# options below through their environment.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
kind=${1:?usage: scripts/sanitize.sh asan|tsan [ctest arguments]}
shift
case "$kind" in
  asan)
    export SRIOVD_SANITIZE=1
    build=${SRIOVD_BUILD_DIR:-build-asan}
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/sanitizers/lsan.supp:print_suppressions=0}
    ;;
  tsan)
    export SRIOVD_TSAN=1
    build=${SRIOVD_BUILD_DIR:-build-tsan}
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$here/tests/sanitizers/tsan.supp:print_suppressions=0}
    ;;
  *) echo "sanitize: unknown sanitizer '$kind' (asan or tsan)" >&2; exit 2 ;;
esac
SRIOVD_BUILD_DIR=$build scripts/build.sh
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -LE lab "$@"
