/**
 * A classifier: three Gaussian blobs in the plane (made here, seeded), a
 * softmax output layer under `categoricalCrossentropy` (on the host engine),
 * `validationMetrics` for accuracy, macro F1 and the confusion matrix on a
 * held-out set, early stopping on `val_acc` (higher is better: mode "max")
 * under an epoch cap, a line every 5 epochs.
 *
 *   deno run -A examples/classify.ts [--epochs N] [--seed S]
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  augment,
  categoricalCrossentropy,
  collect,
  earlyStop,
  epochStream,
  explainEngine,
  pipe,
  printKeys,
  take,
  tap,
  useBackend,
  validationMetrics,
} from "../mod.ts";

/**
 * `rows` points around three centres on a circle of radius 1.5 (standard deviation 1),
 * class by class in turn: inputs [rows, 2] and one-hot labels [rows, 3].
 */
export function blobs(rows: number, seed: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  let s = seed;
  const uniform = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const points: number[] = [], labels: number[] = [];
  for (let r = 0; r < rows; r++) {
    const c = r % 3, angle = (2 * Math.PI * c) / 3;
    points.push(1.5 * Math.cos(angle) + gaussian(), 1.5 * Math.sin(angle) + gaussian());
    labels.push(...[0, 1, 2].map((k) => +(k === c)));
  }
  return { x: tf.tensor2d(points, [rows, 2]), y: tf.tensor2d(labels, [rows, 3]) };
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { epochs: { type: "string", default: "200" }, seed: { type: "string", default: "1" } },
});
const seed = Number(values.seed);
await useBackend();
const train = blobs(3000, seed), val = blobs(600, seed + 1);
const model = tf.sequential({
  layers: [
    tf.layers.dense({ units: 16, activation: "relu", inputShape: [2] }),
    tf.layers.dense({ units: 3, activation: "softmax" }),
  ],
});
const options = {
  data: [train.x, train.y],
  model,
  optimizer: tf.train.adam(0.003),
  loss: categoricalCrossentropy,
  batchSize: 64,
  seed,
};
console.log(`engine: ${explainEngine(options).engine}`);

const rows = await collect(pipe(
  epochStream(options),
  augment(validationMetrics({
    data: [val.x, val.y],
    metrics: { val_acc: "accuracy", val_f1: "f1", val_confusion: "confusion" },
  })),
  tap(printKeys("train_loss", "val_acc", "val_f1"), { every: 5 }),
  take(Number(values.epochs)),
  earlyStop({ key: "val_acc", mode: "max", patience: 10 }),
));
const best = rows.reduce((a, b) => (b.val_acc > a.val_acc ? b : a));
const stopped = rows.length < Number(values.epochs) ? "early stop" : "epoch cap";
console.log(`done: ${rows.length} epochs (${stopped}), best val_acc ${best.val_acc.toFixed(4)} at epoch ${best.step}`);
console.log(`confusion at the last epoch (rows: true class): ${JSON.stringify(rows.at(-1)!.val_confusion)}`);
