/**
 * `MaxPoolGrad`, replacing tfjs-backend-wasm 4.22's, whose gradients differ
 * from the cpu backend's and from a hand-written reference (0.44 off on a
 * 2×6×6×2 input; a maxPooling1d model's weight norm after 2 epochs was 1.68
 * against 1.76). Each window's gradient goes to its first largest input in
 * row, column order (a strict `>`: ties and NaN as the cpu backend decides
 * them); an input that is the maximum of several windows sums their
 * gradients in float64 in output order and is stored as float32 once, as the
 * cpu backend does.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { float32Output, type KernelArgs, valuesOf } from "./_host.ts";

type MaxPoolGradArgs = KernelArgs<
  { dy: tf.TensorInfo; input: tf.TensorInfo; output: tf.TensorInfo },
  {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: "floor" | "round" | "ceil";
  }
>;

/** d loss / d input of a 2-d max pool (NHWC), from its input and its output's gradient `dy`. */
export function maxPoolGradient({ inputs, backend, attrs }: MaxPoolGradArgs): tf.TensorInfo {
  const { dy, input } = inputs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const xs = valuesOf(backend, input), grads = valuesOf(backend, dy);
  const sums = new Float64Array(xs.length);
  for (let b = 0; b < batchSize; b++) {
    const xBatch = b * inHeight * inWidth * channels;
    for (let r = 0; r < outHeight; r++) {
      const r0 = r * sh - top, rEnd = Math.min(inHeight, r0 + fh);
      for (let c = 0; c < outWidth; c++) {
        const c0 = c * sw - left, cEnd = Math.min(inWidth, c0 + fw);
        const dyAt = ((b * outHeight + r) * outWidth + c) * channels;
        for (let d = 0; d < channels; d++) {
          let best = -Infinity, at = -1;
          for (let xr = Math.max(0, r0); xr < rEnd; xr++) {
            for (let xc = Math.max(0, c0); xc < cEnd; xc++) {
              const i = xBatch + (xr * inWidth + xc) * channels + d;
              if (xs[i] > best) best = xs[i], at = i;
            }
          }
          if (at >= 0) sums[at] += grads[dyAt + d];
        }
      }
    }
  }
  return float32Output(backend, input.shape, sums);
}
