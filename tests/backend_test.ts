import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { collect, epochStream, pipe, take, useBackend } from "../mod.ts";
import { backend, linearModel, lineData } from "./tf_helpers.ts";

test("the default backend is wasm, the fastest that loads here", () => {
  assert.equal(backend, "wasm");
  assert.equal(tf.getBackend(), "wasm");
});

test("cpu and wasm both train, and agree", async () => {
  const losses: Record<string, number[]> = {};
  try {
    for (const name of ["cpu", "wasm"] as const) {
      assert.equal(await useBackend(name), name);
      assert.equal(tf.getBackend(), name);
      const { x, y } = lineData(30, 0.1);
      const model = linearModel();
      const optimizer = tf.train.sgd(0.1);
      const rows = await collect(pipe(
        epochStream({ data: [x, y], model, optimizer, loss: tf.losses.meanSquaredError, batchSize: 8, seed: 2 }),
        take(3),
      ));
      losses[name] = rows.map((r) => r.train_loss);
      tf.dispose([x, y]);
      model.dispose();
      optimizer.dispose();
    }
  } finally {
    await useBackend(backend as "wasm");
  }
  losses.cpu.forEach((v, i) => assert.ok(Math.abs(v - losses.wasm[i]) < 1e-4, `${v} vs ${losses.wasm[i]}`));
});

test("FITSTREAM_BACKEND picks the backend; a bad name is a clear error", async () => {
  const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
  const saved = env.FITSTREAM_BACKEND;
  try {
    env.FITSTREAM_BACKEND = "cpu";
    assert.equal(await useBackend(), "cpu");
    env.FITSTREAM_BACKEND = "webgpu";
    await assert.rejects(useBackend(), {
      name: "RangeError",
      message: 'FITSTREAM_BACKEND must be "wasm" or "cpu", got the string "webgpu"',
    });
    // @ts-expect-error: not a backend fitstream sets up
    await assert.rejects(useBackend("gpu"), {
      name: "RangeError",
      message: /useBackend: name must be "wasm" or "cpu"/,
    });
  } finally {
    if (saved === undefined) delete env.FITSTREAM_BACKEND;
    else env.FITSTREAM_BACKEND = saved;
    await useBackend(backend as "wasm");
  }
});
