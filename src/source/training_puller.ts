/**
 * The puller behind `epochStream` and `stepStream`: restores the checkpoint
 * to resume from before the first event, moves the run on by one event per
 * read (nothing ahead), stops on a diverged loss, and attaches the training
 * state behind each event.
 *
 * @module
 */
import { DONE, more, type Puller, type PullResult } from "../stream/puller.ts";
import { attachTrainingState } from "../stream/training_state.ts";
import type { Moved, RunCursor } from "./run_cursor.ts";

/** What one event says of its training: its keys, built from what was trained. Internal. */
export type EventKeys = (moved: Moved, step: number, seconds: number) => Record<string, unknown>;

/** One event per read, for `where` (`epochStream` or `stepStream`). Internal. */
export class TrainingPuller<E> implements Puller<E> {
  #where: string;
  #cursor: RunCursor;
  #move: (cursor: RunCursor) => Promise<Moved>;
  #keys: EventKeys;
  #stopOnNaN: boolean;
  #cancelled = false;
  #running: Promise<unknown> | undefined;

  constructor(
    where: string,
    cursor: RunCursor,
    move: (cursor: RunCursor) => Promise<Moved>,
    keys: EventKeys,
    stopOnNaN: boolean,
  ) {
    this.#where = where;
    this.#cursor = cursor;
    this.#move = move;
    this.#keys = keys;
    this.#stopOnNaN = stopOnNaN;
  }

  next(): Promise<PullResult<E>> {
    if (this.#cancelled) return Promise.resolve(DONE);
    const run = this.#cursor.resume().then(() => this.#event());
    this.#running = run.catch(() => {});
    return run;
  }

  async #event(): Promise<PullResult<E>> {
    const started = performance.now();
    const moved = await this.#move(this.#cursor);
    const state = this.#cursor.state();
    if (this.#stopOnNaN && !Number.isFinite(moved.loss)) {
      const where = this.#where === "stepStream" ? `step ${state.step} (epoch ${moved.epoch})` : `step ${state.step}`;
      throw new RangeError(
        `${this.#where}: ${where}: train_loss is ${moved.loss}: training diverged ` +
          `(try a lower learning rate; stopOnNaN: false lets it continue)`,
      );
    }
    const event = this.#keys(moved, state.step, (performance.now() - started) / 1000);
    attachTrainingState(event, state);
    return more(event as E);
  }

  upcomingStep(): number {
    return this.#cursor.upcomingStep;
  }

  async cancel(): Promise<void> {
    this.#cancelled = true;
    await this.#running; // the event in flight finishes and frees its tensors
    await this.#cursor.close();
  }
}
