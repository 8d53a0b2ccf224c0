#!/usr/bin/env bash
# The projection study of issue 27: benchmarks/configs/projection.yaml once with the full gradients
# and once per projected dimension k, into one resumable output folder (dda-bench/projection), then
# the table (benchmarks/projection-table.mjs). Each run reuses the models, test errors and LDS
# retrainings of the first; a killed run resumes from its artifacts. CONFIG, OUT and NAME choose
# another configuration, output folder and file prefix (default: projection.yaml, dda-bench/projection,
# projection), EXTRA adds flags to every run (e.g. --store-gradients).
#   bash benchmarks/projection-study.sh [k ...]     (default: 256 1024 4096 16384)
#   CONFIG=benchmarks/configs/realtext-projection.yaml OUT=dda-bench/realtext NAME=realtext-projection EXTRA=--store-gradients bash benchmarks/projection-study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
config=${CONFIG:-benchmarks/configs/projection.yaml}
out=${OUT:-dda-bench/projection}
name=${NAME:-projection}
read -r -a extra <<< "${EXTRA:-}"
dims=("$@")
[ ${#dims[@]} -eq 0 ] && dims=(256 1024 4096 16384)
npm run -s dda -- bench --config "$config" --name "$name-full" --out "$out" "${extra[@]}"
for k in "${dims[@]}"; do
  npm run -s dda -- bench --config "$config" --projection-dim "$k" --name "$name-k$k" --out "$out" "${extra[@]}"
done
node benchmarks/projection-table.mjs "$out" "$name"
