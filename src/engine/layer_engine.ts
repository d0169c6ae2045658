/**
 * The layer engine: trains a chain of layers of registered kinds
 * (`layers/registry.ts`) — dropout, batch normalization, embeddings and the
 * rest around Dense layers — for a pass, on plain arrays, as the Dense engine
 * trains pure Dense chains (`dense_engine.ts`, kept apart: its figures are
 * measured): weights and optimizer state are read from tfjs when `train`
 * starts and written back when it ends, with the kinds' non-trainable state
 * (moving averages); activations and gradients are float64 within a step,
 * parameters float32 between steps. Each micro-batch: every kind's forward in
 * model order, the loss (`loss_step.ts`), every kind's backward in reverse,
 * the penalties; each step: clipping, then the optimizer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type ActivationCode, slopeAny } from "./dense_kernels.ts";
import type { ChainPlan } from "./host_plan.ts";
import type { ChainLayer } from "./layer_plan.ts";
import { HostOptimizer, type StepGradient } from "./host_optimizer.ts";
import { type LossStep, lossStep } from "./loss_step.ts";
import { type EpochTrainer, hostPass, type HostSession, type Trained } from "./epoch_trainer.ts";
import { type Feed, type RowsFeed, rowsFeed, takeRows, type TensorFeed } from "./feed.ts";
import { clipArrays, type GradientRule, PLAIN_GRADIENTS } from "./gradient_rule.ts";
import type { DenseEngineInput } from "./dense_engine.ts";
import type { KindPenalty } from "./layers/kind.ts";
import type { HostArray } from "../data/tensors.ts";
import { hostValues } from "../data/dataset.ts";
import { float32GradientsFor, isWide } from "./wide_layers.ts";
import { simdKernels } from "../kernels/simd/products.ts";
import { readInto, tensorOf } from "./exchange.ts";
import { addPenalty } from "./penalty.ts";

/** Weights of this many values or more take the SIMD kernels' memory (and Adam there), wide layer or not. */
const LARGE_WEIGHT = 1 << 16;

/**
 * `g[i] *= act'(y[i])`: d loss / d pre-activation from the output's gradient
 * and the activation's slope at the output, where the SIMD kernels cannot
 * (arrays outside their memory). Relu on its own loop: through `slopeAny` it
 * cost ~4% of the batch-norm MLP's epoch on Deno.
 */
function scaleBySlope(g: Float64Array, y: Float64Array, size: number, code: ActivationCode): void {
  if (code === 1) {
    for (let i = 0; i < size; i++) g[i] *= +(y[i] > 0);
    return;
  }
  for (let i = 0; i < size; i++) g[i] *= slopeAny(code, y[i]);
}

/** A layer's arrays for one pass: its weights' and state's values, its weights' gradients. */
interface LayerArrays {
  params: Float32Array[];
  state: Float32Array[];
  grads: (StepGradient | undefined)[];
}

/** Trains the layers of a {@link ChainPlan}. Internal. */
export class LayerEngine implements EpochTrainer {
  #layers: ChainLayer[];
  #variables: tf.Variable[];
  #optimizer: HostOptimizer;
  #x: HostArray;
  #labelled: boolean;
  #rows: number;
  #stepRows: number;
  #batchSize = 0;
  #plan: ChainPlan;
  #labels: DenseEngineInput["labels"];
  #gradients: GradientRule;
  #lossStep: LossStep = undefined!;
  #acts: Float64Array[] = []; // acts[0]: the input batch; acts[l + 1]: layer l's output
  #grads: Float64Array[] = []; // grads[l + 1]: d loss / d acts[l + 1] (d pre-activation where a kind has one)
  #scratch: Float64Array[][] = [];

  constructor(plan: ChainPlan, input: Omit<DenseEngineInput, "x"> & { x: HostArray }) {
    this.#plan = plan;
    this.#layers = plan.layers;
    this.#variables = input.variables;
    this.#optimizer = new HostOptimizer(input.optimizer, input.variables);
    this.#x = input.x;
    this.#labels = input.labels;
    this.#labelled = input.labels !== undefined;
    this.#rows = input.rows;
    this.#gradients = input.gradients ?? PLAIN_GRADIENTS;
    this.#stepRows = input.batchSize;
    this.#reserve(Math.min(input.batchSize, input.rows));
  }

  /** Sizes the batch buffers for `batchSize` rows (they only grow). */
  #reserve(batchSize: number): void {
    if (batchSize <= this.#batchSize) return;
    this.#batchSize = batchSize;
    const layers = this.#layers;
    const widths = [layers[0].inputWidth, ...layers.map((l) => l.outputWidth)];
    this.#acts = widths.map((w) => new Float64Array(batchSize * w));
    // The first layer's input needs no gradient.
    this.#grads = widths.map((w, i) => new Float64Array(i === 0 ? 0 : batchSize * w));
    this.#scratch = layers.map((l) =>
      (l.planned.scratch ?? []).map((s) => new Float64Array((s.perRow ?? 0) * batchSize + (s.fixed ?? 0)))
    );
    this.#lossStep = lossStep(this.#plan.loss, this.#labels, batchSize, widths[widths.length - 1]);
  }

  /** One epoch over the rows in `order` (or in place); returns the sample-weighted mean loss. */
  async epoch(order: Int32Array | undefined): Promise<number> {
    return (await this.train(rowsFeed(this.#rows, this.#stepRows, order), Infinity)).loss;
  }

  /** Up to `maxSteps` optimizer steps from `feed`, in one exchange with tfjs (see the module notes). */
  train(feed: Feed, maxSteps: number): Promise<Trained> {
    const fill = (feed: Feed) => feed.kind === "rows" ? this.#fillRows(feed) : this.#fillBatch(feed);
    return hostPass(this.#begin(), feed, maxSteps, this.#gradients.accumulate, fill);
  }

  #fillRows(feed: RowsFeed): number {
    const { start, size: n } = takeRows(feed);
    const { order } = feed;
    const x = this.#x, labelled = this.#labelled, width = this.#layers[0].inputWidth;
    const input = this.#acts[0], loss = this.#lossStep;
    for (let r = 0; r < n; r++) {
      const row = order ? order[start + r] : start + r;
      // A loop, not set(subarray): set() from a Float32Array into a view of the kernels' shared memory ran ~10×
      // slower on Deno (3% of the batch-norm MLP's epoch).
      const from = row * width, to = r * width;
      for (let c = 0; c < width; c++) input[to + c] = x[from + c];
      if (labelled) loss.gather(row, r);
    }
    return n;
  }

  async #fillBatch(feed: TensorFeed): Promise<number> {
    const batch = await feed.next();
    if (!batch) return 0;
    const n = batch[0].shape[0];
    try {
      this.#reserve(n);
      const width = this.#layers[0].inputWidth;
      this.#acts[0].set(hostValues(batch[0]).subarray(0, n * width));
      if (this.#labelled) {
        this.#lossStep.setSource(hostValues(batch[1]) as HostArray);
        for (let r = 0; r < n; r++) this.#lossStep.gather(r, r);
      }
    } finally {
      tf.dispose(batch);
    }
    return n;
  }

  /** {@link #open}, giving back what it took when it fails. */
  #begin(): HostSession {
    let release: (() => void) | undefined;
    try {
      return this.#open((r) => release = r);
    } catch (error) {
      release?.();
      throw error;
    }
  }

  /** Reads weights, state and optimizer state out of tfjs; returns the step functions. */
  #open(onRelease: (release: () => void) => void): HostSession {
    const layers = this.#layers;
    // With a wide Dense layer, as in the Dense engine: weights, gradients, optimizer state, activations and scratch
    // live in the SIMD kernels' memory (when there is room), so the products read their operands where they are,
    // the bias and relu epilogues run there, and Adam updates there. Given back when the pass ends or fails.
    const rows = Math.min(this.#stepRows, this.#rows);
    const wideDense = (l: ChainLayer) => {
      if (l.className !== "Dense") return false;
      const out = l.planned.output, units = out[out.length - 1], inputs = l.input[l.input.length - 1];
      return isWide(rows * (l.outputWidth / units), inputs, units);
    };
    const anyWide = layers.some(wideDense);
    // A large weight (an embedding table) alone takes the weights, gradients and optimizer state there too, for
    // the SIMD Adam on every core; the batch's arrays stay plain then (JS loops run slower over the shared memory).
    const large = layers.some((l) => l.planned.params.some((v) => v.size >= LARGE_WEIGHT));
    const simd = anyWide || large ? simdKernels() : undefined, held: ArrayBufferView[] = [];
    const hold = <T extends ArrayBufferView>(view: T | undefined): T | undefined => view && (held.push(view), view);
    const float32 = (n: number) => hold(simd?.float32(n)) ?? new Float32Array(n);
    const float64 = (n: number) => hold(simd?.float64(n)) ?? new Float64Array(n);
    const inMemory = (arrays: Float64Array[]) => {
      if (!anyWide) return arrays;
      const views = arrays.map((a) => hold(simd?.float64(a.length)));
      return views.every((v) => v !== undefined) ? views as Float64Array[] : arrays;
    };
    const plainActs = this.#acts, plainGrads = this.#grads, plainScratch = this.#scratch;
    const acts = this.#acts = inMemory(plainActs), grads = this.#grads = inMemory(plainGrads);
    const scratchViews = this.#scratch = plainScratch.map(inMemory);
    const release = () => {
      // Each kind's own memory for the pass (an LSTM's buffers in the kernels' memory), then the engine's.
      for (const l of layers) l.planned.release?.();
      for (const view of held.splice(0)) simd!.free(view);
      // (A dataset's larger batch may have replaced them with plain arrays meanwhile: those stay.)
      if (this.#acts === acts) this.#acts = plainActs;
      if (this.#grads === grads) this.#grads = plainGrads;
      if (this.#scratch === scratchViews) this.#scratch = plainScratch;
    };
    onRelease(release);
    this.#optimizer.load(float32);
    const trainable = new Set(this.#variables);
    const values = new Map<tf.Variable, Float32Array>();
    const gradients = new Map<tf.Variable, StepGradient>();
    const read = (v: tf.Variable) => {
      let a = values.get(v);
      if (!a) values.set(v, a = float32(v.size)), readInto(v, a);
      return a;
    };
    const rule = this.#gradients, clipping = rule.clipNorm !== undefined || rule.clipValue !== undefined;
    // float32 gradients where a kind asks (see PlannedLayer.float32Gradients): for the products of a wide Dense layer
    // to write in place, so not where the float64 work of accumulation, clipping or a penalty reads them, and only
    // for a variable one layer alone trains.
    const uses = new Map<tf.Variable, number>();
    for (const l of layers) for (const v of l.planned.params) uses.set(v, (uses.get(v) ?? 0) + 1);
    const in32 = float32GradientsFor(rule, simd !== undefined);
    const float32Room = (l: ChainLayer, k: number) => {
      const { planned } = l, room = planned.float32Gradients?.[k];
      if (!in32 || room === undefined || !planned.writesGradients || planned.penalties?.[k] || !wideDense(l)) return;
      return uses.get(planned.params[k]) === 1 ? room : undefined;
    };
    const gradient = (v: tf.Variable, room: number | undefined): StepGradient | undefined => {
      if (!trainable.has(v)) return undefined;
      let g = gradients.get(v);
      if (!g) {
        gradients.set(v, g = (room !== undefined ? hold(simd!.float32(v.size, room)) : undefined) ?? float64(v.size));
      }
      return g;
    };
    const arrays: LayerArrays[] = layers.map((l) => ({
      params: l.planned.params.map(read),
      state: (l.planned.state ?? []).map(read),
      grads: l.planned.params.map((v, k) => gradient(v, float32Room(l, k))),
    }));
    const penalised: [KindPenalty, Float32Array, Float64Array | undefined][] = [];
    layers.forEach((l, i) =>
      l.planned.penalties?.forEach((p, k) => {
        // (A penalised parameter's gradient is float64: see float32Room.)
        if (p) penalised.push([p, arrays[i].params[k], arrays[i].grads[k] as Float64Array | undefined]);
      })
    );
    const params = this.#variables.map((v) => values.get(v)!);
    const paramGrads = this.#variables.map((v) => gradients.get(v)!);
    // The gradients the engine zeroes before each micro-batch: those of kinds that add into them.
    const zeroed = layers.flatMap((l, i) => l.planned.writesGradients ? [] : arrays[i].grads)
      .filter((g): g is StepGradient => g !== undefined);
    const codes = layers.map((l) => (l.planned.activation ?? 0) as ActivationCode);
    const last = layers.length - 1, outputs = layers[last].outputWidth;
    const sums = rule.accumulate > 1 ? paramGrads.map((g) => new Float64Array(g.length)) : undefined;
    let summedRows = 0, total = 0;
    const add = (n: number) => {
      const acts = this.#acts, grads = this.#grads, scratch = this.#scratch;
      for (const g of zeroed) g.fill(0);
      for (let l = 0; l <= last; l++) {
        const a = arrays[l];
        layers[l].planned.forward({
          n,
          training: true,
          input: acts[l],
          output: acts[l + 1],
          params: a.params,
          state: a.state,
          scratch: scratch[l],
        });
      }
      total += this.#lossStep.backward(acts[last + 1], n, outputs, codes[last], undefined, grads[last + 1]);
      for (let l = last; l >= 0; l--) {
        const a = arrays[l], width = layers[l].outputWidth;
        if (
          l < last && codes[l] !== 0 && !simd?.scaleBySlope(grads[l + 1], acts[l + 1], n, width, codes[l], undefined)
        ) {
          scaleBySlope(grads[l + 1], acts[l + 1], n * width, codes[l]);
        }
        layers[l].planned.backward({
          n,
          training: true,
          input: acts[l],
          output: acts[l + 1],
          params: a.params,
          state: a.state,
          scratch: scratch[l],
          gradOutput: grads[l + 1],
          gradInput: l > 0 ? grads[l] : undefined,
          paramGrads: a.grads,
        });
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
    };
    const apply = () => {
      if (sums) {
        sums.forEach((sum, i) => {
          const g = paramGrads[i];
          for (let k = 0; k < g.length; k++) g[k] = sum[k] / summedRows;
          sum.fill(0);
        });
        summedRows = 0;
      }
      if (clipping) clipArrays(rule, paramGrads as Float64Array[]); // (float64 all when clipping: see float32Room)
      this.#optimizer.step(params, paramGrads);
    };
    let ended = false;
    const end = () => {
      // Once: after an error, train() calls it unless the pass's own end() was what failed.
      if (ended) return total;
      ended = true;
      // Back into tfjs as fresh tensors (never in place: backends cache packed weights by tensor).
      const states = layers.flatMap((l) => l.planned.state ?? []);
      // Copies (tensorOf): the arrays' memory is reused once the pass is over.
      tf.tidy(() => {
        this.#variables.forEach((v, i) => v.assign(tensorOf(params[i], v.shape)));
        for (const v of states) v.assign(tensorOf(values.get(v)!, v.shape));
      });
      this.#optimizer.save();
      release();
      return total;
    };
    return { add, apply, end, release };
  }
}
