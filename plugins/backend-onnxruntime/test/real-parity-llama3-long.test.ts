import { describeOnnxRealParity } from './real-parity-case.js';

// Llama-3.1-8B's RoPE (head_dim 128, θ 5e5, llama3 scaling, factor 8) on a 9216-token sequence (positions beyond the
// original 8192-token context) with reduced widths (256 wide, one head, 1024 ids): logits and loss.
describeOnnxRealParity('llama3.1-8b', { fixture: 'real', basePlacement: 'inputs', logits: true, copies: 1 });
