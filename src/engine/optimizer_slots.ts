/**
 * Keeps a tfjs optimizer's per-variable state with its variable when the
 * list of trained variables changes between epochs (a layer frozen or
 * unfrozen). tfjs optimizers index their slots (Adam's moments, Momentum's
 * accumulations, …) by position in the list passed to `minimize`, so a new
 * list would hand one variable another's state — a shape error, or silently
 * wrong moments. Both engines train through the same realigned slots.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { optimizerSlots, setOptimizerSlots, type Slot } from "../internal/tfjs_private.ts";

/** Slots of variables that left the list, kept for when they come back. */
const parked = new WeakMap<tf.Optimizer, Map<tf.Variable, Map<string, Slot>>>();

/**
 * The optimizer's parked slots. The first time its slots are realigned, its
 * `dispose()` (the instance's own, tfjs's method left as it is) learns to
 * free the parked ones too: tfjs's frees the slots in its arrays alone, and
 * parked ones were left behind (4 tensors for a frozen Dense layer under
 * Adam).
 */
function stashOf(optimizer: tf.Optimizer): Map<tf.Variable, Map<string, Slot>> {
  let stash = parked.get(optimizer);
  if (stash) return stash;
  const own = stash = new Map<tf.Variable, Map<string, Slot>>();
  parked.set(optimizer, own);
  const dispose = optimizer.dispose;
  optimizer.dispose = function (this: tf.Optimizer): void {
    for (const fields of own.values()) for (const slot of fields.values()) slot.variable.dispose();
    own.clear();
    dispose.call(this);
  };
  return own;
}

/**
 * Reorders `optimizer`'s slots, indexed by `previous` until now, to follow
 * `next`: a variable keeps its own state, a variable new to the list gets
 * an empty slot (tfjs creates it at the next step) or the state it had when
 * it left. On a tfjs whose optimizer internals fitstream does not know, the
 * slots stay where they are, as `model.fit` leaves them. Internal.
 */
export function realignSlots(optimizer: tf.Optimizer, previous: tf.Variable[], next: tf.Variable[]): void {
  const arrays = (optimizerSlots(optimizer) ?? []).filter(([, slots]) => slots.length > 0);
  if (arrays.length === 0) return;
  const stash = stashOf(optimizer);
  for (const [field, slots] of arrays) {
    const byVariable = new Map<tf.Variable, Slot>();
    previous.forEach((v, i) => {
      const slot = slots[i];
      if (slot) byVariable.set(v, slot);
    });
    const reordered = next.map((v) => byVariable.get(v) ?? stash.get(v)?.get(field));
    for (const [v, slot] of byVariable) {
      if (next.includes(v)) continue;
      if (!stash.has(v)) stash.set(v, new Map());
      stash.get(v)!.set(field, slot);
    }
    for (const v of next) stash.get(v)?.delete(field);
    while (reordered.length > 0 && reordered[reordered.length - 1] === undefined) reordered.pop();
    setOptimizerSlots(optimizer, field, reordered);
  }
}
