/**
 * `epochStream(...)`: a TensorFlow.js model, trained one epoch per event.
 * Its options and their checks are in `epoch_options.ts`; `explainEngine`,
 * which checks the same options, is in `explain_engine.ts`.
 *
 * @module
 */
import { EventStream } from "../stream/event_stream.ts";
import type { EpochEvent } from "../types.ts";
import type { ModelLike } from "../engine/model.ts";
import { registerKernels } from "../kernels/register.ts";
import { checkEpochOptions, type EpochStreamOptions } from "./epoch_options.ts";
import { RunCursor } from "./run_cursor.ts";
import { TrainingPuller } from "./training_puller.ts";

// Re-exported here, where the package's entry points have always found them.
export type { EngineChoice } from "../engine/trainer.ts";
export type { EpochStreamOptions } from "./epoch_options.ts";
export { type EngineExplanation, explainEngine } from "./explain_engine.ts";

/**
 * A stream that trains `model` for one epoch per read and emits
 * `{ step, train_loss, train_time_sec, model, ...extra }`. It never ends on
 * its own: cap it with `take`, `earlyStop`, or a `break`. Nothing trains until
 * the consumer reads, and behind library stages epoch `n` starts only once
 * event `n` is asked for. `train_loss` is the sample-weighted mean of the
 * epoch's batch losses, read back once per epoch. Options are checked up
 * front (including a one-row probe of the model and loss, and a scan of the
 * data for NaN/Infinity), so mistakes surface before anything trains.
 *
 * @example Fit y = 2x
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { collect, epochStream, take } from "@fitstream/fitstream";
 *
 * const x = tf.tensor2d([[0], [1], [2], [3]]);
 * const y = x.mul(2);
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const events = epochStream({
 *   data: [x, y],
 *   model,
 *   optimizer: tf.train.adam(0.1),
 *   loss: tf.losses.meanSquaredError,
 *   batchSize: 2,
 *   seed: 1,
 * });
 * const history = await collect(events.pipeThrough(take(3)));
 * console.log(history.map((e) => e.step)); // [1, 2, 3]
 * ```
 */
export function epochStream<M extends ModelLike, X extends object = Record<never, never>>(
  options: EpochStreamOptions<M, X>,
): EventStream<EpochEvent<M, X>> {
  const plan = checkEpochOptions(options);
  const saved = plan.resumeFrom;
  if (saved?.manifest.position && saved.manifest.position.batch > 0) {
    const { epochs, batch } = saved.manifest.position;
    throw new Error(
      `epochStream: resumeFrom: "${saved.path}" was saved by stepStream inside epoch ${epochs + 1}, after ` +
        `${batch} of its batches: resume it with stepStream({ resumeFrom }), or from a checkpoint saved at an ` +
        `epoch's end`,
    );
  }
  registerKernels(); // also when the wasm backend was set without useBackend
  const cursor = new RunCursor(plan, "epoch");
  const { extra, run: { model } } = plan;
  return new EventStream(() =>
    new TrainingPuller<EpochEvent<M, X>>(
      "epochStream",
      cursor,
      (c) => c.epoch(),
      (moved, step, seconds) => ({ ...extra, step, train_loss: moved.loss, train_time_sec: seconds, model }),
      plan.stopOnNaN,
    )
  );
}
