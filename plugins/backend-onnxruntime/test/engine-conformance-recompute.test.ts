import { decoderFixtureReferences, realWidthReferences } from '@dda/conformance';
import { engineConformance, engineReferenceConformance } from '@dda/conformance/vitest';
import '@dda/backend-onnxruntime';

// The onnxruntime engine with its gradient and training graphs' layers recomputed in the backward
// pass (start option recompute: true; 'auto' leaves these small models' activations kept): the
// whole engine contract on the six tiny families with the PyTorch fixtures, and the PyTorch float64
// references at the real widths of Qwen2-0.5B, Qwen3-0.6B and gemma-3-270m.
engineConformance('onnxruntime', { start: { backends: ['onnxruntime-cpu'], recompute: true }, references: decoderFixtureReferences() });
engineReferenceConformance('onnxruntime', realWidthReferences({ except: ['llama3.2-1b'] }), { start: { backends: ['onnxruntime-cpu'], recompute: true } });
