import { describeOnnxRealParity } from './real-parity-case.js';

// A 2048-token sequence (TinyLlama's context length) at TinyLlama-1.1B's widths, one layer, LoRA rank
// 16 on every linear map, base weights fed as graph inputs.
describeOnnxRealParity('tinyllama-1.1b', { fixture: 'long', basePlacement: 'inputs', logits: false, copies: 1 });
