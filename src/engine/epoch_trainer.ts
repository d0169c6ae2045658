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

/** A host engine's pass in progress: `add(n)` trains on the batch buffers' first n rows, `apply()` steps, `end()`
 * writes back and returns the summed loss, `release()` gives back what the pass took. Internal. */
export interface HostSession {
  add(n: number): void;
  apply(): void;
  end(): number;
  release(): void;
}

/**
 * Runs a host engine's pass: up to `maxSteps` optimizer steps, each over
 * `accumulate` micro-batches that `fill` copies into the batch buffers (or
 * what is left of the pass). After an error partway through it writes back
 * what the finished steps produced, as `model.fit` and the tfjs path keep
 * them: parameters and the optimizer's state change only in a step's
 * `apply`, so they hold the last finished step's values, and an unfinished
 * step's gradients are dropped (the layer engine's moving statistics keep
 * the forward passes that ran, as tfjs-layers updates them within the
 * forward pass); a failure to write back gives way to the pass's own error.
 * Internal.
 */
export async function hostPass(
  session: HostSession,
  feed: Feed,
  maxSteps: number,
  accumulate: number,
  fill: (feed: Feed) => number | Promise<number>,
): Promise<Trained> {
  try {
    let rows = 0, steps = 0, added = 0;
    while (steps < maxSteps) {
      // No await for a rows feed's micro-batch: a microtask a step showed in the tfjs path's batch-32 profile.
      const filled = fill(feed);
      const n = typeof filled === "number" ? filled : await filled;
      if (n === 0) break;
      session.add(n);
      rows += n;
      if (++added === accumulate || feed.done) {
        session.apply();
        steps++;
        added = 0;
      }
    }
    if (added > 0) { // a dataset's pass ended inside a step
      session.apply();
      steps++;
    }
    return { loss: session.end() / rows, rows, steps };
  } catch (error) {
    try {
      session.end();
    } catch { /* the pass's own error is the one to report (a variable disposed meanwhile, say, fails both) */ }
    throw error;
  } finally {
    session.release();
  }
}
