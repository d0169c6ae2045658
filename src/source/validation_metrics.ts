/**
 * `validationMetrics({ data, metrics, batchSize })`: an augmenter that
 * measures the event's model on held-out data — accuracy, top-k accuracy,
 * precision, recall, F1, a confusion matrix, MAE, RMSE, R², or your own —
 * every metric from one forward pass in inference mode. The data is checked
 * as `validationLoss` checks it, with the same code.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { checkFinite, checkTensors, sliceRows } from "../data/tensors.ts";
import { checkModel, forward, type ModelLike } from "../engine/model.ts";
import { checkBatchOptions } from "./iter_batches.ts";
import { checkBatchFinite } from "./validation_loss.ts";
import { type BatchDataset, isDataset, openPass } from "../data/dataset.ts";
import {
  layoutFor,
  type Metric,
  MetricTally,
  type MetricValues,
  type ParsedMetric,
  parseMetrics,
} from "./metric_tally.ts";
import type { Tensor } from "../tf_types.ts";

export type { Metric, MetricFunction, MetricName, MetricSetting, MetricValues } from "./metric_tally.ts";

const WHERE = "validationMetrics";

/** Options of {@link validationMetrics}. */
export interface ValidationMetricsOptions<M extends Record<string, Metric>> {
  /**
   * Validation tensors, the last one holding the labels, or a `tf.data.Dataset`
   * of batches (`[xs, ys]` or `{ xs, ys }`).
   */
  data: Tensor[] | BatchDataset;
  /**
   * The metrics, by the key each adds to the event:
   * `{ val_acc: "accuracy", val_top3: { topK: 3 }, val_f1: "f1", val_confusion: "confusion", val_mae: "mae" }`,
   * or your own `(predictions, labels) => number`.
   */
  metrics: M;
  /** Run the model on this many rows at a time to bound memory (default: all rows at once). */
  batchSize?: number;
}

const OPTION_KEYS = keysOf<ValidationMetricsOptions<Record<string, Metric>>>({
  data: true,
  metrics: true,
  batchSize: true,
});

/** The model's predictions on `inputs` in inference mode, read to the host (float32). */
async function predict(model: ModelLike, inputs: tf.Tensor[], first: boolean): Promise<[Float32Array, number[]]> {
  let pred: tf.Tensor;
  try {
    pred = tf.tidy(() => forward(model, inputs, false));
  } catch (error) {
    if (!first) throw error;
    throw new TypeError(`${WHERE}: the model failed on the input tensors: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const values = await pred.data();
    if (pred.rank === 0 || pred.shape[0] !== inputs[0].shape[0]) {
      throw new TypeError(
        `${WHERE}: the model must keep the batch dimension: ${inputs[0].shape[0]} rows in, ` +
          `[${pred.shape.join(", ")}] out`,
      );
    }
    return [values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>), pred.shape];
  } finally {
    pred.dispose();
  }
}

/**
 * Returns an augmenter for {@link augment} that runs the event's `model` once
 * over the validation data in inference mode (`model.apply(x, { training:
 * false })`, in batches of `batchSize` rows: no dropout, no gradients, no
 * tensors left behind) and returns every metric of `metrics` under the key
 * you gave it. The types carry the keys: after
 * `augment(validationMetrics({ data, metrics: { val_acc: "accuracy", val_confusion: "confusion" } }))`
 * events have `val_acc: number` and `val_confusion: number[][]`.
 *
 * The metrics:
 *
 * - `"accuracy"`: the share of rows whose predicted class (the largest
 *   output, the first at a tie; for a single sigmoid output, class 1 above
 *   0.5) is the label's class. Labels: one class id per row (`[rows]` or
 *   `[rows, 1]`, int32 or float32), or one-hot (or probability) rows shaped
 *   like the output (the class is the largest); for a single output, 0/1
 *   labels (above 0.5 counts as 1).
 * - `{ topK: k }`: the share of rows whose class is among the `k` largest
 *   outputs (fewer than `k` outputs above its own, so ties count in).
 * - `"precision"`, `"recall"`, `"f1"`: macro-averaged as scikit-learn's
 *   `average="macro"` (over the classes present in the labels or the
 *   predictions; a class never predicted has precision 0). `{ precision: c }`
 *   (and `recall`, `f1`) is class `c`'s alone: `{ precision: 1 }` is the
 *   positive class's for a single sigmoid output.
 * - `"confusion"`: the confusion matrix as `number[][]`, rows the true
 *   class, columns the predicted one (JSON-friendly: it logs as it is).
 * - `"mae"`, `"rmse"`: over every output value; `"r2"`: scikit-learn's
 *   `r2_score` (per output, averaged). Labels shaped like the output.
 * - a function `(predictions, labels) => number | tf.Scalar`: your own, on the
 *   whole set at once (the predictions of the same pass, and the labels as
 *   the data holds them), inside `tf.tidy`.
 *
 * A prediction of NaN makes the class metrics NaN (as it would the loss),
 * so `terminateOnNaN` sees it. The data is checked as `validationLoss`
 * checks it: tensors when the augmenter is built (rows, NaN/Infinity), the
 * shapes of the predictions and labels against each metric at each event
 * (a `TypeError` naming the metric and both shapes), and a dataset's
 * batches as they are read.
 *
 * @example Accuracy and a confusion matrix of a fixed classifier
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { validationMetrics } from "@fitstream/fitstream";
 *
 * const model = (x: tf.Tensor) => tf.concat([x, tf.sub(1, x)], 1); // class 0 scores x, class 1 scores 1 − x
 * const x = tf.tensor2d([[0.9], [0.8], [0.3], [0.6]]);
 * const classIds = tf.tensor1d([0, 0, 1, 1], "int32");
 * const measure = validationMetrics({
 *   data: [x, classIds],
 *   metrics: { val_acc: "accuracy", val_confusion: "confusion", val_recall: "recall" },
 * });
 * console.log(await measure({ model })); // { val_acc: 0.75, val_confusion: [[2, 0], [1, 1]], val_recall: 0.75 }
 * ```
 */
export function validationMetrics<const M extends Record<string, Metric>>(
  options: ValidationMetricsOptions<M>,
): <E extends { model: ModelLike }>(event: E) => Promise<MetricValues<M>> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${WHERE}: options must be an object with data and metrics, got ${describe(options)}`);
  }
  checkKeys(WHERE, options, OPTION_KEYS);
  const { data, batchSize } = options;
  const metrics = parseMetrics(WHERE, options.metrics);
  if (isDataset(data)) {
    if (batchSize !== undefined) {
      throw new TypeError(`${WHERE}: batchSize does not apply to a dataset: it brings its own batches`);
    }
    return datasetMetrics(data, metrics);
  }
  const rows = checkTensors(WHERE, "data", data, 2);
  if (batchSize !== undefined) checkBatchOptions(WHERE, { batchSize });
  checkFinite(WHERE, "data", data);
  const step = Math.min(batchSize ?? rows, rows);
  const inputs = data.length - 1, labels = data[inputs];
  const labelRow = labels.shape.slice(1), labelWidth = labelRow.reduce((a, b) => a * b, 1);
  // The labels never change: one host copy, cut per batch.
  const labelValues = labels.dataSync() as tf.TypedArray;

  return async <E extends { model: ModelLike }>(event: E) => {
    const model = (event as { model?: unknown } | null)?.model;
    if (model === undefined) throw new TypeError(`${WHERE}: the event has no model`);
    checkModel(WHERE, model);
    let tally: MetricTally | undefined;
    for (let start = 0; start < rows; start += step) {
      const size = Math.min(step, rows - start);
      const part = step === rows ? data.slice(0, inputs) : data.slice(0, inputs).map((t) => sliceRows(t, start, size));
      let pred: Float32Array, shape: number[];
      try {
        [pred, shape] = await predict(model, part, start === 0);
      } finally {
        if (step !== rows) tf.dispose(part);
      }
      tally ??= new MetricTally(
        WHERE,
        metrics,
        layoutFor(WHERE, metrics, shape.slice(1), labelRow),
        shape.slice(1),
        labelRow,
      );
      const y = labelValues.subarray(start * labelWidth, (start + size) * labelWidth) as tf.TypedArray;
      tally.add(pred, y, labels.dtype, size, start);
    }
    return tally!.values() as MetricValues<M>;
  };
}

/** The metrics over one pass of a dataset, per event. */
function datasetMetrics<M>(
  dataset: BatchDataset,
  metrics: ParsedMetric[],
): <E extends { model: ModelLike }>(event: E) => Promise<MetricValues<M>> {
  let passes = 0;
  return async <E extends { model: ModelLike }>(event: E) => {
    const model = (event as { model?: unknown } | null)?.model;
    if (model === undefined) throw new TypeError(`${WHERE}: the event has no model`);
    checkModel(WHERE, model);
    const pass = ++passes;
    const { first, rest } = await openPass(WHERE, dataset, true, pass);
    let tally: MetricTally | undefined, rows = 0, index = 0;
    const add = async (batch: tf.Tensor[]) => {
      try {
        const inputs = batch.length - 1, labels = batch[inputs], n = batch[0].shape[0];
        const [pred, shape] = await predict(model, batch.slice(0, inputs), ++index === 1);
        const labelRow = labels.shape.slice(1);
        tally ??= new MetricTally(
          WHERE,
          metrics,
          layoutFor(WHERE, metrics, shape.slice(1), labelRow),
          shape.slice(1),
          labelRow,
        );
        if (pred.some((v) => !Number.isFinite(v))) checkBatchFinite(batch, NaN, `${index} of pass ${pass}`, WHERE);
        tally.add(pred, (await labels.data()) as tf.TypedArray, labels.dtype, n, rows);
        rows += n;
      } finally {
        tf.dispose(batch);
      }
    };
    await add(first);
    for await (const batch of rest()) await add(batch);
    return tally!.values() as MetricValues<M>;
  };
}
