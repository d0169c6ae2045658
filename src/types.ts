/**
 * Event types shared by sources, stages and sinks.
 *
 * @module
 */

/** The keys every source event carries, plus the live model. */
export interface EpochFields<M> {
  /** 1-based epoch counter. */
  step: number;
  /** Sample-weighted mean of the epoch's batch losses. */
  train_loss: number;
  /** Wall time of the epoch in seconds. */
  train_time_sec: number;
  /** The live model being trained (not a copy). */
  model: M;
}

/** An event from `epochStream`: the epoch fields plus the `extra` keys. */
export type EpochEvent<M, X extends object = Record<never, never>> = EpochFields<M> & X;

/** `E` with the keys of `R` added (`R`'s values win). */
export type Merge<E, R> = [R] extends [never] ? E : Omit<E, keyof R> & R;

/** `E` with the numeric key `K` added. */
export type WithNumber<E, K extends string> = Omit<E, K> & { [P in K]: number };
