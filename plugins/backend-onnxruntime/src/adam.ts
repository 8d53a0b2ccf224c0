/**
 * Adam (Kingma & Ba 2015, Algorithm 1) on float32 arrays, operation for operation as
 * tfjs's `tf.train.adam(learningRate)` computes it (tfjs-core `AdamOptimizer.applyGradients`):
 * β1 = 0.9, β2 = 0.999, ε = 1e-7 (tfjs's float32 `backend.epsilon()`), bias correction through the
 * float32 running products β1^t, β2^t, ε added to √v̂ (not to v̂), every intermediate rounded to
 * float32. Rounding each step with `Math.fround` reproduces the float32 arithmetic exactly
 * (a double holds every product, quotient and square root of two float32 values closely enough
 * that rounding it once more gives the correctly rounded float32 result), so given the same
 * gradients the weights are bit-identical to tfjs's.
 */
import { DdaError } from '@dda/core';

const f = Math.fround;

/** tfjs's ε for float32 backends (`EPSILON_FLOAT32`). */
export const TFJS_ADAM_EPSILON = 1e-7;

/** Adam's state over a fixed list of parameter tensors; {@link step} updates them in place. */
export class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  /** β1^t and β2^t as tfjs keeps them: float32 scalars starting at β1, β2, multiplied after each step. */
  private accBeta1: number;
  private accBeta2: number;
  private steps = 0;

  /**
   * @param sizes - Number of entries of each parameter tensor (moments start at zero).
   * @throws DdaError if the learning rate is not a positive finite number.
   */
  constructor(
    sizes: readonly number[],
    readonly learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = TFJS_ADAM_EPSILON,
  ) {
    if (!(learningRate > 0) || !Number.isFinite(learningRate)) throw new DdaError(`Adam: learning rate must be a positive number, got ${learningRate}`, 'pass e.g. 3e-3');
    this.m = sizes.map((n) => new Float32Array(n));
    this.v = sizes.map((n) => new Float32Array(n));
    this.accBeta1 = f(beta1);
    this.accBeta2 = f(beta2);
  }

  /** Number of steps taken. */
  get iterations(): number {
    return this.steps;
  }

  /**
   * A copy of the optimizer's state, to continue later exactly where it is ({@link restore}):
   * `arrays` the first moments then the second moments of every tensor, `numbers` β1^t, β2^t (the
   * float32 running products) and the number of steps.
   */
  state(): { arrays: Float32Array[]; numbers: number[] } {
    return { arrays: [...this.m, ...this.v].map((a) => Float32Array.from(a)), numbers: [this.accBeta1, this.accBeta2, this.steps] };
  }

  /**
   * Continues from a {@link state}: the next step is bit-identical to the one an optimizer that
   * never stopped would take.
   *
   * @throws DdaError when the state is for other tensors.
   */
  restore(s: { readonly arrays: readonly Float32Array[]; readonly numbers: readonly number[] }): void {
    const n = this.m.length;
    if (s.arrays.length !== 2 * n || s.numbers.length !== 3) throw new DdaError(`Adam: a state of ${s.arrays.length} moment arrays and ${s.numbers.length} numbers for ${n} tensors`, 'resume with the state saved for this model and parameter set');
    s.arrays.forEach((a, k) => {
      const into = (k < n ? this.m[k] : this.v[k - n]) as Float32Array;
      if (a.length !== into.length) throw new DdaError(`Adam: moment ${k} has ${a.length} entries, expected ${into.length}`, 'resume with the state saved for this model and parameter set');
      into.set(a);
    });
    [this.accBeta1, this.accBeta2, this.steps] = s.numbers as [number, number, number];
  }

  /**
   * One update: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², θ ← θ − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε).
   *
   * @param params - The parameter tensors, updated in place (same order and sizes as the constructor's).
   * @param grads - Their gradients.
   */
  step(params: readonly Float32Array[], grads: readonly Float32Array[]): void {
    if (params.length !== this.m.length || grads.length !== this.m.length) throw new DdaError(`Adam: ${params.length} tensors and ${grads.length} gradients for ${this.m.length} moments`, 'pass one gradient per parameter tensor');
    const b1 = f(this.beta1);
    const b2 = f(this.beta2);
    const c1 = f(1 - this.beta1);
    const c2 = f(1 - this.beta2);
    const eps = f(this.epsilon);
    const negLr = f(-this.learningRate);
    const oneMinusAcc1 = f(1 - this.accBeta1);
    const oneMinusAcc2 = f(1 - this.accBeta2);
    for (let k = 0; k < params.length; k++) {
      const p = params[k] as Float32Array;
      const g = grads[k] as Float32Array;
      const m = this.m[k] as Float32Array;
      const v = this.v[k] as Float32Array;
      if (p.length !== m.length || g.length !== m.length) throw new DdaError(`Adam: tensor ${k} has ${p.length} entries and a gradient of ${g.length}, expected ${m.length}`, 'keep the parameter list fixed');
      for (let i = 0; i < m.length; i++) {
        const gi = g[i] as number;
        const mi = f(f((m[i] as number) * b1) + f(gi * c1));
        const vi = f(f((v[i] as number) * b2) + f(f(gi * gi) * c2));
        m[i] = mi;
        v[i] = vi;
        const mHat = f(mi / oneMinusAcc1);
        const vHat = f(vi / oneMinusAcc2);
        p[i] = f(f(f(mHat / f(f(Math.sqrt(vHat)) + eps)) * negLr) + (p[i] as number));
      }
    }
    this.accBeta1 = f(this.accBeta1 * b1);
    this.accBeta2 = f(this.accBeta2 * b2);
    this.steps++;
  }
}
