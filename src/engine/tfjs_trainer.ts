/**
 * The tfjs path: one `optimizer.minimize` per batch (or, with accumulation or
 * clipping, `tf.variableGrads` per batch and one `applyGradients` per step),
 * with the loss `model.fit` would minimize (the user's loss plus the model's regularization penalties),
 * over the variables `model.fit` would train.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { HostData } from "../data/tensors.ts";
import { forward, isLayersModel, type LossFunction, type ModelLike } from "./model.ts";
import { gradientsOf, trainStep } from "./train_step.ts";
import type { EpochTrainer, Trained } from "./epoch_trainer.ts";
import { cutRows, type Feed, type RowsFeed, takeRows } from "./feed.ts";
import { clipTensors, type GradientRule, isPlain } from "./gradient_rule.ts";
import { sequentialInner } from "../internal/tfjs_private.ts";

/** What a tfjs-path epoch needs. Internal. */
export interface TfjsTrainerInput {
  model: ModelLike;
  optimizer: tf.Optimizer;
  loss: LossFunction;
  data: tf.Tensor[];
  /** How many of `data`'s tensors are model inputs (the next one, if any, holds the labels). */
  inputs: number;
  host: HostData | undefined;
  rows: number;
  batchSize: number;
  /** The variables to update this epoch. */
  variables: tf.Variable[];
  /** Accumulation and clipping. */
  gradients: GradientRule;
}

/**
 * The regularization penalties of a layers model, computed as `model.fit`
 * computes them (a Sequential keeps them on its inner model; on a tfjs whose
 * internals fitstream does not know, each layer's own, in order: the same
 * unless a layer sits in the Sequential twice). Internal.
 */
export function penaltiesOf(model: ModelLike): tf.Scalar[] {
  if (!isLayersModel(model)) return [];
  if (!(model instanceof tf.Sequential)) return model.calculateLosses();
  const inner = sequentialInner(model);
  if (inner) return inner.calculateLosses();
  return tf.tidy(() => model.layers.flatMap((layer) => layer.calculateLosses()));
}

/**
 * The loss `model.fit` minimizes on one batch: the user's loss plus the
 * model's penalties (`penalized`: whether the model has any; without any,
 * `model.fit` adds nothing either).
 */
function batchLoss(input: TfjsTrainerInput, penalized: boolean, batch: tf.Tensor[]): () => tf.Scalar {
  const { model, loss, inputs } = input;
  const x = batch.slice(0, inputs);
  const y = batch[inputs] as tf.Tensor | undefined;
  return () => {
    const pred = forward(model, x, true);
    let value = (y ? loss(pred, y) : (loss as (p: tf.Tensor) => tf.Tensor)(pred)) as tf.Scalar;
    if (penalized) { for (const penalty of penaltiesOf(model)) value = value.add(penalty); }
    return value;
  };
}

/**
 * Whether the model has regularization penalties now. Asked once per pass:
 * a model gains or loses penalties only when its layers are built, never
 * inside a pass. Without penalties `calculateLosses` still opens a tidy
 * scope and walks every layer's nodes on every step (0.4% of a batch-32
 * epoch in a CPU profile of the housing MLP).
 */
function hasPenalties(model: ModelLike): boolean {
  const penalties = penaltiesOf(model);
  tf.dispose(penalties);
  return penalties.length > 0;
}

/** Trains through tfjs, batch by batch. Internal. */
export class TfjsTrainer implements EpochTrainer {
  #input: TfjsTrainerInput;
  #penalized: boolean;

  constructor(input: TfjsTrainerInput) {
    this.#input = input;
    this.#penalized = hasPenalties(input.model);
  }

  /** The feed's next micro-batch as tensors (the caller disposes them), or `undefined` at the end. */
  async #next(feed: Feed): Promise<tf.Tensor[] | undefined> {
    return feed.kind === "tensors" ? await feed.next() : this.#cut(feed);
  }

  /**
   * A rows feed's next micro-batch, without an `await`: tensors in memory
   * need none, and a pass of the plain loop then runs as one synchronous
   * stretch between its first batch and its loss read, as a hand-written
   * loop does (an `await` per step cost 0.1 ms per 532 steps on Deno).
   */
  #cut(feed: RowsFeed): tf.Tensor[] | undefined {
    const { start, size } = takeRows(feed);
    if (size === 0) return undefined;
    const { data, host } = this.#input;
    return cutRows(data, host, feed.order, start, size);
  }

  async train(feed: Feed, maxSteps: number): Promise<Trained> {
    const { optimizer, variables, gradients } = this.#input;
    const plain = isPlain(gradients);
    const costs: tf.Scalar[] = [];
    const sizes: number[] = [];
    let steps = 0;
    try {
      while (steps < maxSteps) {
        if (plain) {
          // One optimizer.minimize per batch, as model.fit steps.
          const batch = feed.kind === "rows" ? this.#cut(feed) : await feed.next();
          if (!batch) break;
          try {
            costs.push(trainStep(optimizer, batchLoss(this.#input, this.#penalized, batch), variables));
            sizes.push(batch[0].shape[0]);
          } finally {
            tf.dispose(batch);
          }
        } else {
          const before = costs.length;
          this.#step(await this.#group(feed, costs, sizes));
          if (costs.length === before) break;
        }
        steps++;
      }
      const rows = sizes.reduce((a, b) => a + b, 0);
      if (rows === 0) return { loss: NaN, rows, steps };
      const total = tf.tidy(() => tf.stack(costs).mul(tf.tensor1d(sizes)).sum().div(rows) as tf.Scalar);
      try {
        return { loss: (await total.data())[0], rows, steps };
      } finally {
        total.dispose();
      }
    } finally {
      tf.dispose(costs);
    }
  }

  /**
   * The gradients of up to `accumulate` micro-batches, summed weighted by
   * rows (each cost joins `costs`), in the variables' order; `undefined`
   * when the feed had nothing left.
   */
  async #group(feed: Feed, costs: tf.Scalar[], sizes: number[]): Promise<Group | undefined> {
    const { variables, gradients } = this.#input;
    let sum: Gradients | undefined;
    let rows = 0;
    try {
      for (let k = 0; k < gradients.accumulate; k++) {
        const batch = await this.#next(feed);
        if (!batch) break;
        const n = batch[0].shape[0];
        let value: tf.Scalar, grads: tf.NamedTensorMap;
        try {
          ({ value, grads } = gradientsOf(batchLoss(this.#input, this.#penalized, batch), variables));
        } finally {
          tf.dispose(batch);
        }
        costs.push(value);
        sizes.push(n);
        rows += n;
        // A variable the loss does not reach has no gradient: minimize skips it, and so does this step.
        const ordered = variables.map((v) => grads[v.name] as tf.Tensor | undefined);
        if (gradients.accumulate === 1) {
          sum = ordered; // one batch: its gradient as it is
          break;
        }
        const previous = sum;
        // Weighted by the micro-batch's rows; the sum is divided by the group's rows at the step.
        sum = tf.tidy(() =>
          ordered.map((g, i) => g && (previous?.[i] ? tf.add(previous[i]!, tf.mul(g, n)) : tf.mul(g, n)))
        );
        tf.dispose([...(previous ?? []), ...ordered].filter((t) => t !== undefined));
      }
    } catch (error) {
      tf.dispose((sum ?? []).filter((t) => t !== undefined));
      throw error;
    }
    return sum && { sum, rows };
  }

  /** One optimizer step on a group's mean gradient, clipped; frees the group's tensors. */
  #step(group: Group | undefined): void {
    if (!group) return;
    const { optimizer, variables, gradients } = this.#input;
    const present = group.sum.flatMap((g, i) => g ? [i] : []);
    const grads = gradients.accumulate === 1
      ? present.map((i) => group.sum[i]!.clone())
      : tf.tidy(() => present.map((i) => tf.div(group.sum[i]!, group.rows)));
    tf.dispose(group.sum.filter((t) => t !== undefined));
    try {
      clipTensors(gradients, grads);
      // As optimizer.minimize hands them over: an array in the variables' order.
      optimizer.applyGradients(present.map((i, k) => ({ name: variables[i].name, tensor: grads[k] })));
    } finally {
      tf.dispose(grads);
    }
  }
}

/** One gradient per variable, `undefined` where the loss does not reach it. */
type Gradients = (tf.Tensor | undefined)[];

/** A step's micro-batches: their gradients summed weighted by rows, and their rows. */
interface Group {
  sum: Gradients;
  rows: number;
}
