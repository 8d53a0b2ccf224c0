import { describeOnnxRealParity } from './real-parity-case.js';

// Qwen2-0.5B's widths (tied embeddings, q/k/v biases, vocabulary 151,936), one layer, LoRA on every
// linear map, base weights fed as graph inputs.
describeOnnxRealParity('qwen2-0.5b', { fixture: 'real', basePlacement: 'inputs', logits: true, copies: 2 });
