/**
 * `emaWeights({ decay })`: an exponential moving average of the model's
 * weights, kept beside the run (and in its checkpoints), swapped in to
 * validate it and when the stream ends.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireKey, requireNumber } from "../internal/validate.ts";
import { isLayersModel } from "../engine/model.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";
import { type TrainingState, trainingStateOf } from "../stream/training_state.ts";
import type { RunPart } from "../stream/run_parts.ts";
import type { Tensor } from "../tf_types.ts";
import { ownBuffer } from "../checkpoint/weight_bytes.ts";

/** Options of {@link emaWeights}. */
export interface EmaWeightsOptions {
  /** Weight of the past average at each event, in (0, 1): `avg = decay·avg + (1 − decay)·w`. */
  decay: number;
  /**
   * When the stream ends without an error (here or in a later stage):
   * `"swap"` (the default) puts the average into the model; `"keep"` leaves
   * the trained weights in the model and keeps the average for `averaged()`
   * until `dispose()`. After an error the model keeps its trained weights
   * and the average is freed.
   */
  atEnd?: "swap" | "keep";
  /** The name the average is saved under in checkpoints (default `"ema"`): one per stage of a run. */
  name?: string;
}

/** The stage {@link emaWeights} returns: a stage, and ways to reach the average. */
export interface EmaWeightsStage<E> extends Stage<E, E> {
  /**
   * Wraps `fn` (an augmenter such as `validationLoss(...)`): the returned
   * function runs it with the average in the model, then puts the trained
   * weights back. Place it after this stage.
   */
  withAveraged<F extends (...args: any[]) => Promise<unknown>>(fn: F): F;
  /** The same, for a function that does not return a promise: the wrapper does. */
  withAveraged<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => Promise<Awaited<R>>;
  /** Copies of the average, in the order of `model.getWeights()` (the caller owns them). */
  averaged(): Tensor[];
  /** Frees the average (with `atEnd: "keep"`, once it is no longer needed; it is freed itself otherwise). */
  dispose(): void;
}

const OPTION_KEYS = keysOf<EmaWeightsOptions>({ decay: true, atEnd: true, name: true });

/** The weights the average follows: all of a layers model's, a function model's trained variables. */
function weightsOf(state: TrainingState): tf.Variable[] {
  const model = state.model;
  return isLayersModel(model) ? model.weights.map((w) => w.read() as tf.Variable) : state.variables;
}

/**
 * Keeps an exponential moving average of the model's weights, updated at
 * every event that passes (per optimizer step behind `stepStream`, per
 * epoch behind `epochStream`): it starts at the first event's weights, then
 * `avg = decay·avg + (1 − decay)·w` (weights that are not float32 follow the
 * model as they are). Events pass on unchanged. `withAveraged(fn)` runs a
 * stage's function — a validation loss, say — with the average in the
 * model and the trained weights put back after; when the stream ends the
 * average goes into the model (or, with `atEnd: "keep"`, stays beside it for
 * `averaged()`). A `checkpoint` placed after it saves the average with the
 * run, and a run resumed from that checkpoint carries on from it exactly.
 * A stage made before the pipeline (to reach `withAveraged`) cannot infer
 * the events it will pass: give it their type
 * (`emaWeights<StepEvent<typeof model>>(...)`), or they are typed `any`
 * from there on.
 *
 * @example Validate the average every step, end with it in the model
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { augment, collect, emaWeights, pipe, stepStream, take, validationLoss } from "@fitstream/fitstream";
 *
 * const x = tf.tensor2d([[0], [1], [2], [3]]);
 * const y = x.mul(2);
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const loss = tf.losses.meanSquaredError;
 * const average = emaWeights({ decay: 0.9 });
 * const events = await collect(pipe(
 *   stepStream({ data: [x, y], model, optimizer: tf.train.adam(0.1), loss, batchSize: 2, seed: 1 }),
 *   average,
 *   augment(average.withAveraged(validationLoss({ data: [x, y], loss, key: "val_loss_ema" }))),
 *   take(20),
 * ));
 * console.log(events.every((e) => typeof e.val_loss_ema === "number")); // true
 * ```
 */
export function emaWeights<E = any>(options: EmaWeightsOptions): EmaWeightsStage<E> {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`emaWeights: options must be an object with decay, got ${describe(options)}`);
  }
  checkKeys("emaWeights", options, OPTION_KEYS);
  const { decay, atEnd = "swap", name = "ema" } = options;
  requireNumber("emaWeights", "decay", decay);
  if (!(decay > 0 && decay < 1)) {
    throw new RangeError(`emaWeights: decay must lie strictly between 0 and 1, got ${decay}`);
  }
  if (atEnd !== "swap" && atEnd !== "keep") {
    throw new RangeError(`emaWeights: atEnd must be "swap" or "keep", got ${describe(atEnd)}`);
  }
  requireKey("emaWeights", "name", name);

  let average: tf.Tensor[] | undefined;
  let weights: tf.Variable[] = [];
  let state: TrainingState | undefined;
  const part: RunPart & { step: number } = { step: 0, tensors: () => average ?? [] };

  /** The first event: the average starts at the weights, or at what a checkpoint saved. */
  const start = (event: unknown) => {
    state = trainingStateOf("emaWeights", event);
    weights = weightsOf(state);
    const saved = state.parts.claim(name);
    if (saved) {
      const decoded = tf.io.decodeWeights(ownBuffer(saved.data), saved.specs);
      const tensors = saved.specs.map((s) => decoded[s.name]);
      const fits = tensors.length === weights.length &&
        tensors.every((t, i) => t.dtype === weights[i].dtype && t.shape.join() === weights[i].shape.join());
      if (!fits) {
        tf.dispose(tensors);
        throw new TypeError(`emaWeights: the checkpoint's "${name}" average does not fit the model's weights`);
      }
      average = tensors;
      return false;
    }
    average = weights.map((w) => w.clone());
    return true;
  };
  const update = () => {
    const previous = average!;
    average = tf.tidy(() =>
      weights.map((w, i) => w.dtype === "float32" ? previous[i].mul(decay).add(w.mul(1 - decay)) : w.clone())
    );
    tf.dispose(previous);
  };
  const free = () => {
    tf.dispose(average ?? []);
    average = undefined;
  };

  const inner = stepStage<E, E>((event) => {
    if (!average) {
      const fresh = start(event);
      state!.parts.register("emaWeights", name, part);
      if (!fresh) update();
    } else {
      update();
    }
    part.step = trainingStateOf("emaWeights", event).step;
    return event;
  }, {
    onEnd({ how, reason }) {
      state?.parts.unregister(name, part);
      if (!average) return;
      // An error here or in a later stage (which cancels with it): the run failed, the model keeps its weights.
      const failed = how === "error" || reason instanceof Error;
      if (!failed && atEnd === "swap") weights.forEach((w, i) => w.assign(average![i]));
      if (failed || atEnd === "swap") free();
    },
  });

  const stage = inner as EmaWeightsStage<E>;
  stage.withAveraged = (<A extends unknown[], R>(fn: (...args: A) => R) => {
    if (typeof fn !== "function") throw new TypeError(`emaWeights: withAveraged needs a function, got ${describe(fn)}`);
    return async (...args: A): Promise<Awaited<R>> => {
      if (!average) {
        throw new TypeError(
          "emaWeights: withAveraged(...) ran before the average saw an event: place it after the stage",
        );
      }
      const trained = weights.map((w) => w.clone());
      weights.forEach((w, i) => w.assign(average![i]));
      try {
        return await fn(...args);
      } finally {
        weights.forEach((w, i) => w.assign(trained[i]));
        tf.dispose(trained);
      }
    };
  }) as EmaWeightsStage<E>["withAveraged"];
  stage.averaged = () => {
    if (!average) throw new TypeError("emaWeights: there is no average: no event has passed, or it was disposed");
    return average.map((t) => t.clone());
  };
  stage.dispose = free;
  return stage;
}
