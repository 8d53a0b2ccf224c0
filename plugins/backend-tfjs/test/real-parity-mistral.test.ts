import { describeRealParity } from './real-parity-case.js';

// Logits and LoRA gradients at the real widths and vocabulary of mistral-7b (one layer) against PyTorch.
describeRealParity('mistral-7b');
