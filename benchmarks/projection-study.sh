#!/usr/bin/env bash
# The projection study of issue 27: benchmarks/configs/projection.yaml once with the full gradients
# and once per projected dimension k, into one resumable output folder (dda-bench/projection), then
# the table (benchmarks/projection-table.mjs). Each run reuses the models, test errors and LDS
# retrainings of the first; a killed run resumes from its artifacts.
#   bash benchmarks/projection-study.sh [k ...]     (default: 256 1024 4096 16384)
set -euo pipefail
cd "$(dirname "$0")/.."
out=dda-bench/projection
dims=("$@")
[ ${#dims[@]} -eq 0 ] && dims=(256 1024 4096 16384)
npm run -s dda -- bench --config benchmarks/configs/projection.yaml --name projection-full --out "$out"
for k in "${dims[@]}"; do
  npm run -s dda -- bench --config benchmarks/configs/projection.yaml --projection-dim "$k" --name "projection-k$k" --out "$out"
done
node benchmarks/projection-table.mjs "$out"
