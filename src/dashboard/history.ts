/**
 * A compact, columnar history of the numeric keys of events: one growable
 * `Float64Array` per key holding only the values that occur, so memory grows
 * with the values logged, never with events × keys, and with a cap on keys.
 *
 * @module
 */

/** Most events one history answer of a page server holds (`?from=` pages through the rest). Internal. */
export const HISTORY_PAGE = 10_000;

/** Uncharted key names counted one by one up to this many (then "at least"): the count itself stays bounded. */
const MAX_UNCHARTED_NAMES = 65_536;

/**
 * An event's values a page shows: numbers (NaN and ±Infinity as null), strings and booleans, at most
 * `limit` of them, those of `first` keys before the others. Internal.
 */
export function shownValues(
  event: object,
  limit = Infinity,
  first?: { has(key: string): boolean },
): Record<string, string | number | boolean | null> {
  const row: Record<string, string | number | boolean | null> = {};
  let count = 0;
  const add = (k: string, v: unknown) => {
    if (typeof v === "number") row[k] = Number.isFinite(v) ? v : null;
    else if (typeof v === "string" || typeof v === "boolean") row[k] = v;
    else return;
    count++;
  };
  const entries = Object.entries(event);
  if (first) { for (const [k, v] of entries) if (count < limit && first.has(k)) add(k, v); }
  for (const [k, v] of entries) if (count < limit && !(first?.has(k) ?? false)) add(k, v);
  return row;
}

/**
 * One key's values and the rows they are in. While the key has been in every
 * row since it first appeared the rows are implied (`start + i`, 8 bytes a
 * value); at its first gap they are written out (12 bytes a value). Before,
 * a column spanned every row from the start: a key seen once cost 8 bytes
 * for every event of the run, and 20 new keys per line grew memory with the
 * square of the lines (issue 29, finding 9).
 */
class Column {
  values = new Float64Array(16);
  rows: Uint32Array | null = null;
  count = 0;
  constructor(readonly start: number) {}

  push(row: number, value: number): void {
    if (this.count === this.values.length) {
      const values = new Float64Array(this.count * 2);
      values.set(this.values);
      this.values = values;
      if (this.rows) {
        const rows = new Uint32Array(this.count * 2);
        rows.set(this.rows);
        this.rows = rows;
      }
    }
    if (!this.rows && row !== this.start + this.count) {
      this.rows = new Uint32Array(this.values.length);
      for (let i = 0; i < this.count; i++) this.rows[i] = this.start + i;
    }
    if (this.rows) this.rows[this.count] = row;
    this.values[this.count++] = value;
  }

  rowAt(i: number): number {
    return this.rows ? this.rows[i] : this.start + i;
  }

  /** The index of the first value in a row >= `row`. */
  firstAtOrAfter(row: number): number {
    if (!this.rows) return Math.min(Math.max(row - this.start, 0), this.count);
    let lo = 0, hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rows[mid] < row) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get bytes(): number {
    return this.values.byteLength + (this.rows?.byteLength ?? 0);
  }
}

/** Columnar numeric history. Internal. */
export class History {
  #length = 0;
  #columns = new Map<string, Column>();
  #uncharted = new Set<string>();

  /** `maxKeys`: most distinct numeric keys kept; values of further keys are left out (and counted). */
  constructor(readonly maxKeys = Infinity) {}

  /** Number of events recorded. */
  get length(): number {
    return this.#length;
  }

  /** Numeric keys kept. */
  get keys(): number {
    return this.#columns.size;
  }

  /** Whether `key` is kept. */
  has(key: string): boolean {
    return this.#columns.has(key);
  }

  /** Distinct numeric keys left out because of `maxKeys` (counted up to 65,536). */
  get uncharted(): number {
    return this.#uncharted.size;
  }

  /** Appends an event's numeric keys (other keys are skipped; missing keys read as NaN); answers those kept. */
  push(event: Record<string, unknown>): Record<string, number> {
    const row: Record<string, number> = {};
    for (const [key, value] of Object.entries(event)) {
      if (typeof value !== "number") continue;
      let column = this.#columns.get(key);
      if (!column) {
        if (this.#columns.size >= this.maxKeys) {
          if (this.#uncharted.size < MAX_UNCHARTED_NAMES) this.#uncharted.add(key);
          continue;
        }
        column = new Column(this.#length);
        this.#columns.set(key, column);
      }
      column.push(this.#length, value);
      row[key] = value;
    }
    this.#length++;
    return row;
  }

  /** Bytes held by the columns. */
  get bytes(): number {
    let total = 0;
    for (const column of this.#columns.values()) total += column.bytes;
    return total;
  }

  /** Events `from` (inclusive) to `to` (exclusive) as plain arrays (NaN and missing values as null), for JSON. */
  slice(from: number, to: number): { from: number; length: number; columns: Record<string, (number | null)[]> } {
    const end = Math.min(to, this.#length);
    const start = Math.min(from, end);
    const columns: Record<string, (number | null)[]> = {};
    for (const [key, column] of this.#columns) {
      const out = new Array<number | null>(end - start).fill(null);
      for (let i = column.firstAtOrAfter(start); i < column.count; i++) {
        const row = column.rowAt(i);
        if (row >= end) break;
        const value = column.values[i];
        out[row - start] = Number.isFinite(value) ? value : null;
      }
      columns[key] = out;
    }
    return { from: start, length: end - start, columns };
  }

  /** The history as plain arrays (NaN as null), for JSON. */
  toJSON(): { length: number; columns: Record<string, (number | null)[]> } {
    const { length, columns } = this.slice(0, this.#length);
    return { length, columns };
  }
}
