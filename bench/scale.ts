/**
 * Does epoch time grow linearly with work? An MLP 8→width→1 (Adam, batch 512)
 * trained by `epochStream` on synthetic data as rows grow 1k → 100k and width
 * 64 → 1024. Work per epoch ≈ 54 · width FLOPs per row (forward 18·width,
 * backward about twice that). Each configuration's rate is compared with the
 * machine's measured peak on the same backend: a tight 512×512×512 tf.matMul loop.
 *
 *   deno run -A bench/scale.ts [--backend wasm|cpu] [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import { epochStream, useBackend } from "../mod.ts";
import { benchArgs, jsonLine, median, runtime, table } from "./common.ts";

const { backend, quick } = benchArgs();
await useBackend(backend);

function peakGflops(): number {
  const a = tf.randomNormal([512, 512], 0, 1, "float32", 1);
  const rates: number[] = [];
  for (let i = 0; i < (quick ? 4 : 12); i++) {
    const start = performance.now();
    tf.tidy(() => tf.matMul(a, a).dataSync());
    const ms = performance.now() - start;
    if (i > 1) rates.push((2 * 512 ** 3) / (ms * 1e6));
  }
  a.dispose();
  return median(rates);
}

async function epochMs(rows: number, width: number, epochs: number): Promise<number> {
  const x = tf.randomNormal([rows, 8], 0, 1, "float32", 2);
  const y = tf.tidy(() => x.sum(1, true).relu());
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: width, activation: "relu", inputShape: [8] }),
      tf.layers.dense({ units: 1 }),
    ],
  });
  const optimizer = tf.train.adam(1e-3);
  const reader = epochStream({
    data: [x, y],
    model,
    optimizer,
    loss: tf.losses.meanSquaredError,
    batchSize: 512,
    seed: 1,
  })
    .getReader();
  await reader.read(); // warm-up
  const times: number[] = [];
  for (let e = 0; e < epochs; e++) {
    const start = performance.now();
    await reader.read();
    times.push(performance.now() - start);
  }
  await reader.cancel();
  tf.dispose([x, y]);
  model.dispose();
  optimizer.dispose();
  return median(times);
}

const peak = peakGflops();
const configs: [number, number][] = quick
  ? [[1_000, 64], [10_000, 64], [10_000, 256]]
  : [[1_000, 64], [10_000, 64], [100_000, 64], [10_000, 256], [10_000, 1024], [100_000, 1024]];
const rows: (string | number)[][] = [[
  "rows",
  "width",
  "MFLOP/epoch",
  "ms/epoch",
  "GFLOP/s",
  "% of peak",
  "ms per GFLOP",
]];
const results = [];
for (const [n, width] of configs) {
  const flops = 54 * width * n;
  const ms = await epochMs(n, width, quick ? 2 : 3);
  const gflops = flops / (ms * 1e6);
  rows.push([n, width, flops / 1e6, ms, gflops, (100 * gflops) / peak, ms / (flops / 1e9)]);
  results.push({ rows: n, width, mflop: flops / 1e6, ms, gflops, fraction_of_peak: gflops / peak });
}
console.log(`epochStream scaling (${runtime}, ${tf.getBackend()}); peak matMul 512³: ${peak.toFixed(2)} GFLOP/s`);
table(rows);
jsonLine("scale", { peak_gflops: peak, results });
