/**
 * Key selection shared by every sink: drop `model`, apply `include`/`exclude`.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys } from "../internal/option_keys.ts";
import { requireOptions } from "../internal/validate.ts";

/** Which keys a sink keeps. `model` is always dropped. */
export interface SelectOptions {
  /** Keep only these keys (those that exist; never `model`). */
  include?: readonly string[];
  /** Drop these keys besides `model`. */
  exclude?: readonly string[];
}

function keyList(where: string, name: string, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((k) => typeof k !== "string")) {
    throw new TypeError(`${where}: ${name} must be an array of key names, got ${describe(value)}`);
  }
  return value;
}

/** Validates the options and returns the per-event selector. Internal. */
export function selector(
  where: string,
  options: SelectOptions | undefined,
  otherOptions: readonly string[] = [],
): (event: object) => Record<string, unknown> {
  requireOptions(where, options);
  checkKeys(where, options, ["include", "exclude", ...otherOptions]);
  const include = keyList(where, "include", options?.include);
  const exclude = keyList(where, "exclude", options?.exclude);
  if (include && exclude) throw new TypeError(`${where}: pass include or exclude, not both`);
  if (include) {
    const keys = include.filter((k) => k !== "model");
    return (event) => {
      const out: Record<string, unknown> = {};
      for (const k of keys) if (k in event) out[k] = (event as Record<string, unknown>)[k];
      return out;
    };
  }
  const dropped = new Set(["model", ...(exclude ?? [])]);
  return (event) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(event)) if (!dropped.has(k)) out[k] = v;
    return out;
  };
}
