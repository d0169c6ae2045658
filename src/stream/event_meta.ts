/**
 * What the library knows about an event besides its keys — why a stream
 * stopped at it, the training run behind it — kept beside the event rather
 * than in it, so that events stay plain data: they print, compare and
 * serialise as their keys alone.
 *
 * The notes live in module-private weak maps, found two ways: by the event
 * object (library stages carry them to the events they make), and by the
 * event's `model` and `step` (so they survive a user's own stage that
 * rebuilds the event with `{ ...event }`).
 *
 * @module
 */

/** The notes one event can carry. Internal. */
export interface EventNotes {
  /** Why the stream ended after this event (`"take"`, `"early stop"`). */
  stopReason?: string;
  /** The training run behind the event (see `training_state.ts`). */
  training?: unknown;
}

const byEvent = new WeakMap<object, EventNotes>();
/** By model, then step; only the latest few steps are kept per model. */
const byModel = new WeakMap<object, Map<number, EventNotes>>();
const STEPS_KEPT = 16;

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null;
}

/** The event's `model` and `step`, when it has both. */
function modelStep(event: Record<string, unknown>): [object, number] | undefined {
  const { model, step } = event;
  return isObject(model) && typeof step === "number" ? [model, step] : undefined;
}

/** Adds `notes` to `event` (merged with what it has). Internal. */
export function annotate(event: unknown, notes: EventNotes): void {
  if (!isObject(event)) return;
  const merged = { ...byEvent.get(event), ...notes };
  byEvent.set(event, merged);
  const key = modelStep(event);
  if (!key) return;
  const [model, step] = key;
  let steps = byModel.get(model);
  if (!steps) byModel.set(model, steps = new Map());
  steps.set(step, { ...steps.get(step), ...notes });
  if (steps.size > STEPS_KEPT) steps.delete(steps.keys().next().value!);
}

/** The notes of `event`: its own, else those of its model at its step. Internal. */
export function notesOf(event: unknown): EventNotes | undefined {
  if (!isObject(event)) return undefined;
  const own = byEvent.get(event);
  if (own) return own;
  const key = modelStep(event);
  return key ? byModel.get(key[0])?.get(key[1]) : undefined;
}

/** Gives `to` the notes of `from` (a stage that made a new event from an old one). Internal. */
export function carryNotes(from: unknown, to: unknown): void {
  if (from === to || !isObject(from) || !isObject(to)) return;
  const notes = byEvent.get(from);
  if (notes) byEvent.set(to, { ...notes, ...byEvent.get(to) });
}
