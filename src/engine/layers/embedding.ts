/**
 * The `Embedding` kind: each id of a row picks a row of the table. As
 * tfjs-layers: ids are cast to int32 (truncation, as a float32 → int32 cast
 * does), and an id outside [0, inputDim) fails the step with the error the
 * backends' gather raises. The gradient is the scatter-add of the output's
 * gradient into a gradient for the whole table (tfjs's gather gradient is a
 * dense `unsortedSegmentSum`), so the optimizer updates every row, as tfjs's
 * (Adam's moments decay in rows the batch did not touch).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import {
  type BackwardArrays,
  float64Grads,
  type ForwardArrays,
  type KindPenalty,
  type LayerKind,
  type PlanContext,
  type PlannedLayer,
  type RowShape,
} from "./kind.ts";
import { layerFields, unknownTfjs } from "../../internal/tfjs_private.ts";

interface Internals {
  inputDim: unknown;
  outputDim: unknown;
  maskZero: unknown;
  embeddings?: { read(): tf.Tensor };
  embeddingsRegularizer?: unknown;
  embeddingsConstraint?: unknown;
}

function plan(context: PlanContext): PlannedLayer | string {
  const checked = check(context);
  return typeof checked === "string" ? checked : alone(checked);
}

interface Checked {
  table: tf.Variable;
  penalty: KindPenalty | undefined;
  /** Ids a row. */
  ids: number;
  rows: number;
  dim: number;
  input: RowShape;
}

/** The embedding's table and sizes, or why the kind cannot mirror the layer. */
function check({ layer, input, penalty, first }: PlanContext): Checked | string {
  const name = layer.name;
  // Its ids must be the data's: below another layer they are that layer's outputs, which tfjs cannot differentiate
  // through (model.fit throws), while the host would train the layers below on a zero gradient.
  if (!first) return `layer "${name}" is an Embedding below another layer (the host engine takes one only first)`;
  const o = layerFields<Internals>(layer);
  if (!o) return unknownTfjs()!;
  if (o.maskZero) return `layer "${name}" has maskZero (the host engine does not carry masks)`;
  if (o.embeddingsConstraint != null) return `layer "${name}" has an embeddings constraint`;
  const table = o.embeddings?.read() as tf.Variable | undefined;
  const { inputDim, outputDim } = o;
  if (
    layer.weights.length !== 1 || !table || table.rank !== 2 || table.dtype !== "float32" ||
    table.shape[0] !== inputDim || table.shape[1] !== outputDim
  ) {
    return `layer "${name}" has unexpected weights`;
  }
  const tablePenalty = penalty(o.embeddingsRegularizer, "embeddings");
  if (typeof tablePenalty === "string") return tablePenalty;
  const [rows, dim] = table.shape as [number, number];
  return { table, penalty: tablePenalty, ids: input.reduce((a, b) => a * b, 1), rows, dim, input };
}

/** An id as tfjs's cast to int32 makes it (truncation toward 0), checked as the backends' gather checks it. */
function idOf(value: number, rows: number): number {
  const id = value | 0;
  if (id < 0 || id >= rows) throw new Error(`GatherV2: the index value ${id} is not in [0, ${rows - 1}]`);
  return id;
}

/** The embedding alone: rows of [...input, dim]. */
function alone({ table, penalty: tablePenalty, ids, rows, dim, input }: Checked): PlannedLayer {
  // scratch: each id of the batch, as int32, for the backward pass.
  const forward = ({ n, input: x, output, params, scratch }: ForwardArrays) => {
    const values = params[0], picked = scratch[0];
    for (let i = 0, size = n * ids; i < size; i++) {
      const id = picked[i] = idOf(x[i], rows);
      const from = id * dim, to = i * dim;
      for (let k = 0; k < dim; k++) output[to + k] = values[from + k];
    }
  };
  const backward = (arrays: BackwardArrays) => {
    const { n, scratch, gradOutput } = arrays;
    const grad = float64Grads(arrays)[0], picked = scratch[0];
    if (!grad) return; // ids have no gradient
    for (let i = 0, size = n * ids; i < size; i++) {
      const to = picked[i] * dim, from = i * dim;
      for (let k = 0; k < dim; k++) grad[to + k] += gradOutput[from + k];
    }
  };
  return {
    output: [...input, dim],
    params: [table],
    penalties: [tablePenalty],
    scratch: [{ perRow: ids }],
    forward,
    backward,
  };
}

/**
 * An embedding over rows of T ids followed by `globalAveragePooling1d`: each
 * output is the mean of the row's T table rows, `(Σ_t e[id_t]) / T`, without
 * the [T, dim] rows between (16 MB a batch of 512 × 256 ids in float64,
 * written and read twice a step: fused, the IMDB classifier's step went from
 * ~40 to ~4 ms); the gradient adds dy / T into each id's table row.
 */
function fuseNext(context: PlanContext, next: PlanContext): PlannedLayer | undefined {
  if (next.layer.getClassName() !== "GlobalAveragePooling1D") return undefined;
  const checked = check(context);
  if (typeof checked === "string" || checked.input.length !== 1) return undefined;
  const { table, penalty: tablePenalty, ids: steps, rows, dim } = checked;
  // Four columns at a time in locals, the ids resolved once a row: the plain loops over k ran the IMDB
  // classifier's forward and backward ~1.8× slower on Deno.
  // Each id's offset into the table (id · dim), kept from forward to backward: int32, as float64 indices made V8
  // convert every index.
  let picked = new Int32Array(0);
  const forward = ({ n, input: x, output, params }: ForwardArrays) => {
    const values = params[0];
    if (picked.length < n * steps) picked = new Int32Array(n * steps);
    for (let r = 0; r < n; r++) {
      const o = r * dim, first = r * steps, end = first + steps;
      for (let i = first; i < end; i++) picked[i] = idOf(x[i], rows) * dim;
      let k = 0;
      for (; k + 3 < dim; k += 4) {
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let i = first; i < end; i++) {
          const at = picked[i] + k;
          s0 += values[at];
          s1 += values[at + 1];
          s2 += values[at + 2];
          s3 += values[at + 3];
        }
        output[o + k] = s0 / steps;
        output[o + k + 1] = s1 / steps;
        output[o + k + 2] = s2 / steps;
        output[o + k + 3] = s3 / steps;
      }
      for (; k < dim; k++) {
        let sum = 0;
        for (let i = first; i < end; i++) sum += values[picked[i] + k];
        output[o + k] = sum / steps;
      }
    }
  };
  const backward = (arrays: BackwardArrays) => {
    const { n, gradOutput } = arrays;
    const grad = float64Grads(arrays)[0];
    if (!grad) return;
    for (let r = 0; r < n; r++) {
      const o = r * dim, first = r * steps, end = first + steps;
      let k = 0;
      for (; k + 3 < dim; k += 4) {
        const g0 = gradOutput[o + k] / steps, g1 = gradOutput[o + k + 1] / steps;
        const g2 = gradOutput[o + k + 2] / steps, g3 = gradOutput[o + k + 3] / steps;
        for (let i = first; i < end; i++) {
          const at = picked[i] + k;
          grad[at] += g0;
          grad[at + 1] += g1;
          grad[at + 2] += g2;
          grad[at + 3] += g3;
        }
      }
      for (; k < dim; k++) {
        const g = gradOutput[o + k] / steps;
        for (let i = first; i < end; i++) grad[picked[i] + k] += g;
      }
    }
  };
  return {
    output: [dim],
    params: [table],
    penalties: [tablePenalty],
    forward,
    backward,
  };
}

/** Embedding layers. */
export const embeddingKind: LayerKind = { className: "Embedding", plan, fuseNext };
