/**
 * Rotary position embeddings (RoPE) shared by both engines (@dda/backend-tfjs's decoder and the
 * onnxruntime plugin), so that the two cannot compute different frequencies.
 */

/**
 * Llama 3.1's frequency-dependent RoPE scaling (`rope_scaling` / `rope_parameters` with
 * `rope_type: "llama3"` in a Hugging Face config.json; field names camel-cased).
 */
export interface Llama3RopeScaling {
  readonly type: 'llama3';
  /** Division of the low frequencies (`factor`; 8 for Llama-3.1, 32 for Llama-3.2). */
  readonly factor: number;
  /** `low_freq_factor`: wavelengths above originalMaxPositionEmbeddings / lowFreqFactor are divided by factor. */
  readonly lowFreqFactor: number;
  /** `high_freq_factor`: wavelengths below originalMaxPositionEmbeddings / highFreqFactor are kept. */
  readonly highFreqFactor: number;
  /** `original_max_position_embeddings`: the pre-training context (8192 for Llama-3.x). */
  readonly originalMaxPositionEmbeddings: number;
}

/**
 * Linear RoPE scaling (position interpolation; `rope_scaling` / `rope_parameters` with
 * `rope_type: "linear"`, e.g. Gemma-3 4B/12B/27B's global layers with factor 8): every inverse
 * frequency divided by `factor` (transformers' `_compute_linear_scaling_rope_parameters`; attention factor 1).
 */
export interface LinearRopeScaling {
  readonly type: 'linear';
  readonly factor: number;
}

/** The RoPE variants beyond plain RoPE; null or absent = plain RoPE. */
export type RopeScaling = Llama3RopeScaling | LinearRopeScaling;

/**
 * RoPE inverse frequencies [headDim / 2] in radians per position: θ^(−2k/headDim), then, with a
 * llama3 scaling, exactly transformers' `_compute_llama3_parameters`: wavelengths 2π/f shorter than
 * originalMax / highFreqFactor are kept, longer than originalMax / lowFreqFactor divided by factor,
 * and those between interpolated, f·((1 − s)/factor + s), s = (originalMax/wavelength − low) / (high − low);
 * with a linear scaling every frequency is divided by factor.
 * Computed in float64, as the angles t·f (transformers computes both in float32, whose angles at
 * positions near 1e5 are off by up to about 1e-2 rad). The llama3 attention factor is 1.
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling?: RopeScaling | null): Float64Array {
  const half = headDim / 2;
  const inv = Float64Array.from({ length: half }, (_, k) => 1 / Math.pow(theta, (2 * k) / headDim));
  if (!scaling) return inv;
  if (scaling.type === 'linear') return inv.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: old } = scaling;
  const lowFreqWavelen = old / low;
  const highFreqWavelen = old / high;
  for (let k = 0; k < half; k++) {
    const f = inv[k] as number;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowFreqWavelen) inv[k] = f / factor;
    else if (!(wavelen < highFreqWavelen)) {
      const s = (old / wavelen - low) / (high - low);
      inv[k] = ((1 - s) * f) / factor + s * f;
    }
  }
  return inv;
}

/**
 * RoPE tables cos, sin [T, headDim] (row-major) for positions 0..T−1: angle t·f_k in columns k and
 * k + headDim/2 (rotate-half layout, as Hugging Face's LLaMA), frequencies from {@link ropeInverseFrequencies}.
 */
export function ropeCosSin(T: number, headDim: number, theta: number, scaling?: RopeScaling | null): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const inv = ropeInverseFrequencies(headDim, theta, scaling);
  const cos = new Float32Array(T * headDim);
  const sin = new Float32Array(T * headDim);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < half; k++) {
      const ang = t * (inv[k] as number);
      cos[t * headDim + k] = cos[t * headDim + k + half] = Math.cos(ang);
      sin[t * headDim + k] = sin[t * headDim + k + half] = Math.sin(ang);
    }
  }
  return { cos, sin };
}
