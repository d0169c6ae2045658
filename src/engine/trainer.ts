/**
 * Which engine trains an epoch, and why — decided in this one place — and
 * the small interface both engines implement.
 *
 * The rule: the host engine trains an epoch only when it computes what the
 * tfjs path would (see `host_plan.ts`); the tfjs path trains what `model.fit`
 * would (the same loss with the model's regularization penalties, the same
 * variables). Everything else falls back to the tfjs path, with the reason.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { hostCopy, type HostData } from "../data/tensors.ts";
import { type BatchDataset, openPass } from "../data/dataset.ts";
import { datasetInputName, probeRun } from "./probe.ts";
import { isLayersModel, type LossFunction, type ModelLike } from "./model.ts";
import { DenseEngine } from "./dense_engine.ts";
import { LayerEngine } from "./layer_engine.ts";
import { type HostPlan, hostPlan } from "./host_plan.ts";
import { realignSlots } from "./optimizer_slots.ts";
import type { EpochTrainer } from "./epoch_trainer.ts";
import { TfjsTrainer } from "./tfjs_trainer.ts";
import { type Feed, rowsFeed, tensorFeed } from "./feed.ts";
import { describeRule, type GradientRule, PLAIN_GRADIENTS } from "./gradient_rule.ts";
import { unknownTfjs } from "../internal/tfjs_private.ts";

/** The `engine` option of `epochStream`. */
export type EngineChoice = "auto" | "tfjs";

/** Everything about a run that decides how its epochs are trained. Internal. */
export interface TrainingRun {
  model: ModelLike;
  optimizer: tf.Optimizer;
  loss: LossFunction;
  data: tf.Tensor[];
  /** How many of `data`'s tensors are model inputs. */
  inputs: number;
  lastLabel: boolean;
  host: HostData | undefined;
  rows: number;
  batchSize: number;
  engine: EngineChoice;
  /** The variables of a function model. */
  variables?: tf.Variable[];
  /** From the construction probe: why the loss depends on the model besides its predictions. */
  lossReadsModel?: string;
  /** Training data as a dataset of batches (then `data` is empty until a pass's first batch is read). */
  dataset?: BatchDataset;
  /** Accumulation and clipping (none when absent). */
  gradients?: GradientRule;
}

/** Which engine, and why. */
export type EngineDecision =
  | { engine: "host"; reason: string; plan: HostPlan & { ok: true } }
  | { engine: "tfjs"; reason: string };

/**
 * The variables the optimizer updates now: a layers model's trainable
 * weights, each once (a layer used twice lists its weights twice, and
 * `model.fit` trains them once), or a function model's variables. Internal.
 */
export function trainedVariables(model: ModelLike, variables: tf.Variable[] | undefined): tf.Variable[] {
  if (!isLayersModel(model)) return variables ?? [];
  return [...new Set(model.trainableWeights.map((w) => w.read() as tf.Variable))];
}

/** Decides the engine for an epoch that trains `variables`. Internal. */
export function decideEngine(run: TrainingRun, variables: tf.Variable[]): EngineDecision {
  if (run.engine === "tfjs") return { engine: "tfjs", reason: 'engine: "tfjs" was asked for' };
  if (!run.host) return { engine: "tfjs", reason: "the data holds tensors the host cannot copy" };
  const unknown = unknownTfjs();
  if (unknown) return { engine: "tfjs", reason: unknown };
  const plan = hostPlan({ ...run, variables });
  if (!plan.ok) return { engine: "tfjs", reason: plan.reason };
  const rule = run.gradients ? describeRule(run.gradients) : "";
  const lossName = plan.loss.kind === "host" ? plan.loss.name : "a custom loss (its gradient through tfjs per batch)";
  const chain = plan.engine === "dense"
    ? `a chain of ${plan.layers.length} Dense layer(s)`
    : `a chain of ${plan.layers.length} layers (${plan.layers.map((l) => l.className).join(", ")})`;
  return {
    engine: "host",
    reason: `${chain} under ${lossName} with ${run.optimizer.getClassName()}` + (rule ? ` (${rule})` : ""),
    plan,
  };
}

/** A pass ready to train: its engine, and its micro-batches. Internal. */
export interface OpenPass {
  trainer: EpochTrainer;
  feed: Feed;
}

/**
 * A run's passes: each one finds the variables to train (they change when a
 * layer is frozen or unfrozen between epochs), keeps the optimizer's state
 * with its variables, picks the engine, and hands out its micro-batches.
 * Internal.
 */
export class EpochTraining {
  #run: TrainingRun;
  #variables: tf.Variable[] | undefined;
  #probed = false;
  #where: string;

  /** `where` names the stream in errors. */
  constructor(run: TrainingRun, where = "epochStream") {
    this.#run = run;
    this.#where = where;
  }

  /** The variables the last pass trained (those of the first pass before it opens). */
  get variables(): tf.Variable[] {
    return this.#variables ?? trainedVariables(this.#run.model, this.#run.variables);
  }

  /** Opens a pass over the run's tensors, in `order`. */
  openPass(order: Int32Array | undefined): OpenPass {
    const run = this.#run;
    return { trainer: this.#trainer(run), feed: rowsFeed(run.rows, run.batchSize, order) };
  }

  /**
   * Opens pass `pass` (1-based) over the run's dataset. The engine is
   * decided on the pass's first batch (shapes, dtypes), and the loss is
   * probed on the first batch of the first pass, as tensors are at
   * construction.
   */
  async openDatasetPass(pass: number): Promise<OpenPass> {
    const run = this.#run;
    const { first, rest } = await openPass(this.#where, run.dataset!, run.lastLabel, pass);
    const inputs = run.lastLabel ? first.length - 1 : first.length;
    try {
      if (!this.#probed) {
        const name = datasetInputName(inputs);
        run.lossReadsModel = probeRun(this.#where, run.model, run.loss, first, inputs, name).lossReadsModel;
        this.#probed = true;
      }
      const host = hostCopy(first);
      const rows = first[0].shape[0];
      const trainer = this.#trainer({ ...run, data: first, inputs, host, rows, batchSize: rows });
      return { trainer, feed: tensorFeed(first, rest()) };
    } catch (error) {
      tf.dispose(first);
      throw error;
    }
  }

  /** The engine for this pass of `run`, its variables found and the optimizer's state aligned with them. */
  #trainer(run: TrainingRun): EpochTrainer {
    const variables = trainedVariables(run.model, run.variables);
    if (variables.length === 0) {
      throw new TypeError(`${this.#where}: the model has no trainable weights now (every layer is frozen)`);
    }
    const previous = this.#variables;
    if (previous && (previous.length !== variables.length || previous.some((v, i) => v !== variables[i]))) {
      realignSlots(run.optimizer, previous, variables);
    }
    this.#variables = variables;
    const decision = decideEngine(run, variables);
    const gradients = run.gradients ?? PLAIN_GRADIENTS;
    if (decision.engine === "tfjs") return new TfjsTrainer({ ...run, variables, gradients });
    const input = {
      variables,
      optimizer: run.optimizer,
      labels: run.lastLabel
        ? { values: run.host!.values[1], rowShape: run.host!.shapes[1], dtype: run.host!.dtypes[1] }
        : undefined,
      rows: run.rows,
      batchSize: run.batchSize,
      gradients,
    };
    const { plan } = decision;
    return plan.engine === "dense"
      ? new DenseEngine(plan, { ...input, x: run.host!.values[0] as Float32Array })
      : new LayerEngine(plan, { ...input, x: run.host!.values[0] });
  }
}
