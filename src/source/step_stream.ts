/**
 * `stepStream(...)`: a TensorFlow.js model, trained one optimizer step per
 * event. It takes `epochStream`'s options and trains the same passes (the
 * same shuffle, batches and engines): its first n events of an epoch of n
 * steps train what that epoch's event trains.
 *
 * @module
 */
import { EventStream } from "../stream/event_stream.ts";
import type { StepEvent } from "../types.ts";
import type { ModelLike } from "../engine/model.ts";
import { registerKernels } from "../kernels/register.ts";
import { checkEpochOptions, type EpochStreamOptions, type Plan } from "./epoch_options.ts";
import { RunCursor } from "./run_cursor.ts";
import { TrainingPuller } from "./training_puller.ts";

/**
 * A stream that trains `model` one optimizer step per read and emits
 * `{ step, epoch, train_loss, train_time_sec, model, ...extra }`: `step`
 * counts optimizer steps since the run began (a resumed run goes on
 * counting), `epoch` is the pass the step belongs to, `train_loss` the
 * step's loss (the row-weighted mean over its `accumulate` batches), read
 * back once per step. It takes {@link epochStream}'s options, trains the
 * same passes on the same engines, and keeps its guarantees: nothing trains
 * until the consumer reads, `take(n)` trains exactly n steps, every stage
 * sees the model as it is after its event's step, and `checkpoint` saves the
 * run inside an epoch too (the shuffle and the position in it), so
 * `resumeFrom` continues at the next step exactly.
 *
 * On the host engine each step reads the weights and optimizer state from
 * tfjs and writes them back, so stages always see tfjs's own state: measured
 * by `bench/step_stream.ts` on the housing MLP, 0.2–0.4 ms a step more than
 * inside an epoch, and still 3.4–8.6× faster than stepping on the tfjs path,
 * so the host engine steps wherever `epochStream` takes it. Changes between
 * steps — a learning rate, a weight — take effect at the next step; a
 * layer's `trainable` flag at the next epoch.
 *
 * @example The tenth step of 4-batch epochs is in epoch 3
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { collect, stepStream, take } from "@fitstream/fitstream";
 *
 * const x = tf.tensor2d([[0], [1], [2], [3], [4], [5], [6], [7]]);
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const events = stepStream({
 *   data: [x, x.mul(2)],
 *   model,
 *   optimizer: tf.train.sgd(0.01),
 *   loss: tf.losses.meanSquaredError,
 *   batchSize: 2,
 *   seed: 1,
 * });
 * const history = await collect(events.pipeThrough(take(10)));
 * console.log(history.map((e) => e.epoch)); // [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
 * console.log(history[9].step); // 10
 * ```
 */
export function stepStream<M extends ModelLike, X extends object = Record<never, never>>(
  options: EpochStreamOptions<M, X>,
): EventStream<StepEvent<M, X>> {
  return stepEvents<M, X>(checkEpochOptions(options, "stepStream"));
}

/** The stream of step events of a checked plan (`stepStream`, `lrFinder`). Internal. */
export function stepEvents<M extends ModelLike, X extends object>(plan: Plan): EventStream<StepEvent<M, X>> {
  registerKernels(); // also when the wasm backend was set without useBackend
  const cursor = new RunCursor(plan, "step");
  const { extra, run: { model } } = plan;
  return new EventStream(() =>
    new TrainingPuller<StepEvent<M, X>>(
      "stepStream",
      cursor,
      (c) => c.step(),
      (moved, step, seconds) => ({
        ...extra,
        step,
        epoch: moved.epoch,
        train_loss: moved.loss,
        train_time_sec: seconds,
        model,
      }),
      plan.stopOnNaN,
    )
  );
}
