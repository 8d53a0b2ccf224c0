#!/usr/bin/env bash
# Issue 8's experiment: the DDA ablation in each fitting-error condition, first on the validation
# seeds (100-102, from the configs), then on the test seeds (0-2); then choose the default variant
# on validation only and report it on test (select-defaults.mjs).
#   bash benchmarks/conditions/run.sh [condition ...]     (default: every config in benchmarks/configs/conditions)
# Finished steps are cached under dda-bench/conditions/, so an interrupted run resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
conds=("$@")
if [ ${#conds[@]} -eq 0 ]; then
  for f in benchmarks/configs/conditions/*.yaml; do conds+=("$(basename "$f" .yaml)"); done
fi
for c in "${conds[@]}"; do
  node packages/cli/dist/main.js ablate --config "benchmarks/configs/conditions/$c.yaml" --out "dda-bench/conditions/val/$c"
  node packages/cli/dist/main.js ablate --config "benchmarks/configs/conditions/$c.yaml" --seeds 0 1 2 --out "dda-bench/conditions/test/$c"
done
node benchmarks/conditions/select-defaults.mjs "${conds[@]}"
