/**
 * The contract between the training source and the stages that reach into a
 * run (`checkpoint`, `reduceLrOnPlateau`, `earlyStop({ restoreBest })`):
 * each source event carries, beside its keys, a handle on the run behind it.
 * Only types come from tfjs here, so the stream core loads without it.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { annotate, notesOf } from "./event_meta.ts";
import type { RunParts } from "./run_parts.ts";

/**
 * Where a run stands after an event: epochs completed, micro-batches read
 * of the epoch in progress (0 at an epoch's end), optimizer steps taken.
 * Internal.
 */
export interface RunPosition {
  /** What an event of this run is: an epoch (`epochStream`) or an optimizer step (`stepStream`). */
  unit: "epoch" | "step";
  epochs: number;
  batch: number;
  steps: number;
}

/** The training run behind an event, as it was when the event was emitted. Internal. */
export interface TrainingState {
  /** The model being trained (a layers model or a function of its inputs). */
  model: tf.LayersModel | ((...inputs: tf.Tensor[]) => tf.Tensor);
  optimizer: tf.Optimizer;
  /** The variables the optimizer trained in this event's epoch. */
  variables: tf.Variable[];
  /** The event's `step`: the epoch it reports (`epochStream`) or its optimizer step (`stepStream`). */
  step: number;
  /** The shuffle generator's state at the start of the epoch in progress (after this epoch, at an epoch's end). */
  rngState: number;
  /** Where the run stands after this event. */
  position: RunPosition;
  /** The state stages keep for the run (saved by `checkpoint`). */
  parts: RunParts;
  /** The run's identity: fresh for a new run, kept by a resumed one. */
  runId: string;
}

/** Records the training state of a source event (and clears any stale stop reason at its step). Internal. */
export function attachTrainingState(event: object, state: TrainingState): void {
  annotate(event, { training: state, stopReason: undefined });
}

/** The training state of `event`, or a `TypeError` naming the stage that needs it. Internal. */
export function trainingStateOf(where: string, event: unknown): TrainingState {
  const state = notesOf(event)?.training as TrainingState | undefined;
  if (!state) {
    throw new TypeError(`${where}: the event carries no training state: place this stage behind epochStream(...)`);
  }
  return state;
}

/** For each optimizer a stream trains with: the `step` its next event will have. */
const upcoming = new WeakMap<object, () => number>();

/**
 * Records that a stream trains with `optimizer` and that its next event's
 * `step` is `next()` (1 for a fresh run, n + 1 for one resumed at step n), so
 * a schedule built for that optimizer starts where the run stands. Internal.
 */
export function noteUpcomingStep(optimizer: object, next: () => number): void {
  upcoming.set(optimizer, next);
}

/** The `step` of the next event of the latest stream built with `optimizer`, if any. Internal. */
export function upcomingStep(optimizer: object): number | undefined {
  return upcoming.get(optimizer)?.();
}
