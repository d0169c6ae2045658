/**
 * tfjs-layers' categorical cross-entropies (the losses `model.compile`
 * knows as "categoricalCrossentropy" and "sparseCategoricalCrossentropy")
 * in fitstream's argument order, `(predictions, labels)`, reduced to the
 * mean over rows as `model.fit` reduces them: for classifiers whose last
 * layer has a softmax activation. With a chain of Dense layers they train
 * on the host engine.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor } from "../tf_types.ts";

function shapeOf(t: tf.Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

function requireTensor(where: string, name: string, value: unknown): asserts value is tf.Tensor {
  if (!(value instanceof tf.Tensor)) {
    throw new TypeError(`${where}: ${name} must be a tf.Tensor, got ${value === null ? "null" : typeof value}`);
  }
}

/**
 * Each row's loss, −Σ y · log clip(p / Σ p, ε, 1 − ε) along the last axis, in
 * the order tfjs-layers computes it (so the values and gradients are its own
 * to the bit). ε is tfjs-layers' (the backend's epsilon, 1e-7 on cpu and wasm).
 */
function rowLosses(probabilities: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const epsilon = tf.backend().epsilon();
  const axis = probabilities.rank - 1;
  const normalized = tf.div(probabilities, tf.sum(probabilities, axis, true));
  const clipped = tf.clipByValue(normalized, epsilon, 1 - epsilon);
  return tf.neg(tf.sum(tf.mul(tf.cast(targets, "float32"), tf.log(clipped)), axis));
}

/**
 * Categorical cross-entropy of `probabilities` (n×classes, the output of a
 * softmax layer) against one-hot (or probability) `labels` of the same
 * shape, averaged over the rows: what `model.fit` minimises for
 * `loss: "categoricalCrossentropy"` (each row normalized to sum 1, clipped
 * to [ε, 1 − ε] with tfjs-layers' ε, −Σ y · log p). For a layer without
 * softmax (logits), use fitstream's `softmaxCrossEntropy` instead; for class ids,
 * {@link sparseCategoricalCrossentropy}.
 *
 * @example Two rows, two classes
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { categoricalCrossentropy } from "@fitstream/fitstream";
 *
 * const probabilities = tf.tensor2d([[0.8, 0.2], [0.5, 0.5]]);
 * const labels = tf.tensor2d([[1, 0], [0, 1]]);
 * // (−log 0.8 − log 0.5) / 2
 * console.log(categoricalCrossentropy(probabilities, labels).dataSync()[0].toFixed(4)); // "0.4581"
 * ```
 */
export function categoricalCrossentropy(probabilities: Tensor, labels: Tensor): Tensor {
  requireTensor("categoricalCrossentropy", "probabilities", probabilities);
  requireTensor("categoricalCrossentropy", "labels", labels);
  const same = labels.rank === probabilities.rank && labels.shape.every((d, i) => d === probabilities.shape[i]);
  if (!same) {
    const ids = labels.size * probabilities.shape[probabilities.rank - 1] === probabilities.size;
    throw new TypeError(
      `categoricalCrossentropy: labels must be shaped like probabilities ${shapeOf(probabilities)}, got ` +
        `${shapeOf(labels)}` + (ids ? ": class ids? use sparseCategoricalCrossentropy(predictions, classIds)" : ""),
    );
  }
  return tf.tidy(() => tf.mean(rowLosses(probabilities, labels)));
}

/**
 * Categorical cross-entropy of `probabilities` (n×classes, the output of a
 * softmax layer) against integer `classIds` (n, or n×1; int32 or whole
 * float32 numbers), averaged over the rows: what `model.fit` minimises for
 * `loss: "sparseCategoricalCrossentropy"` (probabilities clipped to
 * [ε, 1 − ε], then as {@link categoricalCrossentropy} against the one-hot
 * rows; an id outside [0, classes) is a row of zeros and costs nothing, as
 * in tfjs).
 *
 * @example Two rows, their classes by number
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { sparseCategoricalCrossentropy } from "@fitstream/fitstream";
 *
 * const probabilities = tf.tensor2d([[0.8, 0.2], [0.5, 0.5]]);
 * const classIds = tf.tensor1d([0, 1], "int32");
 * console.log(sparseCategoricalCrossentropy(probabilities, classIds).dataSync()[0].toFixed(4)); // "0.4581"
 * ```
 */
export function sparseCategoricalCrossentropy(probabilities: Tensor, classIds: Tensor): Tensor {
  requireTensor("sparseCategoricalCrossentropy", "probabilities", probabilities);
  requireTensor("sparseCategoricalCrossentropy", "classIds", classIds);
  const classes = probabilities.shape[probabilities.rank - 1];
  const fits = probabilities.rank >= 1 && classIds.size * classes === probabilities.size &&
    classIds.shape[0] === probabilities.shape[0];
  if (!fits) {
    const rows = probabilities.shape[0];
    throw new TypeError(
      `sparseCategoricalCrossentropy: classIds must hold one class id per row of probabilities ` +
        `${shapeOf(probabilities)} ([${rows}] or [${rows}, 1]), got ${shapeOf(classIds)}` +
        (classIds.size === probabilities.size
          ? ": one-hot labels? use categoricalCrossentropy(predictions, labels)"
          : ""),
    );
  }
  return tf.tidy(() => {
    const epsilon = tf.backend().epsilon();
    const clipped = tf.clipByValue(probabilities, epsilon, 1 - epsilon);
    // tfjs-layers floors the ids first, with tf.floor, which takes float32 alone: its own loss fails on int32 ids
    // in model.fit (tfjs 4.22). Whole numbers need no flooring, so int32 ids work here.
    const flat = tf.reshape(classIds, [-1]);
    const ids = flat.dtype === "int32" ? flat : tf.cast(tf.floor(flat), "int32");
    const oneHot = tf.reshape(tf.oneHot(ids, classes), clipped.shape);
    return tf.mean(rowLosses(clipped, oneHot));
  });
}
