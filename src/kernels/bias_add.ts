/**
 * `Add` of a bias — a float32 tensor plus a vector along its last axis, as
 * every conv and dense layer adds its bias while training (tfjs-layers adds
 * it apart from the convolution under a gradient tape) — in JS, written into
 * the wasm heap: each sum is the float32 sum, the cpu backend's value bit for
 * bit. tfjs-backend-wasm 4.22's broadcasting add took ~7 ms a step for the
 * MNIST CNN's first bias (2.36M values, 8 channels) on Deno, its same-shape
 * add ~1; this loop ~1.2. Other adds stay on tfjs's kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type HostBackend, type KernelArgs, writeOutput } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";
import { wasmHeapMemory, wasmMemory } from "../internal/tfjs_private.ts";
import { biasAddIn } from "./simd/bias.ts";

/** Tensors below this many values stay on tfjs's kernel. */
const MIN_VALUES = 1 << 14;

/** Whether bias adds run here; off only to measure against tfjs's (bench/profile_cnn.ts). */
export const biasAdds = { on: true };

/**
 * Whether a bias's add and its gradient's sum run on the SIMD kernels of simd/bias.ts in tfjs-backend-wasm's heap
 * (rows of a multiple of 4 values; this file's and sum.ts's JS loops otherwise); off only to measure against the JS
 * loops (bench/profile_cnn.ts).
 */
export const inPlaceBiases = { on: true };

type AddArgs = KernelArgs<{ a: tf.TensorInfo; b: tf.TensorInfo }, Record<string, never>>;

/** Whether `bias` is a vector along the last axis of `x` (any leading axes of size 1). */
function isBiasOf(bias: tf.TensorInfo, x: tf.TensorInfo): boolean {
  const width = x.shape[x.shape.length - 1];
  return x.shape.length >= 2 && bias.shape.length >= 1 && bias.shape.length <= x.shape.length &&
    bias.shape[bias.shape.length - 1] === width && tf.util.sizeFromShape(bias.shape) === width;
}

/** `a + b`. */
export function add(args: AddArgs): tf.TensorInfo {
  const { inputs: { a, b }, backend } = args;
  if (biasAdds.on && a.dtype === "float32" && b.dtype === "float32") {
    const [x, bias] = isBiasOf(b, a) ? [a, b] : isBiasOf(a, b) ? [b, a] : [undefined, undefined];
    if (x && bias && tf.util.sizeFromShape(x.shape) >= MIN_VALUES) {
      const done = inPlaceBiases.on ? biasAddInPlace(backend, x, bias) : undefined;
      if (done) return done;
      return writeOutput(backend, x.shape, [x, bias], (out, xs, bs) => addBias(xs, bs, out));
    }
  }
  return tfjsKernel("Add", "wasm", args) as tf.TensorInfo;
}

/**
 * out = xs + bs along the last axis. Eight columns at a time with their bias
 * in locals (the plain two-loop nest ran 6.7 ms on Deno for 2.36M values, this
 * one 1.2), then the rest.
 */
function addBias(xs: ArrayLike<number>, bs: ArrayLike<number>, out: Float32Array): void {
  const width = bs.length, n = out.length;
  let c0 = 0;
  for (; c0 + 8 <= width; c0 += 8) {
    const b0 = bs[c0], b1 = bs[c0 + 1], b2 = bs[c0 + 2], b3 = bs[c0 + 3];
    const b4 = bs[c0 + 4], b5 = bs[c0 + 5], b6 = bs[c0 + 6], b7 = bs[c0 + 7];
    for (let at = c0; at < n; at += width) {
      out[at] = xs[at] + b0, out[at + 1] = xs[at + 1] + b1, out[at + 2] = xs[at + 2] + b2;
      out[at + 3] = xs[at + 3] + b3, out[at + 4] = xs[at + 4] + b4, out[at + 5] = xs[at + 5] + b5;
      out[at + 6] = xs[at + 6] + b6, out[at + 7] = xs[at + 7] + b7;
    }
  }
  for (let c = c0; c < width; c++) {
    const bc = bs[c];
    for (let at = c; at < n; at += width) out[at] = xs[at] + bc;
  }
}

/**
 * `x + bias` by simd/bias.ts's `biasAdd` in tfjs-backend-wasm's heap, or `undefined` where that heap cannot be read
 * here or the rows are not a multiple of 4 values.
 */
function biasAddInPlace(backend: HostBackend, x: tf.TensorInfo, bias: tf.TensorInfo): tf.TensorInfo | undefined {
  if (x.shape[x.shape.length - 1] % 4 !== 0 || !wasmHeapMemory(backend) || !backend.makeOutput) return undefined;
  const out = backend.makeOutput(x.shape, "float32") as tf.TensorInfo;
  if (biasAddInHeap(backend, x, bias, out)) return out;
  backend.disposeData?.(out.dataId);
  return undefined;
}

/**
 * `out = x + bias` along the last axis (then a relu, with `relu`: 0 where
 * the sum is ≤ 0, NaN kept) by simd/bias.ts's `biasAdd` in
 * tfjs-backend-wasm's heap, on float32 tensors of that heap; `out` may be
 * `x`. `false` (nothing done) where the heap cannot be read here or the rows
 * are not a multiple of 4 values. Internal (matmul.ts's fused epilogue).
 */
export function biasAddInHeap(
  backend: object,
  x: tf.TensorInfo,
  bias: tf.TensorInfo,
  out: tf.TensorInfo,
  relu = false,
): boolean {
  const width = x.shape[x.shape.length - 1];
  const memory = width % 4 === 0 ? wasmHeapMemory(backend) : undefined;
  const from = memory && wasmMemory(backend, x.dataId), b = memory && wasmMemory(backend, bias.dataId);
  const to = memory && wasmMemory(backend, out.dataId);
  if (!memory || !from || !b || !to) return false;
  biasAddIn(memory, relu)(from.offset, b.offset, to.offset, tf.util.sizeFromShape(x.shape) / width, width * 4);
  return true;
}
