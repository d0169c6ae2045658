/**
 * `MaxPool3D` and `MaxPool3DGrad`, replacing tfjs-backend-wasm 4.22's: both
 * start a window's maximum at 0, so a window of negative values pools to 0
 * (cpu: -1.01) and its gradient goes nowhere (`maxPooling3d` of negative
 * activations trained 0.10 off in loss after 2 epochs). Layout NDHWC.
 *
 * Ties follow the cpu backend, which takes the *last* largest value of a
 * window in depth, row, column order (a `>=`, where its 2-d pooling takes the
 * first). Where the cpu backend is wrong — it numbers window positions with
 * the filter's height where the width belongs, so windows whose height and
 * width differ send gradients to the wrong input — these follow the forward
 * pass. Gradients sum in float64 in output order, stored as float32 once.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { float32Output, type KernelArgs, output, valuesOf } from "./_host.ts";

interface Pool3DAttrs {
  filterSize: number | [number, number, number];
  strides: number | [number, number, number];
  pad: "valid" | "same" | number;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

function poolInfo(shape: number[], attrs: Pool3DAttrs): tf.backend_util.Conv3DInfo {
  return tf.backend_util.computePool3DInfo(
    shape as [number, number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

/**
 * Calls `visit(at, yAt)` for each output value `yAt` (in output order) with
 * the index of its window's maximum in `xs` — the last of equal maxima with
 * `lastTie` (the cpu backend's gradient), else the first (its forward pass,
 * where only the sign of a zero can tell) — or -1 when no value beats
 * -Infinity (NaN only).
 */
function eachMaximum(
  info: tf.backend_util.Conv3DInfo,
  xs: ArrayLike<number>,
  lastTie: boolean,
  visit: (at: number, yAt: number) => void,
) {
  const { batchSize, inDepth, inHeight, inWidth, inChannels: channels, outDepth, outHeight, outWidth } = info;
  const { strideDepth: sd, strideHeight: sh, strideWidth: sw } = info;
  const { effectiveFilterDepth: fd, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { front, top, left } = info.padInfo;
  let yAt = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let z = 0; z < outDepth; z++) {
      const z0 = z * sd - front, zEnd = Math.min(inDepth, z0 + fd);
      for (let r = 0; r < outHeight; r++) {
        const r0 = r * sh - top, rEnd = Math.min(inHeight, r0 + fh);
        for (let c = 0; c < outWidth; c++, yAt += channels) {
          const c0 = c * sw - left, cEnd = Math.min(inWidth, c0 + fw);
          for (let d = 0; d < channels; d++) {
            let best = -Infinity, at = -1;
            for (let xz = Math.max(0, z0); xz < zEnd; xz++) {
              for (let xr = Math.max(0, r0); xr < rEnd; xr++) {
                for (let xc = Math.max(0, c0); xc < cEnd; xc++) {
                  const i = (((b * inDepth + xz) * inHeight + xr) * inWidth + xc) * channels + d;
                  if (lastTie ? xs[i] >= best : xs[i] > best) best = xs[i], at = i;
                }
              }
            }
            visit(at, yAt + d);
          }
        }
      }
    }
  }
}

/** A 3-d max pool (NDHWC). */
export function maxPool3D(
  { inputs, backend, attrs }: KernelArgs<{ x: tf.TensorInfo }, Pool3DAttrs & { dataFormat?: string }>,
): tf.TensorInfo {
  const info = poolInfo(inputs.x.shape, attrs);
  const xs = valuesOf(backend, inputs.x);
  const out = new Float32Array(tf.util.sizeFromShape(info.outShape)); // float32 whatever x holds, as on the cpu backend
  eachMaximum(info, xs, false, (at, yAt) => out[yAt] = at < 0 ? -Infinity : xs[at]);
  return output(backend, info.outShape, "float32", out);
}

/** d loss / d input of a 3-d max pool (NDHWC), from its input and its output's gradient `dy`. */
export function maxPool3DGradient(
  { inputs, backend, attrs }: KernelArgs<{ dy: tf.TensorInfo; input: tf.TensorInfo }, Pool3DAttrs>,
): tf.TensorInfo {
  const info = poolInfo(inputs.input.shape, attrs);
  const xs = valuesOf(backend, inputs.input), grads = valuesOf(backend, inputs.dy);
  const sums = new Float64Array(xs.length);
  eachMaximum(info, xs, true, (at, yAt) => {
    if (at >= 0) sums[at] += grads[yAt];
  });
  return float32Output(backend, inputs.input.shape, sums);
}
