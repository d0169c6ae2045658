/**
 * `loadCsv(source, { columns })`: numeric CSV columns from a URL, a file or a stream.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireOptions } from "../internal/validate.ts";
import { csvRows, listNames } from "./csv_rows.ts";
import { checkReadOptions, openReadable, type ReadOptions } from "./open_input.ts";
import type { Tensor2D } from "../tf_types.ts";

/** Where CSV comes from: an `http(s):` URL, a file path or `file:` URL, or a byte stream. */
export type CsvSource = string | URL | ReadableStream<Uint8Array>;

/** Options of {@link loadCsv}. */
export interface LoadCsvOptions extends ReadOptions {
  /** Columns to read (default: all). Each must exist in the header and hold numbers only. */
  columns?: readonly string[];
}

/** Numeric columns read from a CSV file. */
export interface CsvTable {
  /** Column names, in the order read. */
  readonly columns: readonly string[];
  /** Number of data rows. */
  readonly rows: number;
  /** The values of one column. */
  column(name: string): Float32Array;
  /** A `[rows, names.length]` float32 tensor of the named columns. */
  tensor(names: readonly string[]): Tensor2D;
}

/**
 * Reads numeric columns from CSV: a URL (`fetch`), a file path, or any
 * `ReadableStream<Uint8Array>`, decoded with `TextDecoderStream` and read by
 * the CSV reader `csvDataset` uses (the same numbers, the same errors).
 * Quoted headers and fields, CRLF or CR line ends, a trailing newline and a
 * UTF-8 BOM are fine. A missing column, a cell that is no decimal number or
 * does not fit float32, or a row with the wrong number of fields is an error
 * naming the line and the column; so is a header that names a column twice.
 * A URL that stays silent for `timeout` ms fails the load, and `signal`
 * cancels it; a file that shrinks while it is read fails it too.
 *
 * @example Two columns from a stream
 * ```ts
 * import { loadCsv } from "@fitstream/fitstream";
 *
 * const csv = new Blob(['"x","y"\n1,2\n3,4\n']).stream();
 * const table = await loadCsv(csv);
 * console.log(table.rows); // 2
 * console.log(Array.from(table.column("y"))); // [2, 4]
 * ```
 */
export async function loadCsv(source: CsvSource, options: LoadCsvOptions = {}): Promise<CsvTable> {
  checkKeys("loadCsv", options, LOAD_CSV_KEYS);
  requireOptions("loadCsv", options);
  const wanted = options.columns;
  if (wanted !== undefined && (!Array.isArray(wanted) || wanted.some((c) => typeof c !== "string"))) {
    throw new TypeError(`loadCsv: columns must be an array of column names, got ${describe(wanted)}`);
  }
  checkReadOptions("loadCsv", options);
  const { stream, name } = await openReadable("loadCsv", source, options);
  // The values row by row in one growing array (4 bytes a cell): a list of numbers per
  // column took 8 bytes a cell, and one array per column cost more than the data on a wide file.
  let columns: readonly string[] = [];
  let data = new Float32Array(0);
  let rows = 0;
  const reader = csvRows("loadCsv", name, (header) => (columns = wanted ?? header), (values) => {
    if ((rows + 1) * values.length > data.length) {
      const grown = new Float32Array(Math.max(1024, 2 * data.length, (rows + 1) * values.length));
      grown.set(data);
      data = grown;
    }
    data.set(values, rows * values.length);
    rows++;
  });
  const text = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      let next: ReadableStreamReadResult<string>;
      try {
        next = await text.read();
      } catch (error) {
        const message = (error as Error)?.message ?? String(error);
        if (message.startsWith("loadCsv:") || options.signal?.aborted) throw error;
        throw new RangeError(`loadCsv: ${name}: ${message}`, { cause: error }); // a stream's own errors name no source
      }
      if (next.done) break;
      reader.push(next.value);
    }
    reader.end();
  } catch (error) {
    await text.cancel(error).catch(() => {});
    throw error;
  }
  return table(columns, rows, data);
}

/** A {@link CsvTable} over row-major values; a column is copied out when first asked for. */
function table(names: readonly string[], rows: number, data: Float32Array): CsvTable {
  const width = names.length;
  const at = new Map<string, number>();
  names.forEach((col, k) => at.has(col) || at.set(col, k));
  const find = (col: string): number => {
    const k = at.get(col);
    if (k === undefined) throw new RangeError(`CsvTable: no column "${col}" (have ${listNames([...at.keys()])})`);
    return k;
  };
  const cache = new Map<string, Float32Array>();
  return {
    columns: [...names],
    rows,
    column(col: string): Float32Array {
      const k = find(col);
      let values = cache.get(col);
      if (!values) {
        values = new Float32Array(rows);
        for (let r = 0; r < rows; r++) values[r] = data[r * width + k];
        cache.set(col, values);
      }
      return values;
    },
    tensor(wanted: readonly string[]): tf.Tensor2D {
      const ks = wanted.map(find), n = ks.length;
      const flat = new Float32Array(rows * n);
      for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) flat[r * n + c] = data[r * width + ks[c]];
      return tf.tensor2d(flat, [rows, n]);
    },
  };
}

/** The keys of {@link LoadCsvOptions}, checked by the compiler both ways. */
const LOAD_CSV_KEYS: readonly string[] = keysOf<LoadCsvOptions>({ columns: true, signal: true, timeout: true });
