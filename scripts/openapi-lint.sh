#!/usr/bin/env bash
# Lints the OpenAPI document with Redocly (installed into tools/ by install-deps.sh --test).
# Exits 77 (skipped) when the linter is not installed, unless running in CI.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
redocly="$here/tools/node_modules/.bin/redocly"
if [ ! -x "$redocly" ]; then
  if [ "${CI:-}" = true ]; then echo "openapi-lint: $redocly missing (run scripts/install-deps.sh --test)" >&2; exit 1; fi
  echo "openapi-lint: skipped: redocly not installed (run scripts/install-deps.sh --test)"; exit 77
fi
export NO_UPDATE_NOTIFIER=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$redocly" lint --format=stylish "${1:-$here/schemas/openapi.json}"
