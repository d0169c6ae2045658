/**
 * A compact, columnar history of the numeric keys of events: one growable
 * `Float64Array` per key (8 bytes a value), so a long run's history stays small.
 *
 * @module
 */

/** Most events one history answer of a page server holds (`?from=` pages through the rest). Internal. */
export const HISTORY_PAGE = 10_000;

/** An event's values a page shows: numbers (NaN and ±Infinity as null), strings and booleans. Internal. */
export function shownValues(event: object): Record<string, string | number | boolean | null> {
  const row: Record<string, string | number | boolean | null> = {};
  for (const [k, v] of Object.entries(event)) {
    if (typeof v === "number") row[k] = Number.isFinite(v) ? v : null;
    else if (typeof v === "string" || typeof v === "boolean") row[k] = v;
  }
  return row;
}

/** Columnar numeric history. Internal. */
export class History {
  #length = 0;
  #columns = new Map<string, Float64Array>();
  #capacity = 64;

  /** Number of events recorded. */
  get length(): number {
    return this.#length;
  }

  /** Appends an event's numeric keys (other keys are skipped; missing keys read as NaN). */
  push(event: Record<string, unknown>): Record<string, number> {
    const row: Record<string, number> = {};
    for (const [key, value] of Object.entries(event)) {
      if (typeof value === "number") row[key] = value;
    }
    if (this.#length === this.#capacity) {
      this.#capacity *= 2;
      for (const [key, column] of this.#columns) {
        const grown = new Float64Array(this.#capacity).fill(NaN);
        grown.set(column);
        this.#columns.set(key, grown);
      }
    }
    for (const [key, value] of Object.entries(row)) {
      let column = this.#columns.get(key);
      if (!column) {
        column = new Float64Array(this.#capacity).fill(NaN);
        this.#columns.set(key, column);
      }
      column[this.#length] = value;
    }
    this.#length++;
    return row;
  }

  /** Bytes held by the columns. */
  get bytes(): number {
    let total = 0;
    for (const column of this.#columns.values()) total += column.byteLength;
    return total;
  }

  /** Events `from` (inclusive) to `to` (exclusive) as plain arrays (NaN as null), for JSON. */
  slice(from: number, to: number): { from: number; length: number; columns: Record<string, (number | null)[]> } {
    const end = Math.min(to, this.#length);
    const start = Math.min(from, end);
    const columns: Record<string, (number | null)[]> = {};
    for (const [key, column] of this.#columns) {
      columns[key] = Array.from(column.subarray(start, end), (v) => (Number.isFinite(v) ? v : null));
    }
    return { from: start, length: end - start, columns };
  }

  /** The history as plain arrays (NaN as null), for JSON. */
  toJSON(): { length: number; columns: Record<string, (number | null)[]> } {
    const columns: Record<string, (number | null)[]> = {};
    for (const [key, column] of this.#columns) {
      columns[key] = Array.from(column.subarray(0, this.#length), (v) => (Number.isFinite(v) ? v : null));
    }
    return { length: this.#length, columns };
  }
}
