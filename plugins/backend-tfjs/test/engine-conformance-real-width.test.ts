import { realWidthReferences } from '@dda/conformance';
import { engineReferenceConformance } from '@dda/conformance/vitest';
import '@dda/backend-tfjs';

// The tfjs engine (tfjs-wasm) against the PyTorch float64 references at real widths (Qwen2-0.5B,
// Llama-3.2-1B, Qwen3-0.6B, gemma-3-270m; 128-id vocabulary, 1-2 layers, both 24-token sequences):
// the `reference` check alone, the other checks run on the tiny presets in engine-conformance.test.ts.
engineReferenceConformance('tfjs', realWidthReferences(), { start: { backends: ['tfjs-wasm'] } });
