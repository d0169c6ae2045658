/**
 * `epochStream(...)`: a TensorFlow.js model, trained one epoch per event.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { requireOptions } from "../internal/validate.ts";
import { requireLoss } from "../losses/require_loss.ts";
import { EventStream } from "../stream/event_stream.ts";
import { DONE, more, type Puller, type PullResult } from "../stream/puller.ts";
import type { EpochEvent } from "../types.ts";
import { checkFinite, checkTensors, hostCopy } from "../data/tensors.ts";
import { checkBatchOptions } from "./iter_batches.ts";
import { checkModel, isLayersModel, type LossFunction, type ModelLike } from "../engine/model.ts";
import { createRandom, permutation, type Random } from "../data/random.ts";
import type { CheckpointFiles } from "../checkpoint/store.ts";
import { checkResumable, restoreRun } from "../checkpoint/resume.ts";
import { attachTrainingState } from "../stream/training_state.ts";
import type { Optimizer, Tensor, Variable } from "../tf_types.ts";
import {
  decideEngine,
  type EngineChoice,
  EpochTraining,
  trainedVariables,
  type TrainingRun,
} from "../engine/trainer.ts";
import { probeRun } from "../engine/probe.ts";
import { registerKernels } from "../kernels/register.ts";
import { productArithmetic } from "../engine/wide_layers.ts";
import { type BatchDataset, isDataset, isPassAware } from "../data/dataset.ts";

export type { EngineChoice };

/** Options of {@link epochStream}. */
export interface EpochStreamOptions<M extends ModelLike, X extends object> {
  /**
   * Tensors sharing their first dimension (with `lastLabel`, the last one
   * holds the labels), or a `tf.data.Dataset` of batches — `{ xs, ys }`,
   * `[xs, ys]`, or `xs` alone with `lastLabel: false` — read one pass per
   * event, as `model.fitDataset` reads it (see {@link csvDataset}).
   */
  data: Tensor[] | BatchDataset;
  /** A `tf.LayersModel`, or a function of the input tensors (then pass `variables`). */
  model: M;
  /** Any `tf.train` optimizer. */
  optimizer: Optimizer;
  /** `(predictions, labels) => scalar` (or `(predictions) => scalar` without `lastLabel`). */
  loss: LossFunction;
  /** Rows per optimizer step (positive integer, default 1); the last batch may be smaller. */
  batchSize?: number;
  /** A fresh random order each epoch (default `true`). */
  shuffle?: boolean;
  /** The last tensor of `data` holds the labels (default `true`). */
  lastLabel?: boolean;
  /** Seed of the shuffle: the same seed gives the same sequence of epochs. */
  seed?: number;
  /** Keys copied onto every event. */
  extra?: X;
  /** The variables a function model trains (ignored for a layers model, which knows its own). */
  variables?: Variable[];
  /**
   * Continue a run from a checkpoint folder written by `checkpoint(...)` (or a
   * folder of them: the newest is used): the model's weights, the optimizer's
   * state, the step count and the shuffle state are restored before the first
   * epoch, so events go on at step n + 1 as if the run had never stopped.
   * The checkpoint is read and checked when the stream is built: a damaged
   * one (checksum, size), another optimizer or other weight shapes fail
   * there, with the folder named.
   */
  resumeFrom?: string;
  /**
   * Error the stream when an epoch's `train_loss` is NaN or ±Infinity, naming
   * the step (default `true`). Every earlier event has been delivered by then.
   */
  stopOnNaN?: boolean;
  /**
   * How epochs are computed. `"auto"` (the default) trains on fitstream's host
   * engine wherever it computes exactly what the tfjs path would (on the wasm
   * and cpu backends: a chain of unpatched Dense layers with Adam, SGD or
   * Momentum, any loss that reaches the model only through its predictions),
   * and on the tfjs path otherwise; `"tfjs"` always takes the tfjs path
   * (`optimizer.minimize` per batch, with the model's regularization penalties
   * as in `model.fit`). Both train the same to float32 rounding;
   * {@link explainEngine} says which applies, and why.
   */
  engine?: EngineChoice;
}

interface Plan {
  run: TrainingRun;
  shuffle: boolean;
  random: Random;
  extra: object;
  /** The checkpoint to resume from, read and checked at construction. */
  resumeFrom: CheckpointFiles | undefined;
  stopOnNaN: boolean;
}

function checkOptions<M extends ModelLike, X extends object>(
  options: EpochStreamOptions<M, X>,
  where = "epochStream",
): Plan {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  }
  const {
    data,
    model,
    optimizer,
    loss,
    lastLabel = true,
    extra = {},
    variables,
    resumeFrom,
    stopOnNaN = true,
    engine = "auto",
  } = options;
  if (engine !== "auto" && engine !== "tfjs") {
    throw new RangeError(`${where}: engine must be "auto" or "tfjs", got ${describe(engine)}`);
  }
  if (typeof stopOnNaN !== "boolean") {
    throw new TypeError(`${where}: stopOnNaN must be a boolean, got ${describe(stopOnNaN)}`);
  }
  if (resumeFrom !== undefined) {
    if (typeof resumeFrom !== "string" || resumeFrom === "") {
      throw new TypeError(`${where}: resumeFrom must be a folder path, got ${describe(resumeFrom)}`);
    }
  }
  if (typeof lastLabel !== "boolean") {
    throw new TypeError(`${where}: lastLabel must be a boolean, got ${describe(lastLabel)}`);
  }
  if (isDataset(data)) return checkDatasetOptions(where, options, data, lastLabel, engine, resumeFrom, stopOnNaN);
  if (!Array.isArray(data)) {
    throw new TypeError(`${where}: data must be an array of tf.Tensor or a tf.data.Dataset, got ${describe(data)}`);
  }
  const rows = checkTensors(where, "data", data, lastLabel ? 2 : 1);
  checkBatchOptions(where, options);
  const resumeFiles = checkRunParts(where, options, resumeFrom);
  const host = hostCopy(data); // one read of the data: batches are cut from it, and it is scanned here
  checkFinite(where, "data", data, host);
  const inputs = lastLabel ? data.length - 1 : data.length;
  const { lossReadsModel } = probeRun(where, model, loss, data, inputs);
  return {
    run: {
      model,
      optimizer,
      loss,
      data,
      inputs,
      lastLabel,
      host,
      rows,
      batchSize: options.batchSize ?? 1,
      engine,
      variables: isLayersModel(model) ? undefined : variables,
      lossReadsModel,
    },
    shuffle: options.shuffle ?? true,
    random: createRandom(options.seed),
    extra,
    resumeFrom: resumeFiles,
    stopOnNaN,
  };
}

/**
 * Checks the parts of a run that do not depend on the data — model,
 * optimizer, loss, extra keys, a function model's variables — and reads and
 * checks the checkpoint to resume from against them.
 */
function checkRunParts<M extends ModelLike, X extends object>(
  where: string,
  options: EpochStreamOptions<M, X>,
  resumeFrom: string | undefined,
): CheckpointFiles | undefined {
  const { model, optimizer, loss, extra = {}, variables } = options;
  checkModel(where, model);
  if (!(optimizer instanceof tf.Optimizer)) {
    throw new TypeError(`${where}: optimizer must be a tf.train optimizer, got ${describe(optimizer)}`);
  }
  requireLoss(where, loss);
  requireOptions(`${where}: extra`, extra);
  if (typeof model === "function") {
    if (!Array.isArray(variables) || variables.length === 0 || !variables.every((v) => v instanceof tf.Variable)) {
      throw new TypeError(`${where}: a function model needs variables: the tf.Variable[] it trains`);
    }
    const freed = variables.findIndex((v) => v.isDisposed);
    if (freed >= 0) throw new TypeError(`${where}: variables[${freed}] has been disposed`);
  }
  if (trainedVariables(model, variables).length === 0) {
    throw new TypeError(`${where}: the model has no trainable variables`);
  }
  return resumeFrom === undefined ? undefined : checkResumable(`${where}: resumeFrom`, resumeFrom, {
    model,
    optimizer,
    variables: trainedVariables(model, variables),
  });
}

/**
 * For a dataset, the engine is decided on each pass's first batch. Without
 * reading one, the decision for float32 batches of the shapes the model
 * declares is the best answer, and the reason says so.
 */
function explainForDataset(run: TrainingRun): EngineExplanation {
  const model = run.model;
  const shapes = isLayersModel(model) && model.inputs.length === 1 && model.outputs.length === 1
    ? [model.inputs[0].shape, model.outputs[0].shape]
    : undefined;
  if (!shapes || shapes.some((shape) => shape.slice(1).some((d) => d === null))) {
    return { engine: "tfjs", reason: "the data is a dataset and the model declares no fixed row shapes" };
  }
  const rows = (shape: (number | null)[]) => [2, ...(shape.slice(1) as number[])];
  const batch = [tf.zeros(rows(shapes[0])), ...(run.lastLabel ? [tf.zeros(rows(shapes[1]))] : [])];
  try {
    const inputs = 1;
    const { lossReadsModel } = probeRun("explainEngine", model, run.loss, batch, inputs);
    const { engine, reason } = decideEngine(
      { ...run, data: batch, inputs, host: hostCopy(batch), rows: 2, lossReadsModel },
      trainedVariables(model, run.variables),
    );
    return {
      engine,
      reason: `${reason} (for float32 batches; a dataset's engine is decided on each pass's first batch)`,
    };
  } finally {
    tf.dispose(batch);
  }
}

/** The checks and plan of a run whose data is a dataset: nothing of it is read here. */
function checkDatasetOptions<M extends ModelLike, X extends object>(
  where: string,
  options: EpochStreamOptions<M, X>,
  dataset: BatchDataset,
  lastLabel: boolean,
  engine: EngineChoice,
  resumeFrom: string | undefined,
  stopOnNaN: boolean,
): Plan {
  for (
    const [name, why] of [
      ["batchSize", "a dataset brings its own batches (dataset.batch(n), or csvDataset's batchSize)"],
      ["shuffle", "a dataset keeps its own order (dataset.shuffle(...), or csvDataset's shuffleBuffer)"],
      ["seed", "a dataset keeps its own order (csvDataset takes a seed)"],
    ] as const
  ) {
    if (options[name] !== undefined) throw new TypeError(`${where}: ${name} does not apply to a dataset: ${why}`);
  }
  const { model, optimizer, loss, extra = {}, variables } = options;
  const resumeFiles = checkRunParts(where, options, resumeFrom);
  return {
    run: {
      model,
      optimizer,
      loss,
      data: [],
      inputs: 0,
      lastLabel,
      host: undefined,
      rows: 0,
      batchSize: 1,
      engine,
      variables: isLayersModel(model) ? undefined : variables,
      dataset,
    },
    shuffle: false,
    random: createRandom(0),
    extra,
    resumeFrom: resumeFiles,
    stopOnNaN,
  };
}

class EpochPuller<M extends ModelLike, X extends object> implements Puller<EpochEvent<M, X>> {
  #plan: Plan;
  #training: EpochTraining;
  #step = 0;
  /** Names this run in its checkpoints; a resumed run keeps the identity it had. */
  #runId: string = crypto.randomUUID();
  #cancelled = false;
  #running: Promise<unknown> | undefined;

  constructor(plan: Plan) {
    this.#plan = plan;
    this.#training = new EpochTraining(plan.run);
  }

  next(): Promise<PullResult<EpochEvent<M, X>>> {
    if (this.#cancelled) return Promise.resolve(DONE);
    const run = this.#resume().then(() => this.#epoch());
    this.#running = run.catch(() => {});
    return run;
  }

  /** Before the first epoch: restores the checkpoint named by `resumeFrom`, once. */
  async #resume(): Promise<void> {
    const from = this.#plan.resumeFrom;
    if (from === undefined) return;
    this.#plan.resumeFrom = undefined;
    const { random, run: { model, optimizer } } = this.#plan;
    const restored = await restoreRun(from, { model, optimizer, variables: this.#training.variables });
    this.#step = restored.step;
    this.#runId = restored.runId ?? this.#runId;
    random.state = restored.rngState;
  }

  async #epoch(): Promise<PullResult<EpochEvent<M, X>>> {
    const { random, extra, shuffle, run: { model, optimizer, rows } } = this.#plan;
    const started = performance.now();
    const dataset = this.#plan.run.dataset;
    if (isPassAware(dataset)) dataset.nextPass = this.#step; // a resumed run reads pass k + 1 next
    const trainLoss = dataset
      ? await this.#training.epochOfDataset(this.#step + 1)
      : await this.#training.epoch(shuffle ? permutation(rows, random) : undefined);
    const step = ++this.#step;
    if (this.#plan.stopOnNaN && !Number.isFinite(trainLoss)) {
      throw new RangeError(
        `epochStream: step ${step}: train_loss is ${trainLoss}: training diverged ` +
          `(try a lower learning rate; stopOnNaN: false lets it continue)`,
      );
    }
    const event = {
      ...extra,
      step,
      train_loss: trainLoss,
      train_time_sec: (performance.now() - started) / 1000,
      model,
    } as unknown as EpochEvent<M, X>;
    attachTrainingState(event, {
      model,
      optimizer,
      variables: this.#training.variables,
      step,
      rngState: random.state,
      runId: this.#runId,
    });
    return more(event);
  }

  async cancel(): Promise<void> {
    this.#cancelled = true;
    await this.#running; // the epoch in flight finishes and frees its tensors
  }
}

/**
 * A stream that trains `model` for one epoch per read and emits
 * `{ step, train_loss, train_time_sec, model, ...extra }`. It never ends on
 * its own: cap it with `take`, `earlyStop`, or a `break`. Nothing trains until
 * the consumer reads, and behind library stages epoch `n` starts only once
 * event `n` is asked for. `train_loss` is the sample-weighted mean of the
 * epoch's batch losses, read back once per epoch. Options are checked up
 * front (including a one-row probe of the model and loss, and a scan of the
 * data for NaN/Infinity), so mistakes surface before anything trains.
 *
 * @example Fit y = 2x
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { collect, epochStream, take } from "@fitstream/fitstream";
 *
 * const x = tf.tensor2d([[0], [1], [2], [3]]);
 * const y = x.mul(2);
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const events = epochStream({
 *   data: [x, y],
 *   model,
 *   optimizer: tf.train.adam(0.1),
 *   loss: tf.losses.meanSquaredError,
 *   batchSize: 2,
 *   seed: 1,
 * });
 * const history = await collect(events.pipeThrough(take(3)));
 * console.log(history.map((e) => e.step)); // [1, 2, 3]
 * ```
 */
export function epochStream<M extends ModelLike, X extends object = Record<never, never>>(
  options: EpochStreamOptions<M, X>,
): EventStream<EpochEvent<M, X>> {
  const plan = checkOptions(options);
  registerKernels(); // also when the wasm backend was set without useBackend
  return new EventStream(() => new EpochPuller<M, X>(plan));
}

/** What {@link explainEngine} says. */
export interface EngineExplanation {
  /** `"host"`: fitstream's own loops; `"tfjs"`: `optimizer.minimize` per batch. */
  engine: "host" | "tfjs";
  /** Why, in a sentence. */
  reason: string;
}

/**
 * Which engine `epochStream(options)` trains with, and why: the host engine
 * where it trains exactly what the tfjs path would (on the wasm or cpu
 * backend: a chain of Dense layers with linear, relu, sigmoid, tanh, elu,
 * selu, softplus or relu6 activations, frozen or not, L1/L2 regularizers,
 * Adam, SGD or Momentum — built-in and unpatched — and a loss that depends
 * on the model only through its predictions), or the tfjs path for
 * everything else. For the host engine it also says how the products are
 * computed: in float64 JS loops, or in float32 on fitstream's WebAssembly
 * SIMD kernels when a layer is wide. The options are checked as
 * `epochStream` checks them (the same errors), including its one-row probe
 * of the model and loss. Useful when a run is slower than expected.
 *
 * @example The tutorial's model takes the host engine
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { explainEngine } from "@fitstream/fitstream";
 *
 * const model = tf.sequential({
 *   layers: [
 *     tf.layers.dense({ units: 64, activation: "relu", inputShape: [8] }),
 *     tf.layers.dense({ units: 1 }),
 *   ],
 * });
 * const data = [tf.zeros([4, 8]), tf.zeros([4, 1])];
 * const options = { data, model, optimizer: tf.train.adam(1e-2), loss: tf.losses.meanSquaredError };
 * console.log(explainEngine(options).engine); // "host"
 * const other = explainEngine({ ...options, optimizer: tf.train.rmsprop(1e-2) });
 * console.log(other.reason); // "the optimizer is RMSProp (host rules: SGD, Momentum, Adam)"
 * ```
 */
export function explainEngine<M extends ModelLike, X extends object>(
  options: EpochStreamOptions<M, X>,
): EngineExplanation {
  const { run } = checkOptions(options, "explainEngine");
  if (run.dataset) return explainForDataset(run);
  const decision = decideEngine(run, trainedVariables(run.model, run.variables));
  if (decision.engine === "tfjs") return { engine: "tfjs", reason: decision.reason };
  const arithmetic = productArithmetic(decision.plan.layers, Math.min(run.batchSize, run.rows));
  return { engine: "host", reason: `${decision.reason}; ${arithmetic}` };
}
