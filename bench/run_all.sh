#!/usr/bin/env bash
# Runs every benchmark under Deno and under Bun, one after the other.
# Usage: bash bench/run_all.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
for script in overhead step_stream stages backends scale profile profile_wide tfjs_path_models classifier dashboard versus_pytorch faithfulness soak big_csv collector collector_stress; do
  echo "### deno: bench/$script.ts"
  deno run -A "bench/$script.ts" "$@"
  echo "### bun: bench/$script.ts"
  bun "bench/$script.ts" "$@"
done
