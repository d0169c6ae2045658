/**
 * Three of the five models tfjs users train that bench/versus_pytorch.ts
 * measures against PyTorch (the other two, the dropout and batch-norm MLPs,
 * are in tfjs_models.ts; the PyTorch twins of all five in
 * reference_pytorch.py), each with random data of its shape and the loss as a
 * tfjs user writes it:
 *
 * - `mnist_cnn`: the tfjs MNIST tutorial's CNN — conv 5×5×8 relu, max-pool
 *   2×2, conv 5×5×16 relu, max-pool 2×2, flatten, dense 10 softmax —
 *   categorical cross-entropy, Adam, batch 512 (the tutorial's), 5,120 rows.
 * - `embedding`: Keras's IMDB text classifier — embedding 10,000×16 over 256
 *   tokens, global average pooling, dense 16 relu, dense 1 sigmoid — binary
 *   cross-entropy, Adam, batch 512, 4,096 rows.
 * - `lstm`: an LSTM(32) regressor over 50 steps of 8 features, dense 1, mean
 *   squared error, Adam, batch 64, 2,048 rows.
 */
import * as tf from "@tensorflow/tfjs";
import { categoricalCrossentropy, type LossFunction } from "../mod.ts";

export type IssueModel = "mnist_cnn" | "embedding" | "lstm";

/** The model, its data, its loss and its batch size. */
export interface Workload {
  model: tf.LayersModel;
  x: tf.Tensor;
  y: tf.Tensor;
  loss: LossFunction;
  batchSize: number;
}

const init = (seed: number) => tf.initializers.glorotUniform({ seed });

/** One of the three workloads (rows fewer with `quick`). */
export function issueWorkload(name: IssueModel, quick = false): Workload {
  if (name === "mnist_cnn") {
    const rows = quick ? 1024 : 5120;
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [28, 28, 1],
          kernelSize: 5,
          filters: 8,
          activation: "relu",
          kernelInitializer: init(1),
        }),
        tf.layers.maxPooling2d({ poolSize: [2, 2], strides: [2, 2] }),
        tf.layers.conv2d({ kernelSize: 5, filters: 16, activation: "relu", kernelInitializer: init(2) }),
        tf.layers.maxPooling2d({ poolSize: [2, 2], strides: [2, 2] }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, activation: "softmax", kernelInitializer: init(3) }),
      ],
    });
    const x = tf.randomUniform([rows, 28, 28, 1], 0, 1, "float32", 1);
    const y = tf.oneHot(tf.randomUniform([rows], 0, 10, "int32", 2), 10).toFloat();
    return { model, x, y, loss: categoricalCrossentropy as LossFunction, batchSize: 512 };
  }
  if (name === "embedding") {
    const rows = quick ? 1024 : 4096;
    const model = tf.sequential({
      layers: [
        tf.layers.embedding({ inputDim: 10_000, outputDim: 16, inputLength: 256 }),
        tf.layers.globalAveragePooling1d({}),
        tf.layers.dense({ units: 16, activation: "relu", kernelInitializer: init(4) }),
        tf.layers.dense({ units: 1, activation: "sigmoid", kernelInitializer: init(5) }),
      ],
    });
    const x = tf.randomUniform([rows, 256], 0, 10_000, "int32", 3).toFloat();
    const y = tf.randomUniform([rows, 1], 0, 2, "int32", 4).toFloat();
    const loss = (p: tf.Tensor, t: tf.Tensor) => tf.metrics.binaryCrossentropy(t, p).mean() as tf.Scalar;
    return { model, x, y, loss: loss as LossFunction, batchSize: 512 };
  }
  const rows = quick ? 512 : 2048;
  const model = tf.sequential({
    layers: [
      tf.layers.lstm({ units: 32, inputShape: [50, 8], kernelInitializer: init(6) }),
      tf.layers.dense({ units: 1, kernelInitializer: init(7) }),
    ],
  });
  const x = tf.randomNormal([rows, 50, 8], 0, 1, "float32", 5);
  const y = tf.randomNormal([rows, 1], 0, 1, "float32", 6);
  return { model, x, y, loss: tf.losses.meanSquaredError as LossFunction, batchSize: 64 };
}
