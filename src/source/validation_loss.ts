/**
 * `validationLoss({ data, loss, key, lastLabel, batchSize })`: an augmenter
 * that evaluates the event's model on held-out data. The data is checked as
 * `epochStream` checks training data, with the same code: tensors when the
 * augmenter is built (rows, NaN/Infinity), and against the model (a one-row
 * probe of the model and loss) at the first event of each model, as the
 * model arrives with the events.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireKey } from "../internal/validate.ts";
import { requireLoss } from "../losses/require_loss.ts";
import { checkFinite, checkTensors, sliceRows } from "../data/tensors.ts";
import { checkModel, forward, type LossFunction, type ModelLike } from "../engine/model.ts";
import { datasetInputName, probeRun } from "../engine/probe.ts";
import { checkBatchOptions } from "./iter_batches.ts";
import type { Tensor } from "../tf_types.ts";
import { type BatchDataset, isDataset, openPass } from "../data/dataset.ts";

/** Options of {@link validationLoss}. */
export interface ValidationLossOptions<K extends string> {
  /** Validation tensors (with `lastLabel`, the last one holds the labels), or a `tf.data.Dataset` of batches. */
  data: Tensor[] | BatchDataset;
  /** The loss, `(predictions, labels) => scalar`, a mean over rows. */
  loss: LossFunction;
  /** The key to add (default `"val_loss"`). */
  key?: K;
  /** The last tensor of `data` holds the labels (default `true`). */
  lastLabel?: boolean;
  /** Evaluate in batches of this many rows to bound memory (default: all rows at once). */
  batchSize?: number;
}

const OPTION_KEYS = keysOf<ValidationLossOptions<string>>({
  data: true,
  loss: true,
  key: true,
  lastLabel: true,
  batchSize: true,
});

/**
 * Checks `model` and, the first time it is seen, runs it and the loss on one
 * row of `data` (as `epochStream` does with training data), so a shape
 * mistake is a `TypeError` naming validationLoss rather than tfjs's error
 * from deep inside the evaluation.
 */
function checkAgainstModel(
  probed: WeakSet<object>,
  model: unknown,
  loss: LossFunction,
  data: tf.Tensor[],
  inputs: number,
  name?: (i: number) => string,
): asserts model is ModelLike {
  if (model === undefined) throw new TypeError("validationLoss: the event has no model");
  checkModel("validationLoss", model);
  if (probed.has(model)) return;
  probeRun("validationLoss", model, loss, data, inputs, name);
  probed.add(model);
}

/**
 * A non-finite value on a batch: if the batch holds NaN or Infinity, a
 * `RangeError` naming it (a dataset's batches cannot be scanned up front);
 * otherwise the model itself gives non-finite values, and the value stands.
 * Internal (`validationMetrics` checks its batches with it too).
 */
export function checkBatchFinite(batch: tf.Tensor[], value: number, at: string, where = "validationLoss"): void {
  if (!Number.isFinite(value)) checkFinite(`${where}: dataset element ${at}`, "batch", batch);
}

/**
 * Returns an augmenter for {@link augment}: it runs the event's `model` on the
 * whole validation set in inference mode (no dropout, no gradients, no
 * optimizer state touched, no tensors left behind) and returns
 * `{ [key]: loss }`. With `batchSize`, the loss is the row-weighted mean of
 * the batch losses, which equals the full-set value for mean losses. With
 * a dataset, each event reads one pass of it, batch by batch, and the loss
 * is the row-weighted mean over its batches.
 *
 * The data is checked as training data is: tensors when the augmenter is
 * built (rows shared by inputs and labels, no NaN or Infinity), and the model
 * and loss on one row at the first event of each model (output against label
 * shapes), so a mistake is an error naming `validationLoss` and the problem
 * rather than a failure inside tfjs. A dataset's batches are checked as they
 * are read; one that makes the loss NaN or Infinity is scanned, and refused
 * if it holds such values.
 *
 * @example Add val_loss to every event
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { validationLoss } from "@fitstream/fitstream";
 *
 * const model = (x: tf.Tensor) => x.mul(2);
 * const measure = validationLoss({ data: [tf.tensor2d([[1], [2]]), tf.tensor2d([[2], [5]])], loss: tf.losses.meanSquaredError });
 * console.log(await measure({ model })); // { val_loss: 0.5 }
 * ```
 */
export function validationLoss<const K extends string = "val_loss">(
  options: ValidationLossOptions<K>,
): <E extends { model: ModelLike }>(event: E) => Promise<{ [P in K]: number }> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`validationLoss: options must be an object with data and loss, got ${describe(options)}`);
  }
  checkKeys("validationLoss", options, OPTION_KEYS);
  const { data, loss, lastLabel = true, batchSize } = options;
  const key = (options.key ?? "val_loss") as K;
  requireKey("validationLoss", "key", key);
  if (typeof lastLabel !== "boolean") {
    throw new TypeError(`validationLoss: lastLabel must be a boolean, got ${describe(lastLabel)}`);
  }
  requireLoss("validationLoss", loss);
  if (isDataset(data)) {
    if (batchSize !== undefined) {
      throw new TypeError("validationLoss: batchSize does not apply to a dataset: it brings its own batches");
    }
    return datasetLoss(data, loss, key, lastLabel);
  }
  const rows = checkTensors("validationLoss", "data", data, lastLabel ? 2 : 1);
  if (batchSize !== undefined) checkBatchOptions("validationLoss", { batchSize });
  checkFinite("validationLoss", "data", data);
  const step = Math.min(batchSize ?? rows, rows);
  const inputs = lastLabel ? data.length - 1 : data.length;
  const probed = new WeakSet<object>();

  return async <E extends { model: ModelLike }>(event: E) => {
    const model = (event as { model?: unknown } | null)?.model;
    checkAgainstModel(probed, model, loss, data, inputs);
    const total = tf.tidy(() => {
      let sum: tf.Tensor = tf.scalar(0);
      for (let start = 0; start < rows; start += step) {
        const size = Math.min(step, rows - start);
        const part = step === rows ? data : data.map((t) => sliceRows(t, start, size));
        const pred = forward(model, part.slice(0, inputs), false);
        const value = lastLabel ? loss(pred, part[inputs]) : (loss as (p: tf.Tensor) => tf.Tensor)(pred);
        sum = sum.add(value.mul(size));
      }
      return sum.div(rows);
    });
    const [value] = await total.data();
    total.dispose();
    return { [key]: value } as { [P in K]: number };
  };
}

/** The validation loss over one pass of a dataset, per event. */
function datasetLoss<K extends string>(
  dataset: BatchDataset,
  loss: LossFunction,
  key: K,
  lastLabel: boolean,
): <E extends { model: ModelLike }>(event: E) => Promise<{ [P in K]: number }> {
  let passes = 0;
  const probed = new WeakSet<object>();
  return async <E extends { model: ModelLike }>(event: E) => {
    const model = (event as { model?: unknown } | null)?.model;
    if (model === undefined) throw new TypeError("validationLoss: the event has no model");
    checkModel("validationLoss", model);
    const pass = ++passes;
    const { first, rest } = await openPass("validationLoss", dataset, lastLabel, pass);
    let sum = 0, rows = 0, index = 0;
    const add = async (batch: tf.Tensor[]) => {
      try {
        const inputs = lastLabel ? batch.length - 1 : batch.length;
        if (++index === 1) checkAgainstModel(probed, model, loss, batch, inputs, datasetInputName(inputs));
        const value = tf.tidy(() => {
          const pred = forward(model, batch.slice(0, inputs), false);
          return lastLabel ? loss(pred, batch[inputs]) : (loss as (p: tf.Tensor) => tf.Tensor)(pred);
        });
        const [v] = await value.data();
        value.dispose();
        checkBatchFinite(batch, v, `${index} of pass ${pass}`);
        const n = batch[0].shape[0];
        sum += v * n;
        rows += n;
      } finally {
        tf.dispose(batch);
      }
    };
    await add(first);
    for await (const batch of rest()) await add(batch);
    return { [key]: sum / rows } as { [P in K]: number };
  };
}
