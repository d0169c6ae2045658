/**
 * Large 2-d convolution gradients as products on fitstream's SIMD kernels
 * (src/kernels/simd/), shared across cores: the filter gradient is
 * `patchesᵀ · dy` and the input gradient scatters `dy · filterᵀ` back over
 * the patches. Layout NHWC. Products sum in float32 in the kernels' blocked
 * order, not the cpu backend's float64 order: the results differ from it by
 * float32 accumulation noise (bounded in tests/kernel_conformance_test.ts).
 * At the MNIST CNN's sizes the JS loops took 300–750 ms a step here.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { simdKernels } from "./simd/products.ts";

/** Products below this many multiply-adds stay on the exact loops (or tfjs's own kernel): copying in costs more. */
export const PRODUCT_MIN_MACS = 1 << 18;

type Info = tf.backend_util.Conv2DInfo;

/** Whether a convolution of `info` runs its gradients as products (NHWC, big enough, the kernels available). */
export function asProducts(info: Info): boolean {
  const { batchSize, outHeight, outWidth, filterHeight, filterWidth, inChannels, outChannels } = info;
  const macs = batchSize * outHeight * outWidth * filterHeight * filterWidth * inChannels * outChannels;
  return info.dataFormat === "channelsLast" && info.dilationHeight === 1 && info.dilationWidth === 1 &&
    macs >= PRODUCT_MIN_MACS && simdKernels() !== undefined;
}

/**
 * For every output pixel (`row`: batch, row, column) and in-bounds filter tap,
 * copies the input pixel's channels between `patches` (row-major, `depth` =
 * taps × channels a row) and the input `xs` — into `patches` (`toPatches`) or,
 * adding, back into the float64 input sums (`!toPatches`). One loop nest for
 * both directions: a closure per (pixel, tap) cost ~2× at the MNIST CNN's
 * sizes.
 */
function walkPatches(
  info: Info,
  patches: Float32Array,
  patchStride: number,
  xs: ArrayLike<number> | Float64Array,
  toPatches: boolean,
): void {
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const sums = xs as Float64Array;
  let row = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let r = 0; r < outHeight; r++) {
      for (let c = 0; c < outWidth; c++, row++) {
        const rowAt = row * patchStride;
        for (let fr = 0; fr < filterHeight; fr++) {
          const xr = r * sh + fr - top;
          if (xr < 0 || xr >= inHeight) continue;
          const xRow = (b * inHeight + xr) * inWidth;
          for (let fc = 0; fc < filterWidth; fc++) {
            const xc = c * sw + fc - left;
            if (xc < 0 || xc >= inWidth) continue;
            const xAt = (xRow + xc) * ch, pAt = rowAt + (fr * filterWidth + fc) * ch;
            if (toPatches) { for (let i = 0; i < ch; i++) patches[pAt + i] = xs[xAt + i]; }
            else for (let i = 0; i < ch; i++) sums[xAt + i] += patches[pAt + i];
          }
        }
      }
    }
  }
}

/** Copies `rows` rows of `width` values from a product (row stride `stride`) into a packed array. */
function packed(values: Float32Array, stride: number, rows: number, width: number): Float32Array {
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) out.set(values.subarray(r * stride, r * stride + width), r * width);
  return out;
}

/** d loss / d filter (`[fh, fw, in, out]`, packed) = patchesᵀ · dy, or `undefined` when the kernels' memory is full. */
export function filterGradientAsProduct(
  info: Info,
  xs: ArrayLike<number>,
  grads: Float32Array,
): Float32Array | undefined {
  const simd = simdKernels()!;
  const { inChannels, outChannels, filterHeight, filterWidth } = info;
  const rows = info.batchSize * info.outHeight * info.outWidth, depth = filterHeight * filterWidth * inChannels;
  const patches = simd.float32(rows * depth); // zeros where a patch leaves the input
  if (patches === undefined) return undefined;
  try {
    walkPatches(info, patches, depth, xs, true);
    const product = simd.multiply(
      { values: patches, transposed: true },
      { values: grads, transposed: false },
      depth,
      rows,
      outChannels,
    );
    return product && packed(product.values, product.stride, depth, outChannels);
  } finally {
    simd.free(patches);
  }
}

/** d loss / d input (NHWC) = dy · filterᵀ scattered over the patches, or `undefined` when the memory is full. */
export function inputGradientAsProduct(
  info: Info,
  grads: Float32Array,
  weights: Float32Array,
): Float32Array | undefined {
  const simd = simdKernels()!;
  const { inChannels, outChannels, filterHeight, filterWidth } = info;
  const rows = info.batchSize * info.outHeight * info.outWidth, depth = filterHeight * filterWidth * inChannels;
  // The filter [fh, fw, in, out] is filterᵀ's transpose: read transposed.
  const product = simd.multiply(
    { values: grads, transposed: false },
    { values: weights, transposed: true },
    rows,
    outChannels,
    depth,
  );
  if (product === undefined) return undefined;
  const { values, stride } = product;
  // Each input value sums the patches it appears in, in float64, in output pixel order.
  const sums = new Float64Array(info.batchSize * info.inHeight * info.inWidth * inChannels);
  walkPatches(info, values, stride, sums, false);
  return new Float32Array(sums);
}
