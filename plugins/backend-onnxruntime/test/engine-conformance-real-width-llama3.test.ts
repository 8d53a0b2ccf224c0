import { realWidthReferences } from '@dda/conformance';
import { engineReferenceConformance } from '@dda/conformance/vitest';
import '@dda/backend-onnxruntime';

// The onnxruntime engine against the PyTorch float64 reference at Llama-3.2-1B's widths (one layer,
// 128-id vocabulary, llama3 RoPE scaling, both 24-token sequences): the `reference` check alone (the
// other real-width references are engine-conformance-real-width.test.ts). 17–32 s alone; it took over
// 120 s once while the suite shared the 2 cores with a benchmark (2026-12-07), hence 300 s.
engineReferenceConformance('onnxruntime', realWidthReferences({ only: ['llama3.2-1b'] }), { start: { backends: ['onnxruntime-cpu'] }, timeoutMs: 300_000 });
