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

/** The keys every `stepStream` event carries, plus the live model. */
export interface StepFields<M> {
  /** Optimizer steps since the run began (1-based; a resumed run goes on counting). */
  step: number;
  /** The epoch (1-based pass over the data) the step belongs to. */
  epoch: number;
  /** The step's loss: the row-weighted mean over its batches. */
  train_loss: number;
  /** Wall time of the step in seconds. */
  train_time_sec: number;
  /** The live model being trained (not a copy). */
  model: M;
}

/** An event from `stepStream`: the step fields plus the `extra` keys. */
export type StepEvent<M, X extends object = Record<never, never>> = StepFields<M> & X;

/** `E` with the keys of `R` added (`R`'s values win). */
export type Merge<E, R> = [R] extends [never] ? E : Omit<E, keyof R> & R;

/**
 * The type of the event key a stage such as `ema` or `earlyStop` reads: `K`
 * itself where events of type `E` hold a number at `K` (any `K` for events
 * typed by an index signature, such as a replayed log), and otherwise the
 * keys of `E` that do hold numbers. So a misspelt key is one short compile
 * error on the key, listing the keys it could be:
 * `Argument of type '"val_ac"' is not assignable to parameter of type '"step" | "val_acc"'`.
 *
 * (The list is written out rather than named by another alias so that the
 * compiler prints the keys, not the alias's name.)
 */
export type NumericKey<E, K extends string> = string extends keyof E ? K
  : K extends { [P in keyof E]: E[P] extends number ? P : never }[keyof E] ? K
  : { [P in keyof E]: E[P] extends number ? P : never }[keyof E] & string;

/** `E` with the numeric key `K` added. */
export type WithNumber<E, K extends string> = Omit<E, K> & { [P in K]: number };
