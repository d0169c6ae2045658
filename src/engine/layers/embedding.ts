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
import type { BackwardArrays, ForwardArrays, LayerKind, PlanContext, PlannedLayer } from "./kind.ts";

interface Internals {
  inputDim: unknown;
  outputDim: unknown;
  maskZero: unknown;
  embeddings?: { read(): tf.Tensor };
  embeddingsRegularizer?: unknown;
  embeddingsConstraint?: unknown;
}

function plan({ layer, input, penalty }: PlanContext): PlannedLayer | string {
  const name = layer.name;
  const o = layer as unknown as Internals;
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
  const ids = input.reduce((a, b) => a * b, 1), [rows, dim] = table.shape as [number, number];
  // scratch: each id of the batch, as int32, for the backward pass.
  const forward = ({ n, input: x, output, params, scratch }: ForwardArrays) => {
    const values = params[0], picked = scratch[0];
    for (let i = 0, size = n * ids; i < size; i++) {
      const id = x[i] | 0; // float → int32 as tfjs's cast: truncation toward 0
      if (id < 0 || id >= rows) throw new Error(`GatherV2: the index value ${id} is not in [0, ${rows - 1}]`);
      picked[i] = id;
      const from = id * dim, to = i * dim;
      for (let k = 0; k < dim; k++) output[to + k] = values[from + k];
    }
  };
  const backward = ({ n, scratch, gradOutput, paramGrads }: BackwardArrays) => {
    const grad = paramGrads[0], picked = scratch[0];
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

/** Embedding layers. */
export const embeddingKind: LayerKind = { className: "Embedding", plan };
