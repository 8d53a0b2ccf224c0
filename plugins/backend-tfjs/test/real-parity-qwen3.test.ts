import { describeRealParity } from './real-parity-case.js';

// Logits and LoRA gradients at the real widths and vocabulary of qwen3-0.6b (one layer: q/k norms, head_dim 128 ≠ 1024 / 16) against PyTorch.
describeRealParity('qwen3-0.6b');
