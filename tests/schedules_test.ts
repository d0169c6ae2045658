// Learning-rate schedules, lrSchedule and lrFinder (issue 31, item 2).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  checkpoint,
  collect,
  type EngineChoice,
  epochStream,
  exponentialDecay,
  getLearningRate,
  lrFinder,
  lrSchedule,
  oneCycle,
  piecewise,
  pipe,
  stepDecay,
  stepStream,
  take,
  tap,
  warmupCosine,
} from "../mod.ts";
import { lineData, mlp, weightsOf } from "./tf_helpers.ts";
import { withTempDir } from "./helpers.ts";

const mse = tf.losses.meanSquaredError;
const close = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol;

test("warmupCosine rises linearly through the warm-up to peak, then falls along a cosine to floor and stays", () => {
  const lr = warmupCosine({ peak: 0.1, warmup: 10, total: 110, floor: 0.001 });
  const rates = Array.from({ length: 130 }, (_, i) => lr(i + 1));
  for (let s = 1; s <= 10; s++) assert.ok(close(rates[s - 1], 0.1 * s / 10), `step ${s}`);
  assert.equal(rates[9], 0.1, "peak at the end of the warm-up");
  for (let s = 11; s <= 110; s++) assert.ok(rates[s - 1] < rates[s - 2], `falls at step ${s}`);
  assert.ok(close(rates[59], 0.001 + 0.099 / 2), "halfway down at the middle of the decay");
  assert.equal(rates[109], 0.001);
  assert.ok(rates.slice(110).every((r) => r === 0.001), "floor after total");
  assert.equal(warmupCosine({ peak: 1, warmup: 0, total: 4 })(1), cosineAt(1, 0, 1 / 4));
});

function cosineAt(start: number, end: number, pct: number): number {
  return end + (start - end) / 2 * (Math.cos(Math.PI * pct) + 1);
}

test("oneCycle follows PyTorch's OneCycleLR (cosine): up over pctStart of the steps, down to peak/div/finalDiv", () => {
  const lr = oneCycle({ peak: 0.01, total: 100 });
  // PyTorch: initial 0.01/25 = 4e-4 at step 0, the peak at step 29 (0.3·100 − 1), 4e-8 at step 99.
  assert.ok(close(lr(1), 4e-4));
  assert.ok(close(lr(30), 0.01));
  assert.ok(close(lr(100), 4e-8));
  assert.ok(close(lr(15), cosineAt(4e-4, 0.01, 14 / 29)));
  assert.ok(close(lr(65), cosineAt(0.01, 4e-8, 35 / 70)));
  assert.ok(close(lr(500), 4e-8));
});

test("stepDecay, exponentialDecay and piecewise", () => {
  assert.deepEqual([1, 5, 6, 11, 16].map(stepDecay({ initial: 1, factor: 0.5, every: 5 })), [1, 1, 0.5, 0.25, 0.125]);
  const exp = exponentialDecay({ initial: 1, decay: 0.1, every: 10 });
  assert.ok(close(exp(11), 0.1) && close(exp(21), 0.01) && close(exp(6), 0.1 ** 0.5));
  const pw = piecewise({ boundaries: [3, 5], values: [3, 2, 1] });
  assert.deepEqual([1, 2, 3, 4, 5, 6, 100].map(pw), [3, 3, 3, 2, 2, 1, 1]);
});

test("schedules check their settings when made and their step when called", () => {
  assert.throws(() => warmupCosine({ peak: 0.1, warmup: 10, total: 10 }), {
    name: "RangeError",
    message: "warmupCosine: total must be an integer >= 11, got 10",
  });
  assert.throws(() => warmupCosine({ peak: 0.1, warmup: 1, total: 5, floor: 0.2 }), {
    message: "warmupCosine: floor must be <= peak (0.1), got 0.2",
  });
  assert.throws(() => warmupCosine({ peak: 0.1, warmup: 1, total: 5, flor: 0 } as never), {
    message: 'warmupCosine: options has no key "flor"; did you mean "floor"?',
  });
  assert.throws(() => oneCycle({ peak: 1, total: 10, pctStart: 1 }), { message: /pctStart must lie strictly/ });
  assert.throws(() => stepDecay({ initial: 1, factor: 0, every: 1 }), {
    message: "stepDecay: factor must be > 0, got 0",
  });
  assert.throws(() => piecewise({ boundaries: [5, 3], values: [1, 2, 3] }), {
    message: "piecewise: boundaries[1] must be an integer >= 6, got 3",
  });
  assert.throws(() => piecewise({ boundaries: [5], values: [1] }), { message: /values must hold one rate more/ });
  assert.throws(() => exponentialDecay({ initial: 1, decay: 0.5 })(0), {
    name: "RangeError",
    message: "exponentialDecay: step must be an integer >= 1, got 0",
  });
});

for (const engine of ["auto", "tfjs"] as EngineChoice[]) {
  test(`lrSchedule sets schedule(1) when built and schedule(n + 1) after event n; lr is what event n trained with (engine ${engine})`, async () => {
    const { x, y } = lineData(16, 0.2);
    const model = mlp(1, 4, 2);
    const optimizer = tf.train.sgd(1);
    const schedule = (step: number) => 0.01 * step;
    const stage = lrSchedule(optimizer, schedule);
    assert.equal(getLearningRate(optimizer), 0.01, "schedule(1) when built");
    const trainedWith: number[] = [];
    // Each step's update is lr · gradient: a step taken by hand at the rate lrSchedule reports must match.
    const events = await collect(pipe(
      stepStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 16, engine }),
      tap(() => void trainedWith.push(getLearningRate(optimizer))),
      stage,
      take(5),
    ));
    assert.deepEqual(events.map((e) => e.lr), [0.01, 0.02, 0.03, 0.04, 0.05].map((v) => v));
    assert.deepEqual(trainedWith, events.map((e) => e.lr), "the rate set while the event trained");
    assert.equal(getLearningRate(optimizer), schedule(6), "set for the next step");
    model.dispose();
    tf.dispose([x, y]);
  });
}

test("lrSchedule's rate is the rate SGD steps with: the same weights as setting it by hand", async () => {
  const { x, y } = lineData(16, 0.2);
  const lr = warmupCosine({ peak: 0.2, warmup: 3, total: 8 });
  const scheduled = mlp(1, 4, 2), byHand = mlp(1, 4, 2);
  const a = tf.train.sgd(1), b = tf.train.sgd(1);
  const options = { data: [x, y], loss: mse, batchSize: 8, seed: 6 };
  await collect(pipe(stepStream({ ...options, model: scheduled, optimizer: a }), lrSchedule(a, lr), take(8)));
  const reader = stepStream({ ...options, model: byHand, optimizer: b }).getReader();
  for (let s = 1; s <= 8; s++) {
    b.setLearningRate(lr(s));
    await reader.read();
  }
  await reader.cancel();
  assert.deepEqual(weightsOf(scheduled), weightsOf(byHand));
  scheduled.dispose();
  byHand.dispose();
  tf.dispose([x, y]);
});

test("lrSchedule on a resumed run starts at the resumed step, per step and per epoch", async () => {
  await withTempDir(async (dir) => {
    const { x, y } = lineData(16, 0.2);
    const schedule = (step: number) => 0.001 * step;
    const run = async (n: number, stream: typeof stepStream | typeof epochStream, sub: string, resume?: boolean) => {
      const model = mlp(1, 4, 2);
      const optimizer = tf.train.adam(0.1);
      const events = await collect(pipe(
        stream({
          data: [x, y],
          model,
          optimizer,
          loss: mse,
          batchSize: 4,
          seed: 1,
          resumeFrom: resume ? sub : undefined,
        }),
        lrSchedule(optimizer, schedule),
        checkpoint({ dir: sub }),
        take(n),
      ));
      model.dispose();
      return events.map((e) => [e.step, e.lr]);
    };
    await run(3, stepStream, `${dir}/steps`);
    assert.deepEqual(await run(2, stepStream, `${dir}/steps`, true), [[4, 0.004], [5, 0.005]]);
    await run(2, epochStream, `${dir}/epochs`);
    assert.deepEqual(await run(1, epochStream, `${dir}/epochs`, true), [[3, 0.003]]);
    tf.dispose([x, y]);
  });
});

test("lrSchedule refuses a schedule that returns no rate, naming the step", () => {
  const optimizer = tf.train.sgd(0.1);
  assert.throws(() => lrSchedule(optimizer, () => NaN), {
    name: "RangeError",
    message: "lrSchedule: schedule(1) must be a finite number >= 0, got NaN",
  });
  assert.throws(() => lrSchedule(optimizer, 0.1 as never), { message: /^lrSchedule: schedule must be a function/ });
  assert.throws(() => lrSchedule({} as never, () => 1), {
    message: /^lrSchedule: optimizer must be a tf.train optimizer/,
  });
});

for (const engine of ["auto", "tfjs"] as EngineChoice[]) {
  test(`lrFinder sweeps the rate exponentially, stops once the loss diverges and suggests a rate (engine ${engine})`, async () => {
    const { x, y } = lineData(64, 0.1);
    const model = tf.sequential({
      layers: [tf.layers.dense({ units: 1, inputShape: [1], kernelInitializer: "zeros" })],
    });
    const optimizer = tf.train.sgd(0.01);
    const found = await lrFinder({
      data: [x, y],
      model,
      optimizer,
      loss: mse,
      batchSize: 8,
      seed: 3,
      engine,
      minLr: 1e-4,
      maxLr: 100,
      steps: 60,
    });
    assert.ok(close(found.lrs[0], 1e-4));
    for (let i = 1; i < found.lrs.length; i++) assert.ok(close(found.lrs[i] / found.lrs[i - 1], 10 ** (6 / 59), 1e-9));
    // SGD on this line diverges above a rate of about 3 (twice the inverse curvature of the loss).
    assert.ok(
      found.lrs.length < 60 && found.lrs.at(-1)! > 1,
      `stopped at ${found.lrs.at(-1)} after ${found.lrs.length}`,
    );
    assert.ok(found.suggested > 1e-2 && found.suggested < 3, `suggested ${found.suggested}`);
    assert.equal(found.losses.length, found.lrs.length);
    assert.equal(found.smoothed.length, found.lrs.length);
    assert.deepEqual(weightsOf(model), [[0], [0]], "the model as it was");
    assert.equal(getLearningRate(optimizer), 0.01);
    model.dispose();
    tf.dispose([x, y]);
  });

  test(`lrFinder puts back the weights and a trained optimizer's state, leaking nothing (engine ${engine})`, async () => {
    const { x, y } = lineData(64, 0.1);
    const model = mlp(1, 8, 3);
    const optimizer = tf.train.adam(0.003);
    await collect(
      pipe(epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 16, seed: 2, engine }), take(1)),
    );
    const weights = weightsOf(model);
    const read = async () => {
      const saved = await optimizer.getWeights();
      const values = await Promise.all(saved.map(async (w) => Array.from(await w.tensor.data())));
      tf.dispose(saved.filter((w) => w.name === "iter").map((w) => w.tensor)); // made by getWeights
      return values;
    };
    const state = await read();
    const iterations = optimizer.iterations;
    const tensors = tf.memory().numTensors;
    const found = await lrFinder({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, engine, steps: 20 });
    assert.equal(found.lrs.length, 20);
    assert.deepEqual(weightsOf(model), weights, "the model as it was");
    assert.deepEqual(await read(), state, "the optimizer's moments as they were");
    assert.equal(optimizer.iterations, iterations);
    assert.equal(getLearningRate(optimizer), 0.003);
    assert.equal(tf.memory().numTensors, tensors, "nothing left behind");
    model.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
  });
}

test("lrFinder leaves a fresh optimizer fresh: training after it matches training without it", async () => {
  const { x, y } = lineData(32, 0.1);
  const train = async (sweepFirst: boolean) => {
    const model = mlp(1, 8, 3);
    const optimizer = tf.train.adam(0.01);
    const options = { data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 4 };
    if (sweepFirst) await lrFinder({ ...options, steps: 20 });
    await collect(pipe(epochStream(options), take(2)));
    const w = weightsOf(model);
    model.dispose();
    optimizer.dispose();
    return w;
  };
  assert.deepEqual(await train(true), await train(false));
  tf.dispose([x, y]);
});

test("lrFinder checks its options", async () => {
  const { x, y } = lineData(8);
  const model = mlp(1, 4, 1);
  const options = { data: [x, y], model, optimizer: tf.train.sgd(0.1), loss: mse };
  await assert.rejects(lrFinder({ ...options, minLr: 1, maxLr: 0.5 }), {
    message: "lrFinder: maxLr must be > minLr (1), got 0.5",
  });
  await assert.rejects(lrFinder({ ...options, steps: 2 }), {
    message: "lrFinder: steps must be an integer >= 3, got 2",
  });
  await assert.rejects(lrFinder({ ...options, resumeFrom: "x" } as never), {
    message: /^lrFinder: options has no key "resumeFrom": lrFinder sweeps/,
  });
  await assert.rejects(lrFinder({ ...options, batchSize: 0 }), { message: /^lrFinder: batchSize must be/ });
  model.dispose();
  tf.dispose([x, y]);
});
