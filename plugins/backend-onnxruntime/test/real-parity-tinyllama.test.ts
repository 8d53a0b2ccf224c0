import { describeOnnxRealParity } from './real-parity-case.js';

// TinyLlama-1.1B's widths (LLaMA-2: GQA 32/4, vocabulary 32,000), one layer, BF16 folder read lazily,
// LoRA on q_proj and v_proj only, base weights fed as graph inputs (the real-size path).
describeOnnxRealParity('tinyllama-1.1b', { fixture: 'real', basePlacement: 'inputs', logits: true, copies: 2 });
