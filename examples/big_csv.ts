/**
 * Training from a CSV bigger than you want in memory: `csvDataset` streams
 * the file on every pass (shuffling within a buffer), so memory holds a
 * chunk of text, the buffer and a batch — not the file.
 *
 *   deno run -A examples/big_csv.ts [--csv FILE] [--rows N] [--epochs N] [--label COLUMN]
 *   bun examples/big_csv.ts …
 *
 * Without --csv it writes a CSV of --rows rows (default 1,000,000, ~77 MB) to
 * a temporary folder first, and removes it at the end.
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { csvDataset, epochStream, pipe, progress, take, useBackend } from "../mod.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    csv: { type: "string" },
    rows: { type: "string", default: "1000000" },
    epochs: { type: "string", default: "3" },
    label: { type: "string", default: "y" },
  },
  strict: true,
});

/** Writes `rows` rows of y = x · w + noise, 8 features, as CSV. */
async function writeCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write("x0,x1,x2,x3,x4,x5,x6,x7,y\n");
  let lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: 8 }, () => Math.random() * 2 - 1);
    const y = x.reduce((sum, v, i) => sum + v * (i - 3.5), 0) + (Math.random() - 0.5) * 0.1;
    lines.push([...x, y].map((v) => v.toFixed(4)).join(","));
    if (lines.length === 10_000) {
      if (!out.write(lines.join("\n") + "\n")) await new Promise((resolve) => out.once("drain", resolve));
      lines = [];
    }
  }
  out.write(lines.length ? lines.join("\n") + "\n" : "");
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

await useBackend();
const temp = values.csv ? undefined : mkdtempSync(join(tmpdir(), "fitstream-big-"));
try {
  const path = values.csv ?? join(temp!, "big.csv");
  if (!values.csv) {
    console.log(`writing ${Number(values.rows).toLocaleString("en")} rows to ${path} …`);
    await writeCsv(path, Number(values.rows));
  }
  const data = csvDataset(path, { label: values.label, batchSize: 512, shuffleBuffer: 10_000, seed: 0 });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 32, activation: "relu", inputShape: [8] }),
      tf.layers.dense({ units: 1 }),
    ],
  });
  const epochs = Number(values.epochs);
  const events = pipe(
    epochStream({ data, model, optimizer: tf.train.adam(1e-2), loss: tf.losses.meanSquaredError }),
    take(epochs),
    progress({ total: epochs, keys: ["train_loss"] }),
  );
  for await (const event of events) {
    const mb = process.memoryUsage().rss / 2 ** 20;
    console.log(
      `epoch ${event.step}: train_loss ${event.train_loss.toFixed(4)}, ` +
        `${event.train_time_sec.toFixed(1)} s, resident memory ${mb.toFixed(0)} MB`,
    );
  }
} finally {
  if (temp) rmSync(temp, { recursive: true, force: true });
}
