/**
 * Cross-entropy losses in fitstream's argument order, `(predictions, labels)`,
 * for classifiers whose last layer outputs logits. tfjs's own
 * `tf.losses.softmaxCrossEntropy` and `tf.losses.sigmoidCrossEntropy` take
 * the labels first.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor } from "../tf_types.ts";

/**
 * Softmax cross-entropy of `logits` (n×classes, a linear last layer) against
 * one-hot (or probability) `labels`, averaged over the rows: the value of
 * `tf.losses.softmaxCrossEntropy(labels, logits)`. Pass it as `loss` to
 * `epochStream` or `validationLoss`; with a chain of Dense layers it trains
 * on the host engine.
 *
 * @example Two rows, two classes
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { softmaxCrossEntropy } from "@fitstream/fitstream";
 *
 * const logits = tf.tensor2d([[2, 0], [0, 0]]);
 * const labels = tf.tensor2d([[1, 0], [0, 1]]);
 * console.log(softmaxCrossEntropy(logits, labels).dataSync()[0].toFixed(4)); // "0.4100"
 * ```
 */
export function softmaxCrossEntropy(predictions: Tensor, labels: Tensor): Tensor {
  return tf.losses.softmaxCrossEntropy(labels, predictions);
}

/**
 * Sigmoid cross-entropy of `logits` against targets in [0, 1] (binary or
 * multi-label), averaged over every element: the value of
 * `tf.losses.sigmoidCrossEntropy(labels, logits)`. Pass it as `loss` to
 * `epochStream` or `validationLoss`; with a chain of Dense layers it trains
 * on the host engine.
 *
 * @example One logit of 0 is a coin flip: log 2
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { sigmoidCrossEntropy } from "@fitstream/fitstream";
 *
 * const loss = sigmoidCrossEntropy(tf.tensor2d([[0]]), tf.tensor2d([[1]]));
 * console.log(loss.dataSync()[0].toFixed(4)); // "0.6931"
 * ```
 */
export function sigmoidCrossEntropy(predictions: Tensor, labels: Tensor): Tensor {
  return tf.losses.sigmoidCrossEntropy(labels, predictions);
}
