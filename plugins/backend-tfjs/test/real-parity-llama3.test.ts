import { describeRealParity } from './real-parity-case.js';

// Logits and LoRA gradients at the real widths and vocabulary of Llama-3.2-1B (one layer: 32 query heads of 64 on 8 key-value
// heads, MLP 8192, tied 128,256-token embeddings, RoPE θ 5e5 with the llama3 scaling, factor 32) against PyTorch; its RoPE
// tables at positions up to 100,000.
describeRealParity('llama3.2-1b');
