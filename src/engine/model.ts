/**
 * What a trainable model is, and how to run it forward in training or
 * inference mode.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import type { LayersModel, Tensor } from "../tf_types.ts";

/** A model written as a plain function of its input tensors. */
export type FunctionModel = (...inputs: Tensor[]) => Tensor;

/** A `tf.LayersModel` (Sequential or functional) or a {@link FunctionModel}. */
export type ModelLike = LayersModel | FunctionModel;

/** A loss of `(predictions, labels)`, or of `(predictions)` alone without labels. */
export type LossFunction = (predictions: Tensor, labels: Tensor) => Tensor;

/** Whether `value` is a layers model. Internal. */
export function isLayersModel(value: unknown): value is tf.LayersModel {
  return value instanceof tf.LayersModel;
}

/** Throws a `TypeError` unless `model` is a layers model or a function. Internal. */
export function checkModel(where: string, model: unknown): asserts model is ModelLike {
  if (!isLayersModel(model) && typeof model !== "function") {
    throw new TypeError(
      `${where}: model must be a tf.LayersModel or a function (...inputs) => tf.Tensor, got ${describe(model)}`,
    );
  }
  if (isLayersModel(model)) {
    try {
      for (const weight of model.weights) weight.read(); // throws once the model's weights are freed
    } catch (error) {
      throw new TypeError(
        `${where}: model has been disposed (model.dispose() freed its weights): build the model again, or dispose ` +
          `it only after training`,
        { cause: error },
      );
    }
  }
}

/** Runs the model on `inputs`; `training` switches dropout and friends. Internal. */
export function forward(model: ModelLike, inputs: tf.Tensor[], training: boolean): tf.Tensor {
  let out: unknown;
  if (isLayersModel(model)) {
    out = model.apply(inputs.length === 1 ? inputs[0] : inputs, { training });
  } else {
    out = model(...inputs);
  }
  if (!(out instanceof tf.Tensor)) {
    throw new TypeError(`the model must return one tf.Tensor, got ${describe(out)}`);
  }
  return out;
}
