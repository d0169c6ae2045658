/**
 * The host engine: trains a chain of dense layers for one epoch on plain
 * float64 arrays — forward, backward and the optimizer update — with no
 * tensor, kernel or allocation per step (a loss it does not know itself runs
 * through tfjs on each batch's predictions: see `loss_step.ts`). Weights
 * and optimizer state are read from the model and the tfjs optimizer when
 * the epoch starts and written back when it ends, so everything outside the
 * epoch (validation, checkpoints, stages) sees ordinary tfjs state.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  activationCode,
  DENSE_ACTIVATIONS,
  type DenseActivation,
  denseBackward,
  denseForward,
  matmulColumns,
  transpose,
} from "./dense_kernels.ts";
import { HostOptimizer, hostOptimizerSupports } from "./host_optimizer.ts";
import type { HostLoss } from "./loss_kernels.ts";
import { type HostLabels, type LossStep, lossStep, type PlannedLoss } from "./loss_step.ts";
import { sigmoidCrossEntropy, softmaxCrossEntropy } from "../losses/cross_entropy.ts";

const HOST_LOSSES = new Map<unknown, HostLoss>([
  [tf.losses.meanSquaredError, "meanSquaredError"],
  [tf.losses.absoluteDifference, "absoluteDifference"],
  [tf.losses.huberLoss, "huberLoss"],
  [softmaxCrossEntropy, "softmaxCrossEntropy"],
  [sigmoidCrossEntropy, "sigmoidCrossEntropy"],
]);

interface DenseLayer {
  kernel: tf.Variable;
  bias: tf.Variable | undefined;
  inputs: number;
  units: number;
  activation: DenseActivation;
}

/** Why the host engine can or cannot train a model, and its layers and loss when it can. */
export type DensePlan = { ok: true; layers: DenseLayer[]; loss: PlannedLoss } | { ok: false; reason: string };

interface LayerInternals {
  inboundNodes?: { inboundLayers?: unknown[] }[];
}

function denseLayers(model: unknown): DenseLayer[] | string {
  if (!(model instanceof tf.LayersModel)) return "the model is a function, not a tf.LayersModel";
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return "the model has several inputs or outputs";
  const layers = model.layers.filter((l, i) => !(i === 0 && l.getClassName() === "InputLayer"));
  if (layers.length === 0) return "the model has no layers";
  const out: DenseLayer[] = [];
  let previous: unknown = model.layers[0] === layers[0] ? undefined : model.layers[0];
  for (const layer of layers) {
    if (layer.getClassName() !== "Dense") {
      return `layer "${layer.name}" is a ${layer.getClassName()}, not a Dense layer`;
    }
    if (!(model instanceof tf.Sequential)) {
      const nodes = (layer as unknown as LayerInternals).inboundNodes ?? [];
      if (nodes.length !== 1 || nodes[0].inboundLayers?.length !== 1 || nodes[0].inboundLayers[0] !== previous) {
        return `layer "${layer.name}" is not part of a single chain`;
      }
    }
    previous = layer;
    const config = layer.getConfig();
    const activation = String(config.activation);
    if (!(DENSE_ACTIVATIONS as readonly string[]).includes(activation)) {
      return `layer "${layer.name}" uses the ${activation} activation`;
    }
    if (!layer.trainable) return `layer "${layer.name}" is frozen`;
    const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const [kernel, bias] = weights;
    if (!kernel || kernel.rank !== 2 || kernel.dtype !== "float32") return `layer "${layer.name}" has no 2-d kernel`;
    if (weights.length !== (config.useBias ? 2 : 1)) return `layer "${layer.name}" has unexpected weights`;
    const [inputs, units] = kernel.shape;
    if (out.length > 0 && out[out.length - 1].units !== inputs) return `layer "${layer.name}" does not chain`;
    out.push({ kernel, bias, inputs, units, activation: activation as DenseActivation });
  }
  return out;
}

/**
 * Decides whether the host engine can train `model` with `loss` and
 * `optimizer` on `data` (the input tensor, then the labels when `lastLabel`).
 * Internal.
 */
export function densePlan(
  model: unknown,
  loss: unknown,
  optimizer: tf.Optimizer,
  data: tf.Tensor[],
  lastLabel = true,
): DensePlan {
  const backend = tf.getBackend();
  if (backend !== "wasm" && backend !== "cpu") {
    return { ok: false, reason: `the ${backend} backend runs tfjs kernels on its own device` };
  }
  if (typeof loss !== "function") return { ok: false, reason: "the loss is not a function" };
  if (!hostOptimizerSupports(optimizer)) {
    return { ok: false, reason: `the optimizer is ${optimizer.getClassName()} (host rules: SGD, Momentum, Adam)` };
  }
  if (data.length !== (lastLabel ? 2 : 1)) {
    return { ok: false, reason: `the data is not one input tensor${lastLabel ? " and one label tensor" : ""}` };
  }
  const [x, y] = data;
  if (!(x instanceof tf.Tensor) || (lastLabel && !(y instanceof tf.Tensor))) {
    return { ok: false, reason: "the data is not tensors" };
  }
  if (x.rank !== 2 || x.dtype !== "float32") return { ok: false, reason: "the input is not a 2-d float32 tensor" };
  if (y && y.dtype !== "float32" && y.dtype !== "int32") {
    return { ok: false, reason: `the labels are ${y.dtype}, not float32 or int32` };
  }
  const layers = denseLayers(model);
  if (typeof layers === "string") return { ok: false, reason: layers };
  const outputs = layers[layers.length - 1].units;
  if (layers[0].inputs !== x.shape[1]) return { ok: false, reason: "the input's width does not match the model" };
  const hostLoss = HOST_LOSSES.get(loss);
  if (hostLoss && y && y.rank === 2 && y.dtype === "float32" && y.shape[1] === outputs) {
    return { ok: true, layers, loss: { kind: "host", name: hostLoss } };
  }
  return { ok: true, layers, loss: { kind: "tfjs", fn: loss as (p: tf.Tensor, y?: tf.Tensor) => tf.Tensor } };
}

function toHost(v: tf.Variable): Float64Array {
  return Float64Array.from(v.dataSync() as Float32Array);
}

/** Milliseconds spent in each piece of the host engine's epochs (for bench/profile.ts). Internal. */
export interface EngineProfile {
  /** Reading weights and optimizer state from tfjs, and writing them back. */
  exchange: number;
  /** Copying each batch's rows out of the data. */
  batching: number;
  /** Every layer's forward product, bias and activation. */
  forward: number;
  /** The loss and its gradient. */
  loss: number;
  /** Kernel and bias gradients, and the gradient through each layer. */
  backward: number;
  /** The optimizer's update of every parameter. */
  optimizer: number;
}

/** Trains the layers of a {@link DensePlan}, one epoch per `epoch()` call. Internal. */
export class DenseEngine {
  #layers: DenseLayer[];
  #variables: tf.Variable[];
  #optimizer: HostOptimizer;
  #x: Float32Array;
  #labelled: boolean;
  #batchSize: number;
  #lossStep: LossStep;
  #acts: Float64Array[]; // acts[0]: the input batch; acts[l + 1]: layer l's output
  #grads: Float64Array[]; // grads[l + 1]: d loss / d acts[l + 1]

  /** Buffers for batches of `batchSize` rows; `labels` is `undefined` for a loss without labels. */
  constructor(
    plan: DensePlan & { ok: true },
    variables: tf.Variable[],
    optimizer: tf.Optimizer,
    x: Float32Array,
    labels: HostLabels | undefined,
    batchSize: number,
  ) {
    this.#layers = plan.layers;
    this.#variables = variables;
    this.#optimizer = new HostOptimizer(optimizer, variables);
    this.#x = x;
    this.#labelled = labels !== undefined;
    this.#batchSize = batchSize;
    const widths = [plan.layers[0].inputs, ...plan.layers.map((l) => l.units)];
    this.#acts = widths.map((w) => new Float64Array(batchSize * w));
    this.#grads = widths.map((w, i) => i === 0 ? new Float64Array(0) : new Float64Array(batchSize * w));
    this.#lossStep = lossStep(plan.loss, labels, batchSize, widths[widths.length - 1]);
  }

  /**
   * One epoch over `rows` rows in `order` (or in place), the constructor's
   * batch size per step. Returns the sample-weighted mean of the batch losses.
   */
  async epoch(rows: number, order: Int32Array | undefined, profile?: EngineProfile): Promise<number> {
    let clock = profile ? performance.now() : 0;
    const lap = (piece: keyof EngineProfile) => {
      if (!profile) return;
      const now = performance.now();
      profile[piece] += now - clock;
      clock = now;
    };
    const layers = this.#layers, batchSize = this.#batchSize;
    await this.#optimizer.load();
    // Parameters in the order of `variables` (the optimizer's order), and per layer.
    const byVariable = new Map(this.#variables.map((v) => [v, toHost(v)]));
    const params = this.#variables.map((v) => byVariable.get(v)!);
    const paramGrads = params.map((p) => new Float64Array(p.length));
    const gradOf = new Map(this.#variables.map((v, i) => [v, paramGrads[i]]));
    const kernels = layers.map((l) => byVariable.get(l.kernel)!);
    const biases = layers.map((l) => l.bias && byVariable.get(l.bias));
    const kernelGrads = layers.map((l) => gradOf.get(l.kernel)!);
    const biasGrads = layers.map((l) => l.bias && gradOf.get(l.bias));
    const transposed = layers.map((l) => new Float64Array(l.inputs * l.units));
    const codes = layers.map((l) => activationCode(l.activation));
    const acts = this.#acts, grads = this.#grads, loss = this.#lossStep, labelled = this.#labelled;
    const inputs = layers[0].inputs, outputs = layers[layers.length - 1].units;
    const x = this.#x, last = layers.length - 1;
    let total = 0;
    lap("exchange");
    for (let start = 0; start < rows; start += batchSize) {
      const n = Math.min(batchSize, rows - start);
      const input = acts[0];
      for (let r = 0; r < n; r++) {
        const row = order ? order[start + r] : start + r;
        for (let c = 0; c < inputs; c++) input[r * inputs + c] = x[row * inputs + c];
        if (labelled) loss.gather(row, r);
      }
      lap("batching");
      for (let l = 0; l <= last; l++) {
        const { inputs: i, units } = layers[l];
        transpose(kernels[l], i, units, transposed[l]);
        denseForward(acts[l], transposed[l], n, i, units, biases[l], codes[l], acts[l + 1]);
      }
      lap("forward");
      biasGrads[last]?.fill(0);
      total += loss.backward(acts[last + 1], n, outputs, codes[last], biasGrads[last], grads[last + 1]);
      lap("loss");
      for (let l = last; l >= 0; l--) {
        const { inputs: i, units } = layers[l];
        matmulColumns(acts[l], grads[l + 1], n, i, units, kernelGrads[l]);
        if (l > 0) {
          biasGrads[l - 1]?.fill(0);
          denseBackward(grads[l + 1], kernels[l], n, units, i, acts[l], codes[l - 1], biasGrads[l - 1], grads[l]);
        }
      }
      lap("backward");
      this.#optimizer.step(params, paramGrads);
      lap("optimizer");
    }
    // Back into tfjs: fresh tensors (never in place: backends cache packed weights by tensor).
    tf.tidy(() => {
      this.#variables.forEach((v, i) => v.assign(tf.tensor(Float32Array.from(params[i]), v.shape, "float32")));
    });
    await this.#optimizer.save();
    lap("exchange");
    return total / rows;
  }
}
