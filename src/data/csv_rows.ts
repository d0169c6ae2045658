/**
 * The one CSV reader behind `loadCsv` and `csvDataset`: decoded text in,
 * the chosen columns of each row out as numbers, every refusal an error
 * naming the source, line and column — so both loaders read the same values
 * and fail the same way by construction.
 *
 * The grammar: lines end with `\n`, `\r\n` or a lone `\r`; an empty line is
 * skipped, and a line of spaces is a row like any other (so an error); the
 * first line is the header (a BOM before it is dropped); fields are split at
 * commas, and a field may be quoted (`"a,b"`, `""` for a quote) but must
 * close on its line. Cells are read by `csv_cells.ts`.
 *
 * @module
 */
import { lineSplitter } from "./lines.ts";
import { cellProblem, parseCell, readCell } from "./csv_cells.ts";

/** A reader of CSV text: feed it decoded chunks, then end it. */
export interface CsvRows {
  push(text: string): void;
  end(): void;
}

/** How many header names an error lists before it only counts them. */
const NAMES_SHOWN = 20;

/**
 * Splits one line into fields: plain lines by commas; quoted fields (`"a,b"`,
 * `""`) the slow way. Returns what is wrong instead when a quoted field does
 * not close on the line or text follows its closing quote.
 */
function splitFields(line: string): string[] | string {
  if (!line.includes('"')) return line.split(",");
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const close = line.indexOf('"', i);
        if (close < 0) return `field ${fields.length + 1}: a quoted field does not close on its line`;
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
      if (i < line.length && line[i] !== ",") {
        return `field ${fields.length}: text follows the closing quote of a quoted field`;
      }
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

/**
 * Reads the needed fields of a line without quotes into `out` (by field
 * index), without splitting it, and returns how many fields it has.
 */
function readPlainLine(line: string, needed: Uint8Array, out: Float64Array): number {
  let field = 0, start = 0;
  for (;;) {
    let end = line.indexOf(",", start);
    if (end < 0) end = line.length;
    if (field < needed.length && needed[field] === 1) out[field] = readCell(line, start, end);
    field++;
    if (end === line.length) return field;
    start = end + 1;
  }
}

/** `a, b, c` — or the first names and a count, for a header too wide to print. Internal. */
export function listNames(header: readonly string[]): string {
  if (header.length <= NAMES_SHOWN) return header.join(", ");
  return `${header.slice(0, NAMES_SHOWN).join(", ")}, … ${header.length} columns in all`;
}

/**
 * A CSV reader for loader `fn` reading `name`. At the header it calls
 * `choose(header)` for the columns to read, in order; then `onRow(values,
 * line)` for each row, `values` holding those columns (the same array each
 * time: copy what you keep). Errors are RangeErrors `fn: name: …`. The header
 * is checked in time linear in its width (a Map, not a search per column: a
 * search made 100,000 columns take 30–40 s). Internal.
 */
export function csvRows(
  fn: string,
  name: string,
  choose: (header: readonly string[]) => readonly string[],
  onRow: (values: Float64Array, line: number) => void,
): CsvRows {
  const fail = (message: string): never => {
    throw new RangeError(`${fn}: ${name}: ${message}`);
  };
  let names: readonly string[] = []; // of the chosen columns, for errors
  let picks: Int32Array | undefined; // the field index of each chosen column
  let width = 0; // fields per line
  let needed = new Uint8Array(0); // 1 for each field index that is read
  let fieldValues = new Float64Array(0); // a line's needed fields, by field index
  let values = new Float64Array(0); // a line's chosen columns, in order
  let lineNo = 0;

  const onHeader = (fields: string[]) => {
    const header = fields.map((f) => f.trim());
    const index = new Map<string, number>();
    header.forEach((col, at) => {
      if (index.has(col)) fail(`the header names column "${col}" twice (line ${lineNo})`);
      index.set(col, at);
    });
    names = choose(header);
    picks = Int32Array.from(names, (col) => {
      const at = index.get(col);
      return at ?? fail(`column "${col}" is not in the header (${listNames(header)})`);
    });
    width = header.length;
    needed = new Uint8Array(width);
    for (const at of picks) needed[at] = 1;
    fieldValues = new Float64Array(width);
    values = new Float64Array(names.length);
  };

  const onLine = (text: string) => {
    lineNo++;
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.length === 0) return;
    if (!picks || text.includes('"')) {
      const fields = splitFields(text);
      if (typeof fields === "string") return fail(`line ${lineNo}, ${fields}`);
      if (!picks) return onHeader(fields);
      if (fields.length !== width) fail(`line ${lineNo} has ${fields.length} fields, the header has ${width}`);
      for (const at of picks) fieldValues[at] = parseCell(fields[at]);
    } else {
      const count = readPlainLine(text, needed, fieldValues);
      if (count !== width) fail(`line ${lineNo} has ${count} fields, the header has ${width}`);
    }
    for (let k = 0; k < picks.length; k++) {
      const value = fieldValues[picks[k]];
      if (Number.isNaN(value)) {
        const cell = (splitFields(text) as string[])[picks[k]];
        fail(`line ${lineNo}, column "${names[k]}": ${cellProblem(cell)}`);
      }
      values[k] = value;
    }
    onRow(values, lineNo);
  };

  const lines = lineSplitter(onLine, { loneCr: true });
  return {
    push: (text) => lines.push(text),
    end() {
      lines.end();
      if (!picks) throw new RangeError(`${fn}: ${name} is empty: expected a header line`);
    },
  };
}
