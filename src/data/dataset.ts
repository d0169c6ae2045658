/**
 * Datasets as training data: a `tf.data.Dataset` of batches, in the forms
 * `model.fitDataset` takes — `{ xs, ys }`, `[xs, ys]`, or `xs` alone for a
 * loss without labels — read one pass at a time, batch by batch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import type { Dataset, TensorContainer } from "../tf_types.ts";

/** A `tf.data.Dataset` whose elements are batches. */
export type BatchDataset = Dataset<TensorContainer>;

/** Whether `value` is a `tf.data.Dataset`. Internal. */
export function isDataset(value: unknown): value is BatchDataset {
  return value instanceof tf.data.Dataset;
}

/** A dataset that can be told which pass comes next (so a resumed run continues its shuffle sequence). */
export interface PassAware {
  /** The pass the next iterator reads (0-based). */
  nextPass: number;
}

/** Whether a dataset tracks its passes (`csvDataset` does). Internal. */
export function isPassAware(value: unknown): value is PassAware {
  return typeof (value as Partial<PassAware> | null)?.nextPass === "number";
}

/** The array a tensor was made from, for batches fitstream builds itself (csvDataset). */
const madeFrom = new WeakMap<tf.Tensor, Float32Array>();

/** A float32 tensor of `values` that remembers them, so the host engine reads them without a copy back. Internal. */
export function hostTensor2d(values: Float32Array, rows: number, cols: number): tf.Tensor2D {
  const tensor = tf.tensor2d(values, [rows, cols], "float32");
  madeFrom.set(tensor, values);
  return tensor;
}

/** A tensor's values on the host: the array it was made from when known, else `dataSync()`. Internal. */
export function hostValues(tensor: tf.Tensor): Float32Array | Int32Array | Uint8Array {
  return madeFrom.get(tensor) ?? (tensor.dataSync() as Float32Array | Int32Array | Uint8Array);
}

const isTensor = (value: unknown): value is tf.Tensor => value instanceof tf.Tensor;

/**
 * The tensors of one dataset element, inputs first and the labels last.
 * Throws a `TypeError` naming the pass and batch when the element has
 * another form. Internal.
 */
export function batchTensors(where: string, element: unknown, lastLabel: boolean, at: string): tf.Tensor[] {
  let xs: unknown, ys: unknown;
  if (isTensor(element)) xs = element;
  else if (Array.isArray(element)) [xs, ys] = element.length === 2 ? element : [element, undefined];
  else if (typeof element === "object" && element !== null && "xs" in element) {
    ({ xs, ys } = element as { xs: unknown; ys?: unknown });
  } else {
    throw new TypeError(
      `${where}: dataset element ${at} must be { xs, ys }, [xs, ys] or a tensor, got ${describe(element)}`,
    );
  }
  const inputs = isTensor(xs) ? [xs] : Array.isArray(xs) && xs.length > 0 && xs.every(isTensor) ? xs : undefined;
  if (!inputs) throw new TypeError(`${where}: dataset element ${at}: xs must be a tensor, got ${describe(xs)}`);
  if (lastLabel && !isTensor(ys)) {
    throw new TypeError(
      `${where}: dataset element ${at} has no labels (ys): give { xs, ys }, or pass lastLabel: false for a loss ` +
        `without labels`,
    );
  }
  if (!lastLabel && ys !== undefined) {
    throw new TypeError(`${where}: dataset element ${at} has labels (ys), but lastLabel is false`);
  }
  const tensors = lastLabel ? [...inputs, ys as tf.Tensor] : inputs;
  const rows = tensors[0].shape[0];
  for (const t of tensors) {
    if (t.isDisposed) throw new TypeError(`${where}: dataset element ${at} holds a disposed tensor`);
    if (t.rank === 0 || t.shape[0] !== rows || rows === 0) {
      throw new RangeError(
        `${where}: dataset element ${at}: its tensors must share a first (batch) dimension > 0, got shapes ` +
          tensors.map((u) => `[${u.shape.join(", ")}]`).join(", "),
      );
    }
  }
  return tensors;
}

/** "[3, 1] float32" for each tensor: what later batches must match after the first. */
export function batchSignature(tensors: tf.Tensor[]): string {
  return tensors.map((t) => `[${t.shape.slice(1).join(", ")}] ${t.dtype}`).join("; ");
}

/**
 * Reads one pass of `dataset` as batches of tensors, checking each element's
 * form and that every batch has the first one's row shapes and dtypes.
 * `first()` reads the first batch; `rest()` yields the others. Internal.
 */
export async function openPass(
  where: string,
  dataset: BatchDataset,
  lastLabel: boolean,
  pass: number,
): Promise<{ first: tf.Tensor[]; rest: () => AsyncGenerator<tf.Tensor[]> }> {
  const iterator = await dataset.iterator();
  const first = await iterator.next();
  if (first.done) throw new RangeError(`${where}: the dataset gave no batch in pass ${pass}`);
  const firstBatch = batchTensors(where, first.value, lastLabel, `1 of pass ${pass}`);
  const signature = batchSignature(firstBatch);
  async function* rest(): AsyncGenerator<tf.Tensor[]> {
    for (let index = 2;; index++) {
      const next = await iterator.next();
      if (next.done) return;
      const batch = batchTensors(where, next.value, lastLabel, `${index} of pass ${pass}`);
      const own = batchSignature(batch);
      if (own !== signature) {
        tf.dispose(batch);
        throw new TypeError(
          `${where}: dataset element ${index} of pass ${pass} has rows ${own}, the first had ${signature}`,
        );
      }
      yield batch;
    }
  }
  return { first: firstBatch, rest };
}
