const n = 20_000_000;
const p = new Float32Array(n).map((_, i) => Math.sin(i)); const g = new Float32Array(n).map((_, i) => Math.cos(i) * 1e-3);
const m = new Float32Array(n), v = new Float32Array(n);
function step(p, g, m, v, b1, b2, c1, c2, eps, negLr, o1, o2) {
  for (let i = 0; i < m.length; i++) {
    const gi = g[i];
    const mi = m[i] * b1 + gi * c1; const vi = v[i] * b2 + gi * gi * c2;
    m[i] = mi; v[i] = vi;
    p[i] += negLr * (mi / o1) / (Math.sqrt(vi / o2) + eps);
  }
}
step(p, g, m, v, 0.9, 0.999, 0.1, 0.001, 1e-7, -1e-3, 0.1, 0.001);
const c0 = process.cpuUsage(); const t = performance.now();
for (let i = 0; i < 3; i++) step(p, g, m, v, 0.9, 0.999, 0.1, 0.001, 1e-7, -1e-3, 0.1, 0.001);
const c = process.cpuUsage(c0);
console.log('double: ms/step wall', ((performance.now() - t) / 3).toFixed(0), 'cpu', ((c.user + c.system) / 3000).toFixed(0));
