/**
 * `setLearningRate(optimizer, lr)` and `getLearningRate(optimizer)`: one way
 * to change any tfjs optimizer's rate that every engine honours.
 *
 * tfjs's SGD and Momentum cache `-lr` in a tensor when they are built and
 * read only that tensor: writing their `learningRate` property changes the
 * number that `getConfig()` reports but not the training (in `model.fit`
 * too). Their `setLearningRate` method refreshes the tensor; the other
 * optimizers read the property at every step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import type { Optimizer } from "../tf_types.ts";
import { learningRateOf, setLearningRateOf, unknownTfjs } from "../internal/tfjs_private.ts";

/** The optimizer and its numeric learning rate, or a `TypeError` naming `where`. Internal. */
export function rateHolder(where: string, optimizer: unknown): { optimizer: tf.Optimizer; learningRate: number } {
  if (!(optimizer instanceof tf.Optimizer)) {
    throw new TypeError(`${where}: optimizer must be a tf.train optimizer, got ${describe(optimizer)}`);
  }
  const learningRate = learningRateOf(optimizer);
  if (typeof learningRate !== "number") {
    throw new TypeError(`${where}: optimizer must have a numeric learningRate, got ${describe(learningRate)}`);
  }
  return { optimizer, learningRate };
}

/**
 * Sets the learning rate of any `tf.train` optimizer so that the next step
 * uses it, on the host engine and the tfjs path alike (for SGD and Momentum
 * it calls their `setLearningRate`, which refreshes the tensor they cache;
 * for the others it sets the `learningRate` they read at every step).
 *
 * @example Halve the rate between epochs
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { getLearningRate, setLearningRate } from "@fitstream/fitstream";
 *
 * const optimizer = tf.train.sgd(0.1);
 * setLearningRate(optimizer, getLearningRate(optimizer) / 2);
 * console.log(getLearningRate(optimizer)); // 0.05
 * ```
 */
export function setLearningRate(optimizer: Optimizer, lr: number): void {
  const holder = rateHolder("setLearningRate", optimizer);
  if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) {
    throw new RangeError(`setLearningRate: lr must be a finite number >= 0, got ${describe(lr)}`);
  }
  if (!setLearningRateOf(holder.optimizer, lr)) {
    throw new TypeError(
      `setLearningRate: cannot change the ${holder.optimizer.getClassName()} optimizer's rate: ${unknownTfjs()} ` +
        `(only an optimizer with a setLearningRate method, such as tf.train.sgd, can be changed there)`,
    );
  }
}

/**
 * The learning rate a `tf.train` optimizer was last given (through its
 * constructor or {@link setLearningRate}).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { getLearningRate } from "@fitstream/fitstream";
 *
 * console.log(getLearningRate(tf.train.adam(0.01))); // 0.01
 * ```
 */
export function getLearningRate(optimizer: Optimizer): number {
  return rateHolder("getLearningRate", optimizer).learningRate;
}
