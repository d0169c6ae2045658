// The host engines when a pass fails: the steps finished before the error stay trained (weights, moving
// statistics and optimizer state), as model.fit and the tfjs path keep them, and the failed step is not applied.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { collect, epochStream, explainEngine, pipe, take, useBackend } from "../mod.ts";
import "./tf_helpers.ts";

const L = tf.layers;
const BATCH = 10, INPUTS = 4;
/** The faithfulness suite's tolerance: float32 rounding over a short run, relative to max(1, |w|). */
const TOLERANCE = 2e-5;
const mse = (p: tf.Tensor, y: tf.Tensor) => tf.losses.meanSquaredError(y, p);

const X = Array.from({ length: 40 * INPUTS }, (_, i) => Math.cos(i * 0.7));
const Y = Array.from({ length: 40 }, (_, i) => Math.sin(i));

/** Batches of BATCH rows; the batch numbered `failAt` (0-based) throws instead, and none follow it. */
function batches(failAt: number, count = 4): tf.data.Dataset<tf.TensorContainer> {
  return tf.data.generator(function* () {
    for (let b = 0; b < count; b++) {
      if (b === failAt) throw new Error("disk read failed");
      const s = b * BATCH;
      yield {
        xs: tf.tensor2d(X.slice(s * INPUTS, (s + BATCH) * INPUTS), [BATCH, INPUTS]),
        ys: tf.tensor2d(Y.slice(s, s + BATCH), [BATCH, 1]),
      };
    }
  });
}

const CHAINS: { name: string; layers: () => tf.layers.Layer[] }[] = [
  {
    name: "a Dense chain",
    layers: () => [
      L.dense({
        units: 5,
        inputShape: [INPUTS],
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      L.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  },
  {
    name: "a Dense+BatchNormalization chain",
    layers: () => [
      L.dense({
        units: 5,
        inputShape: [INPUTS],
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      L.batchNormalization(),
      L.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  },
];

/** What a run left: the model's weights (moving statistics included) and the optimizer's state. */
interface Left {
  error: string;
  weights: number[][];
  iterations: number;
  slots: number[][];
  accBeta: number[];
  leaked: number;
}

/** One epoch of `data` on the cpu backend, through `options` (its error caught), and what it left. */
async function trainOn(
  layers: () => tf.layers.Layer[],
  data: (model: tf.LayersModel) => tf.data.Dataset<tf.TensorContainer> | tf.Tensor[],
  extra: Record<string, unknown> = {},
): Promise<Left> {
  const before = tf.getBackend();
  await useBackend("cpu");
  try {
    const tensors = tf.memory().numTensors;
    const model = tf.sequential({ layers: layers() });
    const optimizer = tf.train.adam(0.05);
    const input = data(model);
    let error = "";
    try {
      await collect(pipe(epochStream({ data: input, model, optimizer, loss: mse, ...extra }), take(1)));
    } catch (e) {
      error = (e as Error).message;
    }
    if (Array.isArray(input)) tf.dispose(input);
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    const saved = await optimizer.getWeights();
    const internals = optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    const left = {
      error,
      weights,
      iterations: optimizer.iterations,
      slots: saved.slice(1).map((s) => Array.from(s.tensor.dataSync())),
      accBeta: [internals.accBeta1.dataSync()[0], internals.accBeta2.dataSync()[0]],
    };
    saved[0].tensor.dispose(); // the iteration count's tensor (the slots are the optimizer's own variables)
    model.dispose();
    optimizer.dispose();
    return { ...left, leaked: tf.memory().numTensors - tensors };
  } finally {
    await tf.setBackend(before);
  }
}

/** The largest |a - b| / max(1, |b|) over paired entries. */
function gap(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  return a.reduce((worst, w, i) => {
    assert.equal(w.length, b[i].length);
    return w.reduce((m, v, k) => Math.max(m, Math.abs(v - b[i][k]) / Math.max(1, Math.abs(b[i][k]))), worst);
  }, 0);
}

for (const chain of CHAINS) {
  test(`${chain.name} trained on the host keeps the steps finished before its dataset fails, as the tfjs path does`, async () => {
    const probe = tf.sequential({ layers: chain.layers() });
    const x = tf.zeros([BATCH, INPUTS]), y = tf.zeros([BATCH, 1]);
    const optimizer = tf.train.adam(0.05);
    assert.equal(explainEngine({ data: [x, y], model: probe, optimizer, loss: mse, shuffle: false }).engine, "host");
    tf.dispose([x, y]);
    probe.dispose();
    optimizer.dispose();

    const host = await trainOn(chain.layers, () => batches(3));
    const tfjs = await trainOn(chain.layers, () => batches(3), { engine: "tfjs" });
    const clean = await trainOn(chain.layers, () => batches(-1, 3));
    assert.match(host.error, /disk read failed/);
    assert.match(tfjs.error, /disk read failed/);
    assert.equal(clean.error, "");
    // Exactly the state three finished steps leave, on the host engine...
    assert.deepEqual(host.weights, clean.weights);
    assert.deepEqual(host.slots, clean.slots);
    assert.deepEqual(host.accBeta, clean.accBeta);
    assert.equal(host.iterations, 3);
    // ...and the tfjs path's, to float32 rounding.
    assert.equal(tfjs.iterations, 3);
    assert.ok(gap(host.weights, tfjs.weights) < TOLERANCE, `weights ${gap(host.weights, tfjs.weights)}`);
    assert.ok(gap(host.slots, tfjs.slots) < TOLERANCE, `slots ${gap(host.slots, tfjs.slots)}`);
    assert.ok(gap([host.accBeta], [tfjs.accBeta]) < TOLERANCE);
    assert.notDeepEqual(host.weights, (await trainOn(chain.layers, () => batches(0))).weights);
    for (const run of [host, tfjs, clean]) assert.equal(run.leaked, 0);
  });
}

test("an embedding id out of range in the third batch leaves the two finished steps trained, that step unapplied", async () => {
  const ROWS = 30, IDS = 5, TABLE = 20;
  const layers = () => [
    L.embedding({
      inputDim: TABLE,
      outputDim: 3,
      inputShape: [IDS],
      embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 3 }),
    }),
    L.flatten(),
    L.batchNormalization(),
    L.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
  ];
  const ids = Array.from({ length: ROWS * IDS }, (_, i) => i === 25 * IDS ? 25 : (i * 7) % TABLE);
  const labels = Array.from({ length: ROWS }, (_, i) => Math.sin(i));
  const data = (rows: number) => () => [
    tf.tensor2d(ids.slice(0, rows * IDS), [rows, IDS]),
    tf.tensor2d(labels.slice(0, rows), [rows, 1]),
  ];
  const model = tf.sequential({ layers: layers() }), optimizer = tf.train.adam(0.05), probe = data(ROWS)();
  assert.equal(explainEngine({ data: probe, model, optimizer, loss: mse, batchSize: BATCH }).engine, "host");
  tf.dispose(probe);
  model.dispose();
  optimizer.dispose();
  const host = await trainOn(layers, data(ROWS), { batchSize: BATCH, shuffle: false });
  const tfjs = await trainOn(layers, data(ROWS), { batchSize: BATCH, shuffle: false, engine: "tfjs" });
  const clean = await trainOn(layers, data(2 * BATCH), { batchSize: BATCH, shuffle: false });
  assert.match(host.error, /index value 25/);
  assert.match(tfjs.error, /index value 25/);
  assert.deepEqual(host.weights, clean.weights);
  assert.deepEqual(host.slots, clean.slots);
  assert.equal(host.iterations, 2);
  assert.equal(tfjs.iterations, 2);
  assert.ok(gap(host.weights, tfjs.weights) < TOLERANCE, `weights ${gap(host.weights, tfjs.weights)}`);
  assert.ok(gap(host.slots, tfjs.slots) < TOLERANCE, `slots ${gap(host.slots, tfjs.slots)}`);
  for (const run of [host, tfjs, clean]) assert.equal(run.leaked, 0);
});
