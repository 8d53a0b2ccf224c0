import { describeOnnxRealParity } from './real-parity-case.js';

// Llama-3.2-1B's widths (32 query heads of 64 on 8 key-value heads, MLP 8192, tied 128,256-token embeddings, RoPE θ 5e5
// with the llama3 scaling, factor 32), one layer, LoRA on every linear map, base weights fed as graph inputs.
describeOnnxRealParity('llama3.2-1b', { fixture: 'real', basePlacement: 'inputs', logits: true, copies: 2 });
