import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { augment, collect, earlyStop, type EngineChoice, epochStream, pipe, take, validationLoss } from "../mod.ts";
import { lineData, mlp } from "./tf_helpers.ts";

type Ending = (events: ReadableStream<{ step: number; val_loss: number }>) => Promise<void>;

/** Builds data, model and optimizer, runs `end` on the pipeline, disposes all: nothing may remain. */
async function noLeak(end: Ending, engine: EngineChoice) {
  const before = tf.memory().numTensors;
  const { x, y } = lineData(40, 0.2);
  const model = mlp(1, 8, 5);
  const optimizer = tf.train.adam(0.01);
  const events = pipe(
    epochStream({ data: [x, y], model, optimizer, loss: tf.losses.meanSquaredError, batchSize: 6, seed: 1, engine }),
    augment(validationLoss({ data: [x, y], loss: tf.losses.meanSquaredError, batchSize: 16 })),
  );
  const during = tf.memory().numTensors;
  try {
    await end(events);
  } finally {
    // Optimizer state (Adam's moments) is created on the first step: dispose it with the optimizer.
    const afterRun = tf.memory().numTensors;
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
    assert.equal(
      tf.memory().numTensors,
      before,
      `tensors: ${before} before, ${during} built, ${afterRun} after the run`,
    );
  }
}

for (const engine of ["auto", "tfjs"] as const) {
  test(`no tensors leak when a run ends by take (engine ${engine})`, async () => {
    await noLeak(async (events) => void await collect(pipe(events, take(3))), engine);
  });

  test(`no tensors leak when a run ends by earlyStop (engine ${engine})`, async () => {
    await noLeak(async (events) => {
      const rows = await collect(pipe(events, augment(() => ({ flat: 0 })), earlyStop({ key: "flat", patience: 2 })));
      assert.equal(rows.length, 3);
    }, engine);
  });

  test(`no tensors leak when the consumer breaks out of for await (engine ${engine})`, async () => {
    await noLeak(async (events) => {
      let n = 0;
      for await (const _ of events) if (++n === 2) break;
    }, engine);
  });

  test(`no tensors leak when the stream is cancelled during an epoch (engine ${engine})`, async () => {
    await noLeak(async (events) => {
      const reader = events.getReader();
      await reader.read();
      const pending = reader.read(); // epoch 2 starts…
      await reader.cancel("stop"); // …and is cancelled while it runs
      assert.equal((await pending).done, true);
    }, engine);
  });

  test(`no tensors leak when a stage throws (engine ${engine})`, async () => {
    await noLeak(async (events) => {
      const failing = pipe(
        events,
        augment((e) => {
          if (e.step === 2) throw new Error("stage failed");
          return null;
        }),
      );
      await assert.rejects(collect(failing), /stage failed/);
    }, engine);
  });

  test(`the steady state holds no extra tensors from epoch to epoch (engine ${engine})`, async () => {
    const { x, y } = lineData(40, 0.2);
    const model = mlp(1, 8, 5);
    const optimizer = tf.train.adam(0.01);
    const counts: number[] = [];
    const events = pipe(
      epochStream({ data: [x, y], model, optimizer, loss: tf.losses.meanSquaredError, batchSize: 6, engine }),
      augment(validationLoss({ data: [x, y], loss: tf.losses.meanSquaredError })),
      augment(() => void counts.push(tf.memory().numTensors)),
      take(5),
    );
    await collect(events);
    assert.deepEqual(counts.slice(1), new Array(4).fill(counts[1]));
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  });
}
