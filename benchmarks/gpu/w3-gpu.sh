#!/bin/sh
# W3 on a GPU machine (issue 13): per-example LoRA gradients (rank 16 on q, k, v, o, gate, up, down)
# of a TinyLlama-1.1B-shaped model (22 layers, random weights), sequence 512, loss on the second half.
#
#   sh benchmarks/gpu/w3-gpu.sh [OUT_DIR] [N]          (from the repository root; default out/gpu-w3, N = 16)
#
# 1. PyTorch on CUDA, always: benchmarks/speed/real-size-gradients.py is self-contained (Python,
#    numpy and torch; it makes the same seeded weights as writeRandomModelFolder when no folder is
#    given), so this step needs neither Node nor the network. Loss rows only and all rows.
# 2. The onnxruntime engine, when Node and a built checkout are there: onnxruntime-cuda (which needs
#    onnxruntime-node's CUDA provider, fetched with ONNXRUNTIME_NODE_INSTALL=cuda12 while online) and
#    onnxruntime-webgpu (needs Vulkan and the GPU's Vulkan driver), each with PyTorch on CUDA beside
#    it in the same run over the same folder; a backend that cannot start is recorded with its reason.
# Every result is one JSON file in OUT_DIR, with nvidia-smi's GPU line and `uptime`.
set -u
OUT=${1:-out/gpu-w3}
N=${2:-16}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
{ uptime; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1; } > "$OUT/machine.txt"
for rows in 1 0; do
  "$PY" "$HERE/benchmarks/speed/real-size-gradients.py" --random tinyllama-1.1b --device cuda --n "$N" --seq 512 --rank 16 --rows-only "$rows" --reps 2 \
    > "$OUT/pytorch-cuda-rows-only-$rows.json" 2> "$OUT/pytorch-cuda-rows-only-$rows.err" || echo "PyTorch (rows only $rows) failed: see $OUT/pytorch-cuda-rows-only-$rows.err"
done
if command -v node > /dev/null 2>&1 && [ -f "$HERE/plugins/backend-onnxruntime/dist/index.js" ]; then
  engines=onnxruntime,pytorch
  for backend in onnxruntime-cuda onnxruntime-webgpu; do
    node "$HERE/benchmarks/speed/real-size-gradients.mjs" --workload w3 --n "$N" --engines "$engines" --ort-backend "$backend" --ort-threads 1 \
      --torch-device cuda --torch-threads 1 --python "$PY" --dir "$OUT/tinyllama-folder" > "$OUT/$backend.json" 2> "$OUT/$backend.err" || echo "$backend run failed: see $OUT/$backend.err"
    engines=onnxruntime  # PyTorch on CUDA over the folder once is enough
  done
else
  echo "Node or a built checkout (npm run build) is missing: only the PyTorch reference ran" | tee "$OUT/onnxruntime-skipped.txt"
fi
uptime >> "$OUT/machine.txt"
cat "$OUT"/*.json
