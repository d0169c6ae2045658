/**
 * `Sum` over leading axes (every bias gradient: a conv layer's sums its
 * output gradient over batch, rows and columns) in JS, exactly as the cpu
 * backend sums: each output adds its terms in row-major order in float64
 * and is rounded to float32 once. tfjs-backend-wasm 4.22 transposes the
 * input first to reduce its innermost axis (the MNIST CNN's first bias
 * gradient, 2.36M values, took ~4 ms a step on Deno); this reads it once, in
 * memory order. Other reductions, other dtypes and small inputs stay on
 * tfjs's kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type HostBackend, type KernelArgs, output, valuesOf } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";
import { inPlaceBiases } from "./bias_add.ts";
import { wasmHeapMemory, wasmMemory } from "../internal/tfjs_private.ts";
import { columnSumsIn, MAX_SUM_WIDTH } from "./simd/bias.ts";

/** Inputs below this many values stay on tfjs's kernel. */
const MIN_VALUES = 1 << 14;

/** Whether leading-axes sums run here; off only to measure against tfjs's (bench/profile_cnn.ts). */
export const leadingSums = { on: true };

type SumArgs = KernelArgs<{ x: tf.TensorInfo }, { axis: number | number[]; keepDims: boolean }>;

/** The sum of `x` over `axis`. */
export function sum(args: SumArgs): tf.TensorInfo {
  const { inputs: { x }, backend, attrs } = args;
  const shape = x.shape, size = tf.util.sizeFromShape(shape);
  const axes = tf.util.parseAxisParam(attrs.axis, shape).sort((a, b) => a - b);
  const k = axes.length;
  if (
    !leadingSums.on || x.dtype !== "float32" || size < MIN_VALUES || k === 0 || k >= shape.length ||
    axes.some((a, i) => a !== i)
  ) {
    return tfjsKernel("Sum", "wasm", args) as tf.TensorInfo;
  }
  const kept = shape.slice(k), width = tf.util.sizeFromShape(kept), rows = size / width;
  const outShape = attrs.keepDims ? [...shape.slice(0, k).map(() => 1), ...kept] : kept;
  const done = inPlaceBiases.on ? sumInPlace(backend, x, outShape, rows, width) : undefined;
  if (done) return done;
  const xs = valuesOf(backend, x);
  const sums = new Float64Array(width);
  // Eight columns at a time in locals (an array of sums ran 2.8 ms for the MNIST CNN's first bias gradient on Deno),
  // then the rest one by one; each column still sums its rows in order.
  let c0 = 0;
  for (; c0 + 8 <= width; c0 += 8) {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (let r = 0, at = c0; r < rows; r++, at += width) {
      s0 += xs[at], s1 += xs[at + 1], s2 += xs[at + 2], s3 += xs[at + 3];
      s4 += xs[at + 4], s5 += xs[at + 5], s6 += xs[at + 6], s7 += xs[at + 7];
    }
    sums.set([s0, s1, s2, s3, s4, s5, s6, s7], c0);
  }
  for (let r = 0; r < rows; r++) for (let c = c0, at = r * width + c0; c < width; c++, at++) sums[c] += xs[at];
  return output(backend, outShape, "float32", new Float32Array(sums));
}

/**
 * The column sums by simd/bias.ts's `columnSums` in tfjs-backend-wasm's heap (the same values), or `undefined`
 * where that heap cannot be read here or the rows are odd or wider than it is made for.
 */
function sumInPlace(
  backend: HostBackend,
  x: tf.TensorInfo,
  outShape: number[],
  rows: number,
  width: number,
): tf.TensorInfo | undefined {
  const memory = width % 2 === 0 && width <= MAX_SUM_WIDTH ? wasmHeapMemory(backend) : undefined;
  if (!memory || !backend.makeOutput) return undefined;
  const out = backend.makeOutput(outShape, "float32") as tf.TensorInfo;
  const from = wasmMemory(backend, x.dataId), to = wasmMemory(backend, out.dataId);
  if (!from || !to) {
    backend.disposeData?.(out.dataId);
    return undefined;
  }
  columnSumsIn(memory, width)(from.offset, rows, to.offset);
  return out;
}
