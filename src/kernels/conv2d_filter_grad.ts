/**
 * `Conv2DBackpropFilter`, which the wasm backend lacks (without it no conv
 * net trains on wasm): each filter entry is the sum over the batch and the
 * output positions of input × output gradient, accumulated in float64 in
 * batch, row, column order and stored as float32, as the cpu backend
 * computes it. Large ones (NHWC) run on the SIMD kernels instead, in float32
 * (conv2d_filter_taps.ts; conv2d_products.ts's product of patches was
 * ~7× slower at the MNIST CNN's sizes).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { float32Output, type KernelArgs, output, valuesOf } from "./_host.ts";
import { asProducts, filterGradientAsProduct } from "./conv2d_products.ts";
import { filterGradientByTaps, filterTaps } from "./conv2d_filter_taps.ts";

type FilterGradArgs = KernelArgs<{ x: tf.TensorInfo; dy: tf.TensorInfo }, {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape: [number, number, number, number];
}>;

/** d loss / d filter of a 2-d convolution, from its input `x` and its output's gradient `dy`. */
export function conv2dFilterGradient({ inputs, backend, attrs }: FilterGradArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const format = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    format,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight, filterWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const xs = valuesOf(backend, x), grads = valuesOf(backend, dy);
  if (asProducts(info)) {
    const product = filterTaps.on
      ? filterGradientByTaps(info, xs, grads)
      : filterGradientAsProduct(info, xs, grads as Float32Array);
    if (product) return output(backend, attrs.filterShape, "float32", product);
  }
  const last = info.dataFormat === "channelsLast";
  // Strides of x and dy along batch, row, column and channel, in either layout.
  const [xB, xR, xC, xCh] = last
    ? [inHeight * inWidth * inChannels, inWidth * inChannels, inChannels, 1]
    : [inChannels * inHeight * inWidth, inWidth, 1, inHeight * inWidth];
  const [dB, dR, dC, dCh] = last
    ? [outHeight * outWidth * outChannels, outWidth * outChannels, outChannels, 1]
    : [outChannels * outHeight * outWidth, outWidth, 1, outHeight * outWidth];
  // One pass over the output positions in batch, row, column order; each adds its products to every
  // filter entry it touches. Every entry thus sums its terms in the order the cpu backend sums them
  // (a position outside the input adds nothing), in float64, rounded to float32 once at the end.
  // (The cpu backend's loop nest, entry by entry, ran the CNN at 36 s an epoch here.)
  const sums = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);
  const dyRow = new Float64Array(outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let r = 0; r < outHeight; r++) {
      for (let c = 0; c < outWidth; c++) {
        const dyBase = b * dB + r * dR + c * dC;
        for (let o = 0; o < outChannels; o++) dyRow[o] = grads[dyBase + o * dCh];
        for (let fr = 0; fr < filterHeight; fr++) {
          const xr = r * sh + fr - top;
          if (xr < 0 || xr >= inHeight) continue;
          for (let fc = 0; fc < filterWidth; fc++) {
            const xc = c * sw + fc - left;
            if (xc < 0 || xc >= inWidth) continue;
            const xBase = b * xB + xr * xR + xc * xC;
            const tap = (fr * filterWidth + fc) * inChannels;
            for (let i = 0; i < inChannels; i++) {
              const v = xs[xBase + i * xCh];
              const at = (tap + i) * outChannels;
              for (let o = 0; o < outChannels; o++) sums[at + o] += v * dyRow[o];
            }
          }
        }
      }
    }
  }
  return float32Output(backend, attrs.filterShape, sums);
}
