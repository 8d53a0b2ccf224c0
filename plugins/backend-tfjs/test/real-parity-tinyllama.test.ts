import { describeRealParity } from './real-parity-case.js';

// Logits and LoRA gradients at the real widths and vocabulary of tinyllama-1.1b (one layer) against PyTorch.
describeRealParity('tinyllama-1.1b');
