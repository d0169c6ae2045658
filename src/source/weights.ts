/**
 * Copies of a model's weights that can be put back later (for
 * `earlyStop({ restoreBest: true })`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { isLayersModel } from "./model.ts";
import { trainingStateOf } from "./training_state.ts";

/** A copy of the weights behind an event. Internal. */
export interface WeightSnapshot {
  /** Puts the copied values back into the model. */
  restore(): void;
  /** Frees the copies. */
  dispose(): void;
}

/** Copies the weights of the event's model (all weights of a layers model; the trained variables otherwise). Internal. */
export function snapshotWeights(where: string, event: unknown): WeightSnapshot {
  const state = trainingStateOf(where, event);
  const model = state.model;
  if (isLayersModel(model)) {
    const copies = model.getWeights().map((w) => tf.clone(w));
    return { restore: () => model.setWeights(copies), dispose: () => tf.dispose(copies) };
  }
  const copies = state.variables.map((v) => tf.clone(v));
  return {
    restore: () => state.variables.forEach((v, i) => v.assign(copies[i])),
    dispose: () => tf.dispose(copies),
  };
}
