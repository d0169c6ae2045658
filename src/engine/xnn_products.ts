/**
 * A wide dense layer's three products on the wasm backend's XNNPACK kernels
 * (float32 SIMD) instead of the host engine's float64 JS loops: the forward
 * product, the kernel gradient and the gradient to the layer below. Operands
 * are transposed on the host first, so every call is a plain `matMul`
 * (XNNPACK's `transposeA` path ran 30–40× slower), and each call disposes
 * its tensors itself rather than returning the values from `tf.tidy`, which
 * walks a returned typed array element by element looking for tensors (70 ms
 * instead of 2.9 ms for 784×128 · 128×256). Below
 * {@link XNN_MIN_MACS} multiply-adds a call's fixed cost eats the gain.
 * Products in float32, as the tfjs path computes them; biases, activations
 * and their slopes stay in float64 on the host.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { activateInPlace, type ActivationCode, slopeAny } from "./dense_kernels.ts";

/** A layer's products take XNNPACK from this many multiply-adds per step (batch rows × inputs × units). */
export const XNN_MIN_MACS = 1 << 20;

/** `a` (rows×cols, float64) as float32, transposed when asked. */
function float32(a: Float64Array, rows: number, cols: number, transposed: boolean): Float32Array {
  const out = new Float32Array(rows * cols);
  if (!transposed) {
    for (let k = 0; k < rows * cols; k++) out[k] = a[k];
  } else {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}

let products = 0;

/** How many products have gone to the backend's `matMul` (for tests). Internal. */
export function xnnProductCount(): number {
  return products;
}

/** `p (m×k) · q (k×w)` on the backend's `matMul`, as float32 values (not returned through `tf.tidy`: see above). */
function product(p: Float32Array, m: number, k: number, q: Float32Array, w: number): Float32Array {
  products++;
  const a = tf.tensor2d(p, [m, k]), b = tf.tensor2d(q, [k, w]);
  try {
    const c = tf.matMul(a, b);
    try {
      return c.dataSync() as Float32Array;
    } finally {
      c.dispose();
    }
  } finally {
    a.dispose();
    b.dispose();
  }
}

/** Forward: `out = act(bias + x · kernel)` for `x` of n×i and `kernel` (float32, i×u, row-major). */
export function xnnForward(
  x: Float64Array,
  n: number,
  i: number,
  kernel: Float32Array,
  u: number,
  bias: Float64Array | undefined,
  code: ActivationCode,
  out: Float64Array,
): void {
  const z = product(float32(x, n, i, false), n, i, kernel, u);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < u; j++) out[r * u + j] = z[r * u + j] + (bias ? bias[j] : 0);
  }
  activateInPlace(out, n * u, code);
}

/** The kernel gradient `out (i×u) = xᵀ · dz` for `x` of n×i and `dz` of n×u. */
export function xnnKernelGradient(
  x: Float64Array,
  dz: Float64Array,
  n: number,
  i: number,
  u: number,
  out: Float64Array,
): void {
  out.set(product(float32(x, n, i, true), i, n, float32(dz, n, u, false), u));
}

/**
 * Back to the layer below: `out[r, c] = act'(below[r, c]) · (dz · kernelᵀ)[r, c]`
 * for `dz` of n×u and `kernel` (float32, i×u); adds the column sums of `out`
 * into `biasGrad` (the lower layer's bias gradient) when given.
 */
export function xnnBackward(
  dz: Float64Array,
  kernel: Float32Array,
  n: number,
  u: number,
  i: number,
  below: Float64Array,
  code: ActivationCode,
  biasGrad: Float64Array | undefined,
  out: Float64Array,
): void {
  const kernelT = new Float32Array(u * i);
  for (let r = 0; r < i; r++) for (let c = 0; c < u; c++) kernelT[c * i + r] = kernel[r * u + c];
  const d = product(float32(dz, n, u, false), n, u, kernelT, i);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < i; c++) {
      const k = r * i + c;
      const g = out[k] = d[k] * slopeAny(code, below[k]);
      if (biasGrad) biasGrad[c] += g;
    }
  }
}
