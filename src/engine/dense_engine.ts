/**
 * The host engine: trains a chain of dense layers for one epoch on plain
 * arrays — forward, backward, penalties and the optimizer update — with no
 * tensor, kernel or allocation per step (a loss it does not know itself runs
 * through tfjs on each batch's predictions: see `loss_step.ts`). Products
 * and gradients are float64 within a step, except in a model with a wide
 * layer, whose products are all float32 on the SIMD kernels
 * (`wide_layers.ts`) as tfjs computes them; parameters and optimizer state
 * are float32 between steps, as tfjs keeps them. Weights and optimizer
 * state are read from the model and the tfjs optimizer when a call to
 * `train` starts and written back when it ends — once an epoch for
 * `epochStream`, once a step for `stepStream` — so everything outside it
 * (validation, checkpoints, stages) sees ordinary tfjs state.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  activateInto,
  activationCode,
  denseBackward,
  denseForward,
  slopeAny,
  slopeFromInput,
  transpose,
} from "./dense_kernels.ts";
import type { DenseLayer, DensePlan, Penalty } from "./host_plan.ts";
import { HostOptimizer, type StepGradient } from "./host_optimizer.ts";
import { type HostLabels, type LossStep, lossStep } from "./loss_step.ts";
import { type EpochTrainer, hostPass, type HostSession, type Trained } from "./epoch_trainer.ts";
import { type Feed, type RowsFeed, rowsFeed, takeRows, type TensorFeed } from "./feed.ts";
import { clipArrays, type GradientRule, PLAIN_GRADIENTS } from "./gradient_rule.ts";
import {
  float32GradientsFor,
  isWide,
  kernelGradientInLoops,
  kernelGradientRoom,
  wideBackward,
  wideForward,
  wideKernelGradient,
} from "./wide_layers.ts";
import { simdKernels } from "../kernels/simd/products.ts";
import type { HostArray } from "../data/tensors.ts";
import { hostValues } from "../data/dataset.ts";
import { readInto, tensorOf } from "./exchange.ts";
import { addPenalty } from "./penalty.ts";

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

/** The data and settings one host epoch needs. Internal. */
export interface DenseEngineInput {
  /** The variables the optimizer updates (some of the layers' weights, in the optimizer's order). */
  variables: tf.Variable[];
  optimizer: tf.Optimizer;
  /** The input rows, row after row. */
  x: Float32Array;
  /** The labels, or `undefined` for a loss without labels. */
  labels: HostLabels | undefined;
  rows: number;
  batchSize: number;
  /** Accumulation and clipping (see `gradient_rule.ts`; none when absent). */
  gradients?: GradientRule;
}

/** A pass in progress ({@link HostSession}), with laps of the profile's pieces. */
interface Session extends HostSession {
  lap(piece: keyof EngineProfile): void;
}

/** A penalised weight: its penalty, its values, and its gradient when the optimizer updates it. */
type PenalisedWeight = [Penalty, Float32Array, Float64Array | undefined];

/**
 * Trains the layers of a {@link DensePlan}, one epoch per `epoch()` call.
 * Parameters and optimizer state stay float32 between steps (as in tfjs);
 * activations and gradients are float64 within a step (products too, but
 * in a model with a wide layer). Internal.
 */
export class DenseEngine implements EpochTrainer {
  #layers: DenseLayer[];
  #variables: tf.Variable[];
  #optimizer: HostOptimizer;
  #x: Float32Array;
  #labelled: boolean;
  #rows: number;
  #batchSize: number;
  #lossStep: LossStep;
  #acts: Float64Array[]; // acts[0]: the input batch; acts[l + 1]: layer l's output
  #grads: Float64Array[]; // grads[l + 1]: d loss / d acts[l + 1]

  #labels: HostLabels | undefined;
  #plan: DensePlan;
  #gradients: GradientRule;

  /** Buffers for batches of `batchSize` rows. */
  constructor(plan: DensePlan, input: DenseEngineInput) {
    this.#plan = plan;
    this.#layers = plan.layers;
    this.#variables = input.variables;
    this.#optimizer = new HostOptimizer(input.optimizer, input.variables);
    this.#x = input.x;
    this.#labels = input.labels;
    this.#labelled = input.labels !== undefined;
    this.#rows = input.rows;
    this.#gradients = input.gradients ?? PLAIN_GRADIENTS;
    this.#batchSize = 0;
    this.#acts = [];
    this.#grads = [];
    this.#lossStep = undefined!;
    this.#reserve(Math.min(input.batchSize, input.rows));
    this.#stepRows = input.batchSize;
  }

  /** The run's batch size (the buffers may be smaller: never more rows than the data has). */
  #stepRows: number;

  /** Sizes the batch buffers for `batchSize` rows (they only grow). */
  #reserve(batchSize: number): void {
    if (batchSize <= this.#batchSize) return;
    const plan = this.#plan;
    this.#batchSize = batchSize;
    const widths = [plan.layers[0].inputs, ...plan.layers.map((l) => l.units)];
    this.#acts = widths.map((w) => new Float64Array(batchSize * w));
    this.#grads = widths.map((w, i) => i === 0 ? new Float64Array(0) : new Float64Array(batchSize * w));
    this.#lossStep = lossStep(plan.loss, this.#labels, batchSize, widths[widths.length - 1]);
  }

  /**
   * One epoch over the rows in `order` (or in place), the constructor's
   * batch size per micro-batch. Returns the sample-weighted mean of the batch
   * losses (regularization penalties included, as in `model.fit`).
   */
  async epoch(order: Int32Array | undefined, profile?: EngineProfile): Promise<number> {
    return (await this.train(rowsFeed(this.#rows, this.#stepRows, order), Infinity, profile)).loss;
  }

  /**
   * Up to `maxSteps` optimizer steps from `feed`, in one exchange with tfjs:
   * weights and optimizer state are read when it starts and written back
   * when it ends. A dataset's batches are disposed here.
   */
  train(feed: Feed, maxSteps: number, profile?: EngineProfile): Promise<Trained> {
    const session = this.#begin(profile);
    const lapped = (n: number) => (session.lap("batching"), n);
    const fill = (feed: Feed) =>
      feed.kind === "rows" ? lapped(this.#fillRows(feed)) : this.#fillBatch(feed).then(lapped);
    return hostPass(session, feed, maxSteps, this.#gradients.accumulate, fill);
  }

  /** Copies the feed's next micro-batch into the batch buffers; returns its rows (0 at the end). */
  #fillRows(feed: RowsFeed): number {
    const { start, size: n } = takeRows(feed);
    const { order } = feed;
    const x = this.#x, labelled = this.#labelled, inputs = this.#layers[0].inputs;
    const input = this.#acts[0], loss = this.#lossStep;
    for (let r = 0; r < n; r++) {
      const row = order ? order[start + r] : start + r;
      for (let c = 0; c < inputs; c++) input[r * inputs + c] = x[row * inputs + c];
      if (labelled) loss.gather(row, r);
    }
    return n;
  }

  /** Copies a dataset's next batch into the batch buffers (grown to fit) and disposes it; returns its rows. */
  async #fillBatch(feed: TensorFeed): Promise<number> {
    const batch = await feed.next();
    if (!batch) return 0;
    const n = batch[0].shape[0];
    try {
      this.#reserve(n);
      const inputs = this.#layers[0].inputs;
      const x = hostValues(batch[0]), input = this.#acts[0];
      for (let i = 0; i < n * inputs; i++) input[i] = x[i];
      if (this.#labelled) {
        this.#lossStep.setSource(hostValues(batch[1]) as HostArray);
        for (let r = 0; r < n; r++) this.#lossStep.gather(r, r);
      }
    } finally {
      tf.dispose(batch);
    }
    return n;
  }

  /**
   * Starts an epoch: reads the weights and the optimizer state out of tfjs.
   * `step(n)` trains on the first `n` rows of the batch buffers (filled by
   * the caller); `end()` writes everything back and returns the summed loss.
   */
  #begin(profile?: EngineProfile): Session {
    // What was taken so far is given back if setting up fails (a disposed variable, say).
    let release: (() => void) | undefined;
    try {
      return this.#open(profile, (r) => release = r);
    } catch (error) {
      release?.();
      throw error;
    }
  }

  #open(profile: EngineProfile | undefined, onRelease: (release: () => void) => void): Session {
    let clock = profile ? performance.now() : 0;
    const lap = (piece: keyof EngineProfile) => {
      if (!profile) return;
      const now = performance.now();
      profile[piece] += now - clock;
      clock = now;
    };
    const layers = this.#layers;
    // With a wide layer, the epoch's weights, gradients and optimizer state live in the SIMD kernels' memory (when
    // there is room): the products read the weights there and Adam updates them there. Given back when the epoch
    // ends or fails. Without one they stay plain arrays: JS loops over views of that (growable, shared) memory ran
    // the tutorial's batch-512 epoch ~15% slower on Deno.
    const anyWide = layers.some((l) => isWide(this.#batchSize, l.inputs, l.units));
    const simd = anyWide ? simdKernels() : undefined, held: ArrayBufferView[] = [];
    const hold = <T extends ArrayBufferView>(view: T | undefined): T | undefined => view && (held.push(view), view);
    const float32 = (n: number) => hold(simd?.float32(n)) ?? new Float32Array(n);
    const float64 = (n: number) => hold(simd?.float64(n)) ?? new Float64Array(n);
    // The batch's activations and gradients too, so the wide layers' epilogues run in the kernels (and operands
    // are narrowed to float32 there): JS loops ran those at ~2 ns a value on V8.
    const plainActs = this.#acts, plainGrads = this.#grads;
    const inMemory = (arrays: Float64Array[]) => {
      const views = arrays.map((a) => hold(simd?.float64(a.length)));
      return views.every((v) => v !== undefined) ? views as Float64Array[] : arrays;
    };
    const acts = this.#acts = inMemory(plainActs), grads = this.#grads = inMemory(plainGrads);
    const release = () => {
      for (const view of held.splice(0)) simd!.free(view);
      // (A dataset's larger batch may have replaced them with plain arrays meanwhile: those stay.)
      if (this.#acts === acts) this.#acts = plainActs;
      if (this.#grads === grads) this.#grads = plainGrads;
    };
    onRelease(release);
    this.#optimizer.load(float32);
    // Every layer weight as float32 (the values tfjs holds); gradients in float64, but for a wide layer's kernel
    // where no float64 work (accumulation, clipping, a penalty) reads it: float32, written by the products in place
    // (the optimizers read the same values either way; Adam's kernel rounds float64 gradients to float32 anyway).
    const weights = layers.flatMap((l) => l.bias ? [l.kernel, l.bias] : [l.kernel]);
    const value = new Map(weights.map((v) => {
      const values = float32(v.size);
      readInto(v, values);
      return [v, values];
    }));
    const rule = this.#gradients, clipping = rule.clipNorm !== undefined || rule.clipValue !== undefined;
    const in32 = float32GradientsFor(rule, simd !== undefined);
    const kernelGradient32 = (l: DenseLayer) =>
      in32 && !l.kernelPenalty && isWide(this.#batchSize, l.inputs, l.units)
        ? hold(simd!.float32(l.kernel.size, kernelGradientRoom(l.inputs, l.units)))
        : undefined;
    const gradient32 = new Map<tf.Variable, Float32Array>();
    for (const l of layers) {
      const g = kernelGradient32(l);
      if (g) gradient32.set(l.kernel, g);
    }
    const gradient = new Map(weights.filter((v) => !gradient32.has(v)).map((v) => [v, float64(v.size)]));
    const gradientOf = (v: tf.Variable): StepGradient => gradient32.get(v) ?? gradient.get(v)!;
    const params = this.#variables.map((v) => value.get(v)!);
    const paramGrads = this.#variables.map(gradientOf);
    // Only float64 gradients where accumulation or clipping reads them (in32 is false then).
    const paramGrads64 = () => paramGrads as Float64Array[];
    const kernels = layers.map((l) => value.get(l.kernel)!);
    const biases = layers.map((l) => l.bias && value.get(l.bias));
    const kernelGrads = layers.map((l) => gradientOf(l.kernel));
    // A float32 kernel gradient's float64 sums, made only if its product ever falls back to the JS loops.
    const fallbackSums: (Float64Array | undefined)[] = layers.map(() => undefined);
    const biasGrads = layers.map((l) => l.bias && gradient.get(l.bias));
    // This step's kernels (as they are and transposed) and biases in float64, for the JS loops' products; a wide
    // layer's only when one of its products falls back to the loops (they were 28 MB a wide MLP epoch, unused).
    const kernels64: (Float64Array | undefined)[] = layers.map(() => undefined);
    const transposed: (Float64Array | undefined)[] = layers.map(() => undefined);
    const kernel64 = (l: number) => {
      const k = kernels64[l] ??= new Float64Array(layers[l].inputs * layers[l].units);
      k.set(kernels[l]);
      return k;
    };
    const biases64 = layers.map((l) => l.bias && float64(l.units));
    const trainable = new Set(this.#variables);
    const penalised: PenalisedWeight[] = [];
    const penalise = (penalty: Penalty | undefined, v: tf.Variable | undefined) => {
      if (penalty && v) penalised.push([penalty, value.get(v)!, trainable.has(v) ? gradient.get(v) : undefined]);
    };
    for (const l of layers) {
      penalise(l.kernelPenalty, l.kernel);
      penalise(l.biasPenalty, l.bias);
    }
    const codes = layers.map((l) => activationCode(l.activation));
    // Pre-activations of the layers whose activation's derivative reads them (grown with the batch).
    const pres: (Float64Array | undefined)[] = layers.map(() => undefined);
    const preActivations = (l: number, size: number): Float64Array | undefined => {
      if (!slopeFromInput(codes[l])) return undefined;
      const pre = pres[l];
      return pre && pre.length >= size ? pre : (pres[l] = float64(size));
    };
    const outputs = layers[layers.length - 1].units, last = layers.length - 1;
    let total = 0;
    lap("exchange");
    // With a wide layer, every layer's products go to the SIMD kernels (see wide_layers.ts), the narrow ones too:
    // the tutorial's 64→1 layer at batch 512 cost more in V8's JS loops than a call to the kernels (its epoch ran
    // 2–16% faster on Deno, within noise on Bun, in interleaved runs). Without one, all stay in JS.
    const onKernels = simd !== undefined;
    const add = (n: number) => {
      const acts = this.#acts, grads = this.#grads, loss = this.#lossStep;
      for (let l = 0; l <= last; l++) {
        const { inputs: i, units } = layers[l];
        const bias = biases64[l];
        if (bias) bias.set(biases[l]!);
        // A layer whose activation's derivative reads its input keeps its pre-activations: a linear product
        // into them, then the activation.
        const pre = preActivations(l, n * units), code = pre ? 0 : codes[l], out = pre ?? acts[l + 1];
        if (!(onKernels && wideForward(acts[l], n, i, kernels[l], units, bias, code, out))) {
          const kernelT = transposed[l] ??= new Float64Array(i * units);
          transpose(kernel64(l), i, units, kernelT);
          denseForward(acts[l], kernelT, n, i, units, bias, code, out);
        }
        if (pre) activateInto(pre, acts[l + 1], n * units, codes[l]);
      }
      lap("forward");
      biasGrads[last]?.fill(0);
      const lastPre = pres[last];
      if (lastPre) {
        // The loss's gradient to the predictions (as for a linear output), then the slope from the input.
        const grad = grads[last + 1], biasGrad = biasGrads[last];
        total += loss.backward(acts[last + 1], n, outputs, 0, undefined, grad);
        for (let r = 0; r < n; r++) {
          for (let j = 0; j < outputs; j++) {
            const k = r * outputs + j;
            const g = grad[k] *= slopeAny(codes[last], lastPre[k]);
            if (biasGrad) biasGrad[j] += g;
          }
        }
      } else total += loss.backward(acts[last + 1], n, outputs, codes[last], biasGrads[last], grads[last + 1]);
      lap("loss");
      for (let l = last; l >= 0; l--) {
        const { inputs: i, units } = layers[l];
        if (!(onKernels && wideKernelGradient(acts[l], grads[l + 1], n, i, units, kernelGrads[l]))) {
          // (A float32 gradient whose product found no room in the kernels' memory: the loops' sums, rounded.)
          const sums = () => fallbackSums[l] ??= new Float64Array(i * units);
          kernelGradientInLoops(acts[l], grads[l + 1], n, i, units, kernelGrads[l], sums);
        }
        if (l > 0) {
          biasGrads[l - 1]?.fill(0);
          // The slope reads the layer below's output, or its pre-activations (see slopeFromInput).
          const below = pres[l - 1] ?? acts[l];
          if (
            !(onKernels &&
              wideBackward(grads[l + 1], kernels[l], n, units, i, below, codes[l - 1], biasGrads[l - 1], grads[l]))
          ) {
            // A wide forward left this step's float64 kernel unset.
            const kernel = onKernels ? kernel64(l) : kernels64[l]!;
            denseBackward(grads[l + 1], kernel, n, units, i, below, codes[l - 1], biasGrads[l - 1], grads[l]);
          }
        }
      }
      // As in model.fit: each penalty joins the batch's loss and its gradient, at the step's starting weights.
      for (const [penalty, w, grad] of penalised) total += addPenalty(penalty, w, grad) * n;
      if (sums) {
        sums.forEach((sum, i) => {
          const g = paramGrads[i];
          for (let k = 0; k < g.length; k++) sum[k] += g[k] * n;
        });
        summedRows += n;
      }
      lap("backward");
    };
    // With accumulation, the step's gradient is the micro-batches' sum weighted by rows, over their rows.
    const sums = rule.accumulate > 1 ? paramGrads64().map((g) => new Float64Array(g.length)) : undefined;
    let summedRows = 0;
    const apply = () => {
      if (sums) {
        sums.forEach((sum, i) => {
          const g = paramGrads[i];
          for (let k = 0; k < g.length; k++) g[k] = sum[k] / summedRows;
          sum.fill(0);
        });
        summedRows = 0;
      }
      if (clipping) clipArrays(rule, paramGrads64());
      this.#optimizer.step(params, paramGrads);
      lap("optimizer");
    };
    let ended = false;
    const end = () => {
      // Once: after an error, train() calls it unless the pass's own end() was what failed.
      if (ended) return total;
      ended = true;
      // Back into tfjs: fresh tensors (never in place: backends cache packed weights by tensor).
      // Copies (tensorOf): the arrays' memory is reused once the epoch is over.
      tf.tidy(() => {
        this.#variables.forEach((v, i) => v.assign(tensorOf(params[i], v.shape)));
      });
      this.#optimizer.save();
      release();
      lap("exchange");
      return total;
    };
    return { lap, add, apply, end, release };
  }
}
