/**
 * The activations the host engine trains, one entry each: the name tfjs-layers
 * gives it, its forward on float64, its derivative (from the layer's output,
 * or from its input where the output does not determine it), and its SIMD
 * epilogue code where the wide layers' kernels run it. Everything else reads
 * this table: the planner's allow-list (`DENSE_ACTIVATIONS`), the host
 * engine's loops (`dense_kernels.ts`) and the kernels' epilogues
 * (`simd/epilogues.ts`). Adding an activation is one entry here plus its
 * faithfulness test against `model.fit` (`tests/faithfulness_cases.ts`).
 *
 * Left out, of tfjs-layers 4.22's activations: `hardSigmoid` (tfjs passes
 * the gradient where the clipped value lands exactly on 0 or 1, a boundary
 * the host's float64 pre-activation cannot place where tfjs's float32 one
 * lies) and `logSoftmax` (a row-wise one no loss here differentiates
 * through).
 *
 * Each forward and derivative is the float64 value of what tfjs computes in
 * float32 through its own ops and their gradients (the chain rule through
 * tfjs's op graph, written out), so the host engine stays within float32
 * rounding of `model.fit`.
 *
 * @module
 */
import type { Code, Local } from "./simd/assemble.ts";
import { op } from "./simd/assemble.ts";

/** What an activation's SIMD epilogue code works with (see `simd/epilogues.ts`). */
export interface SimdLanes {
  /** Two lanes (float64x2 in a v128 local) or one (a float64 local). */
  two: boolean;
  get(local: Local): Code;
  set(local: Local): Code;
  /** The local holding the value: the pre-activation (forward) or the gradient (slope). */
  value: Local;
  /** The address of the layer's output (slope only). */
  below: Local;
  /** `v` as the lanes' constant: a local splat once (two lanes) or an f64 constant (one). */
  constant(v: number): Code;
}

/** One activation. */
export interface Activation {
  /** Applies to each row as a whole (softmax): the host engine takes it only under a loss that differentiates through it. */
  rowwise?: boolean;
  /** The activation of a pre-activation `s`, in float64. */
  forward(s: number): number;
  /**
   * Its derivative: from the output `y` (`from: "output"`), or from the
   * pre-activation `s` (`from: "input"`: the engine then keeps the
   * pre-activations, and the layer may not be the last one).
   */
  slope(value: number): number;
  from: "output" | "input";
  /**
   * The same forward and derivative (from the output) in the SIMD kernels,
   * with the same float64 operations in the same order: each replaces the
   * value in `lanes.value`. Empty code: the identity.
   */
  simd?: { forward(lanes: SimdLanes): Code; slope(lanes: SimdLanes): Code };
}

const SELU_SCALE = 1.0507009873554804934193349852946;
const SELU_SCALE_ALPHA = 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const sigmoid = (s: number) => 1 / (1 + Math.exp(-s));
/**
 * The error function in float64: `2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))`
 * (all terms positive: no cancellation), summed until a term no longer
 * changes the sum; ±1 from |x| = 6 on (erfc(6) < 2.2e-17). JS has no erf.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  let term = a, sum = a;
  for (let n = 1; term > sum * 1e-17; n++) sum += term *= (2 * a * a) / (2 * n + 1);
  const value = Math.min(1, (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum);
  return x < 0 ? -value : value;
}

/** log(1 + eˢ) without overflow. */
const softplus = (s: number) => s > 0 ? s + Math.log1p(Math.exp(-s)) : Math.log1p(Math.exp(s));

/**
 * The table. The order gives each activation its code (`dense_kernels.ts`):
 * the first four are folded into the JS products' epilogues there, so they
 * stay first; new entries go at the end.
 */
export const ACTIVATIONS = {
  linear: {
    forward: (s) => s,
    slope: () => 1,
    from: "output",
    simd: { forward: () => [], slope: () => [] },
  },
  relu: {
    // Without a branch, and NaN stays NaN.
    forward: (s) => (s + Math.abs(s)) * 0.5,
    slope: (y) => +(y > 0),
    from: "output",
    simd: {
      forward: ({ two, get, set, value, constant }) => [
        ...get(value),
        ...get(value),
        ...(two ? op.f64x2Abs : op.f64Abs),
        ...(two ? op.f64x2Add : op.f64Add),
        ...constant(0.5),
        ...(two ? op.f64x2Mul : op.f64Mul),
        ...set(value),
      ],
      // 1 where the output is > 0, else 0 (a mask of 1.0's bits; a select).
      slope: ({ two, get, set, value, below, constant }) => [
        ...get(value),
        ...(two
          ? [...get(below), ...op.v128Load(), ...op.v128Zero, ...op.f64x2Gt, ...constant(1), ...op.v128And]
          : [...op.f64(1), ...op.f64(0), ...get(below), ...op.f64Load(), ...op.f64(0), ...op.f64Gt, ...op.select]),
        ...(two ? op.f64x2Mul : op.f64Mul),
        ...set(value),
      ],
    },
  },
  sigmoid: { forward: sigmoid, slope: (y) => y * (1 - y), from: "output" },
  tanh: { forward: Math.tanh, slope: (y) => 1 - y * y, from: "output" },
  elu: { forward: (s) => s >= 0 ? s : Math.expm1(s), slope: (y) => y >= 0 ? 1 : y + 1, from: "output" },
  selu: {
    forward: (s) => s > 0 ? SELU_SCALE * s : SELU_SCALE_ALPHA * Math.expm1(s),
    slope: (y) => y > 0 ? SELU_SCALE : y + SELU_SCALE_ALPHA,
    from: "output",
  },
  softplus: { forward: softplus, slope: (y) => -Math.expm1(-y), from: "output" },
  // An output of exactly 6 counts as saturated; s · 0 keeps NaN and the sign of zero.
  relu6: { forward: (s) => s > 0 ? (s < 6 ? s : 6) : s * 0, slope: (y) => +(y > 0 && y < 6), from: "output" },
  // Its Jacobian mixes a row: no elementwise slope (NaN, so a use by mistake shows in the weights).
  softmax: { rowwise: true, forward: (s) => s, slope: () => NaN, from: "output" },
  // x / (1 + |x|): d/dx = 1 / (1 + |x|)² = (1 − |y|)².
  softsign: {
    forward: (s) => s / (1 + Math.abs(s)),
    slope: (y) => (1 - Math.abs(y)) * (1 - Math.abs(y)),
    from: "output",
  },
  // tfjs: sigmoid(x · 1) · x; d/dx = σ + x · σ(1 − σ).
  swish: {
    forward: (s) => sigmoid(s) * s,
    slope: (s) => {
      const g = sigmoid(s);
      return g + s * g * (1 - g);
    },
    from: "input",
  },
  // tfjs: x · tanh(softplus(x)); d/dx = t + x · (1 − t²) · σ(x).
  mish: {
    forward: (s) => s * Math.tanh(softplus(s)),
    slope: (s) => {
      const t = Math.tanh(softplus(s));
      return t + s * (1 - t * t) * sigmoid(s);
    },
    from: "input",
  },
  // tfjs: x · 0.5 · (1 + erf(x / √2)), its erf a polynomial within 1.5e-7 of the function (in float32, whose
  // rounding is 6e-8), its derivative the function's: d/dx = Φ + x · e^(−x²/2) / √(2π).
  gelu: {
    forward: (s) => s * (0.5 * (1 + erf(s / Math.SQRT2))),
    slope: (s) => 0.5 * (1 + erf(s / Math.SQRT2)) + s * Math.exp(-s * s / 2) / Math.sqrt(2 * Math.PI),
    from: "input",
  },
  // tfjs: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).
  gelu_new: {
    forward: (s) => 0.5 * s * (1 + Math.tanh(SQRT_2_OVER_PI * (s + 0.044715 * s * s * s))),
    slope: (s) => {
      const t = Math.tanh(SQRT_2_OVER_PI * (s + 0.044715 * s * s * s));
      return 0.5 * (1 + t) + 0.5 * s * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * s * s);
    },
    from: "input",
  },
} as const satisfies Record<string, Activation>;

/** An activation the host engine knows, as tfjs-layers names it. */
export type ActivationName = keyof typeof ACTIVATIONS;

/** The names, in the order of their codes. */
export const ACTIVATION_NAMES: readonly ActivationName[] = Object.keys(ACTIVATIONS) as ActivationName[];

/** The entries, by code. */
export const ACTIVATION_LIST: readonly Activation[] = ACTIVATION_NAMES.map((n) => ACTIVATIONS[n]);
