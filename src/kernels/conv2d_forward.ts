/**
 * `Conv2D` where tfjs-backend-wasm 4.22 fails on what `tf.conv2d` accepts:
 * the NCHW layout (refused: "does not support dataFormat 'channelsFirst'")
 * and numeric or explicit padding with an even filter side (wrong values for
 * a 2×1 filter with `pad: 1`, and a 1×2 one wrote outside its output and
 * corrupted the heap: tfjs sizes the output of a numeric pad from the filter's
 * height and stride alone, on both backends, and the wasm kernel wrote the
 * true width). NCHW is transposed to NHWC and back around tfjs's own kernel;
 * numeric and explicit padding is applied to the input first (zeros, as the
 * convolution reads them: enough for the output shape tfjs computes, which
 * the cpu backend fills), the convolution run 'valid' and cut to that shape.
 * (tfjs-layers uses NHWC with 'same' or 'valid' padding, which run tfjs's own
 * kernel directly.)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { KernelArgs } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";

type Conv2DAttrs = {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dilations: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
};
type Conv2DArgs = KernelArgs<{ x: tf.TensorInfo; filter: tf.TensorInfo }, Conv2DAttrs>;

/** A 2-d convolution, in either layout, with any padding. */
export function conv2d(args: Conv2DArgs): tf.TensorInfo {
  const { inputs: { x, filter }, backend, attrs } = args;
  const numericPad = typeof attrs.pad === "number" || Array.isArray(attrs.pad);
  const roundsAway = attrs.dimRoundingMode !== undefined && attrs.dimRoundingMode !== "floor";
  if ((attrs.dataFormat !== "NCHW" && !numericPad) || roundsAway) {
    return tfjsKernel("Conv2D", "wasm", args) as tf.TensorInfo;
  }
  const run = (name: string, inputs: object, kernelAttrs: object) =>
    tfjsKernel(name, "wasm", { inputs, backend, attrs: kernelAttrs }) as tf.TensorInfo;
  const temporaries: tf.TensorInfo[] = [];
  const keep = (t: tf.TensorInfo) => (temporaries.push(t), t);
  try {
    let input = attrs.dataFormat === "NCHW" ? keep(run("Transpose", { x }, { perm: [0, 2, 3, 1] })) : x;
    let pad = attrs.pad, outShape: number[] | undefined;
    if (numericPad) {
      const info = tf.backend_util.computeConv2DInfo(
        input.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        attrs.strides,
        attrs.dilations,
        attrs.pad,
        attrs.dimRoundingMode,
      );
      const { top, left } = info.padInfo;
      // Rows and columns the output shape tfjs computed reaches, at least the padding asked for.
      const reach = (out: number, stride: number, size: number, dilation: number) =>
        (out - 1) * stride + (size - 1) * dilation + 1;
      const bottom = Math.max(
        info.padInfo.bottom,
        reach(info.outHeight, info.strideHeight, info.filterHeight, info.dilationHeight) - info.inHeight - top,
      );
      const right = Math.max(
        info.padInfo.right,
        reach(info.outWidth, info.strideWidth, info.filterWidth, info.dilationWidth) - info.inWidth - left,
      );
      const paddings = [[0, 0], [top, bottom], [left, right], [0, 0]];
      input = keep(run("PadV2", { x: input }, { paddings, constantValue: 0 }));
      pad = "valid";
      outShape = info.outShape;
    }
    let y = run("Conv2D", { x: input, filter }, { ...attrs, pad, dataFormat: "NHWC" });
    if (outShape && (y.shape[1] !== outShape[1] || y.shape[2] !== outShape[2])) {
      keep(y);
      y = run("Slice", { x: y }, { begin: [0, 0, 0, 0], size: outShape });
    }
    if (attrs.dataFormat !== "NCHW") return y;
    keep(y);
    return run("Transpose", { x: y }, { perm: [0, 3, 1, 2] });
  } finally {
    for (const t of temporaries) (backend as unknown as { disposeData(id: object): void }).disposeData(t.dataId);
  }
}
