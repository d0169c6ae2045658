/**
 * What happens to the gradients between the backward pass and the
 * optimizer: accumulation over micro-batches and clipping — the
 * `accumulate`, `clipNorm` and `clipValue` options of `epochStream` and
 * `stepStream` — written once for tfjs tensors and once for the host
 * engine's float64 arrays, the same arithmetic in the same order.
 *
 * - `accumulate: k`: one optimizer step per `k` micro-batches, on their
 *   mean gradient weighted by rows (Σ gᵢ·nᵢ / Σ nᵢ), so batch `b` × `k`
 *   trains what batch `b·k` trains, a short last batch included. An epoch's
 *   last step takes the micro-batches that are left.
 * - `clipNorm: c`: as PyTorch's `clip_grad_norm_`: the global L2 norm of
 *   every trained variable's gradient, and every gradient scaled by
 *   `min(1, c / (norm + 1e-6))`.
 * - `clipValue: v`: every gradient element clamped to `[-v, v]`.
 *
 * Both clips may be given: the norm first, then the values (as Keras does).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The gradient options of a run. Internal. */
export interface GradientRule {
  /** Micro-batches per optimizer step (≥ 1). */
  accumulate: number;
  clipNorm?: number;
  clipValue?: number;
}

/** The rule of a run that sets none of the options: one batch per step, no clipping. Internal. */
export const PLAIN_GRADIENTS: GradientRule = { accumulate: 1 };

/** Whether the gradients go straight from the backward pass to the optimizer. Internal. */
export function isPlain(rule: GradientRule): boolean {
  return rule.accumulate === 1 && rule.clipNorm === undefined && rule.clipValue === undefined;
}

/** PyTorch's `clip_grad_norm_` adds this to the norm before dividing. */
const NORM_EPSILON = 1e-6;

/**
 * Clips tfjs gradients in place of the array (new tensors; the old ones are
 * disposed). Without a branch on the norm: a factor of 1 leaves a gradient's
 * values as they were, bit for bit. Internal.
 */
export function clipTensors(rule: GradientRule, grads: tf.Tensor[]): void {
  const { clipNorm, clipValue } = rule;
  if (clipNorm !== undefined) {
    const clipped = tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
      const factor = tf.minimum(tf.div(clipNorm, tf.add(norm, NORM_EPSILON)), 1);
      return grads.map((g) => tf.mul(g, factor));
    });
    tf.dispose(grads.splice(0, grads.length, ...clipped));
  }
  if (clipValue !== undefined) {
    const clipped = grads.map((g) => tf.clipByValue(g, -clipValue, clipValue));
    tf.dispose(grads.splice(0, grads.length, ...clipped));
  }
}

/** Clips the host engine's float64 gradients in place. Internal. */
export function clipArrays(rule: GradientRule, grads: Float64Array[]): void {
  const { clipNorm, clipValue } = rule;
  if (clipNorm !== undefined) {
    let squares = 0;
    for (const g of grads) for (let i = 0; i < g.length; i++) squares += g[i] * g[i];
    const factor = clipNorm / (Math.sqrt(squares) + NORM_EPSILON);
    if (factor < 1) { for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= factor; }
  }
  if (clipValue !== undefined) {
    for (const g of grads) {
      for (let i = 0; i < g.length; i++) g[i] = Math.min(clipValue, Math.max(-clipValue, g[i]));
    }
  }
}

/** A sentence for explainEngine when the rule is not plain, else "". Internal. */
export function describeRule(rule: GradientRule): string {
  const parts: string[] = [];
  if (rule.accumulate > 1) parts.push(`${rule.accumulate} batches accumulated per step`);
  if (rule.clipNorm !== undefined) parts.push(`gradients clipped to a global norm of ${rule.clipNorm}`);
  if (rule.clipValue !== undefined) parts.push(`gradient values clipped to ±${rule.clipValue}`);
  return parts.join(", ");
}
