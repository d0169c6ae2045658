/**
 * Zero gradients for the comparisons tfjs 4.22 leaves without one (`Greater`,
 * `Less`, `LessEqual`, `Equal`, `NotEqual`; it gives `GreaterEqual` one):
 * a comparison's output is a step, flat almost everywhere, so its gradient is
 * zero, as TensorFlow treats it. Without them `thresholdedReLU` (which
 * multiplies its input by `x > theta`) cannot train on any backend, in
 * `model.fit` either. They only add gradients tfjs lacked, so no result that
 * tfjs computed changes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

const COMPARISONS = ["Greater", "Less", "LessEqual", "Equal", "NotEqual"];

let registered = false;

/** Registers the zero gradients (once; a comparison tfjs has learnt a gradient for keeps tfjs's). */
export function registerComparisonGradients(): void {
  if (registered) return;
  registered = true;
  for (const kernelName of COMPARISONS) {
    if (tf.getGradient(kernelName) !== undefined) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ["a", "b"],
      gradFunc: (_dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [a, b] = saved;
        return { a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) };
      },
    });
  }
}
