/**
 * The loss check shared by `epochStream` and `validationLoss`: tfjs losses
 * that take the labels first are refused (fitstream calls
 * `loss(predictions, labels)`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { requireFunction } from "../internal/validate.ts";

/**
 * `loss` must be a function, and not one of tfjs's losses whose first
 * argument is the labels: fitstream calls `loss(predictions, labels)`, so
 * those would silently train on swapped arguments.
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
}

const LABELS_FIRST = new Map<unknown, string>([
  [tf.losses.softmaxCrossEntropy, "softmaxCrossEntropy"],
  [tf.losses.sigmoidCrossEntropy, "sigmoidCrossEntropy"],
  [tf.losses.logLoss, "logLoss"],
  [tf.losses.hingeLoss, "hingeLoss"],
]);
