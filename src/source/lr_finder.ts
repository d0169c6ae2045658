/**
 * `lrFinder(options)`: the loss against an exponentially rising learning
 * rate, over some optimizer steps, with a suggested rate — leaving the model
 * and the optimizer as they were.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireNumber } from "../internal/validate.ts";
import { describe } from "../internal/describe.ts";
import { isLayersModel, type ModelLike } from "../engine/model.ts";
import { trainedVariables } from "../engine/trainer.ts";
import { snapshotOptimizer } from "../engine/optimizer_state.ts";
import { collect } from "../sinks/collect.ts";
import { pipe } from "../stream/pipe.ts";
import { stage } from "../stream/step_stage.ts";
import { take } from "../stages/take.ts";
import { lrSchedule } from "../stages/lr_schedule.ts";
import { checkEpochOptions, EPOCH_STREAM_HINTS, EPOCH_STREAM_KEYS, type EpochStreamOptions } from "./epoch_options.ts";
import { stepEvents } from "./step_stream.ts";

/** Options of {@link lrFinder}: `epochStream`'s (but `resumeFrom`), and the sweep's. */
export interface LrFinderOptions<M extends ModelLike, X extends object> extends EpochStreamOptions<M, X> {
  /** The rate of the first step (> 0, default 1e-7). */
  minLr?: number;
  /** The rate of the last step (> minLr, default 10). */
  maxLr?: number;
  /** Optimizer steps in the sweep (integer ≥ 3, default 100); the rate rises by the same factor each step. */
  steps?: number;
  /** Weight of the past in the smoothed loss (in [0, 1), default 0.98, bias-corrected as `ema`). */
  smoothing?: number;
  /** Stop once the smoothed loss exceeds this many times its lowest (> 1, default 4), or is not finite. */
  divergence?: number;
}

/** What {@link lrFinder} found. */
export interface LrFinderResult {
  /** The rate of each step taken. */
  lrs: number[];
  /** Each step's loss (`train_loss`). */
  losses: number[];
  /** The losses smoothed (bias-corrected exponential average). */
  smoothed: number[];
  /**
   * The rate where the smoothed loss falls fastest against log(rate), before
   * its lowest point (the first points, up to 10, are not considered).
   */
  suggested: number;
}

const FINDER_KEYS = keysOf<Omit<LrFinderOptions<ModelLike, object>, keyof EpochStreamOptions<ModelLike, object>>>({
  minLr: true,
  maxLr: true,
  steps: true,
  smoothing: true,
  divergence: true,
});

/**
 * Trains up to `steps` optimizer steps (as `stepStream` would, with the
 * same options) while the learning rate rises exponentially from `minLr`
 * to `maxLr`, records each step's loss, stops early once the smoothed loss
 * diverges, and suggests a rate: where the smoothed loss falls fastest
 * against log(rate), before its lowest point — a good starting `peak` for a
 * schedule is near it. Afterwards the model's weights and the optimizer's
 * state (slots, iteration count, learning rate) are put back as they were:
 * a fresh optimizer comes back fresh.
 *
 * @example Sweep 40 steps and start from the suggestion
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { getLearningRate, lrFinder } from "@fitstream/fitstream";
 *
 * const x = tf.randomUniform([256, 2], -1, 1, "float32", 1);
 * const y = x.sum(1, true);
 * const kernelInitializer = tf.initializers.glorotUniform({ seed: 1 }); // the same sweep every run
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2], kernelInitializer })] });
 * const optimizer = tf.train.sgd(0.01);
 * const before = model.getWeights().map((w) => w.arraySync());
 * const found = await lrFinder({
 *   data: [x, y], model, optimizer, loss: tf.losses.meanSquaredError, batchSize: 16, seed: 1,
 *   minLr: 1e-4, maxLr: 10, steps: 40,
 * });
 * console.log(found.suggested > 1e-3 && found.suggested < 5); // true
 * console.log(found.lrs[0]); // 1e-4
 * console.log(model.getWeights().map((w) => w.arraySync())); // before
 * console.log(getLearningRate(optimizer)); // 0.01
 * ```
 */
export async function lrFinder<M extends ModelLike, X extends object>(
  options: LrFinderOptions<M, X>,
): Promise<LrFinderResult> {
  checkKeys("lrFinder", options, [...EPOCH_STREAM_KEYS.filter((k) => k !== "resumeFrom"), ...FINDER_KEYS], {
    ...EPOCH_STREAM_HINTS,
    resumeFrom: "lrFinder sweeps from the model as it is: resume the run first, then call lrFinder on its model",
  });
  const { minLr = 1e-7, maxLr = 10, steps = 100, smoothing = 0.98, divergence = 4, ...streamOptions } = options;
  requireNumber("lrFinder", "minLr", minLr);
  if (minLr <= 0) throw new RangeError(`lrFinder: minLr must be > 0, got ${minLr}`);
  requireNumber("lrFinder", "maxLr", maxLr);
  if (maxLr <= minLr) throw new RangeError(`lrFinder: maxLr must be > minLr (${minLr}), got ${maxLr}`);
  requireInteger("lrFinder", "steps", steps, 3);
  requireNumber("lrFinder", "smoothing", smoothing, true);
  if (smoothing >= 1) throw new RangeError(`lrFinder: smoothing must lie in [0, 1), got ${smoothing}`);
  requireNumber("lrFinder", "divergence", divergence);
  if (divergence <= 1) throw new RangeError(`lrFinder: divergence must be > 1, got ${describe(divergence)}`);
  const plan = checkEpochOptions({ ...streamOptions, stopOnNaN: false }, "lrFinder");
  const { model, optimizer } = plan.run;

  const weights = saveWeights(model, trainedVariables(model, plan.run.variables));
  const state = snapshotOptimizer(optimizer);
  const result: LrFinderResult = { lrs: [], losses: [], smoothed: [], suggested: NaN };
  try {
    const factor = (maxLr / minLr) ** (1 / (steps - 1));
    let average = 0, best = Infinity;
    const watch = stage((event: { train_loss: number; lr: number }, index, control) => {
      const loss = event.train_loss;
      average = smoothing * average + (1 - smoothing) * loss;
      const smoothed = average / (1 - smoothing ** index);
      result.lrs.push(event.lr);
      result.losses.push(loss);
      result.smoothed.push(smoothed);
      best = Math.min(best, smoothed);
      if (!Number.isFinite(smoothed) || smoothed > divergence * best) control.stopAfter();
      return event;
    });
    await collect(pipe(
      stepEvents(plan),
      lrSchedule(optimizer, (step) => minLr * factor ** (step - 1)),
      watch,
      take(steps),
    ));
  } finally {
    weights.restore();
    weights.dispose();
    state.restore();
    state.dispose();
  }
  result.suggested = suggestion(result.lrs, result.smoothed);
  return result;
}

/** A copy of the model's weights (a layers model's all, a function model's variables), to put back. */
function saveWeights(model: ModelLike, variables: tf.Variable[]): { restore(): void; dispose(): void } {
  const copies = isLayersModel(model) ? model.getWeights().map((w) => w.clone()) : variables.map((v) => v.clone());
  return {
    restore: () => isLayersModel(model) ? model.setWeights(copies) : variables.forEach((v, i) => v.assign(copies[i])),
    dispose: () => tf.dispose(copies),
  };
}

/** The rate of the steepest fall of `smoothed` against log(rate), before its lowest point. */
function suggestion(lrs: number[], smoothed: number[]): number {
  const finite = smoothed.findIndex((v) => !Number.isFinite(v));
  const usable = finite === -1 ? smoothed.length : finite;
  if (usable === 0) return NaN;
  let lowest = 0;
  for (let i = 1; i < usable; i++) if (smoothed[i] < smoothed[lowest]) lowest = i;
  // The first points are skipped, as fastai's finder skips them: the average of a few noisy losses swings most.
  let best = lowest, steepest = Infinity;
  for (let i = Math.max(1, Math.min(10, Math.floor(usable / 5))); i < lowest; i++) {
    const slope = (smoothed[i + 1] - smoothed[i - 1]) / Math.log(lrs[i + 1] / lrs[i - 1]);
    if (slope < steepest) [best, steepest] = [i, slope];
  }
  return lrs[best];
}
