/**
 * @dda/model's decoder block on a tracing op set (V = the text of the expression): what each
 * family's layer computes, in which order, with which weights. The engines' results are pinned
 * bit for bit by their own tests (backend-tfjs forward-hashes, backend-onnxruntime decoder-graph-hashes).
 */
import { describe, expect, it } from 'vitest';
import { decoderLayer, decoderStack, TINY_PRESETS, type DecoderConfig, type DecoderOps } from '@dda/model';

/** Ops whose values are expressions, and the weights read in order. */
function tracing(): { ops: DecoderOps<string>; weights: string[] } {
  const weights: string[] = [];
  const short = (name: string): string => name.replace(/^model\.layers\.\d+\./, '').replace(/\.weight$/, '');
  const ops: DecoderOps<string> = {
    weight: (name, shape) => {
      weights.push(`${name} [${shape.join(', ')}]`);
      return short(name);
    },
    embed: (table) => `embed(${table})`,
    scale: (x, factor) => `${x}·${factor}`,
    linear: (i, t, x) => `${t}${i}(${x})`,
    rmsNorm: (x, w, n) => `norm${n.plusOne ? '1+' : ''}[${w}](${x})`,
    heads: (y, role) => `heads_${role}(${y})`,
    rope: (x, i, role) => `rope${i}_${role}(${x})`,
    attention: (i, q, k, v) => `attn${i}(${q}, ${k}, ${v})`,
    silu: (x) => `silu(${x})`,
    geluTanh: (x) => `gelu(${x})`,
    add: (a, b) => `(${a} + ${b})`,
    mul: (a, b) => `${a}*${b}`,
  };
  return { ops, weights };
}

describe('the decoder block', () => {
  it('a LLaMA layer: pre-norm attention and SwiGLU MLP, with residual adds', () => {
    const { ops, weights } = tracing();
    const h = 'norm[input_layernorm](x)';
    const a = `(x + o0(attn0(rope0_q(heads_q(q0(${h}))), rope0_k(heads_k(k0(${h}))), heads_v(v0(${h})))))`;
    const h2 = `norm[post_attention_layernorm](${a})`;
    expect(decoderLayer(ops, { ...TINY_PRESETS['llama2-tiny']!, vocabSize: 50 }, 0, 'x')).toBe(`(${a} + down0(silu(gate0(${h2}))*up0(${h2})))`);
    expect(weights).toEqual(['model.layers.0.input_layernorm.weight [64]', 'model.layers.0.post_attention_layernorm.weight [64]']);
  });

  it('Gemma-3: q/k norms before RoPE, four (1 + w) norms, GeGLU, the scaled embedding and the tied head', () => {
    const gemma: DecoderConfig = {
      vocabSize: 10, hiddenSize: 16, numLayers: 1, numHeads: 4, numKvHeads: 2, intermediateSize: 24, ropeTheta: 1e6, rmsNormEps: 1e-6, maxSeqLen: 32,
      tieWordEmbeddings: true, attentionBias: false, slidingWindow: 4, headDim: 6, qkNorm: true, hiddenAct: 'gelu_pytorch_tanh', gemmaNorms: true,
    };
    const { ops, weights } = tracing();
    const { hidden, head } = decoderStack(ops, gemma);
    const h = 'norm1+[input_layernorm](embed(model.embed_tokens)·4)';
    const att = `attn0(rope0_q(norm1+[self_attn.q_norm](heads_q(q0(${h})))), rope0_k(norm1+[self_attn.k_norm](heads_k(k0(${h})))), heads_v(v0(${h})))`;
    const a = `(embed(model.embed_tokens)·4 + norm1+[post_attention_layernorm](o0(${att})))`;
    const h2 = `norm1+[pre_feedforward_layernorm](${a})`;
    expect(hidden).toBe(`norm1+[model.norm]((${a} + norm1+[post_feedforward_layernorm](down0(gelu(gate0(${h2}))*up0(${h2})))))`);
    expect(head).toBe('model.embed_tokens');
    expect(weights).toEqual([
      'model.embed_tokens.weight [10, 16]', 'model.layers.0.input_layernorm.weight [16]', 'model.layers.0.self_attn.q_norm.weight [6]',
      'model.layers.0.self_attn.k_norm.weight [6]', 'model.layers.0.post_attention_layernorm.weight [16]',
      'model.layers.0.pre_feedforward_layernorm.weight [16]', 'model.layers.0.post_feedforward_layernorm.weight [16]', 'model.norm.weight [16]',
    ]);
  });

  it('untied embeddings: the head is lm_head, read after the final norm', () => {
    const { ops, weights } = tracing();
    const c = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: 50, numLayers: 1 };
    expect(decoderStack(ops, c).head).toBe('lm_head');
    expect(weights.at(-1)).toBe(`lm_head.weight [${c.vocabSize}, ${c.hiddenSize}]`);
  });
});
