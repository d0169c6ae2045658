/**
 * `MaxPool` (NHWC) for 2 × 2 windows with stride 2 inside the input (the
 * MNIST CNN's two pools), float32, channels a multiple of four: the SIMD
 * kernel of simd/max_pool.ts, run in tfjs-backend-wasm's own memory (no
 * copies), the cpu backend's values. Other pools, dtypes, small inputs and a
 * heap shared between threads stay on tfjs's kernel (XNNPACK).
 *
 * Tried and left: the same pool in JS, written into tfjs's heap — with `if`s
 * or ternaries 9.7 ms of CPU a step against XNNPACK's 1.6 (V8 branches, and a
 * post-relu window's maxima are half zeros, so they mispredict), branch-free
 * on the bits as ordered int32 keys 3.3 ms a call (Deno).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { KernelArgs } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";
import { wasmHeapMemory, wasmMemory } from "../internal/tfjs_private.ts";
import { pool2x2In } from "./simd/max_pool.ts";

/** Inputs below this many values stay on tfjs's kernel. */
const MIN_VALUES = 1 << 14;

/** Whether 2 × 2 max pools run here; off only to measure against tfjs's (bench/profile_cnn.ts). */
export const inPlaceMaxPools = { on: true };

type MaxPoolArgs = KernelArgs<
  { x: tf.TensorInfo },
  {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: "floor" | "round" | "ceil";
  }
>;

/** The 2-d max pool of `x` (NHWC). */
export function maxPool(args: MaxPoolArgs): tf.TensorInfo {
  const { inputs: { x }, backend, attrs } = args;
  const memory = inPlaceMaxPools.on && x.dtype === "float32" && x.shape.length === 4 &&
      x.shape[3] % 4 === 0 && tf.util.sizeFromShape(x.shape) >= MIN_VALUES
    ? wasmHeapMemory(backend)
    : undefined;
  if (memory && backend.makeOutput) {
    const info = tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
    if (
      info.effectiveFilterHeight === 2 && info.effectiveFilterWidth === 2 && info.strideHeight === 2 &&
      info.strideWidth === 2 && info.padInfo.top === 0 && info.padInfo.left === 0 && outHeight > 0 &&
      outWidth > 0 && outHeight * 2 <= inHeight && outWidth * 2 <= inWidth
    ) {
      const out = backend.makeOutput(info.outShape, "float32") as tf.TensorInfo;
      const from = wasmMemory(backend, x.dataId), to = wasmMemory(backend, out.dataId);
      if (from && to) {
        const inRow = inWidth * inChannels * 4;
        // Rows of windows run on across samples when the input's height is even; otherwise one call a sample.
        const calls = inHeight === outHeight * 2 ? 1 : batchSize, rows = batchSize * outHeight / calls;
        const pool = pool2x2In(memory);
        for (let i = 0; i < calls; i++) {
          pool(
            from.offset + i * inHeight * inRow,
            to.offset + i * rows * outWidth * inChannels * 4,
            rows * outWidth,
            outWidth,
            inChannels / 4,
            2 * inRow,
            inRow,
          );
        }
        return out;
      }
      backend.disposeData?.(out.dataId);
    }
  }
  return tfjsKernel("MaxPool", "wasm", args) as tf.TensorInfo;
}
