import { engineConformance } from '@dda/conformance/vitest';
import '@dda/backend-onnxruntime';
import { decoderFixtureReferences } from '@dda/conformance';

// The onnxruntime engine against the engine contract, on the six tiny families and the PyTorch fixtures.
engineConformance('onnxruntime', { start: { backends: ['onnxruntime-cpu'] }, references: decoderFixtureReferences() });
