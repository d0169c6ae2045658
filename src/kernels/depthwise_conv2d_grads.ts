/**
 * `DepthwiseConv2dNativeBackpropFilter` and `…Input`, which the wasm backend
 * lacks: without them `depthwiseConv2d` and `separableConv2d` layers crash
 * on their first training step. Each output value is a sum of input (or
 * output-gradient) × filter products accumulated in float64 in the cpu
 * backend's order — batch, output row, output column (then channel
 * multiplier) — and stored as float32 once. Layout NHWC; tfjs takes the
 * gradient of dilation 1 only, and these follow `dilations` all the same.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { float32Output, type KernelArgs, valuesOf } from "./_host.ts";

interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

type FilterArgs = KernelArgs<
  { x: tf.TensorInfo; dy: tf.TensorInfo },
  DepthwiseAttrs & { filterShape: [number, number, number, number] }
>;
type InputArgs = KernelArgs<
  { dy: tf.TensorInfo; filter: tf.TensorInfo },
  DepthwiseAttrs & { inputShape: [number, number, number, number] }
>;

function convInfo(inShape: number[], filterShape: number[], attrs: DepthwiseAttrs) {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/**
 * Calls `visit(xAt, yAt, tap)` for every (input, output, filter tap) triple of
 * one batch row, in output row, column order and then filter row, column:
 * `xAt` and `yAt` index a pixel (times the channel count), `tap` a filter
 * position.
 */
function eachProduct(
  info: tf.backend_util.Conv2DInfo,
  b: number,
  visit: (xAt: number, yAt: number, tap: number) => void,
): void {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  for (let r = 0; r < outHeight; r++) {
    for (let c = 0; c < outWidth; c++) {
      const yAt = (b * outHeight + r) * outWidth + c;
      for (let fr = 0; fr < filterHeight; fr++) {
        const xr = r * sh + fr * dh - top;
        if (xr < 0 || xr >= inHeight) continue;
        for (let fc = 0; fc < filterWidth; fc++) {
          const xc = c * sw + fc * dw - left;
          if (xc < 0 || xc >= inWidth) continue;
          visit((b * inHeight + xr) * inWidth + xc, yAt, fr * filterWidth + fc);
        }
      }
    }
  }
}

/** d loss / d filter of a depthwise convolution, from its input `x` and its output's gradient `dy`. */
export function depthwiseFilterGradient({ inputs, backend, attrs }: FilterArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const info = convInfo(x.shape, attrs.filterShape, attrs);
  const channels = info.inChannels, outChannels = info.outChannels;
  const xs = valuesOf(backend, x), grads = valuesOf(backend, dy);
  // Filter [h, w, in, multiplier]: entry (tap, d, m) is output channel d * multiplier + m.
  const sums = new Float64Array(info.filterHeight * info.filterWidth * outChannels);
  for (let b = 0; b < info.batchSize; b++) {
    eachProduct(info, b, (xAt, yAt, tap) => {
      const xBase = xAt * channels, yBase = yAt * outChannels, fBase = tap * outChannels;
      for (let o = 0; o < outChannels; o++) {
        sums[fBase + o] += xs[xBase + ((o / (outChannels / channels)) | 0)] * grads[yBase + o];
      }
    });
  }
  return float32Output(backend, attrs.filterShape, sums);
}

/** d loss / d input of a depthwise convolution, from its filter and its output's gradient `dy`. */
export function depthwiseInputGradient({ inputs, backend, attrs }: InputArgs): tf.TensorInfo {
  const { dy, filter } = inputs;
  const info = convInfo(attrs.inputShape, filter.shape, attrs);
  const channels = info.inChannels, outChannels = info.outChannels, multiplier = outChannels / channels;
  const weights = valuesOf(backend, filter), grads = valuesOf(backend, dy);
  const sums = new Float64Array(info.batchSize * info.inHeight * info.inWidth * channels);
  for (let b = 0; b < info.batchSize; b++) {
    eachProduct(info, b, (xAt, yAt, tap) => {
      const xBase = xAt * channels, yBase = yAt * outChannels, fBase = tap * outChannels;
      for (let d = 0; d < channels; d++) {
        let sum = sums[xBase + d];
        for (let m = 0; m < multiplier; m++) {
          sum += grads[yBase + d * multiplier + m] * weights[fBase + d * multiplier + m];
        }
        sums[xBase + d] = sum;
      }
    });
  }
  return float32Output(backend, attrs.inputShape, sums);
}
