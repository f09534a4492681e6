#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (unit, simulated host, QEMU lab)
# through ctest. Arguments go to ctest (e.g. -L lab, -R inventory).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/install-deps.sh --test
scripts/build.sh
build=${SRIOVD_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
