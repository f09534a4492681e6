#!/usr/bin/env bash
# Configures and builds sriovd into build/ (or $SRIOVD_BUILD_DIR). Extra arguments go to cmake
# --build (e.g. --target sriovd); --configure-only as the first argument stops after cmake.
# SRIOVD_SANITIZE=1: the ASan+UBSan build in build-asan/; SRIOVD_TSAN=1: the TSan build in
# build-tsan/. Both use clang 16 or newer (clang 14, Debian 12's default, refuses the C++20 capture
# of structured bindings the code uses) without optimisation (build type Sanitize: a sanitized
# -O1 compile of some units takes four times as long, and the suites are quick either way) and
# check the lock annotations (-Wthread-safety as errors).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# ccache: paths under the source tree are hashed relative to it, so a clone in another folder
# (CI's) reuses the objects of this one.
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=true
clang_cxx() {
  local v
  for v in 19 18 17 16; do
    if command -v "clang++-$v" >/dev/null; then echo "clang++-$v"; return; fi
  done
  echo "build.sh: the sanitizer builds need clang 16 or newer (scripts/install-deps.sh --test installs clang-16)" >&2
  return 1
}
if [ "${SRIOVD_SANITIZE:-0}" = 1 ] || [ "${SRIOVD_TSAN:-0}" = 1 ]; then
  cxx=${SRIOVD_CLANG:-$(clang_cxx)}
fi
if [ "${SRIOVD_SANITIZE:-0}" = 1 ]; then
  build=${SRIOVD_BUILD_DIR:-build-asan}
  extra=(-DSRIOVD_SANITIZE=ON -DSRIOVD_THREAD_SAFETY=ON -DCMAKE_BUILD_TYPE=Sanitize
         -DSRIOVD_BENCH=OFF -DSRIOVD_LAB=OFF -DCMAKE_C_COMPILER="${cxx/clang++/clang}" -DCMAKE_CXX_COMPILER="$cxx")
elif [ "${SRIOVD_TSAN:-0}" = 1 ]; then
  build=${SRIOVD_BUILD_DIR:-build-tsan}
  extra=(-DSRIOVD_TSAN=ON -DSRIOVD_THREAD_SAFETY=ON -DCMAKE_BUILD_TYPE=Sanitize
         -DSRIOVD_BENCH=OFF -DSRIOVD_LAB=OFF -DCMAKE_C_COMPILER="${cxx/clang++/clang}" -DCMAKE_CXX_COMPILER="$cxx")
else
  build=${SRIOVD_BUILD_DIR:-build}
  extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f "$build/Makefile" ]; then generator=(-G Ninja); fi
werror=OFF
if [ "${CI:-}" = true ]; then werror=ON; fi
cmake -S . -B "$build" "${generator[@]}" "${extra[@]}" -DSRIOVD_WERROR=$werror >/dev/null
if [ "${1:-}" = --configure-only ]; then exit 0; fi
cmake --build "$build" -j"$(nproc)" "$@"
