/**
 * The filter gradient of a large NHWC 2-d convolution straight from its
 * input and output gradient, on the SIMD kernels' `taps`
 * (simd/filter_taps.ts), shared across cores by chunks of samples. The input
 * is copied in with its padding made zeros (a padded position then adds
 * 0 · dy, as the patches of conv2d_products.ts did), the output gradient with
 * its channels padded to a multiple of 8.
 *
 * Order of the sums (not the cpu backend's float64 loop order): each chunk of
 * samples sums its terms in float32 in sample, row, column order; the chunks'
 * sums are then added in float64, in chunk order, and rounded once. The chunk
 * size depends only on the batch size, so the result is the same on any
 * number of threads. The gap to the cpu backend is float32 accumulation
 * noise, bounded in tests/kernel_conformance_test.ts.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { simdKernels } from "./simd/products.ts";
import { TAP_BLOCK } from "./simd/filter_taps.ts";
import { padInput } from "./conv2d_padding.ts";

/** Chunks of samples a batch is cut into (at most): enough to share among threads, few partial sums to add. */
const CHUNKS = 32;

/** Whether the filter gradient runs on `taps`; off only to compare against the products (bench/profile_cnn.ts). */
export const filterTaps = { on: true };

/** d loss / d filter (`[fh, fw, in, out]`) of an NHWC convolution, or `undefined` when the kernels' memory is full. */
export function filterGradientByTaps(
  info: tf.backend_util.Conv2DInfo,
  xs: ArrayLike<number>,
  grads: ArrayLike<number>,
): Float32Array | undefined {
  const simd = simdKernels()!;
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, outChannels } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, filterHeight, filterWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  // The padded input: every row and column the output positions' taps reach.
  const rows = (outHeight - 1) * sh + (filterHeight - 1) * dh + 1,
    cols = (outWidth - 1) * sw + (filterWidth - 1) * dw + 1;
  const stride = Math.ceil(outChannels / 8) * 8, taps = filterHeight * filterWidth * ch;
  const offsets = new Int32Array(Math.ceil(taps / TAP_BLOCK) * TAP_BLOCK);
  for (let fr = 0, t = 0; fr < filterHeight; fr++) {
    for (let fc = 0; fc < filterWidth; fc++) {
      for (let i = 0; i < ch; i++) offsets[t++] = (fr * dh * cols + fc * dw) * ch + i;
    }
  }
  offsets.fill(offsets[taps - 1], taps); // the last block's spare taps repeat the last; their sums are dropped
  const chunk = Math.ceil(batchSize / CHUNKS);
  const xSample = rows * cols * ch, dySample = outHeight * outWidth * stride;
  const partials = simd.filterTaps({
    samples: batchSize,
    xSample,
    dySample,
    count: outHeight * outWidth,
    cols: outWidth,
    colStep: sw * ch,
    rowStep: sh * cols * ch,
    stride,
    offsets,
    chunk,
    fill(x, dy) {
      padInput(
        { samples: batchSize, inHeight, inWidth, channels: ch, rows, cols, top, left },
        xs as Float32Array,
        x,
      );
      const g = grads as Float32Array;
      if (stride === outChannels) dy.set(g.subarray(0, batchSize * dySample));
      else {
        const positions = batchSize * outHeight * outWidth;
        for (let p = 0; p < positions; p++) {
          dy.set(g.subarray(p * outChannels, (p + 1) * outChannels), p * stride);
          dy.fill(0, p * stride + outChannels, (p + 1) * stride);
        }
      }
    },
  });
  if (partials === undefined) return undefined;
  const chunks = Math.ceil(batchSize / chunk), accChunk = offsets.length * stride;
  const out = new Float32Array(taps * outChannels);
  for (let t = 0; t < taps; t++) {
    for (let o = 0; o < outChannels; o++) {
      let sum = 0;
      for (let c = 0, at = t * stride + o; c < chunks; c++, at += accChunk) sum += partials[at];
      out[t * outChannels + o] = sum;
    }
  }
  return out;
}
