/**
 * `ResizeNearestNeighborGrad`, replacing tfjs-backend-wasm 4.22's, whose
 * gradients differ from the cpu backend's (`upSampling2d` trained wrong on
 * wasm). Each output pixel's gradient goes back to the input pixel the
 * forward pass copied it from, by the forward kernel's own index arithmetic;
 * an input pixel sums its gradients in float64 in output row, column order and
 * is stored as float32 once — the cpu backend's sums, in its order. (The cpu
 * backend's gradient ignores `halfPixelCenters`; this one follows the forward
 * pass there too, which no tfjs layer reaches: `upSampling2d` leaves it off.)
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { float32Output, type KernelArgs, valuesOf } from "./_host.ts";

type ResizeGradArgs = KernelArgs<
  { images: tf.TensorInfo; dy: tf.TensorInfo },
  { alignCorners: boolean; halfPixelCenters?: boolean }
>;

/**
 * The ratio by which a resize maps output positions to input positions along
 * one axis (tfjs's rule: of the sizes, or of the sizes less one with
 * `alignCorners`). Shared by both resize gradients.
 */
export function resizeRatio(inSize: number, outSize: number, alignCorners: boolean): number {
  const corners = alignCorners && outSize > 1;
  return (corners ? inSize - 1 : inSize) / (corners ? outSize - 1 : outSize);
}

/**
 * For each of `outSize` output positions along one axis, the input position
 * the forward resize copies from (tfjs's rule: scale by the ratio of the
 * effective sizes, then floor, or round with `alignCorners`).
 */
export function nearestSources(inSize: number, outSize: number, alignCorners: boolean, halfPixel: boolean): Int32Array {
  const ratio = resizeRatio(inSize, outSize, alignCorners);
  const sources = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const frac = halfPixel ? ratio * (o + 0.5) : ratio * o;
    const nearest = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    sources[o] = halfPixel ? Math.max(0, nearest) : nearest;
  }
  return sources;
}

/** d loss / d images of a nearest-neighbour resize (NHWC), from its output's gradient `dy`. */
export function resizeNearestGradient({ inputs, backend, attrs }: ResizeGradArgs): tf.TensorInfo {
  const { images, dy } = inputs;
  const [batch, inHeight, inWidth, channels] = images.shape;
  const [, outHeight, outWidth] = dy.shape;
  const halfPixel = attrs.halfPixelCenters === true;
  const rows = nearestSources(inHeight, outHeight, attrs.alignCorners, halfPixel);
  const cols = nearestSources(inWidth, outWidth, attrs.alignCorners, halfPixel);
  const grads = valuesOf(backend, dy);
  const sums = new Float64Array(batch * inHeight * inWidth * channels);
  let from = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const rowAt = (b * inHeight + rows[r]) * inWidth;
      for (let c = 0; c < outWidth; c++) {
        const to = (rowAt + cols[c]) * channels;
        for (let d = 0; d < channels; d++) sums[to + d] += grads[from++];
      }
    }
  }
  return float32Output(backend, images.shape, sums);
}
