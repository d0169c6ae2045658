/**
 * `reduceLrOnPlateau({ key, factor, patience, minLr })`: lower the learning
 * rate when a metric stalls.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { numericValue, requireInteger, requireKey, requireNumber, requireOptions } from "../internal/validate.ts";
import { trainingStateOf } from "../stream/training_state.ts";
import { getLearningRate, rateHolder, setLearningRate } from "../engine/learning_rate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import type { NumericKey, WithNumber } from "../types.ts";

/** Options of {@link reduceLrOnPlateau}. */
export interface ReduceLrOnPlateauOptions<K extends string> {
  /** The numeric key to watch, e.g. `"val_loss"`. */
  key: K;
  /** Multiplier applied to the rate on a plateau, in (0, 1) (default 0.1). */
  factor?: number;
  /** Non-improving events in a row that make a plateau (integer ≥ 1, default 10). */
  patience?: number;
  /** The rate never goes below this (≥ 0, default 0). */
  minLr?: number;
  /** `"min"` (default) or `"max"`. */
  mode?: "min" | "max";
  /** How much a value must beat the best to count as an improvement (≥ 0, default 0). */
  minDelta?: number;
}

const OPTION_KEYS = keysOf<ReduceLrOnPlateauOptions<string>>({
  key: true,
  factor: true,
  patience: true,
  minLr: true,
  mode: true,
  minDelta: true,
});

/**
 * Multiplies the optimizer's learning rate by `factor` (not below `minLr`)
 * each time `key` fails to improve for `patience` events in a row, then
 * starts counting again. Adds `lr`: the rate the next epoch will use. Needs
 * events from `epochStream` (it reaches the optimizer through them).
 *
 * @example Halve the rate after 3 stalled epochs
 * ```ts ignore
 * pipe(epochStream({ ... }), augment(validationLoss({ ... })), reduceLrOnPlateau({ key: "val_loss", factor: 0.5, patience: 3 }));
 * ```
 */
export function reduceLrOnPlateau<const K extends string, E extends object = { [P in K]: number }>(
  options: ReduceLrOnPlateauOptions<NumericKey<E, K>>,
): Stage<E, WithNumber<E, "lr">> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`reduceLrOnPlateau: options must be an object with key, got ${describe(options)}`);
  }
  requireOptions("reduceLrOnPlateau", options);
  checkKeys("reduceLrOnPlateau", options, OPTION_KEYS);
  const { key, factor = 0.1, patience = 10, minLr = 0, mode = "min", minDelta = 0 } = options;
  requireKey("reduceLrOnPlateau", "key", key);
  requireNumber("reduceLrOnPlateau", "factor", factor);
  if (!(factor > 0 && factor < 1)) {
    throw new RangeError(`reduceLrOnPlateau: factor must lie strictly between 0 and 1, got ${factor}`);
  }
  requireInteger("reduceLrOnPlateau", "patience", patience, 1);
  requireNumber("reduceLrOnPlateau", "minLr", minLr, true);
  requireNumber("reduceLrOnPlateau", "minDelta", minDelta, true);
  if (mode !== "min" && mode !== "max") {
    throw new RangeError(`reduceLrOnPlateau: mode must be "min" or "max", got ${describe(mode)}`);
  }
  const sign = mode === "min" ? 1 : -1;
  let best = NaN;
  let stale = 0;
  return stepStage<E, WithNumber<E, "lr">>((event, index) => {
    const value = numericValue("reduceLrOnPlateau", event, key);
    const optimizer = trainingStateOf("reduceLrOnPlateau", event).optimizer;
    rateHolder("reduceLrOnPlateau", optimizer); // a clear error for an optimizer without a numeric rate
    if (index === 1 || sign * value < sign * best - minDelta) {
      best = value;
      stale = 0;
    } else if (++stale >= patience) {
      setLearningRate(optimizer, Math.max(getLearningRate(optimizer) * factor, minLr));
      stale = 0;
    }
    return { ...event, lr: getLearningRate(optimizer) } as unknown as WithNumber<E, "lr">;
  });
}
