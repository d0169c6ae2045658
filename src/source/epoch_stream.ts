/**
 * `epochStream(...)`: a TensorFlow.js model, trained one epoch per event.
 * Its options and their checks are in `epoch_options.ts`; `explainEngine`,
 * which checks the same options, is in `explain_engine.ts`.
 *
 * @module
 */
import { EventStream } from "../stream/event_stream.ts";
import { DONE, more, type Puller, type PullResult } from "../stream/puller.ts";
import type { EpochEvent } from "../types.ts";
import type { ModelLike } from "../engine/model.ts";
import { permutation } from "../data/random.ts";
import { restoreRun } from "../checkpoint/resume.ts";
import { attachTrainingState } from "../stream/training_state.ts";
import { EpochTraining } from "../engine/trainer.ts";
import { registerKernels } from "../kernels/register.ts";
import { isPassAware } from "../data/dataset.ts";
import { checkEpochOptions, type EpochStreamOptions, type Plan } from "./epoch_options.ts";

// Re-exported here, where the package's entry points have always found them.
export type { EngineChoice } from "../engine/trainer.ts";
export type { EpochStreamOptions } from "./epoch_options.ts";
export { type EngineExplanation, explainEngine } from "./explain_engine.ts";

class EpochPuller<M extends ModelLike, X extends object> implements Puller<EpochEvent<M, X>> {
  #plan: Plan;
  #training: EpochTraining;
  #step = 0;
  /** Names this run in its checkpoints; a resumed run keeps the identity it had. */
  #runId: string = crypto.randomUUID();
  #cancelled = false;
  #running: Promise<unknown> | undefined;

  constructor(plan: Plan) {
    this.#plan = plan;
    this.#training = new EpochTraining(plan.run);
  }

  next(): Promise<PullResult<EpochEvent<M, X>>> {
    if (this.#cancelled) return Promise.resolve(DONE);
    const run = this.#resume().then(() => this.#epoch());
    this.#running = run.catch(() => {});
    return run;
  }

  /** Before the first epoch: restores the checkpoint named by `resumeFrom`, once. */
  async #resume(): Promise<void> {
    const from = this.#plan.resumeFrom;
    if (from === undefined) return;
    this.#plan.resumeFrom = undefined;
    const { random, run: { model, optimizer } } = this.#plan;
    const restored = await restoreRun(from, { model, optimizer, variables: this.#training.variables });
    this.#step = restored.step;
    this.#runId = restored.runId ?? this.#runId;
    random.state = restored.rngState;
  }

  async #epoch(): Promise<PullResult<EpochEvent<M, X>>> {
    const { random, extra, shuffle, run: { model, optimizer, rows } } = this.#plan;
    const started = performance.now();
    const dataset = this.#plan.run.dataset;
    if (isPassAware(dataset)) dataset.nextPass = this.#step; // a resumed run reads pass k + 1 next
    const trainLoss = dataset
      ? await this.#training.epochOfDataset(this.#step + 1)
      : await this.#training.epoch(shuffle ? permutation(rows, random) : undefined);
    const step = ++this.#step;
    if (this.#plan.stopOnNaN && !Number.isFinite(trainLoss)) {
      throw new RangeError(
        `epochStream: step ${step}: train_loss is ${trainLoss}: training diverged ` +
          `(try a lower learning rate; stopOnNaN: false lets it continue)`,
      );
    }
    const event = {
      ...extra,
      step,
      train_loss: trainLoss,
      train_time_sec: (performance.now() - started) / 1000,
      model,
    } as unknown as EpochEvent<M, X>;
    attachTrainingState(event, {
      model,
      optimizer,
      variables: this.#training.variables,
      step,
      rngState: random.state,
      runId: this.#runId,
    });
    return more(event);
  }

  async cancel(): Promise<void> {
    this.#cancelled = true;
    await this.#running; // the epoch in flight finishes and frees its tensors
  }
}

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
  registerKernels(); // also when the wasm backend was set without useBackend
  return new EventStream(() => new EpochPuller<M, X>(plan));
}
