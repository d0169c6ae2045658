/**
 * Argument checks shared by every public function. Each throws a `TypeError`
 * or `RangeError` whose message names the function, the parameter and what was
 * expected.
 *
 * @module
 */
import { describe } from "./describe.ts";

/** `value` must be a function. */
export function requireFunction(where: string, name: string, value: unknown): void {
  if (typeof value !== "function") {
    throw new TypeError(`${where}: ${name} must be a function, got ${describe(value)}`);
  }
}

/** `value` must be an integer ≥ `min`. */
export function requireInteger(where: string, name: string, value: unknown, min: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new RangeError(`${where}: ${name} must be an integer >= ${min}, got ${describe(value)}`);
  }
  if (value < min) throw new RangeError(`${where}: ${name} must be an integer >= ${min}, got ${value}`);
}

/** `value` must be a finite number (optionally ≥ 0). */
export function requireNumber(where: string, name: string, value: unknown, nonNegative = false): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${where}: ${name} must be a finite number, got ${describe(value)}`);
  }
  if (nonNegative && value < 0) throw new RangeError(`${where}: ${name} must be >= 0, got ${value}`);
}

/** `value` must be a non-empty string. */
export function requireKey(where: string, name: string, value: unknown): void {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${where}: ${name} must be a non-empty string, got ${describe(value)}`);
  }
}

/** `value` must be `undefined` or a plain options object. */
export function requireOptions(where: string, value: unknown): void {
  if (value !== undefined && (typeof value !== "object" || value === null || Array.isArray(value))) {
    throw new TypeError(`${where}: options must be an object, got ${describe(value)}`);
  }
}

/** The event's numeric value at `key`, or a `TypeError` naming the stage and key. */
export function numericValue(where: string, event: unknown, key: string): number {
  if (typeof event !== "object" || event === null || !(key in event)) {
    throw new TypeError(`${where}: event has no key "${key}"`);
  }
  const value = (event as Record<string, unknown>)[key];
  if (typeof value !== "number") {
    throw new TypeError(`${where}: event["${key}"] must be a number, got ${describe(value)}`);
  }
  return value;
}
