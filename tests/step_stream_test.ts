// stepStream: one event per optimizer step, with epochStream's guarantees (issue 31, item 1).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  checkpoint,
  collect,
  collectJsonl,
  earlyStop,
  ema,
  type EngineChoice,
  epochStream,
  pipe,
  progress,
  stepStream,
  take,
  tap,
} from "../mod.ts";
import { countSteps, lineData, mlp, weightsOf } from "./tf_helpers.ts";
import { withTempDir } from "./helpers.ts";

const mse = tf.losses.meanSquaredError;
const ENGINES: EngineChoice[] = ["auto", "tfjs"];

/** 28 rows at batch 4: epochs of 7 batches. */
function setup(seed = 3) {
  const { x, y } = lineData(28, 0.3);
  const model = mlp(1, 8, seed);
  const optimizer = tf.train.adam(0.02);
  const free = () => {
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  };
  return {
    x,
    y,
    model,
    optimizer,
    free,
    options: { data: [x, y], model, optimizer, loss: mse, batchSize: 4, seed: 9 },
  };
}

function maxGap(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((w, i) => w.map((v, k) => Math.abs(v - b[i][k]))));
}

for (const engine of ENGINES) {
  test(`7 step events train what one epoch event of 7 batches trains (engine ${engine})`, async () => {
    const before = tf.memory().numTensors;
    const a = setup(), b = setup();
    const steps = await collect(pipe(stepStream({ ...a.options, engine }), take(7)));
    const epochs = await collect(pipe(epochStream({ ...b.options, engine }), take(1)));
    assert.deepEqual(steps.map((e) => e.step), [1, 2, 3, 4, 5, 6, 7]);
    assert.ok(steps.every((e) => e.epoch === 1));
    assert.ok(maxGap(weightsOf(a.model), weightsOf(b.model)) <= 1e-5, "the same weights");
    // The epoch's loss is the row-weighted mean of its steps' losses (all 7 batches hold 4 rows).
    const mean = steps.reduce((s, e) => s + e.train_loss, 0) / 7;
    assert.ok(Math.abs(mean - epochs[0].train_loss) <= 1e-5, `${mean} vs ${epochs[0].train_loss}`);
    assert.deepEqual(Object.keys(steps[0]).sort(), ["epoch", "step", "train_loss", "train_time_sec"]);
    a.free();
    b.free();
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  });

  test(`take(9) of 7-batch epochs ends in epoch 2 at step 9, after exactly 9 optimizer steps (engine ${engine})`, async () => {
    const s = setup();
    const counter = countSteps(s.optimizer);
    const events = await collect(pipe(stepStream({ ...s.options, engine }), take(9)));
    assert.equal(events.length, 9);
    assert.equal(events[8].step, 9);
    assert.equal(events[8].epoch, 2);
    assert.deepEqual(events.map((e) => e.epoch), [1, 1, 1, 1, 1, 1, 1, 2, 2]);
    assert.equal(counter.steps, 9);
    s.free();
  });

  test(`reading n events trains exactly n steps, and each stage sees the model as at its event (engine ${engine})`, async () => {
    const s = setup();
    const counter = countSteps(s.optimizer);
    const seen: number[][][] = [];
    const reader = pipe(
      stepStream({ ...s.options, engine }),
      tap((e) => void seen.push(weightsOf(e.model))),
      ema("train_loss", { halfLife: 2 }),
      take(20),
    ).getReader();
    for (let n = 1; n <= 10; n++) {
      const { value } = await reader.read();
      assert.equal(value!.step, n);
      assert.equal(counter.steps, n, "nothing trained ahead");
      assert.deepEqual(seen[n - 1], weightsOf(s.model), "the tap saw the model of its event");
      assert.equal(typeof value!.train_loss_ema, "number");
    }
    await reader.cancel();
    assert.equal(counter.steps, 10);
    s.free();
  });

  test(`a checkpointed stepStream resumes inside an epoch exactly, shuffle included (engine ${engine})`, async () => {
    await withTempDir(async (dir) => {
      const straight = setup();
      const all = await collect(pipe(stepStream({ ...straight.options, engine }), take(15)));
      const first = setup();
      await collect(pipe(stepStream({ ...first.options, engine }), checkpoint({ dir, every: 5 }), take(10)));
      const resumed = setup();
      const rest = await collect(pipe(stepStream({ ...resumed.options, engine, resumeFrom: dir }), take(5)));
      assert.deepEqual(rest.map((e) => e.step), [11, 12, 13, 14, 15]);
      assert.deepEqual(rest.map((e) => e.epoch), [2, 2, 2, 2, 3]);
      assert.deepEqual(rest.map((e) => e.train_loss), all.slice(10).map((e) => e.train_loss));
      assert.deepEqual(weightsOf(resumed.model), weightsOf(straight.model));
      for (const s of [straight, first, resumed]) s.free();
    });
  });
}

test("epochStream resumes a stepStream checkpoint saved at an epoch's end, and refuses one saved inside an epoch", async () => {
  await withTempDir(async (dir) => {
    const a = setup();
    await collect(pipe(stepStream(a.options), checkpoint({ dir: `${dir}/end` }), take(7)));
    await collect(pipe(stepStream(a.options), checkpoint({ dir: `${dir}/inside` }), take(3)));
    const b = setup();
    const events = await collect(pipe(epochStream({ ...b.options, resumeFrom: `${dir}/end` }), take(2)));
    assert.deepEqual(events.map((e) => e.step), [2, 3]);
    assert.throws(() => epochStream({ ...b.options, resumeFrom: `${dir}/inside` }), {
      message: /epochStream: resumeFrom: ".*inside.*" was saved by stepStream inside epoch 1, after 3 of its batches/,
    });
    // And stepStream resumes an epochStream checkpoint: a new run's 2 epochs of 7 steps were taken before it.
    await collect(pipe(epochStream(b.options), checkpoint({ dir: `${dir}/epochs` }), take(2)));
    const c = setup();
    const steps = await collect(pipe(stepStream({ ...c.options, resumeFrom: `${dir}/epochs` }), take(2)));
    assert.deepEqual(steps.map((e) => [e.step, e.epoch]), [[15, 3], [16, 3]]);
    for (const s of [a, b, c]) s.free();
  });
});

test("stepStream over a dataset: epochs end when a pass does, and a mid-pass checkpoint resumes exactly", async () => {
  await withTempDir(async (dir) => {
    const before = tf.memory().numTensors;
    const { x, y } = lineData(28, 0.3);
    const [xs, ys] = [tf.split(x, 28), tf.split(y, 28)];
    const make = () => {
      const s = setup();
      // 28 rows in batches of 8: 4 batches a pass (the last holds 4).
      const data = tf.data.zip({ xs: tf.data.array(xs), ys: tf.data.array(ys) })
        .map((e) => {
          const { xs, ys } = e as { xs: tf.Tensor; ys: tf.Tensor };
          return { xs: xs.reshape([1]), ys: ys.reshape([1]) };
        }).batch(8);
      return { ...s, options: { data, model: s.model, optimizer: s.optimizer, loss: mse } };
    };
    const straight = make();
    const all = await collect(pipe(stepStream(straight.options), take(10)));
    assert.deepEqual(all.map((e) => e.epoch), [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    const first = make();
    await collect(pipe(stepStream(first.options), checkpoint({ dir }), take(6)));
    const resumed = make();
    const rest = await collect(pipe(stepStream({ ...resumed.options, resumeFrom: dir }), take(4)));
    assert.deepEqual(rest.map((e) => [e.step, e.epoch]), [[7, 2], [8, 2], [9, 3], [10, 3]]);
    assert.deepEqual(rest.map((e) => e.train_loss), all.slice(6).map((e) => e.train_loss));
    assert.deepEqual(weightsOf(resumed.model), weightsOf(straight.model));
    for (const s of [straight, first, resumed]) s.free();
    tf.dispose([x, y, ...xs, ...ys]);
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  });
});

for (const engine of ENGINES) {
  test(`no tensor leaks after stepStream ends by take, by earlyStop, by cancel mid-step and by error (engine ${engine})`, async () => {
    const before = tf.memory().numTensors;
    const s = setup();
    await collect(pipe(stepStream({ ...s.options, engine }), take(9)));
    await collect(pipe(
      stepStream({ ...s.options, engine }),
      tap(() => {}),
      earlyStop({ key: "epoch", mode: "min", patience: 3 }),
    ));
    const reader = stepStream({ ...s.options, engine }).getReader();
    await reader.read();
    const pending = reader.read(); // a step starts…
    await reader.cancel("stop"); // …and is cancelled while it runs
    await pending.catch(() => {});
    const failing = pipe(
      stepStream({ ...s.options, engine }),
      tap((e) => {
        if (e.step === 4) throw new Error("boom");
      }),
    );
    await assert.rejects(collect(failing), /boom/);
    s.free();
    assert.equal(tf.memory().numTensors, before);
  });
}

test("a JSONL sink logs step events with their epoch", async () => {
  const s = setup();
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const dest = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(decoder.decode(c)) });
  await collectJsonl(pipe(stepStream(s.options), take(8)), dest);
  const rows = chunks.join("").trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => [r.step, r.epoch]), [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 1], [
    8,
    2,
  ]]);
  assert.deepEqual(Object.keys(rows[0]).sort(), ["epoch", "step", "train_loss", "train_time_sec"]);
  s.free();
});

test("stepStream refuses what epochStream refuses, naming itself", () => {
  const s = setup();
  assert.throws(() => stepStream({ ...s.options, batchSize: 0 }), { message: /^stepStream: batchSize must be/ });
  assert.throws(() => stepStream({ ...s.options, epochs: 3 } as never), {
    message: /^stepStream: options has no key "epochs"/,
  });
  s.free();
});

test("progress({ unit: 'step' }) shows the step and its epoch", async () => {
  const s = setup();
  const lines: string[] = [];
  const output = { write: (t: string) => void lines.push(t), isTTY: false };
  await collect(pipe(stepStream(s.options), progress({ unit: "step", total: 9, every: 8, output }), take(9)));
  assert.match(lines[0], /^step 8\/9 \(epoch 2\) /);
  assert.match(lines[0], / steps\/s/);
  assert.match(lines[1], /^done: 9\/9 steps in /);
  s.free();
});

test("stepStream refuses data whose rows differ from the model's declared input shape; a free dimension takes any", async () => {
  const lstm = (steps: number | null) =>
    tf.sequential({
      layers: [
        tf.layers.lstm({ units: 2, inputShape: [steps, 3] as unknown as number[] }),
        tf.layers.dense({ units: 1 }),
      ],
    });
  const x = tf.zeros([8, 4, 3]), y = tf.zeros([8, 1]), optimizer = tf.train.sgd(0.1);
  const declared = lstm(6), free = lstm(null);
  assert.throws(() => stepStream({ data: [x, y], model: declared, optimizer, loss: mse, batchSize: 4 }), {
    name: "RangeError",
    message: "stepStream: data[0] must have rows shaped [6, 3] as the model's input, got [4, 3]: " +
      "reshape the data, or build the model with this input shape",
  });
  const steps = await collect(
    pipe(stepStream({ data: [x, y], model: free, optimizer, loss: mse, batchSize: 4 }), take(3)),
  );
  assert.equal(steps.length, 3);
  tf.dispose([x, y]);
  declared.dispose();
  free.dispose();
  optimizer.dispose();
});
