/**
 * `lrSchedule(optimizer, schedule)`: the learning rate of every step (or
 * epoch) from a schedule, on either stream and either engine.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { rateHolder, setLearningRate } from "../engine/learning_rate.ts";
import { requireFunction } from "../internal/validate.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import { upcomingStep } from "../stream/training_state.ts";
import type { Optimizer } from "../tf_types.ts";
import type { WithNumber } from "../types.ts";
import type { Schedule } from "./schedules.ts";

/**
 * Sets `optimizer`'s rate from `schedule`: `schedule(1)` when the stage is
 * built (or `schedule(n + 1)` when a stream resumed at step n trains with
 * this optimizer), then `schedule(n + 1)` after the event with `step` n, so
 * every step trains with its own rate; adds `lr`, the rate the event trained
 * with. Behind `stepStream` the step is an optimizer step, behind
 * `epochStream` an epoch. Works on both engines (it calls
 * `setLearningRate`). A rate that is not a finite number ≥ 0 is a
 * `RangeError` naming the step.
 *
 * @example Warm up and decay per optimizer step
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { collect, lrSchedule, pipe, stepStream, take, warmupCosine } from "@fitstream/fitstream";
 *
 * const x = tf.tensor2d([[0], [1], [2], [3]]);
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const optimizer = tf.train.sgd(0.1);
 * const events = await collect(pipe(
 *   stepStream({ data: [x, x.mul(2)], model, optimizer, loss: tf.losses.meanSquaredError, batchSize: 2 }),
 *   lrSchedule(optimizer, warmupCosine({ peak: 0.02, warmup: 2, total: 6 })),
 *   take(6),
 * ));
 * console.log(events.map((e) => Number(e.lr.toFixed(4)))); // [0.01, 0.02, 0.0171, 0.01, 0.0029, 0]
 * ```
 */
export function lrSchedule<E extends object>(optimizer: Optimizer, schedule: Schedule): Stage<E, WithNumber<E, "lr">> {
  rateHolder("lrSchedule", optimizer);
  requireFunction("lrSchedule", "schedule", schedule);
  let at = 0, rate = 0;
  /** Sets the rate for `step`, unless it is set already. */
  const setFor = (step: number) => {
    if (step === at) return;
    const lr = schedule(step);
    if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) {
      const got = typeof lr === "number" ? lr : describe(lr);
      throw new RangeError(`lrSchedule: schedule(${step}) must be a finite number >= 0, got ${got}`);
    }
    setLearningRate(optimizer, lr);
    [at, rate] = [step, lr];
  };
  setFor(upcomingStep(optimizer) ?? 1);
  return stepStage<E, WithNumber<E, "lr">>((event, index) => {
    const used = rate;
    const step = (event as { step?: unknown }).step;
    setFor((typeof step === "number" && Number.isInteger(step) && step >= 1 ? step : index) + 1);
    return { ...event, lr: used } as unknown as WithNumber<E, "lr">;
  }, {
    // Before each read: a stream built after the stage (or resumed) may stand elsewhere than the stage assumed.
    stopWhen: () => {
      const next = upcomingStep(optimizer);
      if (next !== undefined) setFor(next);
      return false;
    },
  });
}
