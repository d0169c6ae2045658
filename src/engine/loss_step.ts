/**
 * The loss end of a host-engine step, two ways: a loss the engine computes
 * itself (`loss_kernels.ts`), or any other loss function run through tfjs's
 * autograd on the batch's predictions alone — a handful of kernels per step
 * instead of the whole model's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type ActivationCode, slopeAny } from "./dense_kernels.ts";
import { type HostLoss, lossBackward } from "./loss_kernels.ts";
import { freeingTapeOnThrow } from "./train_step.ts";
import type { HostArray } from "../data/tensors.ts";

/** The labels as the host copy holds them: values row after row. */
export interface HostLabels {
  values: HostArray;
  /** Shape of one row. */
  rowShape: number[];
  dtype: tf.DataType;
}

/** How a plan's loss is computed. */
export type PlannedLoss =
  | { kind: "host"; name: HostLoss }
  | { kind: "tfjs"; fn: (predictions: tf.Tensor, labels?: tf.Tensor) => tf.Tensor };

/** One step's loss: gather the batch's labels, then the loss and its gradient. */
export interface LossStep {
  /** Copies label row `row` into batch slot `slot`. */
  gather(row: number, slot: number): void;
  /** Gathers from `values` (row after row) from now on: a dataset's batch of labels. */
  setSource(values: HostArray): void;
  /**
   * The loss of `pred` (n×cols, the output of a layer with activation
   * `code`): writes d loss / d pre-activation into `grad`, adds its column
   * sums into `biasGrad`, returns the batch loss times n.
   */
  backward(
    pred: Float64Array,
    n: number,
    cols: number,
    code: ActivationCode,
    biasGrad: Float64Array | undefined,
    grad: Float64Array,
  ): number;
}

/** A batch's worth of label rows, copied out of the host copy into a reused buffer. */
class LabelBatch<A extends HostArray | Float64Array> {
  readonly width: number;
  readonly values: A;
  #source: HostArray;

  constructor(labels: HostLabels, batchSize: number, make: (size: number) => A) {
    this.width = labels.rowShape.reduce((a, b) => a * b, 1);
    this.values = make(batchSize * this.width);
    this.#source = labels.values;
  }

  set source(values: HostArray) {
    this.#source = values;
  }

  gather(row: number, slot: number): void {
    const w = this.width, from = row * w, to = slot * w, values = this.values, source = this.#source;
    for (let c = 0; c < w; c++) values[to + c] = source[from + c];
  }
}

class HostLossStep implements LossStep {
  #name: HostLoss;
  #labels: LabelBatch<Float64Array>;
  /** tfjs-layers' ε for the categorical losses: the backend's, as tfjs-layers reads it. */
  #epsilon: number = tf.backend().epsilon();

  constructor(name: HostLoss, labels: HostLabels, batchSize: number) {
    this.#name = name;
    this.#labels = new LabelBatch(labels, batchSize, (size) => new Float64Array(size));
  }

  gather(row: number, slot: number): void {
    this.#labels.gather(row, slot);
  }

  setSource(values: HostArray): void {
    this.#labels.source = values;
  }

  backward: LossStep["backward"] = (pred, n, cols, code, biasGrad, grad) =>
    lossBackward(this.#name, pred, this.#labels.values, n, cols, code, biasGrad, grad, this.#epsilon);
}

class TfjsLossStep implements LossStep {
  #fn: (predictions: tf.Tensor, labels?: tf.Tensor) => tf.Tensor;
  #labels: HostLabels | undefined;
  #batch: LabelBatch<HostArray> | undefined;
  #pred: Float32Array;

  constructor(
    fn: (predictions: tf.Tensor, labels?: tf.Tensor) => tf.Tensor,
    labels: HostLabels | undefined,
    batchSize: number,
    outputs: number,
  ) {
    this.#fn = fn;
    this.#labels = labels;
    const kind = labels?.values.constructor as new (size: number) => HostArray;
    this.#batch = labels && new LabelBatch(labels, batchSize, (size) => new kind(size));
    this.#pred = new Float32Array(batchSize * outputs);
  }

  gather(row: number, slot: number): void {
    this.#batch!.gather(row, slot);
  }

  setSource(values: HostArray): void {
    this.#batch!.source = values;
  }

  backward: LossStep["backward"] = (pred, n, cols, code, biasGrad, grad) => {
    const size = n * cols;
    const p32 = this.#pred.subarray(0, size);
    for (let i = 0; i < size; i++) p32[i] = pred[i];
    // The values leave the tidy through the closure: a typed array returned from tf.tidy is walked element by
    // element in search of tensors (200,000 elements cost ~65 ms on wasm).
    let value = 0, dp: Float32Array<ArrayBufferLike> = new Float32Array(0);
    freeingTapeOnThrow(() =>
      tf.tidy(() => {
        const predictions = tf.tensor(p32, [n, cols], "float32");
        const batch = this.#batch, labels = this.#labels;
        const y = batch && labels
          ? tf.tensor(batch.values.subarray(0, n * batch.width), [n, ...labels.rowShape], labels.dtype)
          : undefined;
        const result = tf.valueAndGrad((q: tf.Tensor) => this.#fn(q, y) as tf.Scalar)(predictions);
        value = result.value.dataSync()[0];
        dp = result.grad.dataSync() as Float32Array;
      })
    );
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < cols; j++) {
        const i = r * cols + j;
        const g = grad[i] = dp[i] * slopeAny(code, pred[i]);
        if (biasGrad) biasGrad[j] += g;
      }
    }
    return value * n;
  };
}

/** The {@link LossStep} of a planned loss, for batches of up to `batchSize` rows. Internal. */
export function lossStep(
  loss: PlannedLoss,
  labels: HostLabels | undefined,
  batchSize: number,
  outputs: number,
): LossStep {
  if (loss.kind === "host") return new HostLossStep(loss.name, labels!, batchSize);
  return new TfjsLossStep(loss.fn, labels, batchSize, outputs);
}
