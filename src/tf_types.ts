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
