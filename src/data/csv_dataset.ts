/**
 * `csvDataset(source, { label, columns, batchSize, shuffleBuffer, seed })`:
 * a CSV file or URL as a `tf.data.Dataset` of batches, streamed on every pass.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { statSync } from "node:fs";
import { describe } from "../internal/describe.ts";
import { requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import { checkReadOptions, openReadable, type ReadOptions } from "./open_input.ts";
import { lineSplitter } from "./lines.ts";
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

/** Splits one CSV line into fields: plain lines by commas; quoted fields (`"a,b"`, `""`) the slow way. */
function splitFields(line: string): string[] | undefined {
  if (!line.includes('"')) return line.split(",");
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const close = line.indexOf('"', i);
        if (close < 0) return undefined; // the quote closes on another line
        value += line.slice(i, close);
        if (line[close + 1] === '"') {
          value += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
      fields.push(value);
      if (i < line.length && line[i] !== ",") return undefined;
      i++;
    } else {
      const comma = line.indexOf(",", i);
      const end = comma < 0 ? line.length : comma;
      fields.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return fields;
}

/** Exact powers of ten, 10^0 … 10^22 (each a double without rounding). */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * `Number(text.slice(start, end))` for a plain decimal (`-12.345`: sign,
 * at most 15 digits, no exponent or spaces), without the slice: the digits as
 * an integer m < 2^53 divided by 10^k, both exact doubles, is the correctly
 * rounded value of the decimal — what `Number` returns. Returns `undefined`
 * for anything else (the caller uses `Number`). `Number` on each of 4.5 M
 * cells took half of a pass.
 */
function plainDecimal(text: string, start: number, end: number): number | undefined {
  let i = start, negative = false;
  const first = text.charCodeAt(i);
  if (first === 45 /* - */ || first === 43 /* + */) {
    negative = first === 45;
    i++;
  }
  let mantissa = 0, digits = 0, scale = 0, point = false, any = false;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      any = true;
      if (mantissa !== 0 || c !== 48) digits++;
      if (digits > 15) return undefined;
      mantissa = mantissa * 10 + (c - 48);
      if (point) scale++;
    } else if (c === 46 /* . */ && !point) {
      point = true;
    } else {
      return undefined;
    }
  }
  if (!any || scale > 22) return undefined; // 10^scale must be exact
  const value = scale === 0 ? mantissa : mantissa / POW10[scale];
  return negative ? -value : value;
}

/**
 * Reads the needed fields of a line without quotes into `out` (by field
 * index) and returns how many fields it has. Internal.
 */
function readPlainLine(line: string, needed: Uint8Array, out: Float64Array): number {
  let field = 0, start = 0;
  for (;;) {
    let end = line.indexOf(",", start);
    if (end < 0) end = line.length;
    if (field < needed.length && needed[field] === 1) {
      let value = plainDecimal(line, start, end);
      if (value === undefined) {
        const cell = line.slice(start, end);
        value = Number(cell);
        if (value === 0 && cell.trim() === "") value = NaN; // a blank cell, as loadCsv reads it
      }
      out[field] = value;
    }
    field++;
    if (end === line.length) return field;
    start = end + 1;
  }
}

/** The generator state of a pass's shuffle: the dataset's seed and the pass index, mixed. */
function passRandom(seed: number, pass: number): Random {
  return createRandom((seed ^ Math.imul(pass + 1, 0x9e3779b9)) >>> 0);
}

/**
 * A `tf.data.Dataset` of batches `{ xs, ys }` read from a CSV file path or
 * an `http(s)` URL — lazily, on every pass, streamed and never held whole:
 * memory holds one chunk of text, the shuffle buffer and one batch. Values
 * are parsed as `loadCsv` parses them (the same numbers, the same errors
 * naming the file, line and column; quoted headers and fields, CRLF, a BOM
 * are fine; a quoted field spanning lines is not). With `shuffleBuffer`,
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
  const fail = (message: string): never => {
    throw new RangeError(`csvDataset: ${name}: ${message}`);
  };
  let picks: number[] | undefined; // field index of each feature, then the label's
  let width = 0; // fields per line
  let features = 0;
  let lineNo = 0;
  // The shuffle buffer: one row (features then label) per slot, in one array.
  let buffer = new Float32Array(0);
  let held = 0;
  // The batch being filled.
  let xs = new Float32Array(0), ys = new Float32Array(0);
  let filled = 0;
  const ready: CsvBatch[] = [];
  const takeRow = (from: Float32Array, at: number) => {
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
  let parsed = new Float32Array(0); // the line being read: features, then the label
  let names: string[] = []; // of the picked columns, for errors
  let rowSize = 0; // values kept per row: the features, then the label
  let needed = new Uint8Array(0); // 1 for each field index that is read
  let fieldValues = new Float64Array(0); // the values of a line's needed fields, by field index
  const onHeader = (fields: string[]) => {
    const header = fields.map((f) => f.trim());
    const twice = header.find((col, i) => header.indexOf(col) !== i);
    if (twice !== undefined) fail(`the header names column "${twice}" twice (line ${lineNo})`);
    const index = (col: string) => {
      const at = header.indexOf(col);
      if (at < 0) fail(`column "${col}" is not in the header (${header.join(", ")})`);
      return at;
    };
    const featureNames = options.columns ?? header.filter((c) => c !== label);
    names = label === undefined ? [...featureNames] : [...featureNames, label];
    picks = names.map(index);
    width = header.length;
    needed = new Uint8Array(width);
    for (const at of picks) needed[at] = 1;
    fieldValues = new Float64Array(width);
    features = featureNames.length;
    rowSize = names.length;
    parsed = new Float32Array(rowSize);
    buffer = new Float32Array(Math.max(1, shuffleBuffer) * rowSize);
    xs = new Float32Array(batchSize * features);
    ys = new Float32Array(label === undefined ? 0 : batchSize);
  };
  const onLine = (text: string) => {
    lineNo++;
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.length === 0 || (text.charCodeAt(0) <= 32 && text.trim() === "")) return;
    if (!picks || text.includes('"')) {
      const fields = splitFields(text) ?? fail(`line ${lineNo}: a quoted field does not close on its line`);
      if (!picks) return onHeader(fields);
      if (fields.length !== width) fail(`line ${lineNo} has ${fields.length} fields, the header has ${width}`);
      for (let k = 0; k < picks.length; k++) {
        const cell = fields[picks[k]];
        // Number() ignores the whitespace trim() removes; a blank cell (0 to Number) is NaN, as in loadCsv.
        fieldValues[picks[k]] = cell.trim() === "" ? NaN : Number(cell);
      }
    } else {
      const count = readPlainLine(text, needed, fieldValues);
      if (count !== width) fail(`line ${lineNo} has ${count} fields, the header has ${width}`);
    }
    for (let k = 0; k < picks.length; k++) {
      const value = fieldValues[picks[k]];
      if (!Number.isFinite(value)) {
        const cell = (splitFields(text) ?? [])[picks[k]];
        fail(`line ${lineNo}, column "${names[k]}": ${JSON.stringify(cell)} is not a number`);
      }
      parsed[k] = value;
    }
    const w = rowSize;
    if (shuffleBuffer === 0) return takeRow(parsed, 0);
    if (held < shuffleBuffer) {
      buffer.set(parsed, held * w);
      held++;
      return;
    }
    const slot = Math.floor(random.next() * shuffleBuffer);
    takeRow(buffer, slot * w);
    buffer.set(parsed, slot * w);
  };
  const splitter = lineSplitter((text) => onLine(text));
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      splitter.push(chunk.value);
      while (ready.length > 0) yield ready.shift()!;
    }
    splitter.end();
    if (!picks) fail("the file is empty: expected a header line");
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
