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
import { chainProducts } from "../engine/layer_plan.ts";
import { lstmArithmetic } from "../engine/layers/lstm_products.ts";
import type { ModelLike } from "../engine/model.ts";
import { checkEpochOptions, type EpochStreamOptions } from "./epoch_options.ts";

/**
 * Labels to try the loss on while the dataset is unread, most likely first:
 * shaped like the model's output (float32), then class indices (int32, one
 * per row, as `[rows]` or `[rows, 1]`) for a sparse loss. Made-up labels of
 * the wrong form make a loss throw where the real ones would not, and
 * `epochStream` reads the real ones only at the first pass.
 */
function labelGuesses(outputRow: number[]): (() => tf.Tensor)[] {
  return [
    () => tf.zeros([2, ...outputRow]),
    () => tf.zeros([2], "int32"),
    () => tf.zeros([2, 1], "int32"),
  ];
}

/**
 * For a dataset, the engine is decided on each pass's first batch. Without
 * reading one, the decision for batches of the shapes the model declares is
 * the best answer, and the reason says so. The loss is probed on labels of
 * each likely form in turn (see {@link labelGuesses}); when it fails on all
 * of them, the decision is made without the probe (on the last form), as
 * `epochStream` does not fail before it reads a batch either.
 */
function explainForDataset(run: TrainingRun): EngineExplanation {
  const model = run.model;
  const shapes = isLayersModel(model) && model.inputs.length === 1 && model.outputs.length === 1
    ? [model.inputs[0].shape, model.outputs[0].shape]
    : undefined;
  if (!shapes || shapes.some((shape) => shape.slice(1).some((d) => d === null))) {
    return { engine: "tfjs", reason: "the data is a dataset and the model declares no fixed row shapes" };
  }
  const row = (shape: (number | null)[]) => shape.slice(1) as number[];
  const guesses = run.lastLabel ? labelGuesses(row(shapes[1])) : [undefined];
  const inputs = 1;
  const explain = (labels: (() => tf.Tensor) | undefined, probed: boolean, note = ""): EngineExplanation => {
    const batch = [tf.zeros([2, ...row(shapes[0])]), ...(labels ? [labels()] : [])];
    try {
      const { lossReadsModel } = probed ? probeRun("explainEngine", model, run.loss, batch, inputs) : {};
      const { engine, reason } = decideEngine(
        { ...run, data: batch, inputs, host: hostCopy(batch), rows: 2, lossReadsModel },
        trainedVariables(model, run.variables),
      );
      return {
        engine,
        reason: `${reason} (for float32 inputs; a dataset's engine is decided on each pass's first batch${note})`,
      };
    } finally {
      tf.dispose(batch);
    }
  };
  let failure = "";
  for (const labels of guesses) {
    try {
      return explain(labels, true);
    } catch (error) {
      failure = (error as Error).message;
    }
  }
  const note = `; the loss failed on every label form tried without reading a batch (${failure})`;
  return explain(guesses[guesses.length - 1], false, note);
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
 * selu, softplus, relu6, softsign, swish, mish, gelu or gelu_new activations (the
 * registry of `src/kernels/activations.ts`) — and softmax in the last layer under
 * fitstream's `categoricalCrossentropy` or `sparseCategoricalCrossentropy` —
 * with, between them, Dropout (no noiseShape), BatchNormalization (last
 * axis, center and scale on), Embedding (no maskZero), GlobalAveragePooling1D
 * and Flatten layers — frozen or not, L1/L2 regularizers,
 * Adam, SGD, Momentum, RMSProp, Adagrad, Adadelta or Adamax — built-in and unpatched — and a loss that depends
 * on the model only through its predictions), or the tfjs path for
 * everything else. For the host engine it also says how the products are
 * computed: in float64 JS loops, or in float32 on fitstream's WebAssembly
 * SIMD kernels when a layer is wide. The options are checked as
 * `epochStream` checks them (the same errors), including its one-row probe
 * of the model and loss. A dataset is not read: the answer is for batches of
 * the shapes the model declares, with labels shaped like its output or, for a
 * sparse loss, class indices (a loss that fits neither is not refused here,
 * as `epochStream` tries it on the first batch). Useful when a run is slower
 * than expected.
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
 * const hard = tf.layers.dense({ units: 1, inputShape: [8], activation: "hardSigmoid", name: "out" });
 * const other = explainEngine({ ...options, model: tf.sequential({ layers: [hard] }) });
 * console.log(other.reason); // 'layer "out" uses the hardSigmoid activation'
 * ```
 */
export function explainEngine<M extends ModelLike, X extends object>(
  options: EpochStreamOptions<M, X>,
): EngineExplanation {
  const { run } = checkEpochOptions(options, "explainEngine");
  if (run.dataset) return explainForDataset(run);
  const decision = decideEngine(run, trainedVariables(run.model, run.variables));
  if (decision.engine === "tfjs") return { engine: "tfjs", reason: decision.reason };
  const { plan } = decision;
  const rows = Math.min(run.batchSize, run.rows);
  if (plan.engine === "layers" && plan.layers.some((l) => l.className === "LSTM")) {
    // The LSTM's products first, then the Dense layers' (if any), each named: the Dense sentence alone ("no layer
    // has 8,192 multiply-adds a step") read as if it covered the LSTM's products too.
    const dense = chainProducts(plan.layers);
    const parts = [lstmArithmetic(), ...(dense.length ? [productArithmetic(dense, rows, true)] : [])];
    return { engine: "host", reason: `${decision.reason}; ${parts.join("; ")}` };
  }
  const products = plan.engine === "dense" ? plan.layers : chainProducts(plan.layers);
  return { engine: "host", reason: `${decision.reason}; ${productArithmetic(products, rows)}` };
}
