/**
 * `loadCsv(source, { columns })`: numeric CSV columns from a URL, a file or a stream.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { requireOptions } from "../internal/validate.ts";
import { csvRecords } from "./csv_parser.ts";
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
 * `ReadableStream<Uint8Array>`, decoded with `TextDecoderStream` and parsed
 * by a streaming CSV parser. Quoted headers, CRLF line ends, a trailing
 * newline and a UTF-8 BOM are fine. A missing column, a non-numeric cell or
 * a row with the wrong number of fields is an error naming the line and
 * the column; so is a header that names a column twice. A URL that stays
 * silent for `timeout` ms fails the load, and `signal` cancels it.
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
  requireOptions("loadCsv", options);
  const wanted = options.columns;
  if (wanted !== undefined && (!Array.isArray(wanted) || wanted.some((c) => typeof c !== "string"))) {
    throw new TypeError(`loadCsv: columns must be an array of column names, got ${describe(wanted)}`);
  }
  checkReadOptions("loadCsv", options);
  const { stream, name } = await openReadable("loadCsv", source, options);
  const records = stream.pipeThrough(new TextDecoderStream()).pipeThrough(csvRecords());
  const reader = records.getReader();
  let header: string[] | undefined;
  let picks: { name: string; index: number }[] = [];
  let values: number[][] = [];
  try {
    for (;;) {
      let next: ReadableStreamReadResult<{ fields: string[]; line: number }>;
      try {
        next = await reader.read();
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        if (message.startsWith("loadCsv:") || options.signal?.aborted) throw error;
        throw new RangeError(`loadCsv: ${name}: ${message}`, { cause: error }); // the parser's own errors name no file
      }
      const { done, value } = next;
      if (done) break;
      const { fields, line } = value;
      if (!header) {
        header = fields.map((f) => f.trim());
        const twice = header.find((col, i) => header!.indexOf(col) !== i);
        if (twice !== undefined) {
          throw new RangeError(`loadCsv: ${name}: the header names column "${twice}" twice (line ${line})`);
        }
        const names = wanted ?? header;
        picks = names.map((col) => {
          const index = header!.indexOf(col);
          if (index < 0) {
            throw new RangeError(`loadCsv: ${name}: column "${col}" is not in the header (${header!.join(", ")})`);
          }
          return { name: col, index };
        });
        values = picks.map(() => []);
        continue;
      }
      if (fields.length !== header.length) {
        throw new RangeError(
          `loadCsv: ${name}: line ${line} has ${fields.length} fields, the header has ${header.length}`,
        );
      }
      picks.forEach(({ name: col, index }, k) => {
        const cell = fields[index].trim();
        const number = cell === "" ? NaN : Number(cell);
        if (!Number.isFinite(number)) {
          throw new RangeError(
            `loadCsv: ${name}: line ${line}, column "${col}": ${JSON.stringify(fields[index])} is not a number`,
          );
        }
        values[k].push(number);
      });
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  }
  if (!header) throw new RangeError(`loadCsv: ${name} is empty: expected a header line`);
  const data = new Map(picks.map(({ name: col }, k) => [col, Float32Array.from(values[k])]));
  const rows = values[0]?.length ?? 0;
  const column = (col: string): Float32Array => {
    const found = data.get(col);
    if (!found) throw new RangeError(`CsvTable: no column "${col}" (have ${[...data.keys()].join(", ")})`);
    return found;
  };
  return {
    columns: picks.map((p) => p.name),
    rows,
    column,
    tensor(names: readonly string[]): tf.Tensor2D {
      const cols = names.map(column);
      const flat = new Float32Array(rows * cols.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols.length; c++) flat[r * cols.length + c] = cols[c][r];
      return tf.tensor2d(flat, [rows, cols.length]);
    },
  };
}
