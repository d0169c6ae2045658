/**
 * Whether the host engine can train a run exactly as the tfjs path would, and
 * if not, why. The rule is an allow-list: exact built-in tfjs classes (Dense
 * layers in a plain chain, SGD / Momentum / Adam, L1L2 regularizers) whose
 * methods nobody has patched, a loss whose only dependence on the model is
 * through the predictions, the wasm or cpu backend. Anything else — a case
 * nobody listed included — takes the tfjs path.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { DENSE_ACTIVATIONS, type DenseActivation } from "./dense_kernels.ts";
import { type Constructor, HOST_RULES } from "./host_optimizer.ts";
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

/** An L1L2 penalty on one weight, as float32 factors (tfjs multiplies by float32 scalars). */
export interface Penalty {
  l1: number;
  l2: number;
}

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

/** Why the host engine can or cannot train a run, and its layers and loss when it can. */
export type HostPlan = { ok: true; layers: DenseLayer[]; loss: PlannedLoss } | { ok: false; reason: string };

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

/** The own methods of each prototype of each allowed class, as tfjs shipped them (captured at load). */
const PRISTINE = new Map<object, Map<string, unknown>>();

/** The prototypes of `cls`, from its own up to (not including) `Object.prototype`. */
function prototypesOf(cls: Constructor): object[] {
  const out: object[] = [];
  for (let proto = cls.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    out.push(proto);
  }
  return out;
}

function ownMethods(proto: object): Map<string, unknown> {
  const methods = new Map<string, unknown>();
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === "constructor") continue;
    const d = Object.getOwnPropertyDescriptor(proto, name)!;
    methods.set(name, d.value ?? d.get);
  }
  return methods;
}

const DENSE = registeredClass("Dense");
const L1L2 = registeredClass("L1L2");
for (const cls of [DENSE, L1L2, tf.Sequential, tf.LayersModel, ...HOST_RULES.keys()]) {
  if (cls) { for (const proto of prototypesOf(cls)) if (!PRISTINE.has(proto)) PRISTINE.set(proto, ownMethods(proto)); }
}

/**
 * `undefined` when `value` is an instance of exactly `cls` (not a subclass)
 * whose methods are the ones tfjs shipped (none set on the instance, none
 * replaced or added on its prototypes); otherwise what differs.
 */
function untouched(value: object, cls: Constructor | undefined): string | undefined {
  if (!cls || Object.getPrototypeOf(value) !== cls.prototype) return "is not a built-in tfjs class (a subclass?)";
  const prototypes = prototypesOf(cls);
  for (const name of Object.getOwnPropertyNames(value)) {
    if (prototypes.some((p) => PRISTINE.get(p)!.has(name))) return `has its own ${name}()`;
  }
  for (const proto of prototypes) {
    const shipped = PRISTINE.get(proto)!;
    const now = ownMethods(proto);
    for (const [name, method] of now) {
      if (method !== shipped.get(name)) return `has a patched ${name}()`;
    }
  }
  return undefined;
}

function optimizerReason(optimizer: tf.Optimizer): string | undefined {
  const name = optimizer.getClassName();
  const cls = optimizer.constructor as Constructor;
  const rule = HOST_RULES.get(cls);
  if (!rule) {
    // (not instanceof: tf.Optimizer answers instanceof by duck typing)
    const own = [...HOST_RULES.keys()].some((c) => Object.prototype.isPrototypeOf.call(c.prototype, optimizer));
    return own
      ? `the optimizer is a subclass of ${name} (its update may differ)`
      : `the optimizer is ${name} (host rules: SGD, Momentum, Adam)`;
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

function penaltyOf(layer: string, which: string, regularizer: unknown): Penalty | string | undefined {
  if (regularizer == null) return undefined;
  const touched = untouched(regularizer as object, L1L2);
  if (touched) return `layer "${layer}" has a ${which} regularizer that ${touched}`;
  const { l1, l2 } = regularizer as { l1: unknown; l2: unknown };
  if (typeof l1 !== "number" || typeof l2 !== "number" || !Number.isFinite(l1) || !Number.isFinite(l2)) {
    return `layer "${layer}" has a ${which} regularizer without finite l1 and l2`;
  }
  return { l1: Math.fround(l1), l2: Math.fround(l2) };
}

interface DenseInternals {
  inboundNodes?: { inboundLayers?: unknown[] }[];
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
  activityRegularizer?: unknown;
  losses: unknown[];
}

function denseLayers(model: unknown): DenseLayer[] | string {
  if (!(model instanceof tf.LayersModel)) return "the model is a function, not a tf.LayersModel";
  const modelClass = model instanceof tf.Sequential ? tf.Sequential : tf.LayersModel;
  const touched = untouched(model, modelClass);
  if (touched) return `the model ${touched}`;
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return "the model has several inputs or outputs";
  const layers = model.layers.filter((l, i) => !(i === 0 && l.getClassName() === "InputLayer"));
  if (layers.length === 0) return "the model has no layers";
  if (new Set(layers).size !== layers.length) return "a layer is used more than once in the model";
  const out: DenseLayer[] = [];
  let previous: unknown = model.layers[0] === layers[0] ? undefined : model.layers[0];
  for (const layer of layers) {
    if (layer.getClassName() !== "Dense") {
      return `layer "${layer.name}" is a ${layer.getClassName()}, not a Dense layer`;
    }
    const changed = untouched(layer, DENSE);
    if (changed) return `layer "${layer.name}" ${changed}`;
    const internals = layerFields<DenseInternals>(layer);
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
    const config = layer.getConfig();
    const activation = String(config.activation);
    if (!(DENSE_ACTIVATIONS as readonly string[]).includes(activation)) {
      return `layer "${layer.name}" uses the ${activation} activation`;
    }
    if (activation === "softmax" && layer !== layers[layers.length - 1]) {
      return `layer "${layer.name}" has a softmax activation below the last layer (the host engine takes softmax ` +
        `only as the output of the last layer)`;
    }
    const [kernelWeight, biasWeight, ...rest] = layer.weights;
    const kernel = kernelWeight?.read() as tf.Variable | undefined;
    const bias = biasWeight?.read() as tf.Variable | undefined;
    if (rest.length > 0 || (biasWeight !== undefined) !== (config.useBias === true)) {
      return `layer "${layer.name}" has unexpected weights`;
    }
    if (!kernel || kernel.rank !== 2 || kernel.dtype !== "float32") {
      return `layer "${layer.name}"'s kernel is not a 2-d float32 matrix`;
    }
    const [inputs, units] = kernel.shape;
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
      activation: activation as DenseActivation,
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
  const { model, loss, optimizer, data, lastLabel, variables } = input;
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
  if (x.rank !== 2 || x.dtype !== "float32") return { ok: false, reason: "the input is not a 2-d float32 tensor" };
  if (y && y.dtype !== "float32" && y.dtype !== "int32") {
    return { ok: false, reason: `the labels are ${y.dtype}, not float32 or int32` };
  }
  const layers = denseLayers(model);
  if (typeof layers === "string") return { ok: false, reason: layers };
  if (layers[0].inputs !== x.shape[1]) return { ok: false, reason: "the input's width does not match the model" };
  const weights = new Set(layers.flatMap((l) => l.bias ? [l.kernel, l.bias] : [l.kernel]));
  if (!variables.every((v) => weights.has(v))) {
    return { ok: false, reason: "the optimizer would update variables outside the model's layers" };
  }
  const last = layers[layers.length - 1], outputs = last.units;
  const hostLoss = HOST_LOSSES.get(loss);
  const fits = hostLoss !== undefined && labelsFit(hostLoss, y, outputs);
  // Softmax mixes a row, so no elementwise slope carries a loss's gradient through it: the host engine takes it
  // only where the loss differentiates through it itself (categorical_kernels.ts), and only in the last layer.
  const softmaxLoss = hostLoss !== undefined && SOFTMAX_LOSSES.includes(hostLoss);
  if (last.activation === "softmax" && !(softmaxLoss && fits)) {
    return {
      ok: false,
      reason: `the last layer "${last.name}" has a softmax activation, which the host engine trains only under ` +
        `fitstream's categoricalCrossentropy (labels shaped like the output) or sparseCategoricalCrossentropy ` +
        `(a class id per row)` + (softmaxLoss ? "; these labels are neither" : ""),
    };
  }
  if (softmaxLoss && last.activation !== "softmax") {
    // tfjs differentiates it through the batch's predictions, whatever the last activation (loss_step.ts).
    return { ok: true, layers, loss: { kind: "tfjs", fn: loss as (p: tf.Tensor, y?: tf.Tensor) => tf.Tensor } };
  }
  if (hostLoss && fits) return { ok: true, layers, loss: { kind: "host", name: hostLoss } };
  return { ok: true, layers, loss: { kind: "tfjs", fn: loss as (p: tf.Tensor, y?: tf.Tensor) => tf.Tensor } };
}
