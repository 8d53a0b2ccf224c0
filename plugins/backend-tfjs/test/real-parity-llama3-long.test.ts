import { describeRealParity } from './real-parity-case.js';

// Llama-3.1-8B's RoPE (head_dim 128, θ 5e5, llama3 scaling with factor 8 over the original 8192-token context) on a
// 9216-token sequence, so that queries beyond position 8192 attend to keys more than 8192 positions back, with reduced
// widths (256 wide, one head, 1024 ids): logits and loss against PyTorch; the published config's RoPE tables at
// positions 0, 8191, 8192, 20,000 and 100,000. The engines take no position offset: a sequence is at positions 0..T−1,
// so long positions are reached by a long sequence.
describeRealParity('llama3.1-8b');
