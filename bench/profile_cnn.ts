/**
 * Where a training step of the tfjs MNIST tutorial's CNN (issue 28's
 * `mnist_cnn`, batch 512) goes on the default backend: milliseconds per
 * kernel of one `optimizer.minimize` step (`tf.profile`, summed by name,
 * median over steps), and the step's wall time. With `CNN_AB=1`, fitstream's
 * newer CNN kernels are switched off and on in alternating rounds (in one
 * process) and both arms are printed. With `CNN_CPU=1` it runs on one
 * thread and times in CPU time (the process's, which a busy machine hardly
 * moves) instead of the wall clock.
 *
 * `CNN_SWITCH=name[,name…]` turns off only those switches of `cnnKernelSwitches`.
 *
 *   [CNN_AB=1] [CNN_SWITCH=name,…] [CNN_CPU=1] deno run -A bench/profile_cnn.ts [--quick]     (or bun bench/profile_cnn.ts)
 */
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../mod.ts";
import process from "node:process";
import { setKernelLimits, simdKernels } from "../src/kernels/simd/products.ts";
import { cnnKernelSwitches } from "../src/kernels/register.ts";
import { issueWorkload } from "./issue_models.ts";
import { benchArgs, jsonLine, median, runtime, table } from "./common.ts";

const { backend, quick } = benchArgs();
const ab = process.env.CNN_AB === "1", cpuTime = process.env.CNN_CPU === "1";
await useBackend(backend);
await simdKernels()?.start();
if (cpuTime) {
  setKernelLimits({ threads: 1 });
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  // tf.profile times kernels with the platform's clock, and so does this script.
  (tf.env().platform as { now: () => number }).now = cpu;
  performance.now = cpu;
}
const { model, x, y, loss, batchSize } = issueWorkload("mnist_cnn", true);
const xb = x.slice(0, batchSize), yb = y.slice(0, batchSize);
const optimizer = tf.train.adam(1e-3);
const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
const f = () => loss(yb, model.apply(xb, { training: true }) as tf.Tensor) as tf.Scalar;
const step = () => optimizer.minimize(f, true, variables)!.dispose();
const arms = ab ? ["before", "after"] : ["now"];
const setArm = (arm: string) => {
  const only = process.env.CNN_SWITCH?.split(","); // switches' names: only they are turned off for "before"
  for (const [name, s] of Object.entries(cnnKernelSwitches)) {
    s.on = arm !== "before" || (only !== undefined && !only.includes(name));
  }
};
for (const arm of arms) {
  setArm(arm);
  for (let i = 0; i < 3; i++) step();
}
const rounds = quick ? 3 : 8;
const walls = new Map<string, number[]>(arms.map((a) => [a, []]));
const perKernel = new Map<string, Map<string, number[]>>(arms.map((a) => [a, new Map()]));
const counts = new Map<string, number>();
for (let i = 0; i < rounds; i++) {
  for (const arm of i % 2 ? [...arms].reverse() : arms) {
    setArm(arm);
    for (let j = 0; j < 2; j++) {
      const t = performance.now();
      step();
      walls.get(arm)!.push(performance.now() - t);
    }
    const info = await tf.profile(step);
    const sums = new Map<string, number>();
    for (const k of info.kernels) sums.set(k.name, (sums.get(k.name) ?? 0) + (k.kernelTimeMs as number));
    if (i === 0 && arm === arms[0]) { for (const k of info.kernels) counts.set(k.name, (counts.get(k.name) ?? 0) + 1); }
    const m = perKernel.get(arm)!;
    for (const [name, ms] of sums) m.set(name, [...(m.get(name) ?? []), ms]);
  }
}
const names = [...perKernel.get(arms[arms.length - 1])!.keys()];
const med = (arm: string, name: string) => median(perKernel.get(arm)!.get(name) ?? [0]);
const rows = names.map((n) => [n, counts.get(n) ?? 0, ...arms.map((a) => med(a, n))] as [string, number, ...number[]])
  .sort((a, b) => (b[2] as number) - (a[2] as number));
const clock = cpuTime ? "CPU time" : "wall clock";
const header = `${runtime}, ${tf.getBackend()}, ${simdKernels()?.jobThreads ?? 1} threads, ${rounds} rounds, ${clock}`;
console.log(header + ": step wall " + arms.map((a) => `${a} ${median(walls.get(a)!).toFixed(1)} ms`).join(", "));
table([
  ["kernel", "calls", ...arms.map((a) => `${a} ms`)],
  ...rows.filter((r) => r.slice(2).some((v) => (v as number) >= 0.2)).map((r) => [
    r[0],
    r[1],
    ...r.slice(2).map((v) => (v as number).toFixed(2)),
  ]),
]);
jsonLine("profile_cnn", {
  step_ms: Object.fromEntries(arms.map((a) => [a, median(walls.get(a)!)])),
  kernels_ms: Object.fromEntries(rows.map((r) => [r[0], r.slice(2)])),
});
