/**
 * The `GlobalAveragePooling1D` kind: the mean over the time axis of a
 * [T, C] row (`tf.mean(x, 1)`); its gradient spreads each channel's
 * gradient over the T steps, divided by T.
 *
 * @module
 */
import type { BackwardArrays, ForwardArrays, LayerKind, PlanContext, PlannedLayer } from "./kind.ts";

function plan({ layer, input }: PlanContext): PlannedLayer | string {
  if (input.length !== 2) return `layer "${layer.name}" does not get rows of shape [steps, channels]`;
  const [steps, c] = input;
  const forward = ({ n, input: x, output }: ForwardArrays) => {
    for (let r = 0; r < n; r++) {
      const o = r * c, base = r * steps * c;
      for (let j = 0; j < c; j++) output[o + j] = 0;
      for (let t = 0; t < steps; t++) {
        const i = base + t * c;
        for (let j = 0; j < c; j++) output[o + j] += x[i + j];
      }
      for (let j = 0; j < c; j++) output[o + j] /= steps;
    }
  };
  const backward = ({ n, gradOutput, gradInput }: BackwardArrays) => {
    if (!gradInput) return;
    for (let r = 0; r < n; r++) {
      const o = r * c, base = r * steps * c;
      for (let t = 0; t < steps; t++) {
        const i = base + t * c;
        for (let j = 0; j < c; j++) gradInput[i + j] = gradOutput[o + j] / steps;
      }
    }
  };
  return { output: [c], params: [], forward, backward };
}

/** GlobalAveragePooling1D layers. */
export const globalAveragePooling1dKind: LayerKind = { className: "GlobalAveragePooling1D", plan };
