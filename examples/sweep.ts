/**
 * A learning-rate sweep of the housing model: N configurations train in
 * parallel worker processes and stream their events with `httpSink` into one
 * collector, whose page compares them live.
 *
 *   deno run -A examples/sweep.ts [--configs 4] [--epochs 40] [--dir runs/sweep] [--port 0] [--keep]
 *   bun examples/sweep.ts …
 *
 * The collector runs in this process (`serveRuns({ collect })`, the same as
 * `cli.ts serve --collect`); each worker is this script with `--worker`. With
 * `--keep` the page stays up after the sweep until Ctrl-C.
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { augment, epochStream, httpSink, pipe, serveRuns, take, useBackend, validationLoss } from "../mod.ts";
import { housingModel, loadHousing } from "./housing_data.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    configs: { type: "string", default: "4" },
    epochs: { type: "string", default: "40" },
    dir: { type: "string", default: "runs/sweep" },
    port: { type: "string", default: "0" },
    keep: { type: "boolean", default: false },
    worker: { type: "boolean", default: false },
    lr: { type: "string" },
    run: { type: "string" },
    url: { type: "string" },
  },
  strict: true,
});

/** One configuration: trains and streams every event to the collector. */
async function worker(): Promise<void> {
  await useBackend();
  const data = await loadHousing();
  const model = housingModel(data.xTrain.shape[1], 0);
  const loss = tf.losses.meanSquaredError;
  const sink = httpSink(values.url!, { run: values.run!, token: process.env.FITSTREAM_TOKEN! });
  await pipe(
    epochStream({
      data: [data.xTrain, data.yTrain],
      model,
      optimizer: tf.train.adam(Number(values.lr)),
      loss,
      batchSize: 512,
      seed: 0,
      extra: { lr: Number(values.lr) },
    }),
    augment(validationLoss({ data: [data.xVal, data.yVal], loss })),
    take(Number(values.epochs)),
  ).pipeTo(sink);
  if (sink.stats.dropped > 0) console.error(`${values.run}: ${sink.stats.dropped} lines dropped`);
}

/** Starts the collector and the workers, waits for them, prints each run's best val_loss. */
async function sweep(): Promise<void> {
  const configs = Number(values.configs);
  const token = randomBytes(16).toString("hex");
  const server = await serveRuns({ collect: { dir: values.dir!, token }, port: Number(values.port) });
  console.log(`collector and page: ${server.url}  (runs stored in ${values.dir})`);
  const script = fileURLToPath(import.meta.url);
  const rates = Array.from({ length: configs }, (_, i) => 1e-3 * 3 ** i);
  const names = rates.map((lr) => `lr-${lr.toPrecision(2)}`);
  const codes = await Promise.all(rates.map((lr, i) => {
    const args = ["--worker", "--lr", String(lr), "--run", names[i], "--url", server.url, "--epochs", values.epochs!];
    const runtime = "Deno" in globalThis ? ["run", "-A", script, ...args] : [script, ...args];
    const child = spawn(process.execPath, runtime, {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, FITSTREAM_TOKEN: token },
    });
    return new Promise<number | null>((resolve) => child.on("close", resolve));
  }));
  await server.poll();
  const res = await fetch(new URL("/api/runs", server.url));
  const runs = (await res.json()).runs as { name: string; length: number; best: Record<string, number> }[];
  for (const name of names) {
    const run = runs.find((r) => r.name === name);
    console.log(`${name}: ${run?.length ?? 0} epochs, best val_loss ${run?.best.val_loss?.toFixed(4) ?? "-"}`);
  }
  if (codes.some((c) => c !== 0)) throw new Error(`a worker failed (exit codes ${codes.join(", ")})`);
  if (values.keep) {
    console.log("the page stays up: Ctrl-C to stop");
    await new Promise<void>((resolve) => process.on("SIGINT", () => resolve()));
  }
  await server.close();
}

try {
  await (values.worker ? worker() : sweep());
} catch (error) {
  console.error(`sweep: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
