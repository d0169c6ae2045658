/**
 * The one reading of a CSV cell as a number, shared by `loadCsv` and
 * `csvDataset` so that both read the same values and refuse the same cells
 * with the same words.
 *
 * A cell is a decimal number — sign, digits, a point, an exponent — with
 * spaces around it allowed. Refused: a blank cell; what `Number` reads but is
 * no decimal (`0x10`, `0b11`, `0o7`, `Infinity`); a value beyond float32's
 * range (`1e39`, which would train as Infinity); and a nonzero value too
 * small for float32 (`1e-50`, which would train as 0). Values are stored as
 * float32, so only these two roundings change what a cell says: any other is
 * a rounding in the last place.
 *
 * @module
 */

/** Exact powers of ten, 10^0 … 10^22 (each a double without rounding). */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/** A decimal number, once trimmed: what `Number` reads minus hex, binary, octal, `Infinity` and blanks. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * `Number(text.slice(start, end))` for a plain decimal (`-12.345`: sign,
 * at most 15 digits, no exponent or spaces), without the slice: the digits as
 * an integer m < 2^53 divided by 10^k, both exact doubles, is the correctly
 * rounded value of the decimal — what `Number` returns. Returns `undefined`
 * for anything else (the caller takes the general path). `Number` on each of
 * 4.5 M cells took half of a pass. Its values lie within float32's range
 * (below 10^15, and 0 or at least 10^-22), so none needs the range checks.
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

/** The number a cell holds, or NaN when it is refused (see {@link cellProblem} for why). Internal. */
export function parseCell(cell: string): number {
  const text = cell.trim();
  if (!DECIMAL.test(text)) return NaN;
  const value = Number(text);
  const stored = Math.fround(value);
  if (!Number.isFinite(stored) || (stored === 0 && value !== 0)) return NaN;
  return value;
}

/** {@link parseCell} of `text.slice(start, end)`, without the slice for a plain decimal. Internal. */
export function readCell(text: string, start: number, end: number): number {
  return plainDecimal(text, start, end) ?? parseCell(text.slice(start, end));
}

/** Why {@link parseCell} refused `cell`, for an error: `"0x10" is not a decimal number (…)`. Internal. */
export function cellProblem(cell: string): string {
  const text = cell.trim(), shown = JSON.stringify(cell);
  if (/^[+-]?0[xXbBoO]/.test(text)) {
    return `${shown} is not a decimal number (hexadecimal, binary and octal numbers are refused)`;
  }
  if (!DECIMAL.test(text)) return `${shown} is not a number`;
  if (!Number.isFinite(Math.fround(Number(text)))) {
    return `${shown} is beyond float32's range (±3.4028235e38): it would read as Infinity`;
  }
  return `${shown} is too close to 0 for float32 (under ~7e-46): it would read as 0`;
}
