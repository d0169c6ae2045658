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

interface Slot {
  originalName: string;
  variable: tf.Variable;
}

const isSlot = (value: unknown): value is Slot =>
  typeof value === "object" && value !== null && typeof (value as Slot).originalName === "string" &&
  (value as Slot).variable instanceof tf.Variable;

/** The optimizer's arrays of slots, by field (empty arrays included: a fresh optimizer's). */
function slotFields(o: Record<string, unknown>): [string, (Slot | undefined)[]][] {
  return Object.entries(o).filter(([, value]) =>
    Array.isArray(value) && value.every((s) => s === undefined || s === null || isSlot(s))
  ) as [string, (Slot | undefined)[]][];
}

/** A saved optimizer state. Internal. */
export interface OptimizerSnapshot {
  /** Puts the saved state back (copies: it may be restored again). */
  restore(): void;
  /** Frees the copies. */
  dispose(): void;
}

/** Copies `optimizer`'s state. Internal. */
export function snapshotOptimizer(optimizer: tf.Optimizer): OptimizerSnapshot {
  const o = optimizer as unknown as Record<string, unknown>;
  const iterations = o.iterations_;
  const lr = getLearningRate(optimizer);
  const scalars = Object.entries(o).filter(([, v]) => v instanceof tf.Variable)
    .map(([key, v]) => [key, (v as tf.Variable).clone()] as const);
  const slots = new Map(slotFields(o).map(([key, list]) => [key, list.map((s) => s && s.variable.clone())]));
  return {
    restore() {
      for (const [key, copy] of scalars) (o[key] as tf.Variable).assign(copy);
      for (const [key, list] of slotFields(o)) {
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
        o[key] = kept;
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
