/**
 * Does epoch time grow linearly with work? An MLP 8→width→1 (Adam, batch 512)
 * trained by `epochStream` on synthetic data as rows grow 1k → 100k and width
 * 64 → 1024, on both engines (the host engine, the default for this model,
 * and `engine: "tfjs"`). Work per epoch ≈ 54 · width FLOPs per row (forward
 * 18·width, backward about twice that). Each configuration's rate is compared
 * with the machine's measured peak on the same backend: a tight 512×512×512
 * tf.matMul loop; host/tfjs < 1 means the host engine is faster.
 *
 *   deno run -A bench/scale.ts [--backend wasm|cpu] [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import { type EngineChoice, epochStream, useBackend } from "../mod.ts";
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

async function epochMs(rows: number, width: number, epochs: number, engine: EngineChoice): Promise<number> {
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
    engine,
  })
    .getReader();
  for (let i = 0; i < 3; i++) await reader.read(); // warm-up (the JIT compiles the host engine's loops)
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
  "host ms",
  "host GFLOP/s",
  "tfjs ms",
  "tfjs GFLOP/s",
  "tfjs % of peak",
  "host/tfjs",
]];
const results = [];
for (const [n, width] of configs) {
  const flops = 54 * width * n;
  const host = await epochMs(n, width, quick ? 2 : 3, "auto");
  const tfjs = await epochMs(n, width, quick ? 2 : 3, "tfjs");
  const [hostRate, tfjsRate] = [flops / (host * 1e6), flops / (tfjs * 1e6)];
  rows.push([n, width, flops / 1e6, host, hostRate, tfjs, tfjsRate, (100 * tfjsRate) / peak, host / tfjs]);
  results.push({
    rows: n,
    width,
    mflop: flops / 1e6,
    host_ms: host,
    tfjs_ms: tfjs,
    host_gflops: hostRate,
    tfjs_gflops: tfjsRate,
    tfjs_fraction_of_peak: tfjsRate / peak,
  });
}
console.log(`epochStream scaling (${runtime}, ${tf.getBackend()}); peak matMul 512³: ${peak.toFixed(2)} GFLOP/s`);
table(rows);
jsonLine("scale", { peak_gflops: peak, results });
