// accumulate, clipNorm and clipValue on both engines (issue 31, item 3); the comparison with a loop written
// by hand is in faithfulness_test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { collect, type EngineChoice, epochStream, explainEngine, pipe, stepStream, take } from "../mod.ts";
import { countSteps, lineData, mlp, weightsOf } from "./tf_helpers.ts";

const mse = tf.losses.meanSquaredError;
const ENGINES: EngineChoice[] = ["auto", "tfjs"];

function maxGap(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((w, i) => w.map((v, k) => Math.abs(v - b[i][k]))));
}

/** The L2 norm of the change between two weight lists, all weights together. */
function globalDistance(a: number[][], b: number[][]): number {
  return Math.sqrt(a.flatMap((w, i) => w.map((v, k) => (v - b[i][k]) ** 2)).reduce((s, d) => s + d, 0));
}

for (const engine of ENGINES) {
  test(`accumulate: 2 at batch 8 trains what batch 16 trains with SGD, a short last group included (engine ${engine})`, async () => {
    const before = tf.memory().numTensors;
    const { x, y } = lineData(44, 0.3); // batch 8: 6 batches (the last of 4 rows); batch 16: 3 (the last of 12)
    const run = async (batchSize: number, accumulate?: number) => {
      const model = mlp(1, 8, 2);
      const optimizer = tf.train.sgd(0.05);
      const steps = countSteps(optimizer);
      const events = await collect(pipe(
        epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize, seed: 5, engine, accumulate }),
        take(4),
      ));
      const result = { weights: weightsOf(model), losses: events.map((e) => e.train_loss), steps: steps.steps };
      model.dispose();
      optimizer.dispose();
      return result;
    };
    const accumulated = await run(8, 2), big = await run(16);
    assert.ok(maxGap(accumulated.weights, big.weights) <= 1e-5, `gap ${maxGap(accumulated.weights, big.weights)}`);
    assert.equal(accumulated.steps, 12, "3 optimizer steps an epoch");
    assert.equal(big.steps, 12);
    // The epoch's loss is over its batches as trained (before each step), the same rows in both runs.
    accumulated.losses.forEach((l, i) => assert.ok(Math.abs(l - big.losses[i]) <= 1e-5, `${l} vs ${big.losses[i]}`));
    tf.dispose([x, y]);
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  });

  test(`one SGD step at rate 1 with clipNorm: 0.01 moves the weights by at most 0.01, globally (engine ${engine})`, async () => {
    const before = tf.memory().numTensors;
    const { x, y } = lineData(16, 0.3);
    const model = mlp(1, 8, 4);
    const optimizer = tf.train.sgd(1);
    const start = weightsOf(model);
    await collect(pipe(
      stepStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 16, engine, clipNorm: 0.01 }),
      take(1),
    ));
    const moved = globalDistance(weightsOf(model), start);
    assert.ok(moved <= 0.01 + 1e-7, `moved ${moved}`);
    assert.ok(moved > 0.0099, `clipped to the norm, not below it: ${moved}`);
    model.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  });

  test(`one SGD step at rate 1 with clipValue: 0.001 moves no weight by more than 0.001 (engine ${engine})`, async () => {
    const { x, y } = lineData(16, 0.3);
    const model = mlp(1, 8, 4);
    const optimizer = tf.train.sgd(1);
    const start = weightsOf(model);
    await collect(pipe(
      stepStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 16, engine, clipValue: 0.001 }),
      take(1),
    ));
    const gap = maxGap(weightsOf(model), start);
    assert.ok(gap <= 0.001 + 1e-7 && gap > 0.0009, `largest move ${gap}`);
    model.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
  });

  test(`stepStream with accumulate: each event is one optimizer step over k batches (engine ${engine})`, async () => {
    const { x, y } = lineData(40, 0.3); // batch 8: 5 batches an epoch, steps of 2, 2 and 1
    const model = mlp(1, 8, 2);
    const optimizer = tf.train.adam(0.01);
    const steps = countSteps(optimizer);
    const events = await collect(pipe(
      stepStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 1, engine, accumulate: 2 }),
      take(5),
    ));
    assert.deepEqual(events.map((e) => [e.step, e.epoch]), [[1, 1], [2, 1], [3, 1], [4, 2], [5, 2]]);
    assert.equal(steps.steps, 5);
    model.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
  });
}

test("explainEngine says how the host engine treats the gradients", () => {
  const { x, y } = lineData(8);
  const model = mlp(1, 4, 1);
  const options = { data: [x, y], model, optimizer: tf.train.sgd(0.1), loss: mse, batchSize: 4 };
  const plain = explainEngine(options);
  assert.equal(plain.engine, "host");
  assert.doesNotMatch(plain.reason, /clipped|accumulated/);
  const { engine, reason } = explainEngine({ ...options, accumulate: 4, clipNorm: 1, clipValue: 0.5 });
  assert.equal(engine, "host");
  assert.match(
    reason,
    /\(4 batches accumulated per step, gradients clipped to a global norm of 1, gradient values clipped to ±0\.5\)/,
  );
  model.dispose();
  tf.dispose([x, y]);
});

test("accumulate, clipNorm and clipValue are checked when the stream is built", () => {
  const { x, y } = lineData(8);
  const model = mlp(1, 4, 1);
  const options = { data: [x, y], model, optimizer: tf.train.sgd(0.1), loss: mse };
  assert.throws(() => epochStream({ ...options, accumulate: 0 }), {
    name: "RangeError",
    message: "epochStream: accumulate must be an integer >= 1, got 0",
  });
  assert.throws(() => stepStream({ ...options, accumulate: 1.5 }), { message: /^stepStream: accumulate must be/ });
  assert.throws(() => epochStream({ ...options, clipNorm: 0 }), {
    name: "RangeError",
    message: "epochStream: clipNorm must be a finite number > 0, got 0",
  });
  assert.throws(() => epochStream({ ...options, clipValue: Infinity }), {
    message: "epochStream: clipValue must be a finite number > 0, got Infinity",
  });
  model.dispose();
  tf.dispose([x, y]);
});

for (const engine of ENGINES) {
  test(`no tensor leaks when a loss throws inside an accumulated, clipped step, or a step is cancelled (engine ${engine})`, async () => {
    const before = tf.memory().numTensors;
    const { x, y } = lineData(40, 0.3);
    const model = mlp(1, 8, 2);
    const optimizer = tf.train.adam(0.01);
    let calls = 0, armed = false;
    // A loss of its own (the host engine runs it through tfjs on the predictions) that fails on its 5th batch:
    // the second batch of the third step.
    const loss = (p: tf.Tensor, t: tf.Tensor) => {
      if (armed && ++calls === 5) throw new Error("boom");
      return mse(t, p);
    };
    const options = {
      data: [x, y],
      model,
      optimizer,
      loss,
      batchSize: 8,
      seed: 1,
      engine,
      accumulate: 2,
      clipNorm: 0.5,
    };
    const failing = stepStream(options);
    armed = true;
    await assert.rejects(collect(pipe(failing, take(10))), /boom/);
    armed = false;
    const reader = stepStream(options).getReader();
    await reader.read();
    const pending = reader.read(); // a step of two batches starts…
    await reader.cancel("stop"); // …and is cancelled while it runs
    await pending.catch(() => {});
    model.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
    assert.equal(tf.memory().numTensors, before);
  });
}
