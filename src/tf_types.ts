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
/** What a `tf.data` dataset may yield: tensors, and arrays or objects of them (`tf.TensorContainer`). */
export type TensorContainer = tf.TensorContainer;
