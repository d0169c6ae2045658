/**
 * `earlyStop({ key, patience, mode, minDelta })`: stop when a metric stalls.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { numericValue, requireInteger, requireKey, requireNumber, requireOptions } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import { withStopReason } from "../stream/stop_reason.ts";
import type { NumericKey } from "../types.ts";
import { snapshotWeights, type WeightSnapshot } from "../source/weights.ts";

/** Options of {@link earlyStop}. */
export interface EarlyStopOptions<K extends string> {
  /** The numeric event key to watch, e.g. `"val_loss"`. */
  key: K;
  /**
   * Non-improving events in a row that end the stream (integer ≥ 1, default
   * 10, as in {@link reduceLrOnPlateau}: with both stages, give `earlyStop`
   * the longer patience, so the rate is lowered before the run gives up).
   */
  patience?: number;
  /** `"min"` (default): lower is better; `"max"`: higher is better. */
  mode?: "min" | "max";
  /** How much a value must beat the best to count as an improvement (≥ 0, default 0). */
  minDelta?: number;
  /**
   * When the stage stops the stream, put the weights of the best event's epoch
   * back into the model (default `false`). Needs events from `epochStream`.
   * The last event is still delivered with the last epoch's model; the weights
   * are restored as the stream ends.
   */
  restoreBest?: boolean;
}

const OPTION_KEYS = keysOf<EarlyStopOptions<string>>({
  key: true,
  patience: true,
  mode: true,
  minDelta: true,
  restoreBest: true,
});

/**
 * Ends the stream once `key` has failed to improve for `patience` events in a
 * row (10 unless given). The first event always improves. The event that exhausts the patience
 * is passed on, then the stream ends and upstream is cancelled; nothing past
 * it is pulled, so the model is exactly the model of that last event.
 *
 * @example Stop after two events without improvement
 * ```ts
 * import { collect, earlyStop } from "@fitstream/fitstream";
 *
 * const source = ReadableStream.from([5, 4, 4, 4, 3].map((val_loss) => ({ val_loss })));
 * const rows = await collect(source.pipeThrough(earlyStop({ key: "val_loss", patience: 2 })));
 * console.log(rows.map((r) => r.val_loss)); // [5, 4, 4, 4]
 * ```
 */
export function earlyStop<const K extends string, E extends object = { [P in K]: number }>(
  options: EarlyStopOptions<NumericKey<E, K>>,
): Stage<E, E> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`earlyStop: options must be an object with key, got ${describe(options)}`);
  }
  requireOptions("earlyStop", options);
  checkKeys("earlyStop", options, OPTION_KEYS);
  const { key, patience = 10, mode = "min", minDelta = 0, restoreBest = false } = options;
  requireKey("earlyStop", "key", key);
  requireInteger("earlyStop", "patience", patience, 1);
  if (mode !== "min" && mode !== "max") {
    throw new RangeError(`earlyStop: mode must be "min" or "max", got ${describe(mode)}`);
  }
  requireNumber("earlyStop", "minDelta", minDelta, true);
  if (typeof restoreBest !== "boolean") {
    throw new TypeError(`earlyStop: restoreBest must be a boolean, got ${describe(restoreBest)}`);
  }
  const sign = mode === "min" ? 1 : -1;
  let best = NaN;
  let stale = 0;
  let snapshot: WeightSnapshot | undefined;
  return stepStage<E, E>((event, index, control) => {
    const value = numericValue("earlyStop", event, key);
    const improved = index === 1 || sign * value < sign * best - minDelta;
    if (improved) {
      best = value;
      stale = 0;
      if (restoreBest) {
        snapshot?.dispose();
        snapshot = snapshotWeights("earlyStop", event);
      }
    } else if (++stale >= patience) {
      control.stopAfter();
      return withStopReason(event, "early stop");
    }
    return event;
  }, {
    onEnd({ how }) {
      if (how === "stopped") snapshot?.restore();
      snapshot?.dispose();
      snapshot = undefined;
    },
  });
}
