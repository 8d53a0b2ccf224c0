import { describeRealParity } from './real-parity-case.js';

// Logits and LoRA gradients at the real widths and vocabulary of qwen2-0.5b (one layer) against PyTorch.
describeRealParity('qwen2-0.5b');
