/**
 * cpu vs wasm for `epochStream` alone on the tfjs path (arm (b) of
 * overhead.ts: `engine: "tfjs"`; the host engine does not use the backend
 * during an epoch) on the housing MLP, batch 512: per-epoch medians and the
 * cpu/wasm ratio. Rounds alternate
 * between the backends; the first epoch after each switch (tensors move
 * between backends) is not counted.
 *
 *   deno run -A bench/backends.ts [--quick]      bun bench/backends.ts [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { type BackendName, epochStream, useBackend } from "../mod.ts";
import { housingModel, loadHousing } from "../examples/housing_data.ts";
import { jsonLine, median, runtime, table } from "./common.ts";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 1 : 4, PER_ROUND = quick ? 2 : 4;
const backends: BackendName[] = ["cpu", "wasm"];
const available: BackendName[] = [];
for (const name of backends) {
  try {
    await useBackend(name);
    available.push(name);
  } catch (error) {
    console.log(`${name}: cannot load (${(error as Error).message})`);
  }
}
const data = await loadHousing();
const readers = new Map<BackendName, ReadableStreamDefaultReader<unknown>>();
const times = new Map<BackendName, number[]>(available.map((b) => [b, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const name of available) {
    await useBackend(name);
    if (!readers.has(name)) {
      const stream = epochStream({
        data: [data.xTrain, data.yTrain],
        model: housingModel(8, 0),
        optimizer: tf.train.adam(1e-2),
        loss: tf.losses.meanSquaredError,
        batchSize: 512,
        seed: 1,
        engine: "tfjs",
      });
      readers.set(name, stream.getReader());
    }
    const reader = readers.get(name)!;
    await reader.read(); // warm-up after the switch
    for (let e = 0; e < PER_ROUND; e++) {
      const start = performance.now();
      await reader.read();
      times.get(name)!.push(performance.now() - start);
    }
  }
}
const med = Object.fromEntries([...times].map(([k, v]) => [k, median(v)]));
console.log(`epochStream (engine "tfjs") per-epoch median, batch 512 (${runtime})`);
table([["backend", "ms/epoch"], ...Object.entries(med).map(([k, v]) => [k, v])]);
const ratio = med.cpu && med.wasm ? med.cpu / med.wasm : null;
if (ratio) console.log(`cpu/wasm: ${ratio.toFixed(2)} (wasm is ${ratio.toFixed(1)}x faster)`);
jsonLine("backends", { ms_per_epoch: med, cpu_over_wasm: ratio });
