/**
 * fitstream vs the Python original's engine, PyTorch, on the tutorial's
 * workload (MLP 8→64→1, Adam 1e-2, 17,000 rows): per-epoch medians of
 * epochStream alone and of the full section-8 pipeline (minus printing),
 * at batch 512 and 32, against bench/reference_pytorch.py. Rounds alternate
 * between the two arms in one run.
 *
 *   deno run -A bench/versus_pytorch.ts [--quick]      bun bench/versus_pytorch.ts [--quick]
 *
 * Needs a Python that can `import torch` (Debian: `apt-get install python3-torch`;
 * set FITSTREAM_PYTHON to choose the interpreter). Without one it says so and exits.
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { augment, earlyStop, ema, epochStream, explainEngine, pipe, take, useBackend, validationLoss } from "../mod.ts";
import { housingModel, loadHousing, LOCAL_DIR, modelParamNorm } from "../examples/housing_data.ts";
import { jsonLine, median, runtime, table, timedReads } from "./common.ts";

const quick = process.argv.includes("--quick");
const candidates = [process.env.FITSTREAM_PYTHON, "/usr/bin/python3", "python3"].filter((p): p is string => !!p);
const python = candidates.find((p) => spawnSync(p, ["-c", "import torch"], { stdio: "ignore" }).status === 0);
if (!python) {
  console.log("No Python with torch found. Install Debian's: apt-get install python3-torch (or set FITSTREAM_PYTHON).");
  jsonLine("versus_pytorch", { skipped: "torch not installed" });
  process.exit(0);
}

await useBackend();
const data = await loadHousing();
const loss = tf.losses.meanSquaredError;
const { engine, reason } = explainEngine({
  data: [data.xTrain, data.yTrain],
  model: housingModel(8, 0),
  optimizer: tf.train.adam(1e-2),
  loss,
});
console.log(`fitstream engine: ${engine} (${reason})`);

function ourArm(batchSize: number, full: boolean) {
  const model = housingModel(8, 0);
  const source = epochStream({
    data: [data.xTrain, data.yTrain],
    model,
    optimizer: tf.train.adam(1e-2),
    loss,
    batchSize,
    seed: 1,
  });
  const events = full
    ? pipe(
      source,
      augment(validationLoss({ data: [data.xVal, data.yVal], loss })),
      augment(modelParamNorm),
      ema("val_loss", { halfLife: 10 }),
      take(1_000_000),
      earlyStop({ key: "val_loss", patience: 1_000_000, minDelta: 1e-4 }),
    )
    : source;
  return timedReads(events as ReadableStream<unknown>);
}

const child = spawn(python, [new URL("./reference_pytorch.py", import.meta.url).pathname, LOCAL_DIR], {
  stdio: ["pipe", "pipe", "inherit"],
});
const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
const nextJson = async () => JSON.parse((await lines.next()).value as string);
const info = await nextJson();
const torchArm = (batch: number, full: boolean) => async (epochs: number): Promise<number[]> => {
  child.stdin!.write(`${batch} ${full ? "full" : "source"} ${epochs}\n`);
  return (await nextJson()).times;
};

const configs: [number, boolean, number, number][] = quick
  ? [[512, false, 1, 2], [512, true, 1, 2], [32, false, 1, 1], [32, true, 1, 1]]
  : [[512, false, 5, 4], [512, true, 5, 4], [32, false, 3, 1], [32, true, 3, 1]];
const rows: (string | number)[][] = [["batch", "arm", "fitstream ms", "PyTorch ms", "ratio"]];
const results: Record<string, unknown>[] = [];
for (const [batch, full, rounds, perRound] of configs) {
  const ours = ourArm(batch, full), theirs = torchArm(batch, full);
  await ours(3); // the JIT compiles the host engine's loops in the first epochs
  await theirs(1); // warm-up
  const a: number[] = [], b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(...await ours(perRound));
    b.push(...await theirs(perRound));
  }
  const [ma, mb] = [median(a), median(b)];
  rows.push([batch, full ? "full pipeline" : "source alone", ma, mb, ma / mb]);
  results.push({ batch, arm: full ? "full" : "source", fitstream_ms: ma, pytorch_ms: mb, ratio: ma / mb });
}
child.stdin!.end();
console.log(
  `fitstream (${runtime}, ${tf.getBackend()}) vs PyTorch ${info.torch} (${info.threads} threads), per-epoch medians`,
);
table(rows);
const targets: Record<number, number> = { 512: 1.0, 32: 1.5 };
for (const r of results.filter((r) => r.arm === "full")) {
  const batch = r.batch as number, ratio = r.ratio as number;
  console.log(
    `target: full pipeline at batch ${batch} ≤ ${targets[batch].toFixed(1)}× PyTorch: ` +
      `${ratio.toFixed(3)}× — ${ratio <= targets[batch] ? "met" : "MISSED"}`,
  );
}
jsonLine("versus_pytorch", { torch: info.torch, engine, results });
data.dispose();
