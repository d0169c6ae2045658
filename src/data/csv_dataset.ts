/**
 * `csvDataset(source, { label, columns, batchSize, shuffleBuffer, seed })`:
 * a CSV file or URL as a `tf.data.Dataset` of batches, streamed on every pass.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { statSync } from "node:fs";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import { checkReadOptions, openReadable, type ReadOptions } from "./open_input.ts";
import { csvRows } from "./csv_rows.ts";
import { hostTensor2d, type PassAware } from "./dataset.ts";
import type { Tensor2D, TfDataset } from "../tf_types.ts";
import { toPath } from "../sinks/file.ts";
import { createRandom, type Random } from "./random.ts";

/** Options of {@link csvDataset}. */
export interface CsvDatasetOptions extends ReadOptions {
  /** The column that holds the labels (`ys`); without it, elements are `{ xs }` (use `lastLabel: false`). */
  label?: string;
  /** The feature columns, in this order (default: every column but `label`). */
  columns?: readonly string[];
  /** Rows per batch (integer >= 1, default 32); the last batch of a pass may be smaller. */
  batchSize?: number;
  /** Shuffle within a buffer of this many rows (default 0: file order); memory grows with it, not the file. */
  shuffleBuffer?: number;
  /** Seed of the shuffle: the same seed gives the same sequence of passes. */
  seed?: number;
}

/** A batch of a {@link csvDataset}: `xs`, `[rows, columns]` float32 features, and `ys`, `[rows, 1]` labels, with a `label`. */
export type CsvBatch = { xs: Tensor2D; ys?: Tensor2D };

/**
 * A `tf.data.Dataset` of CSV batches that knows which pass it reads next (so
 * a resumed run goes on), typed with its methods (`map`, `take`,
 * `forEachAsync`, …).
 */
export type CsvDataset = TfDataset<CsvBatch> & PassAware;

/** The generator state of a pass's shuffle: the dataset's seed and the pass index, mixed. */
function passRandom(seed: number, pass: number): Random {
  return createRandom((seed ^ Math.imul(pass + 1, 0x9e3779b9)) >>> 0);
}

/**
 * A `tf.data.Dataset` of batches `{ xs, ys }` read from a CSV file path or
 * an `http(s)` URL — lazily, on every pass, streamed and never held whole:
 * memory holds one chunk of text, the shuffle buffer and one batch. Values
 * are read by `loadCsv`'s reader (the same numbers, the same errors naming
 * the file, line and column; quoted headers and fields, CRLF or CR line
 * ends, a BOM are fine; a quoted field spanning lines is not; a file that
 * shrinks during a pass fails it). With `shuffleBuffer`,
 * rows are drawn at random from a buffer of that many, with a generator
 * seeded by `seed` and the pass: the same seed gives the same passes, and a
 * run resumed with `epochStream({ resumeFrom })` goes on with the passes it
 * would have read. Pass it to `epochStream({ data })` and
 * `validationLoss({ data })`.
 *
 * @example Train from a CSV file, one pass per event
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { collect, csvDataset, epochStream, take } from "@fitstream/fitstream";
 *
 * const path = `${tmpdir()}/fitstream-csv-dataset.csv`;
 * writeFileSync(path, "x,y\n" + Array.from({ length: 10 }, (_, i) => `${i},${2 * i + 1}`).join("\n") + "\n");
 * const data = csvDataset(path, { label: "y", batchSize: 4, shuffleBuffer: 10, seed: 1 });
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const optimizer = tf.train.adam(0.1);
 * const events = await collect(
 *   epochStream({ data, model, optimizer, loss: tf.losses.meanSquaredError }).pipeThrough(take(3)),
 * );
 * console.log(events.map((e) => e.step)); // [1, 2, 3]
 * ```
 */
export function csvDataset(source: string | URL, options: CsvDatasetOptions = {}): CsvDataset {
  checkKeys("csvDataset", options, CSV_DATASET_KEYS);
  if (typeof source !== "string" && !(source instanceof URL)) {
    throw new TypeError(`csvDataset: source must be a file path or a URL, got ${describe(source)}`);
  }
  requireOptions("csvDataset", options);
  checkReadOptions("csvDataset", options);
  const { label, columns, batchSize = 32, shuffleBuffer = 0, seed } = options;
  if (label !== undefined) requireKey("csvDataset", "label", label);
  if (columns !== undefined && (!Array.isArray(columns) || columns.some((c) => typeof c !== "string"))) {
    throw new TypeError(`csvDataset: columns must be an array of column names, got ${describe(columns)}`);
  }
  requireInteger("csvDataset", "batchSize", batchSize, 1);
  requireInteger("csvDataset", "shuffleBuffer", shuffleBuffer, 0);
  if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32)) {
    throw new RangeError(`csvDataset: seed must be an integer in [0, 2^32), got ${describe(seed)}`);
  }
  const isUrl = /^https?:\/\//i.test(String(source));
  if (!isUrl) {
    const path = toPath(typeof source === "string" && /^file:\/\//i.test(source) ? new URL(source) : source);
    if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
      throw new Error(`csvDataset: cannot read ${path}: no such file`);
    }
  }
  const baseSeed = seed ?? Math.floor(Math.random() * 2 ** 32);
  let nextPass = 0;
  const dataset = tf.data.generator((): AsyncIterator<CsvBatch> => {
    const pass = nextPass++;
    return readPass(source, { ...options, label, columns, batchSize, shuffleBuffer }, passRandom(baseSeed, pass));
  }) as unknown as CsvDataset;
  Object.defineProperty(dataset, "nextPass", {
    get: () => nextPass,
    set: (value: number) => {
      requireInteger("csvDataset", "nextPass", value, 0);
      nextPass = value;
    },
  });
  return dataset;
}

type PassOptions = Required<Pick<CsvDatasetOptions, "batchSize" | "shuffleBuffer">> & CsvDatasetOptions;

/** One pass: rows parsed as they stream in, shuffled within the buffer, batched into tensors. */
async function* readPass(source: string | URL, options: PassOptions, random: Random): AsyncGenerator<CsvBatch> {
  const { label, batchSize, shuffleBuffer } = options;
  const { stream, name } = await openReadable("csvDataset", source, options);
  let features = 0;
  // The shuffle buffer: one row (features then label) per slot, in one array.
  let buffer = new Float32Array(0);
  let held = 0;
  // The batch being filled.
  let xs = new Float32Array(0), ys = new Float32Array(0);
  let filled = 0;
  const ready: CsvBatch[] = [];
  const takeRow = (from: Float32Array | Float64Array, at: number) => {
    const to = filled * features;
    for (let c = 0; c < features; c++) xs[to + c] = from[at + c]; // a loop: subarray() allocated per row
    if (label !== undefined) ys[filled] = from[at + features];
    if (++filled === batchSize) flushBatch();
  };
  const flushBatch = () => {
    if (filled === 0) return;
    const batch: CsvBatch = { xs: hostTensor2d(xs.subarray(0, filled * features), filled, features) };
    if (label !== undefined) batch.ys = hostTensor2d(ys.subarray(0, filled), filled, 1);
    ready.push(batch);
    xs = new Float32Array(batchSize * features); // a fresh array: a tensor may keep the one it was made from
    ys = new Float32Array(label === undefined ? 0 : batchSize);
    filled = 0;
  };
  let rowSize = 0; // values kept per row: the features, then the label
  const onRow = (values: Float64Array) => {
    const w = rowSize;
    if (shuffleBuffer === 0) return takeRow(values, 0);
    if (held < shuffleBuffer) {
      buffer.set(values, held * w);
      held++;
      return;
    }
    const slot = Math.floor(random.next() * shuffleBuffer);
    takeRow(buffer, slot * w);
    buffer.set(values, slot * w);
  };
  const rows = csvRows("csvDataset", name, (header) => {
    const featureNames = options.columns ?? header.filter((c) => c !== label);
    features = featureNames.length;
    rowSize = features + (label === undefined ? 0 : 1);
    buffer = new Float32Array(Math.max(1, shuffleBuffer) * rowSize);
    xs = new Float32Array(batchSize * features);
    ys = new Float32Array(label === undefined ? 0 : batchSize);
    return label === undefined ? featureNames : [...featureNames, label];
  }, onRow);
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      rows.push(chunk.value);
      while (ready.length > 0) yield ready.shift()!;
    }
    rows.end();
    // The rows still in the buffer, in a random order.
    const w = rowSize;
    for (let i = held - 1; i >= 0; i--) {
      const slot = Math.floor(random.next() * (i + 1));
      takeRow(buffer, slot * w);
      buffer.copyWithin(slot * w, i * w, (i + 1) * w);
    }
    flushBatch();
    while (ready.length > 0) yield ready.shift()!;
  } catch (error) {
    tf.dispose(ready.flatMap((b) => (b.ys ? [b.xs, b.ys] : [b.xs])));
    await reader.cancel(error).catch(() => {});
    throw error;
  }
}

/** The keys of {@link CsvDatasetOptions}, checked by the compiler both ways. */
const CSV_DATASET_KEYS: readonly string[] = keysOf<CsvDatasetOptions>({
  label: true,
  columns: true,
  batchSize: true,
  shuffleBuffer: true,
  seed: true,
  signal: true,
  timeout: true,
});
