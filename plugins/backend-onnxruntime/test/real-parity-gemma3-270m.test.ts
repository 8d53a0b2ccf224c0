import { describeOnnxRealParity } from './real-parity-case.js';

// gemma-3-270m's widths (640 wide, GeGLU 2048, 4 query heads of 256 on 1 key-value head, tied 262,144-token embeddings)
// with six layers: five sliding (window overridden to 16) and the first full-attention one; LoRA on q, v, o, down; base weights fed.
describeOnnxRealParity('gemma-3-270m', { fixture: 'real', basePlacement: 'inputs', logits: true, copies: 2 });
