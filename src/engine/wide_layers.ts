/**
 * A dense layer's three products — forward, kernel gradient, gradient to
 * the layer below — on fitstream's WebAssembly SIMD kernels, in float32
 * as the tfjs path computes them, spread over the machine's cores
 * (`simd/products.ts`); biases, activations and their slopes are float64,
 * in the kernels for linear and relu layers (JS loops for the rest). In a
 * model with no layer of {@link WIDE_MIN_MACS} multiply-adds a step, or
 * where the runtime lacks WebAssembly SIMD, the host engine's float64 JS
 * loops do the work. Each function returns `false` when it did nothing, so
 * the caller falls back to them.
 *
 * Why not the wasm backend's `tf.matMul` (XNNPACK): its kernels run at the
 * same speed on one core, but each call crosses tfjs (tensors made and
 * disposed, ~0.1 ms), its `transposeA` products ran 30–40× slower, and it
 * uses one core; and returning a product's values from `tf.tidy` made a call
 * 25× slower (tidy walks a returned typed array looking for tensors).
 *
 * @module
 */
import { activateInPlace, type ActivationCode, matmulColumns, slopeAny } from "./dense_kernels.ts";
import { type GradientRule, isPlain } from "./gradient_rule.ts";
import { simdKernels } from "../kernels/simd/products.ts";
import { MR } from "../kernels/simd/kernels.ts";

/**
 * A model's products leave the JS loops (all of them: see dense_engine.ts)
 * when one of its layers has this many multiply-adds per step (batch rows ×
 * inputs × units), on V8 and JavaScriptCore alike. Lowered from 2^18 (the
 * tutorial's first layer at batch 512 and up) to 2^13, from batch 16: the
 * tutorial's epoch at batch 32 went from 14.4 to 7.8 ms on Deno and 11.4 to
 * 9.7 on Bun, at 16 from 15.6 to 10.7 and 12.8 to 11.3 (three processes
 * each way, alternating). At batch 8 (2^12) Bun ran 18.5 → 25 ms, slower
 * in the kernels, so the line stops at 2^13.
 */
export const WIDE_MIN_MACS: number = 1 << 13;

/**
 * Whether a wide Dense layer's kernel gradient may be float32, written by the
 * products in place (the Dense engine's, and the layer engine's through
 * `PlannedLayer.float32Gradients`); off only for tests and measurements
 * against the float64 copy.
 */
export const float32KernelGradients = { on: true };

/**
 * Whether a pass may give wide Dense layers float32 kernel gradients: the
 * switch on, the SIMD kernels in use, and no accumulation or clipping (their
 * float64 work reads the gradients). Each engine then leaves out penalised
 * weights too.
 */
export function float32GradientsFor(rule: GradientRule, onKernels: boolean): boolean {
  return float32KernelGradients.on && onKernels && isPlain(rule);
}

/**
 * The values a float32 kernel gradient of `inputs` × `units` takes in the
 * kernels' memory for {@link wideKernelGradient} to write it in place: the
 * product writes whole tiles of rows (`MR`), past the last row.
 */
export function kernelGradientRoom(inputs: number, units: number): number {
  return Math.ceil(inputs / MR) * MR * units;
}

/** Whether a layer of `inputs` → `units` at `rows` rows a step takes its model to the SIMD kernels. */
export function isWide(rows: number, inputs: number, units: number): boolean {
  return rows * inputs * units >= WIDE_MIN_MACS;
}

/**
 * How a host epoch of these layers at `rows` rows a step computes its
 * products, for `explainEngine`: on the SIMD kernels in float32 when a
 * layer is wide and the runtime has them, else in float64 JS loops. With
 * `dense`, the sentence names the Dense layers (for a chain whose other
 * layers compute their products otherwise, as an LSTM's do).
 */
export function productArithmetic(layers: { inputs: number; units: number }[], rows: number, dense = false): string {
  const threshold = WIDE_MIN_MACS.toLocaleString("en-US");
  const subject = dense ? "the Dense layers' products" : "products", layer = dense ? "Dense layer" : "layer";
  if (!layers.some((l) => isWide(rows, l.inputs, l.units))) {
    return `${subject} in float64 JS loops (no ${layer} has ${threshold} multiply-adds a step)`;
  }
  return simdKernels()
    ? `${subject} in float32 on fitstream's WebAssembly SIMD kernels, on every core (a ${layer} has ${threshold} ` +
      `multiply-adds a step or more)`
    : `${subject} in float64 JS loops (this runtime lacks WebAssembly SIMD or shared memory)`;
}

let products = 0, inPlaceGradients = 0;

/** How many products the SIMD kernels have made (for tests). Internal. */
export function wideProductCount(): number {
  return products;
}

/** How many kernel gradients the products wrote in place, in float32 (for tests). Internal. */
export function inPlaceGradientCount(): number {
  return inPlaceGradients;
}

/** Forward: `out = act(bias + x · kernel)` for `x` of n×i and `kernel` (i×u, row-major). */
export function wideForward(
  x: Float64Array,
  n: number,
  i: number,
  kernel: Float32Array,
  u: number,
  bias: Float64Array | undefined,
  code: ActivationCode,
  out: Float64Array,
): boolean {
  const z = simdKernels()?.multiply({ values: x, transposed: false }, { values: kernel, transposed: false }, n, i, u);
  if (!z) return false;
  products++;
  // In the kernels for the activations with SIMD code, when the arrays live in their memory (dense_engine.ts puts
  // them there).
  if (z.addBias(bias, out, code)) return true;
  const { values, stride } = z;
  for (let r = 0; r < n; r++) {
    const o = r * u, v = r * stride;
    if (bias) { for (let j = 0; j < u; j++) out[o + j] = values[v + j] + bias[j]; }
    else for (let j = 0; j < u; j++) out[o + j] = values[v + j];
  }
  activateInPlace(out, n, u, code);
  return true;
}

/**
 * The kernel gradient `out (i×u) = xᵀ · dz` for `x` of n×i and `dz` of n×u.
 * A float32 `out` (in the kernels' memory, with {@link kernelGradientRoom}) is
 * written by the product itself where it can be: no copy, and the optimizer
 * reads 4 bytes a weight instead of 8 — the same values as the float64
 * copy, which the product's float32 sums widen to exactly. Dropping that
 * copy ran the dropout MLP's epoch ~5% faster on Deno, ~2% on Bun (processes
 * alternating, three each).
 */
export function wideKernelGradient(
  x: Float64Array,
  dz: Float64Array,
  n: number,
  i: number,
  u: number,
  out: Float64Array | Float32Array,
): boolean {
  const f32 = out instanceof Float32Array ? out : undefined;
  const g = simdKernels()?.multiply({ values: x, transposed: true }, { values: dz, transposed: false }, i, n, u, f32);
  if (!g) return false;
  products++;
  if (f32 && g.into) return inPlaceGradients++, true;
  if (!f32 && g.widen(out as Float64Array)) return true;
  const { values, stride } = g;
  for (let r = 0; r < i; r++) {
    const o = r * u, v = r * stride;
    if (f32) f32.set(values.subarray(v, v + u), o); // float32 to float32: a block copy a row
    else for (let j = 0; j < u; j++) out[o + j] = values[v + j];
  }
  return true;
}

/**
 * {@link wideKernelGradient}'s product in the JS loops (float64 sums), for a
 * product the kernels did not make: straight into a float64 `out`; into
 * `sums()` (i×u values or more), then rounded into a float32 one.
 */
export function kernelGradientInLoops(
  x: Float64Array,
  dz: Float64Array,
  n: number,
  i: number,
  u: number,
  out: Float64Array | Float32Array,
  sums: () => Float64Array,
): void {
  if (out instanceof Float64Array) return matmulColumns(x, dz, n, i, u, out);
  const loops = sums();
  matmulColumns(x, dz, n, i, u, loops);
  out.set(loops.subarray(0, i * u));
}

/**
 * Back to the layer below: `out[r, c] = act'(below[r, c]) · (dz · kernelᵀ)[r, c]`
 * for `dz` of n×u and `kernel` (i×u); adds the column sums of `out` into
 * `biasGrad` (the lower layer's bias gradient) when given.
 */
export function wideBackward(
  dz: Float64Array,
  kernel: Float32Array,
  n: number,
  u: number,
  i: number,
  below: Float64Array,
  code: ActivationCode,
  biasGrad: Float64Array | undefined,
  out: Float64Array,
): boolean {
  const d = simdKernels()?.multiply({ values: dz, transposed: false }, { values: kernel, transposed: true }, n, u, i);
  if (!d) return false;
  products++;
  if (d.scaleBySlope(below, out, code, biasGrad)) return true;
  const { values, stride } = d;
  for (let r = 0; r < n; r++) {
    const o = r * i, v = r * stride;
    for (let c = 0; c < i; c++) {
      const g = out[o + c] = values[v + c] * slopeAny(code, below[o + c]);
      if (biasGrad) biasGrad[c] += g;
    }
  }
  return true;
}
