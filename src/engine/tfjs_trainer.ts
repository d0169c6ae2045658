/**
 * The tfjs path: one `optimizer.minimize` per batch, with the loss `model.fit`
 * would minimize (the user's loss plus the model's regularization penalties),
 * over the variables `model.fit` would train.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchesInOrder, type HostData } from "../data/tensors.ts";
import { forward, isLayersModel, type LossFunction, type ModelLike } from "./model.ts";
import { trainStep } from "./train_step.ts";
import type { EpochTrainer } from "./epoch_trainer.ts";

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
}

/**
 * The regularization penalties of a layers model, computed as `model.fit`
 * computes them (a Sequential keeps them on its inner model). Internal.
 */
export function penaltiesOf(model: ModelLike): tf.Scalar[] {
  if (!isLayersModel(model)) return [];
  const inner = (model instanceof tf.Sequential ? (model as unknown as { model?: tf.LayersModel }).model : model) as
    | { calculateLosses(): tf.Scalar[] }
    | undefined;
  return inner ? inner.calculateLosses() : [];
}

/** Trains one epoch through tfjs, batch by batch. Internal. */
export class TfjsTrainer implements EpochTrainer {
  #input: TfjsTrainerInput;

  constructor(input: TfjsTrainerInput) {
    this.#input = input;
  }

  epoch(order: Int32Array | undefined): Promise<number> {
    const { data, host, rows, batchSize } = this.#input;
    return this.epochOfBatches(batchesInOrder(data, rows, batchSize, order, host));
  }

  async epochOfBatches(batches: Iterable<tf.Tensor[]> | AsyncIterable<tf.Tensor[]>): Promise<number> {
    const { model, optimizer, loss, inputs, variables } = this.#input;
    const costs: tf.Scalar[] = [];
    const sizes: number[] = [];
    try {
      for await (const batch of batches) {
        try {
          const x = batch.slice(0, inputs);
          const y = batch[inputs] as tf.Tensor | undefined;
          const cost = trainStep(optimizer, () => {
            const pred = forward(model, x, true);
            let value = (y ? loss(pred, y) : (loss as (p: tf.Tensor) => tf.Tensor)(pred)) as tf.Scalar;
            for (const penalty of penaltiesOf(model)) value = value.add(penalty);
            return value;
          }, variables);
          costs.push(cost);
          sizes.push(batch[0].shape[0]);
        } finally {
          tf.dispose(batch);
        }
      }
      const rows = sizes.reduce((a, b) => a + b, 0);
      const total = tf.tidy(() => tf.stack(costs).mul(tf.tensor1d(sizes)).sum().div(rows) as tf.Scalar);
      try {
        return (await total.data())[0];
      } finally {
        total.dispose();
      }
    } finally {
      tf.dispose(costs);
    }
  }
}
