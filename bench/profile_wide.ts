/**
 * Where a wide MLP's epoch goes on the host engine: 784→H→H→10 (relu),
 * softmax cross-entropy, Adam 1e-3, batch 128, 6,000 random rows — the
 * shape of `versus_pytorch.ts`'s wide arms — in the `EngineProfile` pieces
 * (exchange with tfjs, batching, forward, loss, backward, optimizer), ms per
 * epoch, and the products' GFLOP/s.
 *
 *   deno run -A bench/profile_wide.ts [--quick]      bun bench/profile_wide.ts [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import { DenseEngine, type EngineProfile } from "../src/engine/dense_engine.ts";
import { hostPlan } from "../src/engine/host_plan.ts";
import { createRandom, permutation } from "../src/data/random.ts";
import { simdKernels } from "../src/kernels/simd/products.ts";
import { softmaxCrossEntropy, useBackend } from "../mod.ts";
import { benchArgs, jsonLine, runtime, table } from "./common.ts";

const { backend, quick } = benchArgs();
await useBackend(backend);
await simdKernels()?.start();
const rows = quick ? 1536 : 6000, batchSize = 128;
const results: Record<string, EngineProfile & { total: number; gflops: number }> = {};
for (const h of quick ? [256] : [256, 1024]) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: h, activation: "relu", inputShape: [784] }),
      tf.layers.dense({ units: h, activation: "relu" }),
      tf.layers.dense({ units: 10 }),
    ],
  });
  const x = tf.randomNormal([rows, 784], 0, 1, "float32", 1);
  const y = tf.oneHot(tf.randomUniform([rows], 0, 10, "int32", 2), 10).toFloat();
  const optimizer = tf.train.adam(1e-3);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const plan = hostPlan({ model, loss: softmaxCrossEntropy, optimizer, data: [x, y], lastLabel: true, variables });
  if (!plan.ok) throw new Error(`no host engine: ${plan.reason}`);
  if (plan.engine !== "dense") throw new Error("not a Dense chain");
  const labels = { values: y.dataSync() as Float32Array, rowShape: [10], dtype: "float32" as const };
  const engine = new DenseEngine(plan, {
    variables,
    optimizer,
    x: x.dataSync() as Float32Array,
    labels,
    rows,
    batchSize,
  });
  const random = createRandom(1);
  await engine.epoch(permutation(rows, random)); // JIT warm-up
  const epochs = quick ? 1 : 3;
  const total: EngineProfile = { exchange: 0, batching: 0, forward: 0, loss: 0, backward: 0, optimizer: 0 };
  for (let i = 0; i < epochs; i++) await engine.epoch(permutation(rows, random), total);
  const perEpoch = Object.fromEntries(
    Object.entries(total).map(([k, v]) => [k, v / epochs]),
  ) as unknown as EngineProfile;
  const sum = Object.values(perEpoch).reduce((s, v) => s + v, 0);
  const macs = rows * (784 * h + h * h + h * 10) * 3 - rows * 784 * h; // no gradient to the input
  results[`H${h}`] = { ...perEpoch, total: sum, gflops: 2 * macs / ((perEpoch.forward + perEpoch.backward) * 1e6) };
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
}
const keys = Object.keys(results);
console.log(`host engine, wide MLP, ms per epoch (${runtime}, ${simdKernels()?.helpers ?? 0} helper threads)`);
table([
  ["piece", ...keys],
  ...(["exchange", "batching", "forward", "loss", "backward", "optimizer", "total", "gflops"] as const).map((k) => [
    k === "gflops" ? "GFLOP/s (forward + backward)" : k,
    ...keys.map((key) => results[key][k]),
  ]),
]);
jsonLine("profile_wide", { results });
