/**
 * The loss end of a host-engine step, two ways: a loss the engine computes
 * itself (`loss_kernels.ts`), or any other loss function run through tfjs's
 * autograd on the batch's predictions alone — a handful of kernels per step
 * instead of the whole model's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type ActivationCode, slopeAny as slope } from "./dense_kernels.ts";
import { type HostLoss, lossBackward } from "./loss_kernels.ts";
import { freeingTapeOnThrow } from "../source/train_step.ts";

type HostArray = Float32Array | Int32Array | Uint8Array;

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

class HostLossStep implements LossStep {
  #name: HostLoss;
  #source: HostArray;
  #width: number;
  #labels: Float64Array;

  constructor(name: HostLoss, labels: HostLabels, batchSize: number) {
    this.#name = name;
    this.#source = labels.values;
    this.#width = labels.rowShape.reduce((a, b) => a * b, 1);
    this.#labels = new Float64Array(batchSize * this.#width);
  }

  gather(row: number, slot: number): void {
    const w = this.#width, from = row * w, to = slot * w;
    for (let c = 0; c < w; c++) this.#labels[to + c] = this.#source[from + c];
  }

  backward(
    pred: Float64Array,
    n: number,
    cols: number,
    code: ActivationCode,
    biasGrad: Float64Array | undefined,
    grad: Float64Array,
  ): number {
    return lossBackward(this.#name, pred, this.#labels, n, cols, code, biasGrad, grad);
  }
}

class TfjsLossStep implements LossStep {
  #fn: (predictions: tf.Tensor, labels?: tf.Tensor) => tf.Tensor;
  #labels: HostLabels | undefined;
  #width: number;
  #batch: HostArray | undefined;
  #pred: Float32Array;

  constructor(
    fn: (predictions: tf.Tensor, labels?: tf.Tensor) => tf.Tensor,
    labels: HostLabels | undefined,
    batchSize: number,
    outputs: number,
  ) {
    this.#fn = fn;
    this.#labels = labels;
    this.#width = labels ? labels.rowShape.reduce((a, b) => a * b, 1) : 0;
    this.#batch = labels
      ? new (labels.values.constructor as new (n: number) => HostArray)(batchSize * this.#width)
      : undefined;
    this.#pred = new Float32Array(batchSize * outputs);
  }

  gather(row: number, slot: number): void {
    const w = this.#width, from = row * w, to = slot * w;
    const source = this.#labels!.values, batch = this.#batch!;
    for (let c = 0; c < w; c++) batch[to + c] = source[from + c];
  }

  backward(
    pred: Float64Array,
    n: number,
    cols: number,
    code: ActivationCode,
    biasGrad: Float64Array | undefined,
    grad: Float64Array,
  ): number {
    const size = n * cols;
    const p32 = this.#pred.subarray(0, size);
    for (let i = 0; i < size; i++) p32[i] = pred[i];
    const [value, dp] = freeingTapeOnThrow(() =>
      tf.tidy(() => {
        const predictions = tf.tensor(p32, [n, cols], "float32");
        const labels = this.#labels
          ? tf.tensor(this.#batch!.subarray(0, n * this.#width), [n, ...this.#labels.rowShape], this.#labels.dtype)
          : undefined;
        const { value, grad } = tf.valueAndGrad((q: tf.Tensor) => this.#fn(q, labels) as tf.Scalar)(predictions);
        return [value.dataSync()[0], grad.dataSync() as Float32Array];
      })
    );
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < cols; j++) {
        const i = r * cols + j;
        const g = grad[i] = dp[i] * slope(code, pred[i]);
        if (biasGrad) biasGrad[j] += g;
      }
    }
    return value * n;
  }
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
