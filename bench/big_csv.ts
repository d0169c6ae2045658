/**
 * Data bigger than memory: trains the housing-sized MLP (8→64→1, Adam 1e-2,
 * batch 512) for 2 epochs from a generated CSV of 3,000,000 rows (~240 MB)
 * streamed by `csvDataset` (shuffle buffer 10,000), beside the same rows held
 * in memory as tensors. Each arm runs in its own process, so each peak RSS
 * (the kernel's high-water mark, VmHWM) is its own. Prints rows/s of both,
 * the slowdown of streaming, and both peaks.
 *
 * Targets: peak RSS of the streamed run < 600 MB; its rows/s within 2× of
 * the in-memory run.
 *
 *   deno run -A bench/big_csv.ts [--rows 3000000] [--quick]
 *   bun bench/big_csv.ts …
 */
import * as tf from "@tensorflow/tfjs";
import { spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { collect, csvDataset, epochStream, take, useBackend } from "../mod.ts";
import { housingModel } from "../examples/housing_data.ts";
import { jsonLine, runtime, table } from "./common.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rows: { type: "string", default: "3000000" },
    quick: { type: "boolean", default: false },
    arm: { type: "string" },
    csv: { type: "string" },
  },
  strict: true,
});
const rows = values.quick ? 60_000 : Number(values.rows);
const EPOCHS = 2, FEATURES = 8, BATCH = 512;

/** Row r's values: 8 features in [-2, 2) and a label from them, each with 5 decimals (exact in text): ~80 bytes a row. */
function rowValues(r: number, out: Float64Array): void {
  let s = (r * 2654435761 + 12345) >>> 0;
  let label = 0;
  for (let c = 0; c < FEATURES; c++) {
    s = (Math.imul(s ^ (s >>> 15), 2246822507) + c) >>> 0;
    const v = Math.round((s / 2 ** 32) * 400000 - 200000) / 100000;
    out[c] = v;
    label += v * (c + 1) / 8;
  }
  out[FEATURES] = Math.round(label * 100000) / 100000;
}

function peakRssMb(): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (match) return Number(match[1]) / 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss / 2 ** 20;
}

async function writeCsv(path: string): Promise<void> {
  const out = createWriteStream(path);
  const row = new Float64Array(FEATURES + 1);
  out.write(Array.from({ length: FEATURES }, (_, c) => `f${c}`).join(",") + ",y\n");
  let chunk: string[] = [];
  for (let r = 0; r < rows; r++) {
    rowValues(r, row);
    chunk.push(Array.from(row, (v) => v.toFixed(5)).join(","));
    if (chunk.length === 10_000 || r === rows - 1) {
      if (!out.write(chunk.join("\n") + "\n")) await new Promise((resolve) => out.once("drain", resolve));
      chunk = [];
    }
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

/** One arm in this process: trains 2 epochs and prints one JSON line. */
async function arm(kind: string, csv: string): Promise<void> {
  await useBackend();
  const model = housingModel(FEATURES, 0);
  const optimizer = tf.train.adam(1e-2);
  const loss = tf.losses.meanSquaredError;
  let data: tf.Tensor[] | ReturnType<typeof csvDataset>;
  if (kind === "dataset") {
    data = csvDataset(csv, { label: "y", batchSize: BATCH, shuffleBuffer: 10_000, seed: 1 });
  } else {
    const x = new Float32Array(rows * FEATURES), y = new Float32Array(rows), row = new Float64Array(FEATURES + 1);
    for (let r = 0; r < rows; r++) {
      rowValues(r, row);
      for (let c = 0; c < FEATURES; c++) x[r * FEATURES + c] = row[c];
      y[r] = row[FEATURES];
    }
    data = [tf.tensor2d(x, [rows, FEATURES]), tf.tensor2d(y, [rows, 1])];
  }
  const options = kind === "dataset" ? {} : { batchSize: BATCH, shuffle: true, seed: 1 };
  const started = performance.now();
  const events = await collect(epochStream({ data, model, optimizer, loss, ...options }).pipeThrough(take(EPOCHS)));
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({
    rows_per_s: (rows * EPOCHS) / seconds,
    peak_rss_mb: peakRssMb(),
    train_loss: events.at(-1)!.train_loss,
  }));
}

if (values.arm) {
  await arm(values.arm, values.csv!);
} else {
  const dir = mkdtempSync(join(tmpdir(), "fitstream-big-csv-"));
  try {
    const csv = join(dir, "big.csv");
    await writeCsv(csv);
    const mb = statSync(csv).size / 1e6;
    console.log(
      `${rows.toLocaleString("en")} rows, ${mb.toFixed(0)} MB of CSV; ${EPOCHS} epochs, batch ${BATCH}, ${runtime}`,
    );
    const script = fileURLToPath(import.meta.url);
    const run = (kind: string) => {
      const args = runtime === "deno" ? ["run", "-A", script] : [script];
      const child = spawnSync(process.execPath, [...args, "--arm", kind, "--csv", csv, "--rows", String(rows)], {
        encoding: "utf8",
        maxBuffer: 1 << 24,
      });
      if (child.status !== 0) throw new Error(`arm ${kind} failed: ${child.stderr}`);
      return JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { rows_per_s: number; peak_rss_mb: number };
    };
    const memory = run("memory");
    const streamed = run("dataset");
    const slowdown = memory.rows_per_s / streamed.rows_per_s;
    table([
      ["arm", "rows/s", "peak RSS (MB)"],
      ["in-memory tensors", Math.round(memory.rows_per_s), Math.round(memory.peak_rss_mb)],
      ["csvDataset (streamed)", Math.round(streamed.rows_per_s), Math.round(streamed.peak_rss_mb)],
    ]);
    const rssMet = streamed.peak_rss_mb < 600, speedMet = slowdown <= 2;
    console.log(`streamed peak RSS < 600 MB: ${rssMet ? "met" : "MISSED"} (${streamed.peak_rss_mb.toFixed(0)} MB)`);
    console.log(
      `streamed rows/s within 2x of in-memory: ${speedMet ? "met" : "MISSED"} (${slowdown.toFixed(2)}x slower)`,
    );
    jsonLine("big_csv", {
      rows,
      csv_mb: mb,
      memory_rows_per_s: memory.rows_per_s,
      dataset_rows_per_s: streamed.rows_per_s,
      slowdown,
      memory_peak_rss_mb: memory.peak_rss_mb,
      dataset_peak_rss_mb: streamed.peak_rss_mb,
      rss_target_met: rssMet,
      speed_target_met: speedMet,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
