import { describeRealParity } from './real-parity-case.js';

// Logits and LoRA gradients at the real widths and vocabulary of gemma-3-270m with six layers: five sliding-window layers
// (RoPE θ 1e4, window overridden to 16 of the 64 tokens) and its first full-attention layer (θ 1e6), against PyTorch.
describeRealParity('gemma-3-270m');
