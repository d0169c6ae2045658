/**
 * Copies of a model's weights that can be put back later (for
 * `earlyStop({ restoreBest: true })`). It loads no tfjs of its own: the
 * model's tensors carry the methods it needs, so the stream core stays
 * free of tfjs.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { trainingStateOf } from "../stream/training_state.ts";

/** A copy of the weights behind an event. Internal. */
export interface WeightSnapshot {
  /** Puts the copied values back into the model. */
  restore(): void;
  /** Frees the copies. */
  dispose(): void;
}

const free = (tensors: tf.Tensor[]) => tensors.forEach((t) => t.dispose());

/** Copies the weights of the event's model (all weights of a layers model; the trained variables otherwise). Internal. */
export function snapshotWeights(where: string, event: unknown): WeightSnapshot {
  const state = trainingStateOf(where, event);
  const model = state.model;
  if (typeof model !== "function") {
    const copies = model.getWeights().map((w) => w.clone());
    return { restore: () => model.setWeights(copies), dispose: () => free(copies) };
  }
  const copies = state.variables.map((v) => v.clone());
  return {
    restore: () => state.variables.forEach((v, i) => v.assign(copies[i])),
    dispose: () => free(copies),
  };
}
