import { describeOnnxRealParity } from './real-parity-case.js';

// Qwen3-0.6B's widths (q/k norms per head, head_dim 128 with hidden 1024 and 16 heads, 8 key-value
// heads, tied embeddings, vocabulary 151,936), one layer, LoRA on every linear map, base weights fed as graph inputs.
describeOnnxRealParity('qwen3-0.6b', { fixture: 'real', basePlacement: 'inputs', logits: true, copies: 2 });
