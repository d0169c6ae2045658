import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { collect, epochStream, explainEngine, pipe, take, useBackend } from "../mod.ts";
import {
  KNOWN_TFJS,
  knowsTfjs,
  layerFields,
  learningRateOf,
  optimizerInternals,
  optimizerSlots,
  optimizerVariables,
  readsWasmMemory,
  registeredClass,
  reportTfjsVersionForTests,
  sequentialInner,
  unknownTfjs,
  wasmMemory,
} from "../src/internal/tfjs_private.ts";
import { snapshotOptimizer } from "../src/engine/optimizer_state.ts";
import { getLearningRate, setLearningRate } from "../src/engine/learning_rate.ts";
import { backend, weightsOf } from "./tf_helpers.ts";
import { type HostBackend, writeOutput } from "../src/kernels/_host.ts";

const mse = tf.losses.meanSquaredError;

/** The private fields of a Dense layer the test reads. */
interface DenseFields {
  inboundNodes?: unknown[];
  kernelRegularizer?: unknown;
  activityRegularizer?: unknown;
}

/** Runs `f` while the module believes tfjs `version` is loaded. */
async function asIfTfjs<T>(version: string, f: () => T | Promise<T>): Promise<T> {
  reportTfjsVersionForTests(version);
  try {
    return await f();
  } finally {
    reportTfjsVersionForTests(undefined);
  }
}

function data(): [tf.Tensor2D, tf.Tensor2D] {
  const x = tf.tensor2d(Array.from({ length: 40 }, (_, i) => Math.sin(i * 1.3)), [20, 2]);
  const y = tf.tensor2d(Array.from({ length: 20 }, (_, i) => Math.cos(i * 0.7)), [20, 1]);
  return [x, y];
}

function model(l2 = 0): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 4,
        inputShape: [2],
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
        kernelRegularizer: l2 ? tf.regularizers.l2({ l2 }) : undefined,
      }),
      tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
}

test("the accessors answer for the tfjs fitstream was written against (4.22.0)", () => {
  assert.equal(tf.version_core, KNOWN_TFJS);
  assert.equal(knowsTfjs(), true);
  assert.equal(unknownTfjs(), undefined);
  const m = model(0.01);
  const dense = m.layers[0];
  assert.equal(registeredClass("Dense"), dense.constructor);
  const internals = layerFields<DenseFields>(dense)!;
  assert.equal(internals.inboundNodes!.length, 1);
  assert.ok(internals.kernelRegularizer instanceof tf.serialization.Serializable);
  assert.equal(internals.activityRegularizer ?? null, null);
  const adam = tf.train.adam(0.01);
  assert.equal(optimizerInternals(adam)!.learningRate, 0.01);
  assert.equal(learningRateOf(adam), 0.01);
  const [x, y] = data();
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  tf.dispose(adam.minimize(() => mse(y, m.apply(x) as tf.Tensor) as tf.Scalar, true, vars)!);
  assert.equal(optimizerInternals(adam)!.iterations_, 1);
  assert.ok(sequentialInner(m) instanceof tf.LayersModel); // made when the Sequential is first built
  const slots = new Map(optimizerSlots(adam));
  assert.equal(slots.get("accumulatedFirstMoment")!.length, vars.length);
  assert.equal(slots.get("accumulatedSecondMoment")!.length, vars.length);
  assert.deepEqual(optimizerVariables(adam)!.map(([k]) => k).sort(), ["accBeta1", "accBeta2"]);
  assert.equal(readsWasmMemory(tf.backend()), backend === "wasm");
  if (backend === "wasm") {
    const memory = wasmMemory(tf.backend(), x.dataId)!;
    assert.equal(memory.dtype, "float32");
    const view = new Float32Array(memory.heap.buffer, memory.heap.byteOffset + memory.offset, x.size);
    assert.deepEqual([...view], [...x.dataSync()]);
  }
  tf.dispose([x, y]);
  adam.dispose();
  m.dispose();
});

test("on a tfjs version fitstream does not know, every accessor answers unsupported", async () => {
  const m = model(0.01);
  const adam = tf.train.adam(0.01);
  const x = tf.ones([2, 2]);
  await asIfTfjs("9.9.9", () => {
    assert.equal(knowsTfjs(), false);
    assert.match(unknownTfjs()!, /^tfjs 9\.9\.9 is not a version fitstream's host engine knows/);
    assert.equal(registeredClass("Dense"), undefined);
    assert.equal(layerFields<DenseFields>(m.layers[0]), undefined);
    assert.equal(sequentialInner(m), undefined);
    assert.equal(optimizerInternals(adam), undefined);
    assert.equal(readsWasmMemory(tf.backend()), false);
    assert.equal(optimizerSlots(adam), undefined);
    assert.equal(optimizerVariables(adam), undefined);
    assert.equal(wasmMemory(tf.backend(), x.dataId), undefined);
    // The rate through public tfjs: getConfig() to read it, SGD's setLearningRate to change it; Adam has none.
    assert.equal(getLearningRate(adam), 0.01);
    const sgd = tf.train.sgd(0.5);
    setLearningRate(sgd, 0.25);
    assert.equal(getLearningRate(sgd), 0.25);
    sgd.dispose();
    assert.throws(() => setLearningRate(adam, 0.5), {
      name: "TypeError",
      message: /^setLearningRate: cannot change the Adam optimizer's rate: tfjs 9\.9\.9 is not a version/,
    });
    assert.throws(() => snapshotOptimizer(adam), {
      message: /^lrFinder: cannot copy the optimizer's state to put it back: tfjs 9\.9\.9 is not a version/,
    });
  });
  x.dispose();
  adam.dispose();
  m.dispose();
});

test("a host kernel's output written in place holds the same values on an unknown tfjs, through a copy", async () => {
  const host = tf.backend() as unknown as HostBackend;
  const x = tf.tensor1d([1, -2, 3.5]);
  const double = () => {
    const info = writeOutput(host, [3], [x], (out, xs) => {
      for (let i = 0; i < 3; i++) out[i] = 2 * xs[i];
    });
    const values = Array.from(host.readSync(info.dataId));
    host.disposeData!(info.dataId);
    return values;
  };
  const before = tf.memory().numTensors;
  assert.deepEqual(double(), [2, -4, 7]);
  assert.deepEqual(await asIfTfjs("9.9.9", double), [2, -4, 7]);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

test("on an unknown tfjs the host engine steps aside with that reason, and training goes through tfjs as engine tfjs trains", async () => {
  const train = async (engine: "auto" | "tfjs") => {
    const [x, y] = data();
    const m = model(0.01); // with a penalty: a Sequential's penalties are found without its inner model
    const options = {
      data: [x, y],
      model: m,
      optimizer: tf.train.adam(0.05),
      loss: mse,
      batchSize: 8,
      seed: 2,
      engine,
    };
    const explained = explainEngine(options);
    const losses = (await collect(pipe(epochStream(options), take(3)))).map((e) => e.train_loss);
    const weights = weightsOf(m);
    tf.dispose([x, y]);
    options.optimizer.dispose();
    m.dispose();
    return { explained, losses, weights };
  };
  const before = tf.memory().numTensors;
  const unknown = await asIfTfjs("9.9.9", () => train("auto"));
  assert.equal(unknown.explained.engine, "tfjs");
  assert.match(unknown.explained.reason, /^tfjs 9\.9\.9 is not a version fitstream's host engine knows/);
  assert.ok(unknown.losses[2] < unknown.losses[0], `the loss went down: ${unknown.losses}`);
  const known = await train("tfjs");
  assert.equal(known.explained.engine, "tfjs");
  assert.deepEqual(unknown.losses, known.losses);
  assert.deepEqual(unknown.weights, known.weights);
  assert.equal(tf.memory().numTensors, before);
});

test("on an unknown tfjs useBackend registers none of fitstream's kernels: tfjs's own run", async () => {
  const batchMatMul = () => tf.getKernel("BatchMatMul", backend)?.kernelFunc;
  const ours = batchMatMul();
  try {
    await useBackend(backend as "wasm" | "cpu", { kernels: "tfjs" });
    const own = batchMatMul();
    assert.notEqual(own, ours, "tfjs's own BatchMatMul is back");
    await asIfTfjs("9.9.9", () => useBackend(backend as "wasm" | "cpu"));
    assert.equal(batchMatMul(), own, "and stays");
  } finally {
    await useBackend();
  }
  assert.equal(batchMatMul(), ours);
});
