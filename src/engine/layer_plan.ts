/**
 * Plans a chain of layers for the layer engine: each layer must be exactly
 * the tfjs class of a registered kind (`layers/registry.ts`), untouched, and
 * accepted by its kind; the rows' shapes are carried from the input through
 * every layer.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { LAYER_KINDS } from "./layers/registry.ts";
import type { PlanContext, PlannedLayer, RowShape } from "./layers/kind.ts";
import { penaltyOf, registeredClass, untouched } from "./pristine.ts";
import { layerFields, unknownTfjs } from "../internal/tfjs_private.ts";

/** One layer of a chain plan: the kind's plan and the row shapes around it. */
export interface ChainLayer {
  name: string;
  className: string;
  planned: PlannedLayer;
  input: RowShape;
  /** Values a row in, and out. */
  inputWidth: number;
  outputWidth: number;
}

const size = (shape: RowShape) => shape.reduce((a, b) => a * b, 1);

/** The kinds' class names, for reasons. */
export function kindNames(): string {
  return [...LAYER_KINDS.keys()].join(", ");
}

/** Plans `layers` for rows of shape `input`, or says why the layer engine cannot train them. */
export function planChain(layers: tf.layers.Layer[], input: RowShape): ChainLayer[] | string {
  const out: ChainLayer[] = [];
  const contexts: PlanContext[] = [];
  let shape = input;
  for (const [i, layer] of layers.entries()) {
    const className = layer.getClassName();
    const kind = LAYER_KINDS.get(className);
    if (!kind) return `layer "${layer.name}" is a ${className}, which the host engine does not train (${kindNames()})`;
    const changed = untouched(layer, registeredClass(className));
    if (changed) return `layer "${layer.name}" ${changed}`;
    const internals = layerFields<{ activityRegularizer?: unknown; losses: unknown[] }>(layer);
    if (!internals) return unknownTfjs()!;
    if (internals.activityRegularizer != null) return `layer "${layer.name}" has an activity regularizer`;
    const context: PlanContext = {
      layer,
      config: layer.getConfig(),
      input: shape,
      first: i === 0,
      last: i === layers.length - 1,
      penalty: (regularizer, which) => penaltyOf(layer.name, which, regularizer),
    };
    contexts.push(context);
    const planned = kind.plan(context);
    if (typeof planned === "string") return planned;
    const penalties = (planned.penalties ?? []).filter((p) => p !== undefined).length;
    if (internals.losses.length !== penalties) {
      return `layer "${layer.name}" has losses besides its weight regularizers`;
    }
    out.push({
      name: layer.name,
      className,
      planned,
      input: shape,
      inputWidth: size(shape),
      outputWidth: size(planned.output),
    });
    shape = planned.output;
  }
  return fuse(out, contexts);
}

/** Replaces each pair of layers whose first kind fuses it with the next by the fused layer. */
function fuse(layers: ChainLayer[], contexts: PlanContext[]): ChainLayer[] {
  const out: ChainLayer[] = [];
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i], next = layers[i + 1];
    const fused = next && LAYER_KINDS.get(layer.className)!.fuseNext?.(contexts[i], contexts[i + 1]);
    if (!fused) {
      out.push(layer);
      continue;
    }
    out.push({
      name: `${layer.name}+${next.name}`,
      className: `${layer.className}+${next.className}`,
      planned: fused,
      input: layer.input,
      inputWidth: layer.inputWidth,
      outputWidth: size(fused.output),
    });
    i++;
  }
  return out;
}

/**
 * The chain's Dense products as `{ inputs, units }` per example row (a Dense
 * layer over rows of [T, F] makes T products' worth a row: its `inputs` count
 * T·F), for `productArithmetic`.
 */
export function chainProducts(layers: ChainLayer[]): { inputs: number; units: number }[] {
  return layers.filter((l) => l.className === "Dense").map((l) => {
    const out = l.planned.output;
    return { inputs: l.inputWidth, units: out[out.length - 1] };
  });
}
