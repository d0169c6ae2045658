/**
 * Names for the TensorFlow.js types that appear in fitstream's signatures.
 * Each is the tfjs type itself (an alias), so any `tf.Tensor`, optimizer or
 * model can be passed where these appear.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** A TensorFlow.js tensor (`tf.Tensor`). */
export type Tensor = tf.Tensor;
/** A rank-2 TensorFlow.js tensor (`tf.Tensor2D`). */
export type Tensor2D = tf.Tensor2D;
/** A trainable TensorFlow.js variable (`tf.Variable`). */
export type Variable = tf.Variable;
/** Any `tf.train` optimizer (`tf.Optimizer`). */
export type Optimizer = tf.Optimizer;
/** A layers model, Sequential or functional (`tf.LayersModel`). */
export type LayersModel = tf.LayersModel;
/** A `tf.io` handler, for `tf.loadLayersModel` (`tf.io.IOHandler`). */
export type IOHandler = tf.io.IOHandler;
/**
 * A `tf.data` dataset of `T`, as fitstream reads it: every `tf.data.Dataset<T>`
 * is one. (A structural type: `deno doc` cannot name tfjs's own class, which
 * tfjs re-exports inside its `data` namespace.)
 */
export interface Dataset<T extends TensorContainer> {
  /** A fresh iterator over one pass of the dataset. */
  iterator(): Promise<{ next(): Promise<IteratorResult<T>> }>;
}
/**
 * A `tf.data.Dataset<T>` with its methods, as `csvDataset` returns it: `map`,
 * `filter`, `take` and the others type-check and give datasets that
 * `epochStream` and `validationLoss` take. (Structural, like {@link Dataset}.
 * A dataset these methods make has no `nextPass` of its own, so a run
 * resumed on one reads its source's passes from the first again.)
 */
export interface TfDataset<T extends TensorContainer> extends Dataset<T> {
  /** Elements in one pass when tf.data knows it, else `null` (a CSV's is not known before it is read). */
  readonly size: number | null;
  /** Each element through `transform`. */
  map<O extends TensorContainer>(transform: (value: T) => O): TfDataset<O>;
  /** Each element through an async `transform`. */
  mapAsync<O extends TensorContainer>(transform: (value: T) => Promise<O>): TfDataset<O>;
  /** The elements for which `predicate` holds. */
  filter(predicate: (value: T) => boolean): TfDataset<T>;
  /** The first `count` elements. */
  take(count: number): TfDataset<T>;
  /** All but the first `count` elements. */
  skip(count: number): TfDataset<T>;
  /** The elements `count` times over (forever without `count`). */
  repeat(count?: number): TfDataset<T>;
  /** Reads up to `bufferSize` elements ahead. */
  prefetch(bufferSize: number): TfDataset<T>;
  /** Shuffled within a buffer of `bufferSize` elements. */
  shuffle(bufferSize: number, seed?: string, reshuffleEachIteration?: boolean): TfDataset<T>;
  /** This dataset's elements, then `dataset`'s. */
  concatenate(dataset: TfDataset<T>): TfDataset<T>;
  /** Calls `f` on every element of one pass. */
  forEachAsync(f: (input: T) => void): Promise<void>;
  /** One pass's elements, in an array. */
  toArray(): Promise<T[]>;
}
/** What a `tf.data` dataset may yield: tensors, and arrays or objects of them (`tf.TensorContainer`). */
export type TensorContainer = tf.TensorContainer;
