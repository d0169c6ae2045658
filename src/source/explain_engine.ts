/**
 * `explainEngine(options)`: which engine `epochStream(options)` trains with,
 * and why, without training anything.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { hostCopy } from "../data/tensors.ts";
import { isLayersModel } from "../engine/model.ts";
import { decideEngine, trainedVariables, type TrainingRun } from "../engine/trainer.ts";
import { probeRun } from "../engine/probe.ts";
import { productArithmetic } from "../engine/wide_layers.ts";
import type { ModelLike } from "../engine/model.ts";
import { checkEpochOptions, type EpochStreamOptions } from "./epoch_options.ts";

/**
 * For a dataset, the engine is decided on each pass's first batch. Without
 * reading one, the decision for float32 batches of the shapes the model
 * declares is the best answer, and the reason says so.
 */
function explainForDataset(run: TrainingRun): EngineExplanation {
  const model = run.model;
  const shapes = isLayersModel(model) && model.inputs.length === 1 && model.outputs.length === 1
    ? [model.inputs[0].shape, model.outputs[0].shape]
    : undefined;
  if (!shapes || shapes.some((shape) => shape.slice(1).some((d) => d === null))) {
    return { engine: "tfjs", reason: "the data is a dataset and the model declares no fixed row shapes" };
  }
  const rows = (shape: (number | null)[]) => [2, ...(shape.slice(1) as number[])];
  const batch = [tf.zeros(rows(shapes[0])), ...(run.lastLabel ? [tf.zeros(rows(shapes[1]))] : [])];
  try {
    const inputs = 1;
    const { lossReadsModel } = probeRun("explainEngine", model, run.loss, batch, inputs);
    const { engine, reason } = decideEngine(
      { ...run, data: batch, inputs, host: hostCopy(batch), rows: 2, lossReadsModel },
      trainedVariables(model, run.variables),
    );
    return {
      engine,
      reason: `${reason} (for float32 batches; a dataset's engine is decided on each pass's first batch)`,
    };
  } finally {
    tf.dispose(batch);
  }
}

/** What {@link explainEngine} says. */
export interface EngineExplanation {
  /** `"host"`: fitstream's own loops; `"tfjs"`: `optimizer.minimize` per batch. */
  engine: "host" | "tfjs";
  /** Why, in a sentence. */
  reason: string;
}

/**
 * Which engine `epochStream(options)` trains with, and why: the host engine
 * where it trains exactly what the tfjs path would (on the wasm or cpu
 * backend: a chain of Dense layers with linear, relu, sigmoid, tanh, elu,
 * selu, softplus or relu6 activations, frozen or not, L1/L2 regularizers,
 * Adam, SGD or Momentum — built-in and unpatched — and a loss that depends
 * on the model only through its predictions), or the tfjs path for
 * everything else. For the host engine it also says how the products are
 * computed: in float64 JS loops, or in float32 on fitstream's WebAssembly
 * SIMD kernels when a layer is wide. The options are checked as
 * `epochStream` checks them (the same errors), including its one-row probe
 * of the model and loss. Useful when a run is slower than expected.
 *
 * @example The tutorial's model takes the host engine
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { explainEngine } from "@fitstream/fitstream";
 *
 * const model = tf.sequential({
 *   layers: [
 *     tf.layers.dense({ units: 64, activation: "relu", inputShape: [8] }),
 *     tf.layers.dense({ units: 1 }),
 *   ],
 * });
 * const data = [tf.zeros([4, 8]), tf.zeros([4, 1])];
 * const options = { data, model, optimizer: tf.train.adam(1e-2), loss: tf.losses.meanSquaredError };
 * console.log(explainEngine(options).engine); // "host"
 * const other = explainEngine({ ...options, optimizer: tf.train.rmsprop(1e-2) });
 * console.log(other.reason); // "the optimizer is RMSProp (host rules: SGD, Momentum, Adam)"
 * ```
 */
export function explainEngine<M extends ModelLike, X extends object>(
  options: EpochStreamOptions<M, X>,
): EngineExplanation {
  const { run } = checkEpochOptions(options, "explainEngine");
  if (run.dataset) return explainForDataset(run);
  const decision = decideEngine(run, trainedVariables(run.model, run.variables));
  if (decision.engine === "tfjs") return { engine: "tfjs", reason: decision.reason };
  const arithmetic = productArithmetic(decision.plan.layers, Math.min(run.batchSize, run.rows));
  return { engine: "host", reason: `${decision.reason}; ${arithmetic}` };
}
