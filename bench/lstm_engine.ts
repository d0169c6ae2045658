/**
 * The benchmark LSTM (bench/issue_models.ts, "lstm": LSTM(32) over 50 steps
 * × 8 features, dense 1, MSE, Adam, batch 64, 2,048 rows) through
 * `epochStream` on the default engine (the host engine's LSTM kind) and with
 * `engine: "tfjs"`, arms alternating round by round in one process: median
 * ms per epoch of each arm (the first epoch of each run left out) and the ratio.
 *
 *   deno run -A bench/lstm_engine.ts [--backend wasm|cpu] [--quick]
 *   bun bench/lstm_engine.ts [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import { type EngineChoice, epochStream, explainEngine, useBackend } from "../mod.ts";
import { issueWorkload } from "./issue_models.ts";
import { benchArgs, jsonLine, median, table } from "./common.ts";

const { backend, quick } = benchArgs();
await useBackend(backend);
const rounds = quick ? 1 : 3, epochs = 3;
const arms: EngineChoice[] = ["auto", "tfjs"];
const times = new Map<EngineChoice, number[]>(arms.map((a) => [a, []]));
let reason = "";
for (let round = 0; round < rounds; round++) {
  for (const engine of arms) {
    const w = issueWorkload("lstm", quick);
    const optimizer = tf.train.adam();
    const options = { data: [w.x, w.y], model: w.model, optimizer, loss: w.loss, batchSize: w.batchSize, engine };
    if (engine === "auto") reason ||= explainEngine(options).reason;
    const reader = epochStream(options).getReader();
    for (let e = 0; e < epochs; e++) {
      const start = performance.now();
      await reader.read();
      if (e > 0) times.get(engine)!.push(performance.now() - start);
    }
    await reader.cancel();
    tf.dispose([w.x, w.y]);
    w.model.dispose();
    optimizer.dispose();
  }
}
const host = median(times.get("auto")!), tfjs = median(times.get("tfjs")!);
console.log(`default engine: ${reason}`);
table([
  ["arm", "ms per epoch (median)", "range"],
  ...arms.map((a) => {
    const t = times.get(a)!;
    return [a, median(t), `${Math.min(...t).toFixed(0)}–${Math.max(...t).toFixed(0)}`];
  }),
]);
console.log(`default / tfjs: ${(host / tfjs).toFixed(3)}`);
jsonLine("lstm_engine", { rows: quick ? 512 : 2048, default_ms: host, tfjs_ms: tfjs, ratio: host / tfjs });
