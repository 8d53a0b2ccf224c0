#!/usr/bin/python3
"""PyTorch CPU reference for benchmarks/speed/scoring.mjs (Debian's python3-torch, float32).

scoring.py peak [THREADS]                        -> best torch.mm GFLOP/s at n = 2048
scoring.py scores N_TRAIN N_TEST DIM [THREADS]   -> test · blockᵀ over blocks of training rows, as the ONNX engine does
Training rows are generated per block (torch.rand into one buffer), so memory stays one block.
THREADS: torch threads (default: every CPU of the machine; Debian's torch defaults to one).
The matmul peak is packages/conformance/python/dda_reference.py's `matmul_gflops`, shared with the other speed scripts.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "conformance", "python"))
import dda_reference as ref  # noqa: E402

torch.manual_seed(0)
_threads_arg = sys.argv[2] if sys.argv[1] == "peak" else (sys.argv[5] if len(sys.argv) > 5 else None)
torch.set_num_threads(int(_threads_arg) if _threads_arg else len(os.sched_getaffinity(0)))
threads = torch.get_num_threads()


def peak():
    runs = ref.matmul_gflops(2048, rounds=3)
    print(json.dumps({"engine": f"pytorch {torch.__version__} cpu, {threads} threads", "matmul2048_gflops": max(runs), "runs": runs}))


def scores(n_train, n_test, dim):
    block_rows = max(1, (64 * 1024 * 1024) // (4 * dim))  # the ONNX engine's default block (64 MiB)
    test = torch.rand(n_test, dim) * 2 - 1
    buf = torch.empty(block_rows, dim)
    checksum = torch.zeros(n_test, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    torch.mm(test, torch.rand(min(64, n_train), dim, generator=gen).t())  # warm-up
    gen_s = gemm_s = 0.0
    t0 = time.perf_counter()
    for start in range(0, n_train, block_rows):
        count = min(block_rows, n_train - start)
        t = time.perf_counter()
        block = buf[:count]
        torch.rand(count, dim, generator=gen, out=block)
        block.mul_(2).sub_(1)
        t1 = time.perf_counter()
        s = torch.mm(test, block.t())  # [n_test × count]
        t2 = time.perf_counter()
        checksum += s.sum(dim=1, dtype=torch.float64)
        gen_s += t1 - t
        gemm_s += t2 - t1
    wall = time.perf_counter() - t0
    flop = 2 * n_train * n_test * dim
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} cpu, {threads} threads", "n_train": n_train, "n_test": n_test, "dim": dim,
        "gemm_s": gemm_s, "generate_s": gen_s, "wall_s": wall, "pairs_per_s": n_train * n_test / gemm_s, "gflops": flop / gemm_s / 1e9,
        "peak_rss_mb": ref.peak_rss_mb(),
    }))


if sys.argv[1] == "peak":
    peak()
else:
    scores(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
