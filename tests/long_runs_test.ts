import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { readdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  augment,
  checkpoint,
  checkpointModel,
  collect,
  collectJsonl,
  earlyStop,
  epochStream,
  loadCheckpoint,
  pipe,
  reduceLrOnPlateau,
  take,
  tap,
  terminateOnNaN,
  untilAborted,
} from "../mod.ts";
import { lineData, mlp, weightsOf } from "./tf_helpers.ts";
import { fromEvents, withTempDir } from "./helpers.ts";

const mse = tf.losses.meanSquaredError;

const withDir = withTempDir;

/** One run of `epochs` epochs; with `save`, checkpoints every epoch into it; with `resume`, starts from it. */
async function run(epochs: number, opts: { save?: string; resume?: string }) {
  const { x, y } = lineData(60, 0.3);
  const model = mlp(1, 8, 11);
  const optimizer = tf.train.adam(0.02);
  const events = pipe(
    epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 16, seed: 4, resumeFrom: opts.resume }),
    ...(opts.save ? [checkpoint({ dir: opts.save, keep: 2 })] : []) as [],
    take(epochs),
  );
  const rows = await collect(events as ReadableStream<{ step: number; train_loss: number }>);
  const weights = weightsOf(model);
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
  return { rows, weights };
}

test("resume: 10 epochs straight equal 5 + resume + 5 (weights to 1e-6, same losses)", async () => {
  await withDir(async (dir) => {
    const straight = await run(10, {});
    const first = await run(5, { save: dir });
    const second = await run(5, { resume: dir });
    assert.deepEqual(second.rows.map((r) => r.step), [6, 7, 8, 9, 10]);
    straight.weights.flat().forEach((w, i) => assert.ok(Math.abs(w - second.weights.flat()[i]) < 1e-6, `weight ${i}`));
    const losses = [...first.rows, ...second.rows].map((r) => r.train_loss);
    losses.forEach((l, i) => assert.ok(Math.abs(l - straight.rows[i].train_loss) < 1e-6, `epoch ${i + 1}`));
    assert.deepEqual(readdirSync(dir).sort(), ["step-000004", "step-000005"], "keep: 2, no temporary folders left");
  });
});

test("checkpoint: topology + weights load with tf.loadLayersModel; best/ follows the metric", async () => {
  await withDir(async (dir) => {
    const { x, y } = lineData(40, 0.3);
    const model = mlp(1, 8, 2);
    const optimizer = tf.train.adam(0.02);
    const values = [5, 3, 4, 2, 6];
    const rows = await collect(pipe(
      epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 1 }),
      augment((e) => ({ metric: values[e.step - 1] })),
      checkpoint({ dir, every: 2, best: { key: "metric" }, keep: 5 }),
      take(5),
    ));
    assert.equal(rows.length, 5);
    assert.deepEqual(readdirSync(dir).sort(), ["best", "step-000002", "step-000004"]);
    assert.equal((await loadCheckpoint(join(dir, "best"))).step, 4);
    const latest = await loadCheckpoint(dir);
    assert.equal(latest.step, 4);
    assert.equal(latest.optimizerClass, "Adam");
    tf.dispose([...latest.modelWeights, ...latest.optimizerWeights].map((w) => w.tensor));
    const loaded = await tf.loadLayersModel(checkpointModel(dir));
    assert.equal(loaded.layers.length, model.layers.length);
    const probe = tf.tensor2d([[0.3]]);
    const out = loaded.predict(probe) as tf.Tensor;
    assert.equal(out.shape[1], 1);
    tf.dispose([probe, out, x, y]);
    loaded.dispose();
    model.dispose();
    optimizer.dispose();
  });
});

test("checkpoint: an unwritable folder fails at construction with the path; events must come from epochStream", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "a-file");
    await writeFile(file, "x");
    const bad = join(file, "checkpoints");
    assert.throws(() => checkpoint({ dir: bad }), (e: Error) => e.message.includes(bad));
    assert.throws(() => checkpoint({ dir: dir, every: 0 }), { name: "RangeError", message: /checkpoint: every/ });
    assert.throws(
      () =>
        epochStream({
          data: [tf.zeros([2, 1]), tf.zeros([2, 1])],
          model: mlp(1),
          optimizer: tf.train.adam(),
          loss: mse,
          resumeFrom: dir,
        }),
      (e: Error) => e.message.includes(`no checkpoint found in "${dir}"`),
    );
    await assert.rejects(
      collect(pipe(fromEvents([{ step: 1 }]), checkpoint({ dir }))),
      /checkpoint: the event carries no training state/,
    );
  });
});

test("earlyStop restoreBest: the model ends with exactly the best epoch's weights", async () => {
  const { x, y } = lineData(40, 0.3);
  const model = mlp(1, 8, 3);
  const optimizer = tf.train.adam(0.05);
  const metric = [4, 2, 3, 3, 3, 1];
  const seen = new Map<number, number[][]>();
  const rows = await collect(pipe(
    epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 2 }),
    augment((e) => ({ m: metric[e.step - 1] })),
    tap((e) => void seen.set(e.step, weightsOf(model))),
    earlyStop({ key: "m", patience: 3, restoreBest: true }),
  ));
  assert.deepEqual(rows.map((r) => r.step), [1, 2, 3, 4, 5]);
  assert.notDeepEqual(seen.get(5), seen.get(2));
  assert.deepEqual(weightsOf(model), seen.get(2));
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
});

test("a diverging model stops with the NaN error at the right step; earlier lines are kept; no leaks", async () => {
  const divergeAt = async (stopOnNaN: boolean, log?: WritableStream<Uint8Array>) => {
    const { x, y } = lineData(32, 0.1);
    const model = mlp(1, 8, 5);
    const optimizer = tf.train.sgd(3);
    const before = tf.memory().numTensors;
    const events = pipe(
      epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 8, seed: 1, stopOnNaN }),
      take(40),
    );
    let outcome: unknown;
    if (log) outcome = await collectJsonl(events, log, { include: ["step", "train_loss"] }).catch((e) => e);
    else outcome = (await collect(events)).findIndex((r) => !Number.isFinite(r.train_loss)) + 1;
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
    return outcome;
  };
  const firstBad = await divergeAt(false) as number;
  assert.ok(firstBad > 1, `the run diverges (first non-finite loss at step ${firstBad})`);
  let text = "";
  const decoder = new TextDecoder();
  const error = await divergeAt(true, new WritableStream({ write: (c) => void (text += decoder.decode(c)) })) as Error;
  assert.ok(error instanceof RangeError);
  assert.match(error.message, new RegExp(`^epochStream: step ${firstBad}: train_loss is (NaN|Infinity|-Infinity)`));
  const lines = text.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.step), Array.from({ length: firstBad - 1 }, (_, i) => i + 1));
});

test("terminateOnNaN names the step and the key; untilAborted stops before the next pull", async () => {
  await assert.rejects(
    collect(pipe(fromEvents([{ step: 1, a: 1 }, { step: 2, a: Infinity }]), terminateOnNaN())),
    { name: "RangeError", message: "terminateOnNaN: step 2: a is Infinity" },
  );
  const ok = await collect(pipe(fromEvents([{ step: 1, a: NaN, b: 1 }]), terminateOnNaN(["b"])));
  assert.equal(ok.length, 1);
  const controller = new AbortController();
  let pulls = 0;
  const source = new ReadableStream({ pull: (c) => c.enqueue({ step: ++pulls }) }, { highWaterMark: 0 });
  const rows = await collect(
    pipe(source, tap((e) => void (e.step === 2 && controller.abort())), untilAborted(controller.signal)),
  );
  assert.equal(rows.length, 2);
  assert.equal(pulls, 2);
  // @ts-expect-error: not a signal
  assert.throws(() => untilAborted({}), { name: "TypeError", message: /untilAborted: signal must be an AbortSignal/ });
});

test("reduceLrOnPlateau multiplies the rate after a plateau, not below minLr, and reports lr", async () => {
  const { x, y } = lineData(20, 0.1);
  for (const optimizer of [tf.train.adam(0.1), tf.train.sgd(0.1)]) {
    const model = mlp(1, 4, 1);
    const metric = [5, 4, 4, 4, 3, 3, 3, 3, 3, 3];
    const rows = await collect(pipe(
      epochStream({ data: [x, y], model, optimizer, loss: mse, batchSize: 10, seed: 1 }),
      augment((e) => ({ m: metric[e.step - 1] })),
      reduceLrOnPlateau({ key: "m", factor: 0.5, patience: 2, minLr: 0.02 }),
      take(10),
    ));
    assert.deepEqual(rows.map((r) => r.lr), [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02]);
    model.dispose();
    optimizer.dispose();
  }
  assert.throws(() => reduceLrOnPlateau({ key: "m", factor: 1 }), {
    name: "RangeError",
    message: /factor must lie strictly between 0 and 1/,
  });
  tf.dispose([x, y]);
});
