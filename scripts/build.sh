#!/usr/bin/env bash
# Configures and builds sriovd into build/ (or $SRIOVD_BUILD_DIR). Extra arguments go to cmake
# --build (e.g. --target sriovd). Set SRIOVD_SANITIZE=1 for an ASan+UBSan build in build-asan/,
# SRIOVD_TSAN=1 for a TSan build with clang and the lock annotations checked in build-tsan/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# ccache: paths under the source tree are hashed relative to it, so a clone in another folder
# (CI's) reuses the objects of this one.
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=true
if [ "${SRIOVD_SANITIZE:-0}" = 1 ]; then
  build=${SRIOVD_BUILD_DIR:-build-asan}
  extra=(-DSRIOVD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DSRIOVD_BENCH=OFF)
elif [ "${SRIOVD_TSAN:-0}" = 1 ]; then
  # TSan needs -O1 or more to be usable in time; the annotations (base/mutex.h) are checked by
  # clang only, so this build is the one that enforces them.
  build=${SRIOVD_BUILD_DIR:-build-tsan}
  extra=(-DSRIOVD_TSAN=ON -DSRIOVD_THREAD_SAFETY=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSRIOVD_BENCH=OFF
         -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
else
  build=${SRIOVD_BUILD_DIR:-build}
  extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f "$build/Makefile" ]; then generator=(-G Ninja); fi
werror=OFF
if [ "${CI:-}" = true ]; then werror=ON; fi
cmake -S . -B "$build" "${generator[@]}" "${extra[@]}" -DSRIOVD_WERROR=$werror >/dev/null
cmake --build "$build" -j"$(nproc)" "$@"
