/**
 * `MaxPoolGrad`, replacing tfjs-backend-wasm 4.22's, whose gradients differ
 * from the cpu backend's and from a hand-written reference (0.44 off on a
 * 2×6×6×2 input; a maxPooling1d model's weights were 0.04 off after 2
 * epochs). Each window's gradient goes to its first largest input in row,
 * column order (a strict `>`: ties and NaN as the cpu backend decides them);
 * an input that is the maximum of several windows sums their gradients in
 * float64 in output order and is stored as float32 once, as the cpu backend
 * does. Large pools whose windows do not overlap run SIMD kernels in
 * tfjs-backend-wasm's own heap (simd/max_pool_grad.ts; 2 × 2 windows at
 * stride 2 unrolled), or else on the shared kernels' threads.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type HostBackend, type KernelArgs, output, valuesOf, writeOutput } from "./_host.ts";

import { type PoolSizes, simdKernels } from "./simd/products.ts";
import { pool2x2GradIn, poolGradIn } from "./simd/max_pool_grad.ts";
import { wasmHeapMemory, wasmMemory } from "../internal/tfjs_private.ts";

/** Whether windows that do not overlap take the fast paths; off only to measure against the old loop (bench/profile_cnn.ts). */
export const tightMaxPoolGrad = { on: true };

/**
 * Whether the SIMD kernel runs in tfjs-backend-wasm's own memory, on this thread (no copies in or out), where it
 * can; off only to measure against the shared kernels' threads (bench/profile_cnn.ts).
 */
export const inPlacePoolGrads = { on: true };

/** Inputs from which the SIMD kernel pays for copying in and out. */
const SIMD_MIN_INPUTS = 1 << 14;

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
  if (sh >= fh && sw >= fw && tightMaxPoolGrad.on) {
    // Windows that do not overlap give each input one gradient at most, so each is written once (0 + g: exact in
    // float32, and +0 for a −0 gradient as the cpu backend's float64 sum gives), straight into the output. One
    // channel at a time, its window scanned in row, column order with a strict `>`, the maximum in locals: the loop
    // below (per-window arrays of maxima and places) took 19 ms on Deno and 56 on Bun for the MNIST CNN's two pools
    // at batch 512; this one about a third of that (interleaved, on a busy machine).
    // Windows inside the input, four channels at a time, large: the SIMD kernel (simd/max_pool_grad.ts), the same
    // values.
    const inside = top === 0 && left === 0 && (outHeight - 1) * sh + fh <= inHeight &&
      (outWidth - 1) * sw + fw <= inWidth;
    const large = inside && channels % 4 === 0 && tf.util.sizeFromShape(input.shape) >= SIMD_MIN_INPUTS;
    if (large && inPlacePoolGrads.on) {
      const job = { batchSize, inHeight, inWidth, channels, outHeight, outWidth, fh, fw, sh, sw };
      const done = poolGradInPlace(backend, input, dy, job);
      if (done) return done;
    }
    const simd = large ? simdKernels() : undefined;
    return writeOutput(backend, input.shape, [input, dy], (out, xs, grads) => {
      const job = { samples: batchSize, inHeight, inWidth, channels, outHeight, outWidth, fh, fw, sh, sw };
      const done = simd?.poolGrad({ ...job, x: xs as Float32Array, dy: grads as Float32Array });
      if (done) return void out.set(done);
      out.fill(0);
      const rowStride = inWidth * channels;
      let dyAt = 0;
      for (let b = 0; b < batchSize; b++) {
        const sample = b * inHeight * rowStride;
        for (let r = 0; r < outHeight; r++) {
          const r0 = r * sh - top, rStart = Math.max(0, r0), rEnd = Math.min(inHeight, r0 + fh);
          for (let c = 0; c < outWidth; c++, dyAt += channels) {
            const c0 = c * sw - left, cStart = Math.max(0, c0), cEnd = Math.min(inWidth, c0 + fw);
            const first = sample + rStart * rowStride + cStart * channels;
            for (let d = 0; d < channels; d++) {
              let best = -Infinity, at = -1;
              for (let xr = rStart, rowAt = first + d; xr < rEnd; xr++, rowAt += rowStride) {
                for (let xc = cStart, i = rowAt; xc < cEnd; xc++, i += channels) {
                  const v = xs[i];
                  if (v > best) best = v, at = i;
                }
              }
              if (at >= 0) out[at] += grads[dyAt + d];
            }
          }
        }
      }
    });
  }
  const xs = valuesOf(backend, input), grads = valuesOf(backend, dy);
  // Windows that do not overlap give each input one gradient at most: 0 + g is exact in float32, so the sums can
  // be float32 themselves (a float64 array and its narrowing cost ~40% of this kernel at the MNIST CNN's sizes).
  const overlap = sh < fh || sw < fw;
  const sums = overlap ? new Float64Array(xs.length) : new Float32Array(xs.length);
  // Per output pixel, the window is scanned in row, column order with every channel inner (memory order); each
  // channel keeps its own first maximum.
  const best = new Float64Array(channels), at = new Int32Array(channels);
  for (let b = 0; b < batchSize; b++) {
    for (let r = 0; r < outHeight; r++) {
      const r0 = r * sh - top, rStart = Math.max(0, r0), rEnd = Math.min(inHeight, r0 + fh);
      for (let c = 0; c < outWidth; c++) {
        const c0 = c * sw - left, cStart = Math.max(0, c0), cEnd = Math.min(inWidth, c0 + fw);
        best.fill(-Infinity);
        at.fill(-1);
        for (let xr = rStart; xr < rEnd; xr++) {
          for (let xc = cStart; xc < cEnd; xc++) {
            const base = ((b * inHeight + xr) * inWidth + xc) * channels;
            for (let d = 0; d < channels; d++) {
              const v = xs[base + d];
              if (v > best[d]) best[d] = v, at[d] = base + d;
            }
          }
        }
        const dyAt = ((b * outHeight + r) * outWidth + c) * channels;
        for (let d = 0; d < channels; d++) if (at[d] >= 0) sums[at[d]] += grads[dyAt + d];
      }
    }
  }
  return output(backend, input.shape, "float32", overlap ? new Float32Array(sums) : sums as Float32Array);
}

/** A max pool's sizes and batch, as {@link poolGradInPlace} needs them. */
interface PoolJob extends PoolSizes {
  batchSize: number;
}

/**
 * The gradient of a max pool whose windows do not overlap and lie inside the input (channels a multiple of 4), by
 * the SIMD kernel made in tfjs-backend-wasm's heap: it reads the input and `dy` where they are and writes the
 * output there, on this thread. The shared kernels' threads copy the input and `dy` in and the result out (~28 MB
 * a step of the MNIST CNN, which the pooling itself barely outweighs). The MNIST CNN's two pool gradients, a step
 * (bench/profile_cnn.ts, `CNN_SWITCH=inPlacePoolGrads`, medians of 8 alternating rounds on a loaded machine): the
 * generic kernel in place 3.8 → 3.1 ms of CPU on one thread and no faster in wall time than two threads with
 * copies; with the unrolled 2 × 2 kernel 5.2 → 2.9 ms of CPU, and wall time on two threads 6.2 → 2.5 (Deno),
 * 5.9 → 3.5 (Bun) (bench/README.md's table is another run, of the three in-heap switches together).
 * `undefined` where tfjs's heap cannot be read here (an unknown tfjs, a heap shared between threads).
 */
function poolGradInPlace(
  backend: HostBackend,
  input: tf.TensorInfo,
  dy: tf.TensorInfo,
  job: PoolJob,
): tf.TensorInfo | undefined {
  const memory = input.dtype === "float32" && dy.dtype === "float32" ? wasmHeapMemory(backend) : undefined;
  if (!memory || !backend.makeOutput) return undefined;
  const { batchSize, inHeight, inWidth, channels, outHeight, outWidth, fh, fw, sh, sw } = job;
  const out = backend.makeOutput(input.shape, "float32") as tf.TensorInfo;
  const x = wasmMemory(backend, input.dataId), g = wasmMemory(backend, dy.dataId), to = wasmMemory(backend, out.dataId);
  if (!x || !g || !to) {
    backend.disposeData?.(out.dataId);
    return undefined;
  }
  const xSample = inHeight * inWidth * channels, inRow = inWidth * channels * 4;
  if (outHeight * sh !== inHeight || outWidth * sw !== inWidth || fh !== sh || fw !== sw) {
    new Float32Array(memory.buffer, to.offset, batchSize * xSample).fill(0); // inputs outside every window
  }
  // Rows of windows run on across samples when the windows' rows end where the sample does; otherwise one call a
  // sample.
  const calls = inHeight === outHeight * sh ? 1 : batchSize, samples = batchSize / calls;
  if (fh === 2 && fw === 2 && sh === 2 && sw === 2) {
    const grad = pool2x2GradIn(memory);
    for (let b = 0; b < calls; b++) {
      const windows = samples * outHeight * outWidth;
      grad(
        x.offset + b * xSample * 4,
        g.offset + b * windows * channels * 4,
        to.offset + b * xSample * 4,
        windows,
        outWidth,
        channels / 4,
        2 * inRow,
        inRow,
      );
    }
    return out;
  }
  const poolGrad = poolGradIn(memory);
  for (let b = 0; b < calls; b++) {
    poolGrad(
      x.offset + b * xSample * 4,
      g.offset + b * outHeight * outWidth * channels * 4,
      to.offset + b * xSample * 4,
      samples * outHeight * outWidth,
      outWidth,
      fh,
      fw,
      channels / 4,
      sw * channels * 4,
      sh * inRow,
      inRow,
    );
  }
  return out;
}
