import { Adam } from '@dda/backend-onnxruntime';
const n = 20_000_000;
const p = new Float32Array(n).map((_, i) => Math.sin(i)); const g = new Float32Array(n).map((_, i) => Math.cos(i) * 1e-3);
const a = new Adam([n], 1e-3);
a.step([p], [g]);
const c0 = process.cpuUsage(); const t = performance.now();
for (let i = 0; i < 3; i++) a.step([p], [g]);
const c = process.cpuUsage(c0);
console.log('ms/step wall', ((performance.now() - t) / 3).toFixed(0), 'cpu', ((c.user + c.system) / 3000).toFixed(0));
