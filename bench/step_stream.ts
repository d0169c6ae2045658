/**
 * What one event per optimizer step costs. Per-epoch medians (ms), measured
 * side by side (arms interleaved round by round) on the housing MLP (8→64→1,
 * Adam 1e-2, 17,000 rows), at batch 512 (34 steps an epoch) and batch 32
 * (532 steps):
 *
 *   (e)  epochStream, default engine (the host engine: one exchange with tfjs per epoch)
 *   (s)  stepStream, default engine (the host engine stepping: weights and optimizer
 *        state read from tfjs and written back every step, one event per step)
 *   (et) epochStream, engine "tfjs"
 *   (st) stepStream, engine "tfjs" (one loss read back per step)
 *
 * Ratios: s/e and st/et (what stepping costs each engine), s/st (whether the
 * host engine still beats the tfjs path when it steps: if not, stepStream
 * should take the tfjs path).
 *
 *   deno run -A bench/step_stream.ts [--backend wasm|cpu] [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import { type EngineChoice, epochStream, stepStream } from "../mod.ts";
import { benchArgs, housingSetup, jsonLine, median, table, timedReads } from "./common.ts";

const { backend, quick } = benchArgs();
const { data, model: makeModel } = await housingSetup(backend);
const loss = tf.losses.meanSquaredError;
const x = data.xTrain, y = data.yTrain;
const rows = x.shape[0];

/** An arm trains `epochs` epochs and returns each epoch's duration in ms. */
type Arm = (epochs: number) => Promise<number[]>;

function epochs(batchSize: number, engine: EngineChoice): Arm {
  const options = { data: [x, y], model: makeModel(), optimizer: tf.train.adam(1e-2), loss, batchSize, seed: 1 };
  return timedReads(epochStream({ ...options, engine }));
}

function steps(batchSize: number, engine: EngineChoice): Arm {
  const options = { data: [x, y], model: makeModel(), optimizer: tf.train.adam(1e-2), loss, batchSize, seed: 1 };
  const read = timedReads(stepStream({ ...options, engine }));
  const perEpoch = Math.ceil(rows / batchSize);
  return async (count) => {
    const times: number[] = [];
    for (let e = 0; e < count; e++) times.push((await read(perEpoch)).reduce((a, b) => a + b, 0));
    return times;
  };
}

const results: Record<string, Record<string, number>> = {};
for (const [batchSize, rounds, perRound] of quick ? [[512, 2, 1], [32, 1, 1]] : [[512, 8, 3], [32, 5, 1]]) {
  const arms: Record<string, Arm> = {
    e: epochs(batchSize, "auto"),
    s: steps(batchSize, "auto"),
    et: epochs(batchSize, "tfjs"),
    st: steps(batchSize, "tfjs"),
  };
  for (const arm of Object.values(arms)) await arm(1); // warm-up: JIT, kernels, optimizer state
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(arms).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, arm] of Object.entries(arms)) times[name].push(...await arm(perRound));
  }
  const ms = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  results[`batch${batchSize}`] = {
    e_ms: ms.e,
    s_ms: ms.s,
    et_ms: ms.et,
    st_ms: ms.st,
    "s/e": ms.s / ms.e,
    "st/et": ms.st / ms.et,
    "s/st": ms.s / ms.st,
  };
}

console.log(`stepStream against epochStream, ms per epoch (median), ${tf.getBackend()} backend`);
table([
  ["batch", "e (epoch, host)", "s (step, host)", "et (epoch, tfjs)", "st (step, tfjs)", "s/e", "st/et", "s/st"],
  ...Object.entries(results).map((
    [name, r],
  ) => [name, r.e_ms, r.s_ms, r.et_ms, r.st_ms, r["s/e"], r["st/et"], r["s/st"]]),
]);
jsonLine("step_stream", { rows, results });
