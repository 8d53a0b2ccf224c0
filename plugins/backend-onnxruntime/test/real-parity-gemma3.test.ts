import { describeOnnxRealParity } from './real-parity-case.js';

// gemma-3-1b's widths (Gemma norms and q/k norms, GeGLU 1152 → 6912, 4 query heads of 256 on 1 key-value head,
// query_pre_attn_scalar 256, tied 262,144-token embeddings), its first layer (sliding, window overridden to 16),
// LoRA on every linear map, base weights fed as graph inputs.
describeOnnxRealParity('gemma-3-1b', { fixture: 'real', basePlacement: 'inputs', logits: true, copies: 2 });
