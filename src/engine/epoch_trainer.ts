/**
 * The one interface both engines implement: train optimizer steps from a
 * pass's micro-batches, up to a number of steps (one for `stepStream`, the
 * whole pass for `epochStream`), and say their loss.
 *
 * @module
 */
import type { Feed } from "./feed.ts";

/** What a call to {@link EpochTrainer.train} trained. Internal. */
export interface Trained {
  /** The sample-weighted mean of the micro-batches' losses (NaN when none was trained). */
  loss: number;
  /** Rows trained on. */
  rows: number;
  /** Optimizer steps taken (0 when the feed had nothing left). */
  steps: number;
}

/** One engine's training over one pass. Internal. */
export interface EpochTrainer {
  /**
   * Trains at most `maxSteps` optimizer steps from `feed` (each over the
   * run's `accumulate` micro-batches, or what is left of the pass); weights
   * and optimizer state are in tfjs when it resolves. A dataset's batches
   * are disposed here.
   */
  train(feed: Feed, maxSteps: number): Promise<Trained>;
}
