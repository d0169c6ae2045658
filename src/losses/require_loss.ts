/**
 * The loss check shared by `epochStream` and `validationLoss`: tfjs losses
 * and metrics that take the labels first are refused (fitstream calls
 * `loss(predictions, labels)`), each with what to pass instead.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { requireFunction } from "../internal/validate.ts";

/**
 * `loss` must be a function, and not one of tfjs's losses or metrics whose
 * first argument is the labels: fitstream calls `loss(predictions, labels)`,
 * so those would silently train on swapped arguments (and tfjs's metrics
 * return a value per row, not the scalar a loss must be).
 */
export function requireLoss(where: string, loss: unknown): void {
  requireFunction(where, "loss", loss);
  const swapped = LABELS_FIRST.get(loss);
  if (swapped) {
    const ours = swapped === "softmaxCrossEntropy" || swapped === "sigmoidCrossEntropy"
      ? `fitstream's ${swapped}, or `
      : "";
    throw new TypeError(
      `${where}: loss is tf.losses.${swapped}, which takes (labels, predictions), but the loss is called as ` +
        `loss(predictions, labels): use ${ours}(p, y) => tf.losses.${swapped}(y, p)`,
    );
  }
  const metric = METRICS.get(loss);
  if (metric) {
    const [name, perRow, advice] = metric;
    throw new TypeError(
      `${where}: loss is tf.metrics.${name}, which takes (labels, predictions)` +
        (perRow ? " and returns one value per row" : "") + ", but the loss is called as loss(predictions, labels)" +
        (perRow ? " and must return a scalar" : "") + `: ${advice}`,
    );
  }
}

const LABELS_FIRST = new Map<unknown, string>([
  [tf.losses.softmaxCrossEntropy, "softmaxCrossEntropy"],
  [tf.losses.sigmoidCrossEntropy, "sigmoidCrossEntropy"],
  [tf.losses.logLoss, "logLoss"],
  [tf.losses.hingeLoss, "hingeLoss"],
]);

const PER_ROW = true;
const NO_GRADIENT = "it counts, with no gradient to train on: measure it with validationMetrics";

/** A function of `tf.metrics`: its name, whether it returns a value per row, and what to pass instead. */
type Advice = readonly [name: string, perRow: boolean, advice: string];

const metrics = tf.metrics as unknown as Record<string, unknown>;
const advise = (names: string[], perRow: boolean, advice: (name: string) => string): [unknown, Advice][] =>
  names.map((name) => [metrics[name], [name, perRow, advice(name)]]);

/** Every function of `tf.metrics` (tfjs 4.22): all take `(yTrue, yPred)`. */
const METRICS = new Map<unknown, Advice>([
  ...advise(
    ["categoricalCrossentropy"],
    PER_ROW,
    () => "use fitstream's categoricalCrossentropy(predictions, labels) (the same loss, averaged over rows)",
  ),
  ...advise(
    ["binaryCrossentropy", "meanAbsolutePercentageError", "mape", "MAPE", "cosineProximity"],
    PER_ROW,
    (name) => `use (p, y) => tf.mean(tf.metrics.${name}(y, p))`,
  ),
  ...advise(["meanSquaredError", "mse", "MSE"], PER_ROW, () => "use tf.losses.meanSquaredError"),
  ...advise(["meanAbsoluteError"], PER_ROW, () => "use tf.losses.absoluteDifference"),
  ...advise(["binaryAccuracy", "categoricalAccuracy", "sparseCategoricalAccuracy"], PER_ROW, () => NO_GRADIENT),
  ...advise(["precision", "recall"], false, () => NO_GRADIENT),
  ...advise(
    ["r2Score"],
    false,
    () => "use (p, y) => tf.neg(tf.metrics.r2Score(y, p)) to maximise it, or measure it with validationMetrics",
  ),
]);
