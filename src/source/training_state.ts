/**
 * What a source event carries besides its keys: a handle on the training run
 * (optimizer, variables, shuffle state), under a symbol key. Symbol keys are
 * copied by `{ ...event }` (so they survive `augment`, `ema`, …) and are never
 * written by `JSON.stringify` or the sinks. Stages such as `checkpoint`,
 * `reduceLrOnPlateau` and `earlyStop({ restoreBest })` use it.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ModelLike } from "./model.ts";

/** The symbol under which a source event carries its {@link TrainingState}. Internal. */
export const TRAINING_STATE: unique symbol = Symbol.for("fitstream.trainingState");

/** The training run behind an event, as it was when the event was emitted. Internal. */
export interface TrainingState {
  model: ModelLike;
  optimizer: tf.Optimizer;
  /** The variables the optimizer trains. */
  variables: tf.Variable[];
  /** The epoch this event reports. */
  step: number;
  /** The shuffle generator's state after this epoch. */
  rngState: number;
}

/** The training state of `event`, or a `TypeError` naming the stage that needs it. Internal. */
export function trainingStateOf(where: string, event: unknown): TrainingState {
  const state = (event as { [TRAINING_STATE]?: TrainingState } | null)?.[TRAINING_STATE];
  if (!state) {
    throw new TypeError(`${where}: the event carries no training state: place this stage behind epochStream(...)`);
  }
  return state;
}
