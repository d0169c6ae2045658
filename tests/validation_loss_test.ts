import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { augment, collect, epochStream, pipe, take, validationLoss } from "../mod.ts";
import { lineData, mlp, weightsOf } from "./tf_helpers.ts";

const mse = tf.losses.meanSquaredError;

test("validationLoss: full-set MSE in inference mode; batched equals full", async () => {
  const { x, y } = lineData(37, 1);
  const model = mlp(1, 8, 2, 0.5); // dropout: inference mode must switch it off
  const expected = tf.tidy(() => mse(y, model.predict(x) as tf.Tensor).dataSync()[0]);
  const full = await validationLoss({ data: [x, y], loss: mse })({ model });
  const batched = await validationLoss({ data: [x, y], loss: mse, batchSize: 5, key: "v" })({ model });
  const again = await validationLoss({ data: [x, y], loss: mse })({ model });
  assert.ok(Math.abs(full.val_loss - expected) < 1e-6, `${full.val_loss} vs ${expected}`);
  assert.ok(Math.abs(batched.v - expected) < 1e-5, `${batched.v} vs ${expected}`);
  assert.equal(again.val_loss, full.val_loss, "no dropout: the same value twice");
  tf.dispose([x, y]);
  model.dispose();
});

test("validationLoss touches no weights, no optimizer state and leaves no tensors", async () => {
  const { x, y } = lineData(30);
  const model = mlp(1, 8, 3);
  const optimizer = tf.train.adam(0.01);
  const measure = validationLoss({ data: [x, y], loss: mse, batchSize: 7 });
  await collect(pipe(epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 10 }), take(1)));
  const weights = weightsOf(model);
  const optimizerState = (await optimizer.getWeights()).map((w) => Array.from(w.tensor.dataSync()));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await measure({ model });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(weightsOf(model), weights);
  assert.deepEqual((await optimizer.getWeights()).map((w) => Array.from(w.tensor.dataSync())), optimizerState);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
});

test("validationLoss with augment: val_loss on every event, typed", async () => {
  const { x, y } = lineData(30);
  const model = mlp(1, 8, 3);
  const optimizer = tf.train.adam(0.05);
  const rows = await collect(pipe(
    epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 10, seed: 1 }),
    augment(validationLoss({ data: [x, y], loss: mse })),
    take(3),
  ));
  for (const r of rows) assert.equal(typeof r.val_loss.toFixed(3), "string");
  assert.equal(rows.length, 3);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
});

test("validationLoss: a function model; without labels; errors", async () => {
  const x = tf.tensor2d([[1], [2]]);
  const y = tf.tensor2d([[2], [5]]);
  const fn = (t: tf.Tensor) => t.mul(2);
  assert.deepEqual(await validationLoss({ data: [x, y], loss: mse })({ model: fn }), { val_loss: 0.5 });
  const unlabelled = validationLoss({
    data: [x],
    lastLabel: false,
    loss: ((p: tf.Tensor) => p.mean()) as never,
    key: "m",
  });
  assert.deepEqual(await unlabelled({ model: fn }), { m: 3 });
  await assert.rejects(validationLoss({ data: [x, y], loss: mse })({} as never), {
    name: "TypeError",
    message: "validationLoss: the event has no model",
  });
  assert.throws(() => validationLoss({ data: [], loss: mse }), {
    name: "TypeError",
    message: /validationLoss: data must hold at least 2 tensors/,
  });
  assert.throws(() => validationLoss({ data: [x], loss: mse }), {
    name: "TypeError",
    message: /validationLoss: data must hold at least 2 tensors/,
  });
  assert.throws(() => validationLoss({ data: [], lastLabel: false, loss: mse }), {
    name: "TypeError",
    message: /validationLoss: data is empty/,
  });
  assert.throws(() => validationLoss({ data: [x, y], loss: mse, batchSize: 0 }), {
    name: "RangeError",
    message: /validationLoss: batchSize/,
  });
  // @ts-expect-error: loss is required
  assert.throws(() => validationLoss({ data: [x, y] }), {
    name: "TypeError",
    message: /validationLoss: loss must be a function/,
  });
  tf.dispose([x, y]);
});
