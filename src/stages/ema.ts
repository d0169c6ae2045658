/**
 * `ema(key, { decay | halfLife })`: exponential moving average of a numeric key.
 *
 * @module
 */
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { numericValue, requireKey, requireNumber, requireOptions } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import type { NumericKey, WithNumber } from "../types.ts";

/** Options of {@link ema}: exactly one of `decay` and `halfLife`. */
export interface EmaOptions<O extends string> {
  /** Weight of the running mean: `m = decay * m + (1 - decay) * x`, in (0, 1). */
  decay?: number;
  /** Events until an observation's weight halves; `decay = 2 ** (-1 / halfLife)`. */
  halfLife?: number;
  /** Key to write (default `${key}_ema`); an existing key is overwritten. */
  outKey?: O;
  /** Divide by `1 - decay ** t` (Adam-style), default `true`. */
  biasCorrection?: boolean;
}

const OPTION_KEYS = keysOf<EmaOptions<string>>({ decay: true, halfLife: true, outKey: true, biasCorrection: true });

/**
 * Adds the exponential moving average of `event[key]` as `${key}_ema` (or
 * `outKey`). The mean starts at 0; with bias correction (the default) the
 * emitted value after `t` events is `m / (1 - decay ** t)`.
 *
 * @example Smooth a noisy loss
 * ```ts
 * import { collect, ema } from "@fitstream/fitstream";
 *
 * const source = ReadableStream.from([{ loss: 10 }, { loss: 20 }, { loss: 30 }]);
 * const rows = await collect(source.pipeThrough(ema("loss", { decay: 0.5 })));
 * console.log(rows.map((r) => r.loss_ema.toFixed(4))); // ["10.0000", "16.6667", "24.2857"]
 * ```
 */
export function ema<
  const K extends string,
  E extends object = { [P in K]: number },
  const O extends string = `${K}_ema`,
>(
  key: NumericKey<E, K>,
  options: EmaOptions<O> = {},
): Stage<E, WithNumber<E, O>> {
  requireKey("ema", "key", key);
  requireOptions("ema", options);
  checkKeys("ema", options, OPTION_KEYS);
  const { decay, halfLife, biasCorrection = true } = options;
  const outKey = options.outKey ?? `${key}_ema`;
  requireKey("ema", "outKey", outKey);
  if ((decay === undefined) === (halfLife === undefined)) {
    throw new TypeError("ema: pass exactly one of decay and halfLife");
  }
  let resolved: number;
  if (halfLife !== undefined) {
    requireNumber("ema", "halfLife", halfLife);
    if (halfLife <= 0) throw new RangeError(`ema: halfLife must be > 0, got ${halfLife}`);
    resolved = 2 ** (-1 / halfLife);
  } else {
    requireNumber("ema", "decay", decay);
    resolved = decay!;
  }
  if (!(resolved > 0 && resolved < 1)) {
    throw new RangeError(`ema: decay must lie strictly between 0 and 1, got ${resolved}`);
  }
  if (typeof biasCorrection !== "boolean") {
    throw new TypeError("ema: biasCorrection must be a boolean");
  }
  const d = resolved;
  let m = 0;
  let power = 1; // decay ** t
  return stepStage<E, WithNumber<E, O>>((event) => {
    const x = numericValue("ema", event, key);
    m = d * m + (1 - d) * x;
    power *= d;
    const value = biasCorrection ? m / (1 - power) : m;
    return { ...event, [outKey]: value } as unknown as WithNumber<E, O>;
  });
}
