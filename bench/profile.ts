/**
 * Where an epoch's time goes, on the housing MLP (8→64→1, Adam 1e-2, 17,000
 * rows), on both engines:
 *
 *   host engine: milliseconds per epoch in each piece (exchanging weights and
 *   optimizer state with tfjs, batching, forward, loss, backward, optimizer),
 *   and the tfjs kernels one epoch runs — with tf.losses.meanSquaredError
 *   (computed by the engine) and with the same loss as a custom function
 *   (its gradient through tfjs, per batch).
 *   tfjs path: microseconds per optimizer step for `optimizer.minimize`, the
 *   forward pass alone, `tf.variableGrads` and Adam's `applyGradients`, and the
 *   kernels one step runs, by name.
 *
 *   deno run -A bench/profile.ts [--backend wasm|cpu] [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import { DenseEngine, type EngineProfile } from "../src/engine/dense_engine.ts";
import { hostPlan } from "../src/engine/host_plan.ts";
import { createRandom, permutation } from "../src/data/random.ts";
import { benchArgs, housingSetup, jsonLine, median, runtime, table } from "./common.ts";

const { backend, quick } = benchArgs();
const { data, model: makeModel } = await housingSetup(backend);
const loss = tf.losses.meanSquaredError;
const x = data.xTrain, y = data.yTrain;
const rows = x.shape[0];
const hx = x.dataSync() as Float32Array, hy = y.dataSync() as Float32Array;

/** The same MSE written as a custom function: the host engine runs its gradient through tfjs per batch. */
const customLoss = (p: tf.Tensor, labels?: tf.Tensor) => tf.losses.meanSquaredError(labels!, p);

async function hostProfile(
  batchSize: number,
  lossFn: unknown = loss,
): Promise<{ perEpoch: EngineProfile; kernels: number }> {
  const model = makeModel();
  const optimizer = tf.train.adam(1e-2);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const plan = hostPlan({ model, loss: lossFn, optimizer, data: [x, y], lastLabel: true, variables });
  if (!plan.ok) throw new Error(`no host engine: ${plan.reason}`);
  if (plan.engine !== "dense") throw new Error("not a Dense chain");
  const labels = { values: hy, rowShape: [1], dtype: "float32" as const };
  const engine = new DenseEngine(plan, { variables, optimizer, x: hx, labels, rows, batchSize });
  const random = createRandom(1);
  for (let i = 0; i < 3; i++) await engine.epoch(permutation(rows, random)); // JIT warm-up
  const epochs = quick ? 2 : 10;
  const total: EngineProfile = { exchange: 0, batching: 0, forward: 0, loss: 0, backward: 0, optimizer: 0 };
  for (let i = 0; i < epochs; i++) await engine.epoch(permutation(rows, random), total);
  const info = await tf.profile(() => engine.epoch(permutation(rows, random)));
  model.dispose();
  optimizer.dispose();
  const perEpoch = Object.fromEntries(
    Object.entries(total).map(([k, v]) => [k, v / epochs]),
  ) as unknown as EngineProfile;
  return { perEpoch, kernels: info.kernels.length };
}

function microseconds(f: () => void, repeats: number): number {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    f();
    times.push((performance.now() - start) * 1000);
  }
  return median(times);
}

async function tfjsProfile(batchSize: number) {
  const model = makeModel();
  const optimizer = tf.train.adam(1e-2);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const idx = tf.tensor1d(permutation(rows, createRandom(1)).subarray(0, batchSize), "int32");
  const xb = tf.gather(x, idx), yb = tf.gather(y, idx);
  const f = () => loss(yb, model.apply(xb, { training: true }) as tf.Tensor) as tf.Scalar;
  const repeats = quick ? 20 : 200;
  for (let i = 0; i < 20; i++) optimizer.minimize(f, true, variables)!.dispose(); // warm-up, Adam slots
  const minimize = microseconds(() => optimizer.minimize(f, true, variables)!.dispose(), repeats);
  const forward = microseconds(() => tf.tidy(() => void model.apply(xb, { training: true })), repeats);
  const grads = () => tf.variableGrads(f, variables);
  const variableGrads = microseconds(() => {
    const g = grads();
    tf.dispose([g.value, ...Object.values(g.grads)]);
  }, repeats);
  const g = grads();
  const apply = microseconds(
    () => optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: g.grads[v.name] }))),
    repeats,
  );
  const info = await tf.profile(() => optimizer.minimize(f, true, variables)!.dispose());
  const byName = new Map<string, number>();
  for (const k of info.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + 1);
  tf.dispose([g.value, ...Object.values(g.grads), idx, xb, yb]);
  model.dispose();
  optimizer.dispose();
  return { minimize, forward, variableGrads, apply, kernels: info.kernels.length, byName };
}

const host: Record<number, Awaited<ReturnType<typeof hostProfile>>> = {};
const tfjs: Record<number, Awaited<ReturnType<typeof tfjsProfile>>> = {};
const custom: Record<number, Awaited<ReturnType<typeof hostProfile>>> = {};
for (const batchSize of [512, 32]) {
  host[batchSize] = await hostProfile(batchSize);
  custom[batchSize] = await hostProfile(batchSize, customLoss);
  tfjs[batchSize] = await tfjsProfile(batchSize);
}

const pieces = Object.keys(host[512].perEpoch) as (keyof EngineProfile)[];
const sum = (p: EngineProfile) => pieces.reduce((s, k) => s + p[k], 0);
console.log(`host engine, ms per epoch (${runtime}, ${tf.getBackend()}, ${rows} rows)`);
table([
  ["piece", "batch 512", "batch 32", "custom loss, 512", "custom loss, 32"],
  ...pieces.map((
    k,
  ) => [k, host[512].perEpoch[k], host[32].perEpoch[k], custom[512].perEpoch[k], custom[32].perEpoch[k]]),
  ["total", ...[host[512], host[32], custom[512], custom[32]].map((h) => sum(h.perEpoch))],
  ["tfjs kernels per epoch", host[512].kernels, host[32].kernels, custom[512].kernels, custom[32].kernels],
]);
console.log(`\ntfjs path, µs per optimizer step (${runtime}, ${tf.getBackend()})`);
table([
  ["piece", "batch 512", "batch 32"],
  ["optimizer.minimize", tfjs[512].minimize, tfjs[32].minimize],
  ["  forward alone", tfjs[512].forward, tfjs[32].forward],
  ["  variableGrads", tfjs[512].variableGrads, tfjs[32].variableGrads],
  ["  Adam applyGradients", tfjs[512].apply, tfjs[32].apply],
  ["kernels per step", tfjs[512].kernels, tfjs[32].kernels],
]);
const names = [...tfjs[512].byName].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
console.log(`kernels of one step: ${names.join(", ")}`);
jsonLine("profile", {
  host_ms_per_epoch: { batch512: host[512].perEpoch, batch32: host[32].perEpoch },
  host_custom_loss_ms_per_epoch: { batch512: custom[512].perEpoch, batch32: custom[32].perEpoch },
  host_kernels_per_epoch: host[512].kernels,
  tfjs_us_per_step: Object.fromEntries(
    [512, 32].map((b) => [`batch${b}`, { ...tfjs[b], byName: Object.fromEntries(tfjs[b].byName) }]),
  ),
});
data.dispose();
