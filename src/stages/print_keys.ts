/**
 * `printKeys(...keys, options)`: a one-line formatter for `tap`.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireFunction, requireInteger, requireKey } from "../internal/validate.ts";

/** Options of {@link printKeys}. */
export interface PrintKeysOptions {
  /** Digits after the decimal point for numbers (integer ≥ 0, default 4). */
  precision?: number;
  /** Print the step first when the event has it (default `true`). */
  includeStep?: boolean;
  /** The key holding the step (default `"step"`). */
  stepKey?: string;
  /** Where lines go (default `console.log`). */
  write?: (line: string) => void;
}

const OPTION_KEYS = keysOf<PrintKeysOptions>({ precision: true, includeStep: true, stepKey: true, write: true });

function formatNumber(value: number, precision: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  return value.toFixed(precision);
}

function formatValue(value: unknown, precision: number): string {
  if (typeof value === "number") return formatNumber(value, precision);
  if (typeof value === "boolean") return value ? "True" : "False";
  return String(value);
}

function formatStep(value: unknown): string {
  if (typeof value === "number" && Number.isInteger(value)) {
    const digits = String(Math.abs(value)).padStart(4, "0");
    return value < 0 ? `-${digits}` : digits;
  }
  return String(value);
}

/**
 * Returns a function that prints one line per event, such as
 * `step=0001 train_loss=0.9000 lr=0.0100`: the step first (zero-padded to four
 * digits when it is an integer), then each key. Numbers get `precision`
 * digits after the point (`nan`/`inf` as in Python), booleans print as
 * `True`/`False`, a missing key as `key=NA`. Use it with {@link tap}.
 *
 * @example Format one event
 * ```ts
 * import { printKeys } from "@fitstream/fitstream";
 *
 * const show = printKeys("train_loss", "lr", "done", "val_loss");
 * show({ step: 1, train_loss: 0.9, lr: 0.01, done: false }); // step=0001 train_loss=0.9000 lr=0.0100 done=False val_loss=NA
 * ```
 */
export function printKeys(...keys: [...string[], PrintKeysOptions] | string[]): (event: object) => void {
  const last = keys.at(-1);
  const options: PrintKeysOptions = typeof last === "object" && last !== null ? last : {};
  const names = (typeof last === "object" && last !== null ? keys.slice(0, -1) : keys) as unknown[];
  names.forEach((k, i) => requireKey("printKeys", `key ${i + 1}`, k));
  checkKeys("printKeys", options, OPTION_KEYS);
  const { precision = 4, includeStep = true, stepKey = "step", write = console.log } = options;
  requireInteger("printKeys", "precision", precision, 0);
  requireKey("printKeys", "stepKey", stepKey);
  requireFunction("printKeys", "write", write);
  if (typeof includeStep !== "boolean") {
    throw new TypeError(`printKeys: includeStep must be a boolean, got ${describe(includeStep)}`);
  }
  if (names.length === 0 && !includeStep) {
    throw new TypeError("printKeys: pass at least one key when includeStep is false");
  }
  const fields = names as string[];
  return (event: object) => {
    const record = event as Record<string, unknown>;
    const parts: string[] = [];
    if (includeStep && stepKey in record) parts.push(`${stepKey}=${formatStep(record[stepKey])}`);
    for (const key of fields) {
      parts.push(key in record ? `${key}=${formatValue(record[key], precision)}` : `${key}=NA`);
    }
    write(parts.join(" "));
  };
}
