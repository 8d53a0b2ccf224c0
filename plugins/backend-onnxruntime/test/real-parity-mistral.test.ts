import { describeOnnxRealParity } from './real-parity-case.js';

// Mistral-7B's widths (hidden 4096, MLP 14,336, GQA 32/8), one layer, sliding window of 16 tokens,
// LoRA on q, k, v, o; base weights placed by size (auto: 1.9 GB of float32, fed as graph inputs).
describeOnnxRealParity('mistral-7b', { fixture: 'real', basePlacement: 'auto', logits: true, copies: 2 });
