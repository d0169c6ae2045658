/**
 * `Conv2D`, `FusedConv2D`, `DepthwiseConv2dNative` and `FusedDepthwiseConv2D`
 * where tfjs-backend-wasm 4.22 gets the padding wrong:
 * - 'same' padding with a stride above 1 and a filter one pixel wide or tall
 *   gave all zeros (a `conv2d` layer with `kernelSize: [3, 1], strides: [1, 2],
 *   padding: "same"` trained on zeros);
 * - numeric or explicit padding with an even filter side gave wrong values or
 *   wrote outside the output (a 1×2 filter with `pad: 1`): tfjs sizes such an
 *   output from the filter's height and stride alone, on both backends, and
 *   the wasm kernel wrote the true width;
 * - `Conv2D` in the NCHW layout is refused ("does not support dataFormat
 *   'channelsFirst'").
 * Those cases pad the input first (zeros, as the convolution reads them: all
 * the output shape tfjs computes reaches, which the cpu backend fills), run
 * tfjs's own kernel 'valid' on NHWC, and cut the result to tfjs's shape; NCHW
 * is transposed to NHWC and back. Everything else — 'valid', and 'same' at
 * stride 1, which is what most layers use — runs tfjs's own kernel directly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type KernelArgs, writeOutput } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";
import { asProducts } from "./conv2d_products.ts";
import { convolveForward, directConvolutions } from "./conv2d_direct.ts";

type Pad = "valid" | "same" | number | tf.backend_util.ExplicitPadding;
interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: "NHWC" | "NCHW";
  dilations: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
}
type ConvArgs = KernelArgs<{ x: tf.TensorInfo; filter: tf.TensorInfo } & Record<string, tf.TensorInfo>, ConvAttrs>;

/** Whether tfjs's own kernel computes this padding right (and the layout is NHWC). */
function tfjsHandles(attrs: ConvAttrs, x: tf.TensorInfo, filter: tf.TensorInfo, depthwise: boolean): boolean {
  if (attrs.dataFormat === "NCHW") return false;
  if (attrs.pad === "valid") return true;
  if (attrs.pad !== "same") return false;
  const info = convInfo(x.shape, filter.shape, attrs, attrs.pad, depthwise);
  return info.strideHeight === 1 && info.strideWidth === 1;
}

function convInfo(shape: number[], filter: number[], attrs: ConvAttrs, pad: Pad, depthwise: boolean) {
  return tf.backend_util.computeConv2DInfo(
    shape as [number, number, number, number],
    filter as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1, // depthwiseConv2d may pass null
    pad,
    attrs.dimRoundingMode,
    depthwise,
  );
}

/** Explicit NCHW padding in NHWC order. */
function padToNhwc(pad: Pad): Pad {
  if (!Array.isArray(pad)) return pad;
  const [n, c, h, w] = pad;
  return [n, h, w, c] as tf.backend_util.ExplicitPadding;
}

/** A convolution kernel `name` that pads the input itself where tfjs's would go wrong. */
function padded(name: string, depthwise: boolean) {
  return (args: ConvArgs): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    const { x, filter } = inputs;
    if (name === "Conv2D" && directConvolutions.on && attrs.dataFormat !== "NCHW") {
      const info = convInfo(x.shape, filter.shape, attrs, attrs.pad, false);
      if (asProducts(info)) {
        let done = false;
        const y = writeOutput(backend, info.outShape, [x, filter], (out, xs, w) => {
          done = convolveForward(info, xs as Float32Array, w, out);
        });
        if (done) return y;
        backend.disposeData!(y.dataId);
      }
    }
    if (tfjsHandles(attrs, x, filter, depthwise)) return tfjsKernel(name, "wasm", args) as tf.TensorInfo;
    const run = (kernel: string, kernelInputs: object, kernelAttrs: object) =>
      tfjsKernel(kernel, "wasm", { inputs: kernelInputs, backend, attrs: kernelAttrs }) as tf.TensorInfo;
    const temporaries: tf.TensorInfo[] = [];
    const keep = (t: tf.TensorInfo) => (temporaries.push(t), t);
    try {
      const nchw = attrs.dataFormat === "NCHW";
      let input = nchw ? keep(run("Transpose", { x }, { perm: [0, 2, 3, 1] })) : x;
      const pad = nchw ? padToNhwc(attrs.pad) : attrs.pad;
      const info = convInfo(input.shape, filter.shape, attrs, pad, depthwise);
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
      if (top || bottom || left || right) {
        const paddings = [[0, 0], [top, bottom], [left, right], [0, 0]];
        input = keep(run("PadV2", { x: input }, { paddings, constantValue: 0 }));
      }
      const convAttrs = {
        ...attrs,
        pad: "valid",
        dataFormat: "NHWC",
        dimRoundingMode: undefined,
        dilations: attrs.dilations ?? 1,
      };
      let y = run(name, { ...inputs, x: input }, convAttrs);
      const outShape = info.outShape;
      if (y.shape[1] !== outShape[1] || y.shape[2] !== outShape[2]) {
        keep(y);
        y = run("Slice", { x: y }, { begin: [0, 0, 0, 0], size: outShape });
      }
      if (!nchw) return y;
      keep(y);
      return run("Transpose", { x: y }, { perm: [0, 3, 1, 2] });
    } finally {
      for (const t of temporaries) backend.disposeData!(t.dataId);
    }
  };
}

/** A 2-d convolution, in either layout, with any padding. */
export const conv2d: (args: ConvArgs) => tf.TensorInfo = padded("Conv2D", false);
/** A 2-d convolution with its bias and activation, with any padding. */
export const fusedConv2d: (args: ConvArgs) => tf.TensorInfo = padded("FusedConv2D", false);
/** A depthwise 2-d convolution, with any padding. */
export const depthwiseConv2d: (args: ConvArgs) => tf.TensorInfo = padded("DepthwiseConv2dNative", true);
/** A depthwise 2-d convolution with its bias and activation, with any padding. */
export const fusedDepthwiseConv2d: (args: ConvArgs) => tf.TensorInfo = padded("FusedDepthwiseConv2D", true);
