/**
 * Elementwise kernels where tfjs-backend-wasm 4.22 hides a NaN or rounds a
 * sign away, each checked against the cpu backend: `Relu6(NaN)` and
 * `ClipByValue(NaN)` give a number (a diverged model's clipped-probability
 * loss stays finite: `terminateOnNaN` never fires), `Maximum` and `Minimum`
 * drop a NaN operand, `Pow(±1, NaN or ±∞)` is 1, and `Sign` is 0 for
 * |x| < ~1.2e-7 (an L1 penalty's gradient vanishes on small weights). Each
 * runs tfjs's own kernel unless its inputs hold such a value, and then
 * computes what the cpu backend computes, in JS.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf } from "./_host.ts";
import { broadcastBinary, hasNaN } from "./_broadcast.ts";
import { tfjsKernel } from "./_originals.ts";

type Unary<A = Record<string, never>> = KernelArgs<{ x: tf.TensorInfo }, A>;
type Binary = KernelArgs<{ a: tf.TensorInfo; b: tf.TensorInfo }, Record<string, never>>;

/** `f` over x's values, as a float32 output of x's shape. */
function mapped(args: Unary<unknown>, f: (v: number) => number): tf.TensorInfo {
  const { x } = args.inputs;
  const xs = valuesOf(args.backend, x);
  const out = new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = f(xs[i]);
  return output(args.backend, x.shape, "float32", out);
}

const isFloat = (t: tf.TensorInfo) => t.dtype === "float32";

/** `min(max(0, x), 6)`, NaN kept. */
export function relu6(args: Unary): tf.TensorInfo {
  if (!isFloat(args.inputs.x) || !hasNaN(valuesOf(args.backend, args.inputs.x))) {
    return tfjsKernel("Relu6", "wasm", args) as tf.TensorInfo;
  }
  return mapped(args, (v) => Math.min(Math.max(0, v), 6));
}

/**
 * x clipped to `[clipValueMin, clipValueMax]`, NaN kept; int32 too (tfjs's
 * clipped int32 values wrong: -2 to [-1.5, 3.5] gave -1077936128, the bounds'
 * float bits). The int32 result is rounded toward zero, as the cpu backend
 * stores it.
 */
export function clipByValue(args: Unary<{ clipValueMin: number; clipValueMax: number }>): tf.TensorInfo {
  const { x } = args.inputs;
  const int = x.dtype === "int32";
  if (!int && (!isFloat(x) || !hasNaN(valuesOf(args.backend, x)))) {
    return tfjsKernel("ClipByValue", "wasm", args) as tf.TensorInfo;
  }
  const { clipValueMin: min, clipValueMax: max } = args.attrs;
  const xs = valuesOf(args.backend, x);
  const out = new (int ? Int32Array : Float32Array)(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[i] > max ? max : xs[i] < min ? min : xs[i];
  return output(args.backend, x.shape, x.dtype, out);
}

/** -1, 0 or 1 by the sign of x (0 for NaN), however small x is. */
export function sign(args: Unary): tf.TensorInfo {
  if (!isFloat(args.inputs.x)) return tfjsKernel("Sign", "wasm", args) as tf.TensorInfo;
  return mapped(args, (v) => v < 0 ? -1 : v > 0 ? 1 : 0);
}

/** A binary kernel that runs tfjs's own unless `special(a, b)`, else `f` over the broadcast operands. */
function binary(
  name: string,
  special: (a: ArrayLike<number>, b: ArrayLike<number>) => boolean,
  f: (x: number, y: number) => number,
) {
  return (args: Binary): tf.TensorInfo => {
    const { a, b } = args.inputs;
    if (!isFloat(a) || !isFloat(b)) return tfjsKernel(name, "wasm", args) as tf.TensorInfo;
    const as = valuesOf(args.backend, a), bs = valuesOf(args.backend, b);
    if (!special(as, bs)) return tfjsKernel(name, "wasm", args) as tf.TensorInfo;
    const { values, shape } = broadcastBinary(as, a.shape, bs, b.shape, f);
    return output(args.backend, shape, "float32", values);
  };
}

const eitherNaN = (a: ArrayLike<number>, b: ArrayLike<number>) => hasNaN(a) || hasNaN(b);

/** Elementwise maximum, NaN if either is NaN. */
export const maximum: (args: Binary) => tf.TensorInfo = binary("Maximum", eitherNaN, Math.max);
/** Elementwise minimum, NaN if either is NaN. */
export const minimum: (args: Binary) => tf.TensorInfo = binary("Minimum", eitherNaN, Math.min);

/** Whether an exponent is NaN or infinite (where C's pow and JS's differ for a base of ±1). */
function oddExponent(_: ArrayLike<number>, exponents: ArrayLike<number>): boolean {
  for (let i = 0; i < exponents.length; i++) if (!Number.isFinite(exponents[i])) return true;
  return false;
}

/** a to the power b, as JS's `Math.pow` (the cpu backend's) computes it. */
export const pow: (args: Binary) => tf.TensorInfo = binary("Pow", oddExponent, Math.pow);
