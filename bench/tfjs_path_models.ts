/**
 * Models that train on the tfjs path (not Dense chains), on the wasm
 * backend, with fitstream's kernels against tfjs-backend-wasm's own
 * (`useBackend("wasm", { kernels: "tfjs" })`): per-epoch ms of `epochStream`
 * with `engine: "tfjs"`, in interleaved rounds (one epoch each way per round,
 * the arms' order alternating), medians, and the ratio.
 *
 * - `dropout`: Keras's MNIST MLP, 784→512 relu→dropout 0.2→512 relu→dropout
 *   0.2→10 logits, softmax cross-entropy through
 *   `(p, y) => tf.losses.softmaxCrossEntropy(y, p)`, Adam 1e-3, batch 128.
 * - `batchnorm`: 784→256 relu→batch norm→256 relu→batch norm→10 logits, the
 *   same loss and optimizer, batch 128.
 *
 * Both on 6,000 random rows (1,536 with --quick). With `--profile`, also
 * `tf.profile` of one `optimizer.minimize` step at batch 128 under each
 * arm's kernels: the kernels that take the most time.
 *
 *   deno run -A bench/tfjs_path_models.ts [--quick] [--profile] [--only=dropout,batchnorm]
 *   bun bench/tfjs_path_models.ts [--quick] [--profile] [--only=…]
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { epochStream, explainEngine, useBackend } from "../mod.ts";
import { jsonLine, median, runtime, table, timedReads } from "./common.ts";
import { loss, makeModel, type ModelName, MODELS } from "./tfjs_models.ts";

const quick = process.argv.includes("--quick");
const profile = process.argv.includes("--profile");
const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7).split(",");

type Kernels = "fitstream" | "tfjs";
const use = (kernels: Kernels) => useBackend("wasm", { kernels });

await use("fitstream"); // before the first tensor, so the data lives on wasm
const rows = quick ? 1536 : 6000, batchSize = 128, rounds = quick ? 1 : 5;
/** Steps profiled per model and arm. */
const STEPS = quick ? 1 : 5;
const x = tf.randomNormal([rows, 784], 0, 1, "float32", 1);
const y = tf.oneHot(tf.randomUniform([rows], 0, 10, "int32", 2), 10).toFloat();

/**
 * One training step under `kernels`, profiled: per kernel name, the median
 * over {@link STEPS} profiled steps of its ms and calls in a step, sorted by
 * time; and the median time of a step without the profiler.
 */
async function profileStep(name: ModelName, kernels: Kernels) {
  await use(kernels);
  const model = makeModel(name), optimizer = tf.train.adam(1e-3);
  const xb = x.slice(0, batchSize), yb = y.slice(0, batchSize);
  const step = () => optimizer.minimize(() => loss(model.apply(xb, { training: true }) as tf.Tensor, yb), true)!;
  for (let i = 0; i < 2; i++) step().dispose(); // warm-up
  const plain: number[] = [];
  const steps: Map<string, { ms: number; calls: number }>[] = [];
  for (let i = 0; i < STEPS; i++) {
    const start = performance.now();
    const l = step();
    await l.data();
    plain.push(performance.now() - start);
    l.dispose();
    const info = await tf.profile(() => step().dispose());
    const byName = new Map<string, { ms: number; calls: number }>();
    for (const k of info.kernels) {
      const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
      e.ms += k.kernelTimeMs as number;
      e.calls++;
      byName.set(k.name, e);
    }
    steps.push(byName);
  }
  tf.dispose([xb, yb]);
  model.dispose();
  optimizer.dispose();
  const names = new Set(steps.flatMap((s) => [...s.keys()]));
  const perKernel = [...names].map((k) => {
    const ms = median(steps.map((s) => s.get(k)?.ms ?? 0));
    return [k, { ms, calls: steps[0].get(k)?.calls ?? 0 }] as const;
  });
  return { step: median(plain), kernels: perKernel.sort((a, b) => b[1].ms - a[1].ms) };
}

const summary: (string | number)[][] = [["model", "fitstream ms", "tfjs kernels ms", "ratio", "rounds"]];
const results: Record<string, unknown>[] = [];
for (const name of MODELS.filter((m) => !only || only.includes(m))) {
  const arms = (["fitstream", "tfjs"] as const).map((kernels) => {
    // On the tfjs path, which this compares (by default these models now take the layer engine:
    // bench/layer_engine.ts).
    const options = {
      data: [x, y],
      model: makeModel(name),
      optimizer: tf.train.adam(1e-3),
      loss,
      batchSize,
      seed: 1,
      engine: "tfjs" as const,
    };
    return {
      kernels,
      reads: timedReads(epochStream(options) as ReadableStream<unknown>),
      times: [] as number[],
      options,
    };
  });
  const why = explainEngine(arms[0].options);
  console.log(`${name}: ${why.engine} path (${why.reason})`);
  for (const arm of arms) {
    await use(arm.kernels);
    await arm.reads(1); // warm-up
  }
  for (let r = 0; r < rounds; r++) {
    for (const arm of r % 2 ? [...arms].reverse() : arms) {
      await use(arm.kernels);
      arm.times.push(...await arm.reads(1));
    }
  }
  const [ours, theirs] = arms.map((a) => median(a.times));
  const range = (t: number[]) => `${Math.min(...t).toFixed(0)}–${Math.max(...t).toFixed(0)}`;
  summary.push([name, ours, theirs, ours / theirs, `${range(arms[0].times)} / ${range(arms[1].times)}`]);
  results.push({ model: name, fitstream_ms: ours, tfjs_kernels_ms: theirs, ratio: ours / theirs, engine: why.engine });
  for (const arm of arms) {
    arm.options.model.dispose();
    arm.options.optimizer.dispose();
  }
}
await use("fitstream");
console.log(
  `\nms per epoch (${runtime}, wasm, batch ${batchSize}, ${rows} rows; medians of ${rounds} interleaved rounds)`,
);
table(summary);

const profiles: Record<string, unknown> = {};
if (profile) {
  for (const name of MODELS.filter((m) => !only || only.includes(m))) {
    for (const kernels of ["fitstream", "tfjs"] as const) {
      const p = await profileStep(name, kernels);
      const sum = p.kernels.reduce((s, [, e]) => s + e.ms, 0);
      console.log(
        `\n${name}, ${kernels} kernels: a step ${p.step.toFixed(1)} ms (median of ${STEPS}), its kernels ` +
          `${sum.toFixed(1)} ms (tf.profile; per kernel, the median of ${STEPS} steps)`,
      );
      table([
        ["kernel", "calls", "ms", "share"],
        ...p.kernels.slice(0, 12).map(([k, e]) => [k, e.calls, e.ms, `${(100 * e.ms / sum).toFixed(0)}%`]),
      ]);
      profiles[`${name}/${kernels}`] = { step_ms: p.step, kernels: Object.fromEntries(p.kernels.slice(0, 12)) };
    }
  }
}
await use("fitstream");
jsonLine("tfjs_path_models", { rows, batch: batchSize, results, ...(profile ? { profiles } : {}) });
tf.dispose([x, y]);
