#!/usr/bin/env bash
# Configures and builds sriovd into build/ (or $SRIOVD_BUILD_DIR). Extra arguments go to cmake
# --build (e.g. --target sriovd). Set SRIOVD_SANITIZE=1 for an ASan+UBSan build in build-asan/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# ccache: paths under the source tree are hashed relative to it, so a clone in another folder
# (CI's) reuses the objects of this one.
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=true
if [ "${SRIOVD_SANITIZE:-0}" = 1 ]; then
  build=${SRIOVD_BUILD_DIR:-build-asan}
  extra=(-DSRIOVD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DSRIOVD_BENCH=OFF)
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
