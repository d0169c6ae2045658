/**
 * The one interface both engines implement: train one epoch over an order
 * of rows, and say its loss.
 *
 * @module
 */

/** One engine's training of one epoch. Internal. */
export interface EpochTrainer {
  /** Trains one epoch over the rows in `order` (all rows in place when `undefined`); returns its loss. */
  epoch(order: Int32Array | undefined): Promise<number>;
}
