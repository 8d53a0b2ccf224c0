import { realWidthReferences } from '@dda/conformance';
import { engineReferenceConformance } from '@dda/conformance/vitest';
import '@dda/backend-onnxruntime';

// The onnxruntime engine against the PyTorch float64 references at real widths, all but Llama-3.2-1B's
// (Qwen2-0.5B, Qwen3-0.6B, gemma-3-270m; 128-id vocabulary, 1-2 layers, both 24-token sequences;
// Llama-3.2-1B's is engine-conformance-real-width-llama3.test.ts, so that each file stays near ten
// seconds): the `reference` check alone, the other checks run on the tiny presets in
// engine-conformance.test.ts; that the references catch a wrong decoder is
// real-width-reference-sensitivity.test.ts.
engineReferenceConformance('onnxruntime', realWidthReferences({ except: ['llama3.2-1b'] }), { start: { backends: ['onnxruntime-cpu'] } });
