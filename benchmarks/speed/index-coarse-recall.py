# The numpy half of index-coarse-recall.mjs: recall@100 of a coarse scan (a per-tensor column subset
# of the index rows, k' dimensions) followed by the exact scores of the best C candidates.
# Usage: /usr/bin/python3 index-coarse-recall.py <index folder> <queries json from index-coarse-recall.mjs>
import json, sys, time
import numpy as np

index, qfile = sys.argv[1], sys.argv[2]
h = json.load(open(f"{index}/index.json"))
n, k = h["count"], h["dim"]
pos = {t: i for i, t in enumerate(h["trainIds"])}
Q = json.load(open(qfile))
q = np.array(Q["rows"], dtype=np.float64)
exact = [set(pos[t] for t in top) for top in Q["tops"]]
rows = np.memmap(f"{index}/gradients.f16", dtype=np.float16, mode="r", shape=(n, k))
print(f"{n} rows x {k}, {q.shape[0]} queries, exact top-100 from dda index query")
print("| k' | candidates C | recall@100 mean | recall@100 worst query | coarse scan s (numpy, float32, every query) |")
print("|---:|---:|---:|---:|---:|")
for kp in (256, 512, 1024):
    cols, w = [], []
    for m in h["modules"]:
        km = max(1, round(m["dims"] * kp / k))
        cols += range(m["offset"], m["offset"] + km)
        w += [m["dims"] / km] * km
    cols, w = np.array(cols), np.array(w)
    coarse = np.ascontiguousarray(rows[:, cols]).astype(np.float32)
    t0 = time.time()
    s = coarse @ (q[:, cols] * w).T.astype(np.float32)
    scan = time.time() - t0
    for c in (1000, 5000):
        rec = []
        for j in range(q.shape[0]):
            cand = np.sort(np.argpartition(-s[:, j], c)[:c])
            full = rows[cand].astype(np.float64) @ q[j]
            top = set(cand[np.argsort(-full)[:100]].tolist())
            rec.append(len(top & exact[j]) / 100)
        print(f"| {len(cols)} | {c} | {np.mean(rec):.4f} | {np.min(rec):.2f} | {scan:.2f} |", flush=True)
