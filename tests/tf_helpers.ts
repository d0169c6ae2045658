/** Helpers for tests that train TensorFlow.js models. */
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../mod.ts";

/** Selects the default backend once per process (tests may switch and restore it). */
export const backend: string = await useBackend();

/** A dense 1→1 model with fixed starting weights. */
export function linearModel(w = 0.5, b = -0.25): tf.Sequential {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
  model.setWeights([tf.tensor2d([[w]]), tf.tensor1d([b])]);
  return model;
}

/** A small MLP with seeded initial weights. */
export function mlp(inputs: number, hidden = 16, seed = 1, dropout = 0): tf.Sequential {
  const layers: tf.layers.Layer[] = [
    tf.layers.dense({
      units: hidden,
      activation: "relu",
      inputShape: [inputs],
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }),
  ];
  if (dropout > 0) layers.push(tf.layers.dropout({ rate: dropout, seed }));
  layers.push(tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
  return tf.sequential({ layers });
}

/** Regression data y = 3x + 2 (+ noise) with a deterministic generator. */
export function lineData(rows: number, noise = 0): { x: tf.Tensor2D; y: tf.Tensor2D; xs: number[]; ys: number[] } {
  let s = 12345;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const xs = Array.from({ length: rows }, () => rand() * 2 - 1);
  const ys = xs.map((v) => 3 * v + 2 + noise * (rand() - 0.5));
  return { x: tf.tensor2d(xs, [rows, 1]), y: tf.tensor2d(ys, [rows, 1]), xs, ys };
}

/** Counts optimizer steps from here on, through the optimizer's iteration counter. */
export function countSteps(optimizer: tf.Optimizer): { readonly steps: number } {
  // Both engines keep the optimizer's iteration count (the host engine writes it back after each epoch).
  const start = optimizer.iterations;
  return {
    get steps() {
      return optimizer.iterations - start;
    },
  };
}

/** The model's weights as plain arrays. */
export function weightsOf(model: tf.LayersModel): number[][] {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}
