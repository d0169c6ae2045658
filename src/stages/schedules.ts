/**
 * Learning-rate schedules: plain functions `(step) => lr` of the 1-based
 * step (an optimizer step behind `stepStream`, an epoch behind
 * `epochStream`), for `lrSchedule`. Each checks its settings when it is made
 * and its step when it is called. They need no tfjs.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireNumber, requireOptions } from "../internal/validate.ts";

/** A learning rate for each 1-based step. */
export type Schedule = (step: number) => number;

/** Options of {@link warmupCosine}. */
export interface WarmupCosineOptions {
  /** The rate at the end of the warm-up (> 0). */
  peak: number;
  /** Steps of linear warm-up (integer ≥ 0): `peak / warmup` at step 1, `peak` at step `warmup`. */
  warmup: number;
  /** The step at which the cosine reaches `floor` (integer > `warmup`). */
  total: number;
  /** The rate at `total` and after (0 ≤ floor ≤ peak, default 0). */
  floor?: number;
}

/** Options of {@link oneCycle}. */
export interface OneCycleOptions {
  /** The highest rate (> 0). */
  peak: number;
  /** Steps in the cycle (integer ≥ 2); after it the rate stays at its lowest. */
  total: number;
  /** The share of the cycle spent rising (in (0, 1), default 0.3). */
  pctStart?: number;
  /** The first rate is `peak / divFactor` (> 0, default 25). */
  divFactor?: number;
  /** The last rate is the first over `finalDivFactor` (> 0, default 1e4). */
  finalDivFactor?: number;
}

/** Options of {@link stepDecay}. */
export interface StepDecayOptions {
  /** The rate of the first `every` steps (> 0). */
  initial: number;
  /** The rate is multiplied by this every `every` steps (> 0). */
  factor: number;
  /** Steps between decays (integer ≥ 1). */
  every: number;
}

/** Options of {@link exponentialDecay}. */
export interface ExponentialDecayOptions {
  /** The rate at step 1 (> 0). */
  initial: number;
  /** The rate is multiplied by this over every `every` steps, smoothly (> 0). */
  decay: number;
  /** Steps over which the rate falls by `decay` (integer ≥ 1, default 1). */
  every?: number;
}

/** Options of {@link piecewise}. */
export interface PiecewiseOptions {
  /** Steps where the rate changes, increasing integers ≥ 1: `values[i]` holds through step `boundaries[i]`. */
  boundaries: readonly number[];
  /** The rates, one more than the boundaries (each ≥ 0); the last holds after the last boundary. */
  values: readonly number[];
}

function positive(where: string, name: string, value: unknown): number {
  requireNumber(where, name, value);
  if ((value as number) <= 0) throw new RangeError(`${where}: ${name} must be > 0, got ${value}`);
  return value as number;
}

function options<T extends object>(where: string, value: T, keys: readonly string[]): T {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${where}: options must be an object, got ${describe(value)}`);
  }
  requireOptions(where, value);
  checkKeys(where, value, keys);
  return value;
}

/** `rate` as a schedule that checks its step, named `where` in errors. */
function schedule(where: string, rate: (step: number) => number): Schedule {
  return (step: number) => {
    requireInteger(where, "step", step, 1);
    return rate(step);
  };
}

/** `start` at `pct` 0 to `end` at `pct` 1 along half a cosine. */
function cosine(start: number, end: number, pct: number): number {
  return end + (start - end) / 2 * (Math.cos(Math.PI * pct) + 1);
}

/**
 * Linear warm-up, then cosine decay: rises from `peak / warmup` at step 1
 * to `peak` at step `warmup`, falls along half a cosine to `floor` at step
 * `total`, and stays at `floor` after it.
 *
 * @example
 * ```ts
 * import { warmupCosine } from "@fitstream/fitstream";
 *
 * const lr = warmupCosine({ peak: 0.1, warmup: 4, total: 12, floor: 0.01 });
 * console.log([1, 2, 4, 8, 12, 20].map((s) => Number(lr(s).toFixed(4)))); // [0.025, 0.05, 0.1, 0.055, 0.01, 0.01]
 * ```
 */
export function warmupCosine(options_: WarmupCosineOptions): Schedule {
  const where = "warmupCosine";
  const { peak, warmup, total, floor = 0 } = options(where, options_, WARMUP_COSINE_KEYS);
  positive(where, "peak", peak);
  requireInteger(where, "warmup", warmup, 0);
  requireInteger(where, "total", total, warmup + 1);
  requireNumber(where, "floor", floor, true);
  if (floor > peak) throw new RangeError(`${where}: floor must be <= peak (${peak}), got ${floor}`);
  return schedule(where, (step) => {
    if (step <= warmup) return peak * step / warmup;
    if (step >= total) return floor;
    return cosine(peak, floor, (step - warmup) / (total - warmup));
  });
}

/**
 * The one-cycle policy (as PyTorch's `OneCycleLR` with cosine annealing):
 * from `peak / divFactor` up to `peak` over the first `pctStart` of `total`
 * steps, then down to `peak / divFactor / finalDivFactor` at step `total`,
 * and there after it.
 *
 * @example
 * ```ts
 * import { oneCycle } from "@fitstream/fitstream";
 *
 * const lr = oneCycle({ peak: 1, total: 10, pctStart: 0.3, divFactor: 10, finalDivFactor: 10 });
 * console.log([1, 2, 3, 6, 10].map((s) => Number(lr(s).toFixed(4)))); // [0.1, 0.55, 1, 0.6151, 0.01]
 * ```
 */
export function oneCycle(options_: OneCycleOptions): Schedule {
  const where = "oneCycle";
  const { peak, total, pctStart = 0.3, divFactor = 25, finalDivFactor = 1e4 } = options(
    where,
    options_,
    ONE_CYCLE_KEYS,
  );
  positive(where, "peak", peak);
  requireInteger(where, "total", total, 2);
  requireNumber(where, "pctStart", pctStart);
  if (!(pctStart > 0 && pctStart < 1)) {
    throw new RangeError(`${where}: pctStart must lie strictly between 0 and 1, got ${pctStart}`);
  }
  positive(where, "divFactor", divFactor);
  positive(where, "finalDivFactor", finalDivFactor);
  const initial = peak / divFactor, lowest = initial / finalDivFactor;
  // PyTorch's phases, on the 0-based step: up until pctStart·total − 1, down until total − 1.
  const up = pctStart * total - 1, end = total - 1;
  return schedule(where, (step) => {
    const t = step - 1;
    if (t >= end) return lowest;
    if (t <= up) return cosine(initial, peak, up > 0 ? t / up : 1);
    return cosine(peak, lowest, (t - Math.max(up, 0)) / (end - Math.max(up, 0)));
  });
}

/**
 * `initial`, multiplied by `factor` every `every` steps: steps 1 to `every`
 * at `initial`, the next `every` at `initial · factor`, and so on.
 *
 * @example
 * ```ts
 * import { stepDecay } from "@fitstream/fitstream";
 *
 * const lr = stepDecay({ initial: 0.1, factor: 0.5, every: 10 });
 * console.log([1, 10, 11, 21].map(lr)); // [0.1, 0.1, 0.05, 0.025]
 * ```
 */
export function stepDecay(options_: StepDecayOptions): Schedule {
  const where = "stepDecay";
  const { initial, factor, every } = options(where, options_, STEP_DECAY_KEYS);
  positive(where, "initial", initial);
  positive(where, "factor", factor);
  requireInteger(where, "every", every, 1);
  return schedule(where, (step) => initial * factor ** Math.floor((step - 1) / every));
}

/**
 * `initial · decay^((step − 1) / every)`: a smooth fall by `decay` over
 * every `every` steps.
 *
 * @example
 * ```ts
 * import { exponentialDecay } from "@fitstream/fitstream";
 *
 * const lr = exponentialDecay({ initial: 0.1, decay: 0.5, every: 2 });
 * console.log([1, 2, 3, 5].map((s) => Number(lr(s).toFixed(4)))); // [0.1, 0.0707, 0.05, 0.025]
 * ```
 */
export function exponentialDecay(options_: ExponentialDecayOptions): Schedule {
  const where = "exponentialDecay";
  const { initial, decay, every = 1 } = options(where, options_, EXPONENTIAL_DECAY_KEYS);
  positive(where, "initial", initial);
  positive(where, "decay", decay);
  requireInteger(where, "every", every, 1);
  return schedule(where, (step) => initial * decay ** ((step - 1) / every));
}

/**
 * Constant rates between boundaries: `values[0]` through step
 * `boundaries[0]`, `values[1]` through `boundaries[1]`, …, and the last
 * value after the last boundary.
 *
 * @example
 * ```ts
 * import { piecewise } from "@fitstream/fitstream";
 *
 * const lr = piecewise({ boundaries: [100, 150], values: [0.1, 0.01, 0.001] });
 * console.log([1, 100, 101, 150, 151].map(lr)); // [0.1, 0.1, 0.01, 0.01, 0.001]
 * ```
 */
export function piecewise(options_: PiecewiseOptions): Schedule {
  const where = "piecewise";
  const { boundaries, values } = options(where, options_, PIECEWISE_KEYS);
  if (!Array.isArray(boundaries) || !Array.isArray(values)) {
    throw new TypeError(
      `${where}: boundaries and values must be arrays, got ${describe(boundaries)}, ${describe(values)}`,
    );
  }
  boundaries.forEach((b, i) => requireInteger(where, `boundaries[${i}]`, b, i === 0 ? 1 : boundaries[i - 1] + 1));
  values.forEach((v, i) => requireNumber(where, `values[${i}]`, v, true));
  if (values.length !== boundaries.length + 1) {
    throw new RangeError(
      `${where}: values must hold one rate more than boundaries (${boundaries.length + 1}), got ${values.length}`,
    );
  }
  const bounds = [...boundaries], rates = [...values];
  return schedule(where, (step) => {
    const i = bounds.findIndex((b) => step <= b);
    return rates[i === -1 ? rates.length - 1 : i];
  });
}

const WARMUP_COSINE_KEYS = keysOf<WarmupCosineOptions>({ peak: true, warmup: true, total: true, floor: true });
const ONE_CYCLE_KEYS = keysOf<OneCycleOptions>({
  peak: true,
  total: true,
  pctStart: true,
  divFactor: true,
  finalDivFactor: true,
});
const STEP_DECAY_KEYS = keysOf<StepDecayOptions>({ initial: true, factor: true, every: true });
const EXPONENTIAL_DECAY_KEYS = keysOf<ExponentialDecayOptions>({ initial: true, decay: true, every: true });
const PIECEWISE_KEYS = keysOf<PiecewiseOptions>({ boundaries: true, values: true });
