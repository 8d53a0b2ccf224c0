import { describeRealParity } from './real-parity-case.js';

// Logits and LoRA gradients at the real widths and vocabulary of gemma-3-1b (one layer: its first, a sliding-window
// layer with RoPE θ 1e4, the window overridden to 16 of the 64 tokens; Gemma norms, q/k norms, GeGLU, head_dim 256, 262,144 ids) against PyTorch.
describeRealParity('gemma-3-1b');
