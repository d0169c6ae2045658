/**
 * A one-row dry run of a model and its loss before anything trains: shape
 * mistakes become clear errors, and a loss that depends on the model other
 * than through its predictions (a weight penalty written in the loss, a
 * second `model.apply` inside it, a read of the weights' values) is found,
 * so that the planner sends it to the tfjs path.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { sliceRows } from "../data/tensors.ts";
import { forward, isLayersModel, type LossFunction, type ModelLike } from "./model.ts";
import { freeingTapeOnThrow } from "./train_step.ts";

/** What the probe learned. Internal. */
export interface ProbeResult {
  /** Why the loss counts as depending on the model beyond its predictions, if it does. */
  lossReadsModel?: string;
}

function shapeOf(t: tf.Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

/**
 * Why a loss's value is refused: not a tensor, or a tensor of some shape — on
 * the probe's one row, `[1]` is most likely one value per row (a tfjs metric,
 * or a loss written without its mean).
 */
function notScalar(where: string, value: unknown): string {
  const start = `${where}: loss must return a scalar tf.Tensor, got`;
  if (!(value instanceof tf.Tensor)) return `${start} ${describe(value)}`;
  const shape = `a Tensor of shape ${shapeOf(value)} for 1 row`;
  if (value.shape[0] === 1) {
    return `${start} ${shape} — a per-row loss? take its mean (tf.mean) or use fitstream's ` +
      `categoricalCrossentropy(predictions, labels)`;
  }
  return `${start} ${shape}: reduce it to one number (tf.mean or tf.sum)`;
}

const READS = ["data", "dataSync", "array", "arraySync", "buffer", "bufferSync", "bytes"] as const;

/** Runs `f` while every read of a value of `variables` sets the returned flag. */
function watchingReads<T>(variables: tf.Variable[], f: () => T): [T, boolean] {
  let read = false;
  for (const v of variables) {
    for (const name of READS) {
      const original = (v as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
      if (typeof original !== "function") continue;
      Object.defineProperty(v, name, {
        configurable: true,
        value: (...args: unknown[]) => {
          read = true;
          return original.apply(v, args);
        },
      });
    }
  }
  try {
    return [f(), read];
  } finally {
    for (const v of variables) for (const name of READS) delete (v as unknown as Record<string, unknown>)[name];
  }
}

/** Names input `i` of a dataset's batches (of `inputs` inputs) in errors. Internal. */
export function datasetInputName(inputs: number): (i: number) => string {
  return (i) => inputs === 1 ? "the dataset's xs" : `the dataset's xs[${i}]`;
}

/**
 * Checks each input tensor's rows against the layers model's declared input
 * shape, dimension by dimension where it is known (`null` takes any size), as
 * `model.fit` refuses data of another shape: a layer can run on rows it was
 * not declared for (an LSTM over 4 steps declared with 6), and the host
 * engine plans from the declared shape. A model with no inputs yet (nothing
 * declared) and a function model are not checked. `name(i)` names input `i`.
 */
function checkInputShapes(
  where: string,
  model: ModelLike,
  data: tf.Tensor[],
  inputs: number,
  name: (i: number) => string,
): void {
  if (!isLayersModel(model)) return;
  const declared = model.inputs ?? [];
  if (declared.length !== inputs) return; // a count mismatch fails the forward pass with tfjs's own error
  declared.forEach((input, i) => {
    const want = input.shape.slice(1), got = data[i].shape.slice(1);
    if (want.length === got.length && want.every((d, k) => d == null || d === got[k])) return;
    const shown = `[${want.map((d) => d ?? "any").join(", ")}]`;
    const hint = want.length === got.length
      ? "reshape the data, or build the model with this input shape"
      : `give the data ${want.length + 1} dimensions (rows first), or build the model with this input shape`;
    throw new RangeError(
      `${where}: ${name(i)} must have rows shaped ${shown} as the model's input, got [${got.join(", ")}]` +
        `: ${hint}`,
    );
  });
}

/**
 * Runs the model and the loss on one row, in inference mode, to catch shape
 * mistakes before anything trains; for a layers model, also finds whether
 * the loss reaches the model's weights other than through the predictions.
 * No weight changes. Internal.
 */
export function probeRun(
  where: string,
  model: ModelLike,
  loss: LossFunction,
  data: tf.Tensor[],
  inputs: number,
  name: (i: number) => string = (i) => `data[${i}]`,
): ProbeResult {
  checkInputShapes(where, model, data, inputs, name);
  return tf.tidy(() => {
    const row = data.map((t) => sliceRows(t, 0, 1));
    let pred: tf.Tensor;
    try {
      pred = forward(model, row.slice(0, inputs), false);
    } catch (error) {
      throw new TypeError(`${where}: the model failed on the input tensors: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const labels = row[inputs] as tf.Tensor | undefined;
    if (labels) {
      if (pred.shape[0] !== 1) {
        throw new TypeError(`${where}: the model must keep the batch dimension: one row in, ${shapeOf(pred)} out`);
      }
      const sameSize = pred.size === labels.size;
      const sameShape = pred.shape.length === labels.shape.length && pred.shape.every((d, i) => d === labels.shape[i]);
      if (sameSize && !sameShape) {
        throw new TypeError(
          `${where}: model output shape ${shapeOf(pred)} does not match labels shape ${shapeOf(labels)} ` +
            `(per row): the loss would broadcast them; reshape the labels or the model output`,
        );
      }
    }
    const weights = isLayersModel(model) ? model.weights.map((w) => w.read() as tf.Variable) : [];
    const predictions = tf.tensor(pred.dataSync(), pred.shape, pred.dtype); // a constant: no path to the weights
    let value: unknown;
    const callLoss = () => {
      value = labels ? loss(predictions, labels) : (loss as (p: tf.Tensor) => tf.Tensor)(predictions);
      return value instanceof tf.Tensor && value.rank === 0 ? value : tf.scalar(0);
    };
    let reaches = false, reads = false;
    try {
      if (weights.length === 0) {
        callLoss();
      } else {
        [reaches, reads] = watchingReads(weights, () =>
          freeingTapeOnThrow(() => {
            const { grads } = tf.engine().gradients(callLoss, weights, undefined, true);
            return grads.some((g) => g != null);
          }));
      }
    } catch (error) {
      throw new TypeError(
        `${where}: loss failed on model output ${shapeOf(pred)}` +
          (labels ? ` and labels ${shapeOf(labels)}` : "") + `: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (!(value instanceof tf.Tensor) || value.rank !== 0) throw new TypeError(notScalar(where, value));
    if (reaches) return { lossReadsModel: "the loss depends on the model's weights besides the predictions" };
    if (reads) return { lossReadsModel: "the loss reads the model's weights" };
    return {};
  });
}
