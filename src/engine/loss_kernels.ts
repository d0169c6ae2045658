/**
 * The losses the host engine knows, with their gradients, on plain arrays:
 * each matches its tfjs function (same reduction, same gradient, including
 * tfjs's choice at a tie) in float64.
 *
 * @module
 */
import { type ActivationCode, slopeAny } from "./dense_kernels.ts";
import { categoricalBackward } from "./categorical_kernels.ts";

/** A loss the host engine computes itself. */
export type HostLoss =
  | "meanSquaredError"
  | "absoluteDifference"
  | "huberLoss"
  | "softmaxCrossEntropy"
  | "sigmoidCrossEntropy"
  | "categoricalCrossentropy"
  | "sparseCategoricalCrossentropy";

/** The losses that take a softmax output layer (and only those take one). */
export const SOFTMAX_LOSSES: readonly HostLoss[] = ["categoricalCrossentropy", "sparseCategoricalCrossentropy"];

/** Room for the categorical losses' per-row values; grows, never shrinks. */
let scratch = new Float64Array(0);

/**
 * The loss of `pred` (n×cols, the output of a layer with activation `code`)
 * against `labels`: writes d loss / d pre-activation into `grad`, adds its
 * column sums into `biasGrad` when given, and returns the batch's loss times
 * its rows, so that an epoch's sample-weighted mean is the sum over batches
 * divided by the rows. `epsilon` is tfjs-layers' ε, for the categorical
 * losses (whose `code` is softmax's; their labels are class ids, one per
 * row, for the sparse one).
 */
export function lossBackward(
  loss: HostLoss,
  pred: Float64Array,
  labels: Float64Array,
  n: number,
  cols: number,
  code: ActivationCode,
  biasGrad: Float64Array | undefined,
  grad: Float64Array,
  epsilon = 1e-7,
): number {
  if (loss === "categoricalCrossentropy" || loss === "sparseCategoricalCrossentropy") {
    if (scratch.length < 2 * cols) scratch = new Float64Array(2 * cols);
    const sparse = loss === "sparseCategoricalCrossentropy";
    return categoricalBackward(pred, labels, n, cols, sparse, epsilon, biasGrad, grad, scratch);
  }
  if (loss === "softmaxCrossEntropy") return softmaxCrossEntropy(pred, labels, n, cols, code, biasGrad, grad);
  // The others are means over all n × cols elements of an elementwise loss.
  const scale = 1 / (n * cols);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j;
      const p = pred[i], y = labels[i], d = p - y;
      let value: number, g: number;
      switch (loss) {
        case "meanSquaredError":
          value = d * d;
          g = 2 * d;
          break;
        case "absoluteDifference":
          value = Math.abs(d);
          // fitstream calls absoluteDifference(predictions, labels): tfjs differentiates
          // |predictions - labels| with |x|' = step(x, -1), which is -1 at a tie.
          g = d > 0 ? 1 : -1;
          break;
        case "huberLoss": { // delta 1
          const e = Math.abs(d), q = e < 1 ? e : 1;
          value = 0.5 * q * q + (e - q);
          g = d < -1 ? -1 : d > 1 ? 1 : d;
          break;
        }
        default: // sigmoidCrossEntropy: p holds logits, y targets in [0, 1]
          value = (p > 0 ? p : 0) - p * y + Math.log1p(Math.exp(-Math.abs(p)));
          g = 1 / (1 + Math.exp(-p)) - y;
      }
      sum += value;
      const gi = grad[i] = scale * g * slopeAny(code, p);
      if (biasGrad) biasGrad[j] += gi;
    }
  }
  return sum / cols;
}

const softmaxCrossEntropy: (...args: DropFirst<Parameters<typeof lossBackward>>) => number = (
  logits,
  labels,
  n,
  cols,
  code,
  biasGrad,
  grad,
) => {
  let sum = 0;
  for (let r = 0; r < n; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = logits[o + j] > max ? logits[o + j] : max;
    let total = 0;
    for (let j = 0; j < cols; j++) total += Math.exp(logits[o + j] - max);
    const logTotal = max + Math.log(total);
    for (let j = 0; j < cols; j++) {
      const i = o + j, y = labels[i];
      sum += y * (logTotal - logits[i]);
      // tfjs's gradient is softmax - labels (it assumes each row of labels sums to 1).
      const g = grad[i] = (Math.exp(logits[i] - logTotal) - y) / n * slopeAny(code, logits[i]);
      if (biasGrad) biasGrad[j] += g;
    }
  }
  return sum;
};

type DropFirst<T extends unknown[]> = T extends [unknown, ...infer R] ? R : never;
