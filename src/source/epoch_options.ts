/**
 * The options of `epochStream` and `explainEngine`: what each means, and the
 * checks that turn them into a training plan before anything trains (data,
 * model, optimizer and loss, a one-row probe of the model and loss, a scan of
 * the data for NaN/Infinity, the checkpoint to resume from). Both functions
 * check their options here, so they refuse the same mistakes with the same
 * errors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireOptions } from "../internal/validate.ts";
import { requireLoss } from "../losses/require_loss.ts";
import { checkFinite, checkTensors, hostCopy } from "../data/tensors.ts";
import { checkBatchOptions } from "./iter_batches.ts";
import { checkModel, isLayersModel, type LossFunction, type ModelLike } from "../engine/model.ts";
import { createRandom, type Random } from "../data/random.ts";
import type { CheckpointFiles } from "../checkpoint/store.ts";
import { checkResumable } from "../checkpoint/resume.ts";
import type { Optimizer, Tensor, Variable } from "../tf_types.ts";
import { type EngineChoice, trainedVariables, type TrainingRun } from "../engine/trainer.ts";
import { probeRun } from "../engine/probe.ts";
import { type BatchDataset, isDataset } from "../data/dataset.ts";
import type { GradientRule } from "../engine/gradient_rule.ts";

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
  /**
   * Micro-batches per optimizer step (integer ≥ 1, default 1): each step
   * takes the mean gradient of `accumulate` batches, weighted by their rows,
   * so `batchSize: 8, accumulate: 2` trains what `batchSize: 16` trains, in
   * the memory of a batch of 8. An epoch's last step takes the batches left.
   */
  accumulate?: number;
  /**
   * Scale the gradients so that their global L2 norm (over every trained
   * variable) is at most this (> 0), as PyTorch's `clip_grad_norm_`:
   * each is multiplied by `min(1, clipNorm / (norm + 1e-6))`.
   */
  clipNorm?: number;
  /** Clamp every gradient element to `[-clipValue, clipValue]` (> 0), after `clipNorm` when both are given. */
  clipValue?: number;
}

/** Every key of {@link EpochStreamOptions}. Internal. */
export const EPOCH_STREAM_KEYS: readonly string[] = keysOf<EpochStreamOptions<ModelLike, object>>({
  data: true,
  model: true,
  optimizer: true,
  loss: true,
  batchSize: true,
  shuffle: true,
  lastLabel: true,
  seed: true,
  extra: true,
  variables: true,
  resumeFrom: true,
  stopOnNaN: true,
  engine: true,
  accumulate: true,
  clipNorm: true,
  clipValue: true,
});

/** Keys people bring from `model.fit` and other trainers, with what to do instead. Internal. */
export const EPOCH_STREAM_HINTS: Record<string, string> = {
  epochs: "use take(n) to train n epochs (the stream itself never ends)",
  gradient_accumulation_steps: "use accumulate: k (k batches' mean gradient per optimizer step)",
  gradientAccumulationSteps: "use accumulate: k (k batches' mean gradient per optimizer step)",
  max_grad_norm: "use clipNorm: c (the global norm of the gradients, as clip_grad_norm_)",
  global_clipnorm: "use clipNorm: c (the global norm of the gradients, as clip_grad_norm_)",
  validationData: "add a validation loss with augment(validationLoss({ data }))",
  validationSplit: "split the data yourself and add augment(validationLoss({ data }))",
  callbacks: "pipe the stream through stages instead: pipe(epochStream(...), tap(...), earlyStop(...))",
  verbose: "print with tap(printKeys(...)) or progress()",
};

/** A run's checked options, ready to train. Internal. */
export interface Plan {
  run: TrainingRun;
  shuffle: boolean;
  random: Random;
  extra: object;
  /** The checkpoint to resume from, read and checked at construction. */
  resumeFrom: CheckpointFiles | undefined;
  stopOnNaN: boolean;
}

/**
 * Checks the options of `epochStream` (or, with `where`, of `explainEngine`)
 * and plans the run: the same errors from both. Internal.
 */
export function checkEpochOptions<M extends ModelLike, X extends object>(
  options: EpochStreamOptions<M, X>,
  where = "epochStream",
): Plan {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  }
  checkKeys(where, options, EPOCH_STREAM_KEYS, EPOCH_STREAM_HINTS);
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
  const gradients = checkGradientOptions(where, options);
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
  if (isDataset(data)) {
    const plan = checkDatasetOptions(where, options, data, lastLabel, engine, resumeFrom, stopOnNaN);
    plan.run.gradients = gradients;
    return plan;
  }
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
      gradients,
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

/** Checks `accumulate`, `clipNorm` and `clipValue`; the rule they make. */
function checkGradientOptions<M extends ModelLike, X extends object>(
  where: string,
  options: EpochStreamOptions<M, X>,
): GradientRule {
  const { accumulate = 1, clipNorm, clipValue } = options;
  requireInteger(where, "accumulate", accumulate, 1);
  for (const [name, value] of [["clipNorm", clipNorm], ["clipValue", clipValue]] as const) {
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      const got = typeof value === "number" ? value : describe(value);
      throw new RangeError(`${where}: ${name} must be a finite number > 0, got ${got}`);
    }
  }
  return { accumulate, clipNorm, clipValue };
}
