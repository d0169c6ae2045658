/**
 * Two models of bench/tfjs_path_models.ts (which trains them on the tfjs path)
 * and bench/versus_pytorch.ts (on the default engine: the host layer engine;
 * their PyTorch twins are in reference_pytorch.py): Keras's MNIST MLP with
 * dropout, and an MLP with batch normalization; both end in logits.
 */
import * as tf from "@tensorflow/tfjs";

export type ModelName = "dropout" | "batchnorm";
export const MODELS: ModelName[] = ["dropout", "batchnorm"];

/** One of the two models, with seeded initial weights (the same for both arms). */
export function makeModel(name: ModelName): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const dense = (units: number, seed: number, activation?: "relu") =>
    tf.layers.dense({ units, activation, kernelInitializer: init(seed) });
  const layers = name === "dropout"
    ? [
      tf.layers.dense({ units: 512, activation: "relu", inputShape: [784], kernelInitializer: init(1) }),
      tf.layers.dropout({ rate: 0.2 }),
      dense(512, 2, "relu"),
      tf.layers.dropout({ rate: 0.2 }),
      dense(10, 3),
    ]
    : [
      tf.layers.dense({ units: 256, activation: "relu", inputShape: [784], kernelInitializer: init(1) }),
      tf.layers.batchNormalization(),
      dense(256, 2, "relu"),
      tf.layers.batchNormalization(),
      dense(10, 3),
    ];
  return tf.sequential({ layers });
}

/** The loss as a tfjs user writes it: tfjs's softmax cross-entropy (labels first) on the logits. */
export const loss = (p: tf.Tensor, y: tf.Tensor): tf.Scalar => tf.losses.softmaxCrossEntropy(y, p) as tf.Scalar;
