/**
 * CPU time of one training step of the tfjs MNIST tutorial's CNN (issue 28's
 * `mnist_cnn`, batch 512) on one thread, with fitstream's newer CNN kernels
 * off ("before") and on ("after") in alternating steps of one process. The
 * process's CPU time, unlike the wall clock, hardly grows when other
 * programs share the cores, so this compares arms on a busy machine (the
 * helpers sit idle: `setKernelLimits({ threads: 1 })`).
 *
 *   deno run -A bench/cnn_step_cpu.ts      bun bench/cnn_step_cpu.ts
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { useBackend } from "../mod.ts";
import { setKernelLimits, simdKernels } from "../src/kernels/simd/products.ts";
import { cnnKernelSwitches } from "../src/kernels/register.ts";
import { issueWorkload } from "./issue_models.ts";
import { jsonLine, median, runtime } from "./common.ts";

await useBackend();
await simdKernels()?.start();
setKernelLimits({ threads: 1 });
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const { model, x, y, loss, batchSize } = issueWorkload("mnist_cnn", true);
const xb = x.slice(0, batchSize), yb = y.slice(0, batchSize);
const optimizer = tf.train.adam(1e-3);
const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
const f = () => loss(yb, model.apply(xb, { training: true }) as tf.Tensor) as tf.Scalar;
const step = () => optimizer.minimize(f, true, variables)!.dispose();
const times = { before: [] as number[], after: [] as number[] };
for (let i = 0; i < 12; i++) {
  for (const arm of i % 2 ? ["before", "after"] as const : ["after", "before"] as const) {
    for (const s of Object.values(cnnKernelSwitches)) s.on = arm === "after";
    step(); // the arm's first step after a switch is not counted
    const start = cpu();
    step();
    times[arm].push(cpu() - start);
  }
}
const b = median(times.before), a = median(times.after);
console.log(
  `${runtime}, one thread, CPU ms per step: before ${b.toFixed(1)}, after ${a.toFixed(1)} (${(b / a).toFixed(2)}×)`,
);
jsonLine("cnn_step_cpu", { cpu_ms_per_step_before: b, cpu_ms_per_step_after: a });
