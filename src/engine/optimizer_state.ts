/**
 * A copy of a tfjs optimizer's whole state — its per-variable slots (Adam's
 * moments, Momentum's accumulations, …), its own scalar variables (Adam's
 * `accBeta1`/`accBeta2`), its iteration count and learning rate — that can
 * be put back, leaving the optimizer as it was (`lrFinder`). Slots that
 * did not exist when the copy was taken (a fresh optimizer's) are freed and
 * removed again, so a fresh optimizer comes back fresh.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { getLearningRate, setLearningRate } from "./learning_rate.ts";
import {
  optimizerInternals,
  optimizerSlots,
  optimizerVariables,
  setOptimizerSlots,
  unknownTfjs,
} from "../internal/tfjs_private.ts";

/** A saved optimizer state. Internal. */
export interface OptimizerSnapshot {
  /** Puts the saved state back (copies: it may be restored again). */
  restore(): void;
  /** Frees the copies. */
  dispose(): void;
}

/**
 * Copies `optimizer`'s state, or throws (naming `where`) on a tfjs whose
 * optimizer internals fitstream does not know. Internal.
 */
export function snapshotOptimizer(optimizer: tf.Optimizer, where = "lrFinder"): OptimizerSnapshot {
  const o = optimizerInternals(optimizer), variables = optimizerVariables(optimizer);
  const fields = optimizerSlots(optimizer);
  if (!o || !variables || !fields) {
    throw new Error(`${where}: cannot copy the optimizer's state to put it back: ${unknownTfjs()}`);
  }
  const iterations = o.iterations_;
  const lr = getLearningRate(optimizer);
  const scalars = variables.map(([, v]) => [v, v.clone()] as const);
  const slots = new Map(fields.map(([key, list]) => [key, list.map((s) => s && s.variable.clone())]));
  return {
    restore() {
      for (const [variable, copy] of scalars) variable.assign(copy);
      for (const [key, list] of optimizerSlots(optimizer) ?? []) {
        const saved = slots.get(key) ?? [];
        const kept = list.map((slot, i) => {
          if (!slot) return undefined;
          if (saved[i]) {
            slot.variable.assign(saved[i]!);
            return slot;
          }
          slot.variable.dispose(); // made after the copy was taken
          return undefined;
        });
        while (kept.length > 0 && kept[kept.length - 1] === undefined) kept.pop();
        setOptimizerSlots(optimizer, key, kept);
      }
      o.iterations_ = iterations;
      setLearningRate(optimizer, lr);
    },
    dispose() {
      tf.dispose(scalars.map(([, copy]) => copy));
      for (const list of slots.values()) tf.dispose(list.filter((t) => t !== undefined));
    },
  };
}
