/**
 * L1L2 weight penalties as the host engines apply them: the penalty's value
 * and its gradient at a step's starting weights, as `model.fit` adds them to
 * the batch's loss.
 *
 * @module
 */

/** An L1L2 penalty on one weight, as float32 factors (tfjs multiplies by float32 scalars). */
export interface Penalty {
  l1: number;
  l2: number;
}

/** `grad += d penalty / d w` for an L1L2 penalty, as tfjs differentiates it; returns the penalty. */
export function addPenalty(penalty: Penalty, w: Float32Array, grad: Float64Array | undefined): number {
  const { l1, l2 } = penalty;
  let abs = 0, squares = 0;
  for (let i = 0; i < w.length; i++) {
    const v = w[i];
    abs += Math.abs(v);
    squares += v * v;
    // tfjs: |w|' is step(w, -1), so -1 at 0; (w²)' is 2w.
    if (grad) grad[i] += l1 * (v > 0 ? 1 : -1) + l2 * 2 * v;
  }
  return l1 * abs + l2 * squares;
}
