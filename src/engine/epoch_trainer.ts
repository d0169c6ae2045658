/**
 * The one interface both engines implement: train one epoch over an order
 * of rows, and say its loss.
 *
 * @module
 */
import type { Tensor } from "../tf_types.ts";

/** One engine's training of one epoch. Internal. */
export interface EpochTrainer {
  /** Trains one epoch over the rows in `order` (all rows in place when `undefined`); returns its loss. */
  epoch(order: Int32Array | undefined): Promise<number>;
  /**
   * Trains one epoch over batches as they come (a dataset's pass; each batch's
   * tensors are disposed by the trainer); returns the sample-weighted mean loss.
   */
  epochOfBatches(batches: AsyncIterable<Tensor[]>): Promise<number>;
}
