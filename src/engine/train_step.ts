/**
 * Gradient computations that stay leak-free when the model or the loss throws.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { freeTapeAfterThrow } from "../internal/tfjs_private.ts";

/**
 * Runs `f`, which computes gradients. If it throws, tfjs has already kept the
 * tensors its gradient tape saved for the backward pass; they are freed here
 * before the error goes on (tfjs would hold them until the next gradient
 * computation). Internal.
 */
export function freeingTapeOnThrow<T>(f: () => T): T {
  try {
    return f();
  } catch (error) {
    freeTapeAfterThrow();
    throw error;
  }
}

/**
 * Runs `optimizer.minimize(f)` and returns the cost, leak-free if `f` or the
 * backward pass throws (a layer without a gradient: tfjs then still holds the
 * cost that the forward pass returned). Internal.
 */
export function trainStep(optimizer: tf.Optimizer, f: () => tf.Scalar, varList: tf.Variable[]): tf.Scalar {
  let cost: tf.Scalar | undefined;
  try {
    return freeingTapeOnThrow(() => optimizer.minimize(() => (cost = f()), true, varList)!);
  } catch (error) {
    if (cost && !cost.isDisposed) cost.dispose();
    throw error;
  }
}

/**
 * `tf.variableGrads(f, varList)`: the cost and the gradients, leak-free as
 * {@link trainStep} is. The caller owns both. Internal.
 */
export function gradientsOf(
  f: () => tf.Scalar,
  varList: tf.Variable[],
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  let cost: tf.Scalar | undefined;
  try {
    return freeingTapeOnThrow(() => tf.variableGrads(() => (cost = f()), varList));
  } catch (error) {
    if (cost && !cost.isDisposed) cost.dispose();
    throw error;
  }
}
