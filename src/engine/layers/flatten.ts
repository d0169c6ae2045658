/**
 * The `Flatten` kind: a row is already its flattened values, so the output
 * is the input (channels-last only: with `dataFormat: "channelsFirst"`
 * tfjs-layers permutes the axes first).
 *
 * @module
 */
import type { BackwardArrays, ForwardArrays, LayerKind, PlanContext, PlannedLayer } from "./kind.ts";

function plan({ layer, config, input }: PlanContext): PlannedLayer | string {
  if (config.dataFormat === "channelsFirst" && input.length > 1) {
    return `layer "${layer.name}" flattens channels first`;
  }
  const width = input.reduce((a, b) => a * b, 1);
  const forward = ({ n, input: x, output }: ForwardArrays) => output.set(x.subarray(0, n * width));
  const backward = ({ n, gradOutput, gradInput }: BackwardArrays) => gradInput?.set(gradOutput.subarray(0, n * width));
  return { output: [width], params: [], forward, backward };
}

/** Flatten layers. */
export const flattenKind: LayerKind = { className: "Flatten", plan };
