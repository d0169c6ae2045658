/**
 * `ResizeBilinearGrad`, replacing both backends' where they are wrong: the
 * cpu backend's returns its gradient as [batch, width, height, channels], so
 * a bilinear `upSampling2d` on a non-square image cannot train there, and
 * both ignore `halfPixelCenters`. This one spreads each output pixel's
 * gradient over the four input pixels the forward kernel read, with the
 * forward kernel's own weights; without `halfPixelCenters` that is the cpu
 * backend's arithmetic in its order (products in float64, each added to a
 * float32 sum in output order), so a square image gets its result to the bit.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf } from "./_host.ts";
import { resizeRatio } from "./resize_nearest_grad.ts";

type Args = KernelArgs<
  { images: tf.TensorInfo; dy: tf.TensorInfo },
  { alignCorners: boolean; halfPixelCenters: boolean }
>;

/**
 * Along one axis, for each output position: the two input positions the
 * forward resize reads and the weight of the second (`lerp`).
 */
function taps(inSize: number, outSize: number, alignCorners: boolean, halfPixel: boolean) {
  const ratio = resizeRatio(inSize, outSize, alignCorners);
  const low = new Int32Array(outSize), high = new Int32Array(outSize), lerp = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const frac = halfPixel ? ratio * (o + 0.5) - 0.5 : ratio * o;
    low[o] = Math.max(0, Math.floor(frac));
    high[o] = Math.min(inSize - 1, Math.ceil(frac));
    lerp[o] = frac - low[o];
  }
  return { low, high, lerp };
}

/** d loss / d images of a bilinear resize (NHWC), from its output's gradient `dy`. */
export function resizeBilinearGradient({ inputs: { images, dy }, backend, attrs }: Args): tf.TensorInfo {
  const [batch, inHeight, inWidth, channels] = images.shape;
  const [, outHeight, outWidth] = dy.shape;
  const halfPixel = attrs.halfPixelCenters === true;
  const rows = taps(inHeight, outHeight, attrs.alignCorners, halfPixel);
  const cols = taps(inWidth, outWidth, attrs.alignCorners, halfPixel);
  const grads = valuesOf(backend, dy);
  const sums = new Float32Array(batch * inHeight * inWidth * channels);
  let from = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const top = (b * inHeight + rows.low[r]) * inWidth, bottom = (b * inHeight + rows.high[r]) * inWidth;
      const down = rows.lerp[r], up = 1 - down;
      for (let c = 0; c < outWidth; c++) {
        const left = cols.low[c], right = cols.high[c];
        const across = cols.lerp[c], back = 1 - across;
        const topLeft = (top + left) * channels, topRight = (top + right) * channels;
        const bottomLeft = (bottom + left) * channels, bottomRight = (bottom + right) * channels;
        const wTopLeft = up * back, wTopRight = up * across, wBottomLeft = down * back, wBottomRight = down * across;
        for (let d = 0; d < channels; d++) {
          const g = grads[from++];
          sums[topLeft + d] += g * wTopLeft;
          sums[topRight + d] += g * wTopRight;
          sums[bottomLeft + d] += g * wBottomLeft;
          sums[bottomRight + d] += g * wBottomRight;
        }
      }
    }
  }
  return output(backend, images.shape, "float32", sums);
}
