/**
 * The tfjs MNIST tutorial's CNN (issue 28's `mnist_cnn`: batch 512, 5,120
 * rows) through `epochStream` with defaults, ms per epoch with fitstream's
 * newer CNN kernels off ("before") and on ("after"), switched between epochs
 * of one stream in alternating order — an in-process A/B, so a busy machine
 * slows both arms alike.
 *
 * With `CNN_CPU=1` it runs on one thread and times in the process's CPU
 * time, which a busy machine hardly moves (as bench/profile_cnn.ts).
 * `CNN_ROUNDS=n` runs n rounds of the two arms (5 by default).
 * `CNN_SWITCH=a,b` turns off only those switches of `cnnKernelSwitches`
 * for "before" (the others stay on in both arms).
 *
 *   [CNN_CPU=1] [CNN_SWITCH=a,b] deno run -A bench/cnn_epochs.ts [--quick]      bun bench/cnn_epochs.ts [--quick]
 */
import * as tf from "@tensorflow/tfjs";
import { epochStream, useBackend } from "../mod.ts";
import { cnnKernelSwitches } from "../src/kernels/register.ts";
import { setKernelLimits, simdKernels } from "../src/kernels/simd/products.ts";
import { issueWorkload } from "./issue_models.ts";
import process from "node:process";
import { benchArgs, jsonLine, median, runtime, timedReads } from "./common.ts";

const { backend, quick } = benchArgs();
await useBackend(backend);
await simdKernels()?.start();
if (process.env.CNN_CPU === "1") {
  setKernelLimits({ threads: 1 });
  performance.now = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
}
const w = issueWorkload("mnist_cnn");
const read = timedReads(
  epochStream({
    data: [w.x, w.y],
    model: w.model,
    optimizer: tf.train.adam(1e-3),
    loss: w.loss,
    batchSize: w.batchSize,
    seed: 1,
  }) as ReadableStream<unknown>,
);
const only = process.env.CNN_SWITCH?.split(",");
const setArm = (on: boolean) => {
  for (const [name, s] of Object.entries(cnnKernelSwitches)) s.on = on || (only !== undefined && !only.includes(name));
};
const times = { before: [] as number[], after: [] as number[] };
setArm(true);
await read(1); // warm-up
setArm(false);
await read(1);
for (let round = 0; round < (quick ? 2 : Number(process.env.CNN_ROUNDS ?? 5)); round++) {
  for (const arm of round % 2 ? ["before", "after"] as const : ["after", "before"] as const) {
    setArm(arm === "after");
    times[arm].push(...await read(1));
  }
}
const b = median(times.before), a = median(times.after);
console.log(
  `${runtime}, ${tf.getBackend()}, ${simdKernels()?.jobThreads ?? 1} threads, ${
    process.env.CNN_CPU === "1" ? "CPU" : "wall"
  }: ms per epoch before ${b.toFixed(0)} ` +
    `(${times.before.map((t) => t.toFixed(0)).join(", ")}), after ${a.toFixed(0)} ` +
    `(${times.after.map((t) => t.toFixed(0)).join(", ")}), ${(b / a).toFixed(2)}× faster`,
);
jsonLine("cnn_epochs", { ms_per_epoch_before: b, ms_per_epoch_after: a, speedup: b / a });
