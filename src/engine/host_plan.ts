/**
 * Whether the host engine can train a run exactly as the tfjs path would, and
 * if not, why. The rule is an allow-list: exact built-in tfjs classes (Dense
 * layers in a plain chain for the Dense engine; a chain of layers with a kind
 * in `layers/registry.ts`, at least one not Dense, for the layer engine;
 * SGD / Momentum / Adam, L1L2 regularizers) whose
 * methods nobody has patched, a loss whose only dependence on the model is
 * through the predictions, the wasm or cpu backend. Anything else — a case
 * nobody listed included — takes the tfjs path.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type DenseActivation, SOFTMAX } from "./dense_kernels.ts";
import { denseWeights } from "./layers/dense.ts";
import { type Constructor, HOST_RULE_NAMES, HOST_RULES } from "./host_optimizer.ts";
import { penaltyOf, protect, untouched } from "./pristine.ts";
import type { Penalty } from "./penalty.ts";
import { LAYER_KINDS } from "./layers/registry.ts";
import { type ChainLayer, planChain } from "./layer_plan.ts";
import { type HostLoss, SOFTMAX_LOSSES } from "./loss_kernels.ts";
import type { PlannedLoss } from "./loss_step.ts";
import { sigmoidCrossEntropy, softmaxCrossEntropy } from "../losses/cross_entropy.ts";
import { categoricalCrossentropy, sparseCategoricalCrossentropy } from "../losses/categorical.ts";
import { layerFields, optimizerInternals, registeredClass, unknownTfjs } from "../internal/tfjs_private.ts";

const HOST_LOSSES = new Map<unknown, HostLoss>([
  [tf.losses.meanSquaredError, "meanSquaredError"],
  [tf.losses.absoluteDifference, "absoluteDifference"],
  [tf.losses.huberLoss, "huberLoss"],
  [softmaxCrossEntropy, "softmaxCrossEntropy"],
  [sigmoidCrossEntropy, "sigmoidCrossEntropy"],
  [categoricalCrossentropy, "categoricalCrossentropy"],
  [sparseCategoricalCrossentropy, "sparseCategoricalCrossentropy"],
]);

/**
 * Whether the host engine computes `loss` on labels `y` for `outputs` output
 * columns: labels shaped like the output, or for the sparse loss one class
 * id per row (`[rows]` or `[rows, 1]`), int32 or float32.
 */
function labelsFit(loss: HostLoss, y: tf.Tensor | undefined, outputs: number): boolean {
  if (!y) return false;
  if (loss === "sparseCategoricalCrossentropy") return y.rank === 1 || (y.rank === 2 && y.shape[1] === 1);
  if (loss === "categoricalCrossentropy") return y.rank === 2 && y.shape[1] === outputs;
  return y.rank === 2 && y.dtype === "float32" && y.shape[1] === outputs;
}

export type { Penalty };

/** One Dense layer of a plan: its variables, sizes, activation and penalties. */
export interface DenseLayer {
  name: string;
  kernel: tf.Variable;
  bias: tf.Variable | undefined;
  inputs: number;
  units: number;
  activation: DenseActivation;
  kernelPenalty: Penalty | undefined;
  biasPenalty: Penalty | undefined;
}

/** A plan for the Dense engine: a chain of Dense layers only. */
export interface DensePlan {
  ok: true;
  engine: "dense";
  layers: DenseLayer[];
  loss: PlannedLoss;
}

/** A plan for the layer engine: a chain of layers of registered kinds, at least one not Dense. */
export interface ChainPlan {
  ok: true;
  engine: "layers";
  layers: ChainLayer[];
  loss: PlannedLoss;
}

/** Why the host engine can or cannot train a run, and its layers and loss when it can. */
export type HostPlan = DensePlan | ChainPlan | { ok: false; reason: string };

/** What the planner needs to know of a run. */
export interface PlanInput {
  model: unknown;
  loss: unknown;
  optimizer: tf.Optimizer;
  /** The input tensor, then the labels when `lastLabel`. */
  data: tf.Tensor[];
  lastLabel: boolean;
  /** The variables the optimizer updates this epoch. */
  variables: tf.Variable[];
  /** Set when a probe found that the loss depends on the model other than through the predictions. */
  lossReadsModel?: string;
}

const DENSE = registeredClass("Dense");
protect([DENSE, tf.Sequential, tf.LayersModel, ...HOST_RULES.keys()]);
protect([...LAYER_KINDS.keys()].map(registeredClass));

function optimizerReason(optimizer: tf.Optimizer): string | undefined {
  const name = optimizer.getClassName();
  const cls = optimizer.constructor as Constructor;
  const rule = HOST_RULES.get(cls);
  if (!rule) {
    // (not instanceof: tf.Optimizer answers instanceof by duck typing)
    const own = [...HOST_RULES.keys()].some((c) => Object.prototype.isPrototypeOf.call(c.prototype, optimizer));
    return own
      ? `the optimizer is a subclass of ${name} (its update may differ)`
      : `the optimizer is ${name} (host rules: ${HOST_RULE_NAMES.join(", ")})`;
  }
  const touched = untouched(optimizer, cls);
  if (touched) return `the ${name} optimizer ${touched}`;
  const internals = optimizerInternals<Record<string, unknown>>(optimizer);
  if (!internals) return unknownTfjs();
  for (const field of rule.fields) {
    const value = internals[field];
    const ok = value instanceof tf.Tensor
      ? !value.isDisposed
      : Array.isArray(value) || (typeof value === "number" && Number.isFinite(value));
    if (!ok) return `the ${name} optimizer's ${field} is not what tfjs 4 keeps there`;
  }
  return undefined;
}

interface LayerInternals {
  inboundNodes?: { inboundLayers?: unknown[] }[];
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
  activityRegularizer?: unknown;
  losses: unknown[];
}

/** The model's layers as a single chain (the input layer left out), or why they are not one. */
function chainOf(model: unknown): tf.layers.Layer[] | string {
  if (!(model instanceof tf.LayersModel)) return "the model is a function, not a tf.LayersModel";
  const modelClass = model instanceof tf.Sequential ? tf.Sequential : tf.LayersModel;
  const touched = untouched(model, modelClass);
  if (touched) return `the model ${touched}`;
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return "the model has several inputs or outputs";
  const layers = model.layers.filter((l, i) => !(i === 0 && l.getClassName() === "InputLayer"));
  if (layers.length === 0) return "the model has no layers";
  if (new Set(layers).size !== layers.length) return "a layer is used more than once in the model";
  let previous: unknown = model.layers[0] === layers[0] ? undefined : model.layers[0];
  for (const layer of layers) {
    const internals = layerFields<LayerInternals>(layer);
    if (!internals) return unknownTfjs()!;
    const nodes = internals.inboundNodes ?? [];
    if (
      model instanceof tf.Sequential ? nodes.length !== 1 : (
        nodes.length !== 1 || nodes[0].inboundLayers?.length !== 1 || nodes[0].inboundLayers[0] !== previous
      )
    ) {
      return `layer "${layer.name}" is not part of a single chain`;
    }
    previous = layer;
  }
  return layers;
}

function denseLayers(layers: tf.layers.Layer[]): DenseLayer[] | string {
  const out: DenseLayer[] = [];
  for (const layer of layers) {
    if (layer.getClassName() !== "Dense") {
      return `layer "${layer.name}" is a ${layer.getClassName()}, not a Dense layer`;
    }
    const changed = untouched(layer, DENSE);
    if (changed) return `layer "${layer.name}" ${changed}`;
    const internals = layerFields<LayerInternals>(layer);
    if (!internals) return unknownTfjs()!;
    const weights = denseWeights(layer, layer.getConfig(), layer === layers[layers.length - 1]);
    if (typeof weights === "string") return weights;
    const { activation, kernel, bias, inputs, units } = weights;
    if (out.length > 0 && out[out.length - 1].units !== inputs) return `layer "${layer.name}" does not chain`;
    if (internals.activityRegularizer != null) return `layer "${layer.name}" has an activity regularizer`;
    const kernelPenalty = penaltyOf(layer.name, "kernel", internals.kernelRegularizer);
    if (typeof kernelPenalty === "string") return kernelPenalty;
    const biasPenalty = bias ? penaltyOf(layer.name, "bias", internals.biasRegularizer) : undefined;
    if (typeof biasPenalty === "string") return biasPenalty;
    if (internals.losses.length !== (kernelPenalty ? 1 : 0) + (biasPenalty ? 1 : 0)) {
      return `layer "${layer.name}" has losses besides its kernel and bias regularizers`;
    }
    out.push({
      name: layer.name,
      kernel,
      bias,
      inputs,
      units,
      activation,
      kernelPenalty,
      biasPenalty,
    });
  }
  return out;
}

/**
 * Decides whether the host engine trains this epoch exactly as the tfjs path
 * would, and plans it when it does. Internal.
 */
export function hostPlan(input: PlanInput): HostPlan {
  const { model, loss, optimizer, data, lastLabel } = input;
  const backend = tf.getBackend();
  if (backend !== "wasm" && backend !== "cpu") {
    return { ok: false, reason: `the ${backend} backend runs tfjs kernels on its own device` };
  }
  if (typeof loss !== "function") return { ok: false, reason: "the loss is not a function" };
  if (input.lossReadsModel) return { ok: false, reason: input.lossReadsModel };
  const optimizerProblem = optimizerReason(optimizer);
  if (optimizerProblem) return { ok: false, reason: optimizerProblem };
  if (data.length !== (lastLabel ? 2 : 1)) {
    return { ok: false, reason: `the data is not one input tensor${lastLabel ? " and one label tensor" : ""}` };
  }
  const [x, y] = data;
  if (!(x instanceof tf.Tensor) || (lastLabel && !(y instanceof tf.Tensor))) {
    return { ok: false, reason: "the data is not tensors" };
  }
  if (y && y.dtype !== "float32" && y.dtype !== "int32") {
    return { ok: false, reason: `the labels are ${y.dtype}, not float32 or int32` };
  }
  const chain = chainOf(model);
  if (typeof chain === "string") return { ok: false, reason: chain };
  if (chain.every((l) => l.getClassName() === "Dense")) return densePlan(input, chain);
  return layersPlan(input, chain);
}

/** The loss of a plan whose last layer has `outputs` values a row and whose output is softmax's when `softmax`. */
function plannedLoss(
  input: PlanInput,
  outputs: number,
  softmax: boolean,
  lastName: string,
): { loss: PlannedLoss } | { reason: string } {
  const { loss, data: [, y] } = input;
  const hostLoss = HOST_LOSSES.get(loss);
  const fits = hostLoss !== undefined && labelsFit(hostLoss, y, outputs);
  // Softmax mixes a row, so no elementwise slope carries a loss's gradient through it: the host engine takes it
  // only where the loss differentiates through it itself (categorical_kernels.ts), and only in the last layer.
  const softmaxLoss = hostLoss !== undefined && SOFTMAX_LOSSES.includes(hostLoss);
  if (softmax && !(softmaxLoss && fits)) {
    return {
      reason: `the last layer "${lastName}" has a softmax activation, which the host engine trains only under ` +
        `fitstream's categoricalCrossentropy (labels shaped like the output) or sparseCategoricalCrossentropy ` +
        `(a class id per row)` + (softmaxLoss ? "; these labels are neither" : ""),
    };
  }
  const custom = { loss: { kind: "tfjs", fn: loss as (p: tf.Tensor, y?: tf.Tensor) => tf.Tensor } } as const;
  // A softmax loss without a softmax output: tfjs differentiates it through the batch's predictions (loss_step.ts).
  if (softmaxLoss && !softmax) return custom;
  if (hostLoss && fits) return { loss: { kind: "host", name: hostLoss } };
  return custom;
}

function densePlan(input: PlanInput, chain: tf.layers.Layer[]): HostPlan {
  const { data: [x], variables } = input;
  if (x.rank !== 2 || x.dtype !== "float32") return { ok: false, reason: "the input is not a 2-d float32 tensor" };
  const layers = denseLayers(chain);
  if (typeof layers === "string") return { ok: false, reason: layers };
  if (layers[0].inputs !== x.shape[1]) return { ok: false, reason: "the input's width does not match the model" };
  const weights = new Set(layers.flatMap((l) => l.bias ? [l.kernel, l.bias] : [l.kernel]));
  if (!variables.every((v) => weights.has(v))) {
    return { ok: false, reason: "the optimizer would update variables outside the model's layers" };
  }
  const last = layers[layers.length - 1];
  const loss = plannedLoss(input, last.units, last.activation === "softmax", last.name);
  return "reason" in loss ? { ok: false, reason: loss.reason } : { ok: true, engine: "dense", layers, loss: loss.loss };
}

function layersPlan(input: PlanInput, chain: tf.layers.Layer[]): HostPlan {
  const { data: [x], variables } = input;
  const ids = chain[0].getClassName() === "Embedding";
  if (x.rank < 2 || !(x.dtype === "float32" || (ids && x.dtype === "int32"))) {
    return { ok: false, reason: `the input is not a float32 tensor of rank 2 or more${ids ? " (or int32 ids)" : ""}` };
  }
  const layers = planChain(chain, x.shape.slice(1));
  if (typeof layers === "string") return { ok: false, reason: layers };
  const weights = new Set(layers.flatMap((l) => l.planned.params));
  if (!variables.every((v) => weights.has(v))) {
    return { ok: false, reason: "the optimizer would update variables outside the model's layers" };
  }
  const last = layers[layers.length - 1];
  if (last.planned.output.length !== 1) {
    return { ok: false, reason: `the model's output has rank ${last.planned.output.length + 1}, not 2` };
  }
  const loss = plannedLoss(input, last.outputWidth, last.planned.activation === SOFTMAX, last.name);
  return "reason" in loss
    ? { ok: false, reason: loss.reason }
    : { ok: true, engine: "layers", layers, loss: loss.loss };
}
