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

/** The training run behind an event, as it was when the event was emitted. Internal. */
export interface TrainingState {
  /** The model being trained (a layers model or a function of its inputs). */
  model: tf.LayersModel | ((...inputs: tf.Tensor[]) => tf.Tensor);
  optimizer: tf.Optimizer;
  /** The variables the optimizer trained in this event's epoch. */
  variables: tf.Variable[];
  /** The epoch this event reports. */
  step: number;
  /** The shuffle generator's state after this epoch. */
  rngState: number;
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
