/**
 * The case table of the kernel conformance suite (tests/kernel_conformance_test.ts): for each kernel that training a
 * tfjs-layers model reaches on the wasm backend, seeded inputs and attrs swept over shapes, strides, padding,
 * dilations, batch sizes and ties, a tolerance, and — for the kernels whose cpu implementation we do not take on
 * faith — a float64 reference computed here in plain JS.
 *
 * Adding a kernel is one entry in `SPECS`.
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { Buffer } from "node:buffer";
import { useBackend } from "../mod.ts";

export type DType = "float32" | "int32" | "bool";
export type Values = Float32Array | Int32Array | Uint8Array;

/** One input tensor, as plain values (created afresh on each backend). */
export interface Input {
  shape: number[];
  dtype: DType;
  values: Values;
}

/** Named inputs (`{ x, filter }`), or a list for the kernels that take one (`Concat`, `Pack`, `AddN`). */
export type Inputs = Record<string, Input> | Input[];

export interface Case {
  /** Shapes and attrs, short enough for a failure message. */
  label: string;
  inputs: Inputs;
  attrs: Record<string, unknown>;
}

/**
 * How close wasm must come to the arbiter (the cpu backend, or the float64 reference where the cpu backend disagrees
 * with it).
 *
 * - `exact`: the same value (NaN matches NaN; -0 matches 0). For kernels that move, select or compare values, and for
 *   single IEEE operations (+, −, ×, ÷, √), which both backends round correctly: the cpu backend computes in float64
 *   and rounds once to float32, which for these operations is the correctly rounded float32 result.
 * - `ulps`: |wasm − cpu| ≤ n float32 ulps of the cpu value (+ `atol`). For elementwise functions evaluated by
 *   different libms (C's expf/logf/tanhf or XNNPACK's polynomial approximations on wasm, JS's float64 Math.* rounded
 *   to float32 on cpu), and for short chains of two or three roundings. `atol` is for formulas that cancel terms of
 *   size ≈1 (exp(x) − 1 in Elu and Selu, log(1 + x)): evaluated in float32 they keep ≈2⁻²⁴ absolute error however small
 *   the result, which is thousands of ulps of a result near 0 but nothing a training step can see.
 * - `sum`: |wasm − cpu| ≤ rel × Σ|terms| + ulps × ulp(cpu), where Σ|terms| is the same kernel run on the cpu backend
 *   with every input replaced by its magnitude (see `magnitude`). For kernels that sum products (convolutions, matmul,
 *   pooling averages, gradients): XNNPACK and the wasm C++ kernels sum in float32 in their own (blocked, SIMD) order,
 *   the cpu backend in float64 in loop order, so results legitimately differ by float32 accumulation noise, which is
 *   bounded by about n·2⁻²⁴·Σ|terms| for n terms. `rel` = 1e-5 covers n up to ~168 terms in the worst case and far more
 *   in practice, while a term summed twice, dropped or routed to the wrong place is an error of the size of one term —
 *   thousands of times the bound — so the check still catches every wrong index, window or tie.
 *
 * `ulps` and `sum` also let wasm flush a subnormal result (below 2⁻¹²⁶ in magnitude) to zero, as SIMD code does.
 */
export type Tolerance =
  | { kind: "exact" }
  | { kind: "ulps"; ulps: number; atol?: number }
  | { kind: "sum"; rel: number; ulps: number };

export interface KernelSpec {
  kernel: string;
  /** The test's name: one sentence of behaviour. */
  test: string;
  tolerance: Tolerance;
  cases: () => Case[];
  /**
   * For `sum` tolerances: the inputs whose kernel output bounds Σ|terms| of each output (default: every float32 input
   * replaced by its absolute value). Only the inputs that the result is linear in should be replaced — e.g. a pooling
   * gradient's `dy`, never the `input` that decides where the maxima are.
   */
  magnitude?: (c: Case) => Case;
  /**
   * A float64 reference of the first output, for the kernels where the cpu backend itself could be in doubt. Where
   * the cpu backend disagrees with it, the reference is the arbiter.
   */
  reference?: (c: Case) => Reference;
  /**
   * Why the kernel runs in a child process: it corrupts the wasm heap today, which would fail every later test
   * (and, under Bun, the test files after this one).
   */
  isolate?: string;
}

/** A float64 result: what the kernel should compute, before rounding to float32. */
export interface Reference {
  shape: number[];
  values: Float64Array;
}

// ---------------------------------------------------------------------------------------------------------------
// Seeded inputs

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** mulberry32, seeded from a string: the same string gives the same values on every runtime. */
function random(seed: string): () => number {
  let a = hash(seed);
  return () => {
    a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function normal(shape: number[], seed: string, std = 1, mean = 0): Input {
  const rand = random(seed);
  const values = new Float32Array(size(shape));
  for (let i = 0; i < values.length; i++) {
    const u = 1 - rand(), v = rand();
    values[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return { shape, dtype: "float32", values };
}

export function uniform(shape: number[], seed: string, lo: number, hi: number): Input {
  const rand = random(seed);
  const values = new Float32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = lo + (hi - lo) * rand();
  return { shape, dtype: "float32", values };
}

/** Values drawn from a few levels only: pooling windows and reductions then hold equal maxima (ties). */
export function levels(shape: number[], seed: string, choices = [-1, 0, 0.5, 1]): Input {
  const rand = random(seed);
  const values = new Float32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = choices[Math.floor(rand() * choices.length)];
  return { shape, dtype: "float32", values };
}

export function ints(shape: number[], seed: string, lo: number, hi: number): Input {
  const rand = random(seed);
  const values = new Int32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = lo + Math.floor((hi - lo) * rand());
  return { shape, dtype: "int32", values };
}

export function bools(shape: number[], seed: string): Input {
  const rand = random(seed);
  const values = new Uint8Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = rand() < 0.5 ? 1 : 0;
  return { shape, dtype: "bool", values };
}

export function given(shape: number[], values: number[], dtype: DType = "float32"): Input {
  const typed = dtype === "float32"
    ? new Float32Array(values)
    : dtype === "int32"
    ? new Int32Array(values)
    : new Uint8Array(values);
  return { shape, dtype, values: typed };
}

/** Special float32 values: zeros, ±1, NaN, infinities, tiny, huge and subnormal numbers. */
export const SPECIAL_VALUES = [
  0,
  -0,
  1,
  -1,
  0.5,
  -2.5,
  NaN,
  Infinity,
  -Infinity,
  1e-30,
  -1e-30,
  1e30,
  -1e30,
  88.8,
  -88.8,
  -103.9,
  3.4e38,
  -3.4e38,
  1e-45,
  -1e-45,
];

function mapInput(input: Input, f: (v: number) => number): Input {
  const values = input.values.slice() as Values;
  for (let i = 0; i < values.length; i++) values[i] = f(values[i]);
  return { ...input, values };
}

const abs = (input: Input): Input => input.dtype === "float32" ? mapInput(input, Math.abs) : input;

/** The case with its named inputs (all float32 ones when `names` is absent) replaced by their absolute values. */
export function absOf(c: Case, names?: string[]): Case {
  if (Array.isArray(c.inputs)) return { ...c, inputs: c.inputs.map(abs) };
  const inputs: Record<string, Input> = {};
  for (const [name, input] of Object.entries(c.inputs)) {
    inputs[name] = names === undefined || names.includes(name) ? abs(input) : input;
  }
  return { ...c, inputs };
}

function label(inputs: Inputs, attrs: Record<string, unknown>, note?: string): string {
  const shapes = Array.isArray(inputs)
    ? inputs.map((t) => `[${t.shape}]${t.dtype === "float32" ? "" : t.dtype}`).join(",")
    : Object.entries(inputs).map(([k, t]) => `${k}[${t.shape}]${t.dtype === "float32" ? "" : t.dtype}`).join(" ");
  const parts = Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return [shapes, ...parts, ...(note ? [`(${note})`] : [])].join(" ");
}

function kase(inputs: Inputs, attrs: Record<string, unknown> = {}, note?: string): Case {
  return { label: label(inputs, attrs, note), inputs, attrs };
}

// ---------------------------------------------------------------------------------------------------------------
// Geometry sweeps

type Pad = "valid" | "same" | number | [[number, number], [number, number], [number, number], [number, number]];
type Pair = number | [number, number];
type Triple = number | [number, number, number];

interface Pool2D {
  x: [number, number, number, number];
  filterSize: Pair;
  strides: Pair;
  pad: Pad;
}

const POOL2D: Pool2D[] = [
  { x: [1, 4, 4, 1], filterSize: 2, strides: 2, pad: "valid" },
  { x: [2, 5, 7, 3], filterSize: 3, strides: 1, pad: "same" },
  { x: [2, 9, 8, 2], filterSize: 3, strides: 2, pad: "same" },
  { x: [2, 6, 6, 3], filterSize: 2, strides: 2, pad: "same" },
  { x: [3, 6, 7, 4], filterSize: [2, 3], strides: [1, 2], pad: "valid" },
  { x: [1, 7, 5, 1], filterSize: 4, strides: 3, pad: "same" },
  { x: [2, 7, 7, 3], filterSize: 3, strides: 2, pad: 1 },
  { x: [1, 5, 6, 2], filterSize: [3, 2], strides: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [4, 3, 3, 5], filterSize: 3, strides: 1, pad: "valid" },
  { x: [2, 8, 8, 16], filterSize: 2, strides: 2, pad: "valid" },
  { x: [2, 6, 5, 8], filterSize: 3, strides: 1, pad: "same" },
  // Big enough for MaxPoolGrad's SIMD kernel (2^14 inputs, channels a multiple of 4, windows that do not overlap
  // inside the input), shared across threads: the MNIST CNN's first pool, and windows with gaps between them.
  { x: [18, 24, 24, 8], filterSize: 2, strides: 2, pad: "valid" },
  { x: [24, 13, 15, 4], filterSize: 2, strides: [3, 2], pad: "valid" },
  // 2 × 2 windows at stride 2 (MaxPoolGrad's unrolled kernel in tfjs's heap) whose rows do not end where a sample
  // does: one call a sample, and the last row and column in no window.
  { x: [20, 25, 25, 4], filterSize: 2, strides: 2, pad: "valid" },
];

/** x values for pooling: random, few levels (ties in every window), all negative (padding must not count as 0). */
function poolValues(shape: number[], seed: string): [Input, string][] {
  return [
    [normal(shape, seed), "random"],
    [levels(shape, seed + "ties"), "ties"],
    [uniform(shape, seed + "neg", -3, -1), "negative"],
    [levels(shape, seed + "const", [0.25]), "constant"],
  ];
}

function pool2dInfo(g: Pool2D) {
  return tf.backend_util.computePool2DInfo(g.x, g.filterSize, g.strides, 1, g.pad as "same");
}

function pool2dAttrs(g: Pool2D) {
  return { filterSize: g.filterSize, strides: g.strides, pad: g.pad };
}

/** Max pooling in JS (exact: a max involves no rounding), for MaxPoolGrad's `output` input. */
function maxPool2d(x: Input, g: Pool2D): Input {
  const info = pool2dInfo(g);
  const [n, h, w, ch] = x.shape;
  const out = new Float32Array(size(info.outShape));
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < info.outHeight; r++) {
      for (let c = 0; c < info.outWidth; c++) {
        for (let d = 0; d < ch; d++) {
          let m = -Infinity;
          for (let i = 0; i < info.filterHeight; i++) {
            const xr = r * info.strideHeight + i - info.padInfo.top;
            if (xr < 0 || xr >= h) continue;
            for (let j = 0; j < info.filterWidth; j++) {
              const xc = c * info.strideWidth + j - info.padInfo.left;
              if (xc < 0 || xc >= w) continue;
              m = Math.max(m, x.values[((b * h + xr) * w + xc) * ch + d]);
            }
          }
          out[o++] = m;
        }
      }
    }
  }
  return { shape: info.outShape, dtype: "float32", values: out };
}

/**
 * MaxPoolGrad in float64: each window's gradient goes to its first maximum in row-major order (the cpu backend's
 * rule for ties: strict `>` while scanning rows, then columns), summed over the windows that pick the same input.
 */
function maxPoolGradReference(c: Case): Reference {
  const { dy, input } = c.inputs as Record<string, Input>;
  const g = { x: input.shape, ...c.attrs } as unknown as Pool2D;
  const info = pool2dInfo(g);
  const [n, h, w, ch] = input.shape;
  const dx = new Float64Array(size(input.shape));
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < info.outHeight; r++) {
      for (let col = 0; col < info.outWidth; col++) {
        for (let d = 0; d < ch; d++) {
          let best = -Infinity, at = -1;
          for (let i = 0; i < info.filterHeight; i++) {
            const xr = r * info.strideHeight + i - info.padInfo.top;
            if (xr < 0 || xr >= h) continue;
            for (let j = 0; j < info.filterWidth; j++) {
              const xc = col * info.strideWidth + j - info.padInfo.left;
              if (xc < 0 || xc >= w) continue;
              const k = ((b * h + xr) * w + xc) * ch + d;
              if (input.values[k] > best) [best, at] = [input.values[k], k];
            }
          }
          if (at >= 0) dx[at] += dy.values[((b * info.outHeight + r) * info.outWidth + col) * ch + d];
        }
      }
    }
  }
  return { shape: input.shape, values: dx };
}

interface Pool3D {
  x: [number, number, number, number, number];
  filterSize: Triple;
  strides: Triple;
  pad: "valid" | "same" | number;
}

const POOL3D: Pool3D[] = [
  { x: [1, 4, 4, 4, 1], filterSize: 2, strides: 2, pad: "valid" },
  { x: [2, 5, 6, 4, 3], filterSize: 3, strides: 1, pad: "same" },
  { x: [2, 5, 5, 6, 2], filterSize: [2, 3, 2], strides: [1, 2, 2], pad: "same" },
  { x: [1, 6, 5, 7, 2], filterSize: [3, 2, 3], strides: [2, 1, 2], pad: "valid" },
  { x: [1, 5, 5, 5, 1], filterSize: 3, strides: 2, pad: 1 },
  { x: [2, 4, 4, 4, 8], filterSize: 2, strides: 1, pad: "same" },
];

function pool3dInfo(g: Pool3D) {
  return tf.backend_util.computePool3DInfo(g.x, g.filterSize, g.strides, 1, g.pad);
}

/** Visits each window of a 3-d pooling in depth, row, column order: `f(batch, outIndex, inIndex)`. */
function eachPool3dWindow(
  g: Pool3D,
  visit: (outIndex: number, inIndices: number[]) => void,
): void {
  const info = pool3dInfo(g);
  const [n, dd, h, w, ch] = g.x;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let z = 0; z < info.outDepth; z++) {
      for (let r = 0; r < info.outHeight; r++) {
        for (let c = 0; c < info.outWidth; c++) {
          for (let d = 0; d < ch; d++) {
            const window: number[] = [];
            for (let k = 0; k < info.filterDepth; k++) {
              const xz = z * info.strideDepth + k - info.padInfo.front;
              if (xz < 0 || xz >= dd) continue;
              for (let i = 0; i < info.filterHeight; i++) {
                const xr = r * info.strideHeight + i - info.padInfo.top;
                if (xr < 0 || xr >= h) continue;
                for (let j = 0; j < info.filterWidth; j++) {
                  const xc = c * info.strideWidth + j - info.padInfo.left;
                  if (xc < 0 || xc >= w) continue;
                  window.push((((b * dd + xz) * h + xr) * w + xc) * ch + d);
                }
              }
            }
            visit(o++, window);
          }
        }
      }
    }
  }
}

function maxPool3d(x: Input, g: Pool3D): Input {
  const info = pool3dInfo(g);
  const out = new Float32Array(size(info.outShape));
  eachPool3dWindow(g, (o, window) => {
    out[o] = Math.max(-Infinity, ...window.map((k) => x.values[k]));
  });
  return { shape: info.outShape, dtype: "float32", values: out };
}

/**
 * MaxPool3DGrad in float64: each window's gradient goes to its LAST maximum in depth, row, column order (the cpu
 * backend's rule for 3-d ties: `>=` while scanning), summed over the windows that pick the same input.
 */
function maxPool3dGradReference(c: Case): Reference {
  const { dy, input } = c.inputs as Record<string, Input>;
  const g = { x: input.shape, ...c.attrs } as unknown as Pool3D;
  const dx = new Float64Array(size(input.shape));
  eachPool3dWindow(g, (o, window) => {
    let best = -Infinity, at = -1;
    for (const k of window) if (input.values[k] >= best) [best, at] = [input.values[k], k];
    if (at >= 0) dx[at] += dy.values[o];
  });
  return { shape: input.shape, values: dx };
}

interface Conv2D {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: Pair;
  pad: Pad;
  dilations: Pair;
}

/**
 * Padding tfjs-backend-wasm 4.22's convolutions got wrong (a fitstream review found them): 'same' at a stride above 1
 * with a filter one pixel wide or tall gave zeros, also through tfjs-layers' conv2d (FusedConv2D).
 */
const PADDING_TRAPS: Conv2D[] = [
  { x: [2, 7, 8, 2], filter: [3, 1, 2, 3], strides: [1, 2], pad: "same", dilations: 1 },
  { x: [1, 4, 4, 1], filter: [1, 2, 1, 1], strides: 2, pad: "same", dilations: 1 },
];

const CONV2D: Conv2D[] = [
  { x: [1, 5, 5, 1], filter: [3, 3, 1, 1], strides: 1, pad: "valid", dilations: 1 },
  { x: [2, 7, 6, 3], filter: [3, 3, 3, 4], strides: 1, pad: "same", dilations: 1 },
  { x: [2, 9, 8, 3], filter: [3, 2, 3, 5], strides: 2, pad: "same", dilations: 1 },
  { x: [3, 8, 9, 2], filter: [5, 5, 2, 3], strides: [2, 1], pad: "valid", dilations: 1 },
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 2], strides: 2, pad: 1, dilations: 1 },
  { x: [2, 6, 5, 2], filter: [3, 2, 2, 3], strides: 1, pad: [[0, 0], [2, 1], [0, 1], [0, 0]], dilations: 1 },
  { x: [1, 1, 1, 7], filter: [1, 1, 7, 3], strides: 1, pad: "valid", dilations: 1 },
  { x: [1, 6, 6, 2], filter: [2, 2, 2, 2], strides: 2, pad: "same", dilations: 1 },
  { x: [4, 12, 12, 16], filter: [3, 3, 16, 32], strides: 1, pad: "same", dilations: 1 },
  { x: [2, 9, 9, 2], filter: [3, 3, 2, 4], strides: 1, pad: "same", dilations: 2 },
  { x: [1, 10, 8, 3], filter: [2, 3, 3, 2], strides: 1, pad: "valid", dilations: [2, 1] },
  // Numeric padding with an even filter side: wrong values (2×1) or writes outside the output (1×2) on tfjs's kernel.
  { x: [1, 6, 5, 1], filter: [2, 1, 1, 1], strides: 1, pad: 1, dilations: 1 },
  { x: [1, 6, 5, 1], filter: [1, 2, 1, 1], strides: 1, pad: 1, dilations: 1 },
  { x: [2, 6, 5, 2], filter: [2, 2, 2, 3], strides: 1, pad: 1, dilations: 1 },
  // Big enough for fitstream's products (2^18 multiply-adds and more): the MNIST CNN's first layer, and odd strides and
  // padding.
  { x: [16, 28, 28, 1], filter: [5, 5, 1, 8], strides: 1, pad: "valid", dilations: 1 },
  { x: [8, 13, 11, 6], filter: [3, 3, 6, 16], strides: 2, pad: "same", dilations: 1 },
  { x: [16, 15, 14, 3], filter: [4, 3, 3, 16], strides: [2, 1], pad: 1, dilations: 1 },
  // Channels that are not a multiple of 8 on the SIMD kernels (padded to 8 there): 12 and 5 out, 6 and 3 in.
  { x: [12, 13, 11, 6], filter: [3, 3, 6, 12], strides: 2, pad: "same", dilations: 1 },
  { x: [16, 20, 20, 3], filter: [5, 5, 3, 5], strides: 1, pad: "valid", dilations: 1 },
  // 'Valid' at stride 1, whose input gradient takes simd/scatter.ts: the MNIST CNN's second layer (64 positions, not
  // a multiple of the kernel's 6), and two groups of input channels, the second partly padding.
  { x: [12, 12, 12, 8], filter: [5, 5, 8, 16], strides: 1, pad: "valid", dilations: 1 },
  { x: [8, 10, 9, 12], filter: [3, 4, 12, 6], strides: 1, pad: "valid", dilations: 1 },
  ...PADDING_TRAPS,
];

/** The geometries the convolution gradients take: the gradient ops refuse dilations > 1. */
const CONV2D_GRAD = CONV2D.filter((g) => g.dilations === 1);

function conv2dInfo(g: Conv2D, depthwise = false) {
  return tf.backend_util.computeConv2DInfo(
    g.x,
    g.filter,
    g.strides,
    g.dilations,
    g.pad as "same",
    undefined,
    depthwise,
  );
}

const toNCHW = (s: number[]) => [s[0], s[3], s[1], s[2]];
const nhwcToNchw = (input: Input): Input => {
  const [n, h, w, c] = input.shape;
  const out = new Float32Array(input.values.length);
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < h; r++) {
      for (let col = 0; col < w; col++) {
        for (let d = 0; d < c; d++) {
          out[((b * c + d) * h + r) * w + col] = input.values[((b * h + r) * w + col) * c + d];
        }
      }
    }
  }
  return { shape: toNCHW(input.shape), dtype: "float32", values: out };
};

const DEPTHWISE: Conv2D[] = [
  { x: [1, 5, 5, 1], filter: [3, 3, 1, 1], strides: 1, pad: "valid", dilations: 1 },
  { x: [2, 7, 6, 3], filter: [3, 3, 3, 1], strides: 1, pad: "same", dilations: 1 },
  { x: [2, 7, 6, 3], filter: [3, 3, 3, 2], strides: 1, pad: "same", dilations: 1 },
  { x: [2, 9, 8, 4], filter: [3, 2, 4, 2], strides: 2, pad: "same", dilations: 1 },
  { x: [3, 8, 9, 2], filter: [5, 5, 2, 1], strides: [2, 1], pad: "valid", dilations: 1 },
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 2], strides: 2, pad: 1, dilations: 1 },
  { x: [2, 6, 5, 2], filter: [3, 2, 2, 2], strides: 1, pad: [[0, 0], [2, 1], [0, 1], [0, 0]], dilations: 1 },
  { x: [1, 6, 6, 3], filter: [2, 2, 3, 2], strides: 2, pad: "same", dilations: 1 },
  { x: [2, 8, 8, 16], filter: [3, 3, 16, 1], strides: 1, pad: "same", dilations: 1 },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 2], strides: 1, pad: "same", dilations: 2 },
  { x: [1, 10, 8, 2], filter: [2, 3, 2, 1], strides: 1, pad: "valid", dilations: [2, 1] },
  // The padding traps for depthwise convolutions: 'same' at stride 2 with a 1-wide filter, numeric padding of a 1×2.
  { x: [2, 7, 8, 2], filter: [3, 1, 2, 1], strides: 2, pad: "same", dilations: 1 },
  { x: [1, 6, 5, 1], filter: [1, 2, 1, 1], strides: 1, pad: 1, dilations: 1 },
];

const DEPTHWISE_GRAD = DEPTHWISE.filter((g) => g.dilations === 1);

/**
 * The depthwise convolution's sums, in float64, with dilations: out[b,r,c,d·m+q] = Σ x[b, r·sh + i·dh − top,
 * c·sw + j·dw − left, d] · f[i,j,d,q]. `visit` gets each (x index, filter index, out index) triple.
 */
function eachDepthwiseTerm(
  g: Conv2D,
  visit: (xIndex: number, fIndex: number, outIndex: number) => void,
): void {
  const info = conv2dInfo(g, true);
  const [n, h, w, ch] = g.x;
  const [fh, fw, , mult] = g.filter;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < info.outHeight; r++) {
      for (let c = 0; c < info.outWidth; c++) {
        for (let i = 0; i < fh; i++) {
          const xr = r * info.strideHeight + i * info.dilationHeight - info.padInfo.top;
          if (xr < 0 || xr >= h) continue;
          for (let j = 0; j < fw; j++) {
            const xc = c * info.strideWidth + j * info.dilationWidth - info.padInfo.left;
            if (xc < 0 || xc >= w) continue;
            for (let d = 0; d < ch; d++) {
              for (let q = 0; q < mult; q++) {
                visit(
                  ((b * h + xr) * w + xc) * ch + d,
                  ((i * fw + j) * ch + d) * mult + q,
                  ((b * info.outHeight + r) * info.outWidth + c) * ch * mult + d * mult + q,
                );
              }
            }
          }
        }
      }
    }
  }
}

function depthwiseGeometry(c: Case, x: number[], filter: number[]): Conv2D {
  return { x, filter, ...c.attrs } as unknown as Conv2D;
}

function depthwiseInputGradReference(c: Case): Reference {
  const { dy, filter } = c.inputs as Record<string, Input>;
  const g = depthwiseGeometry(c, c.attrs.inputShape as number[], filter.shape);
  const dx = new Float64Array(size(g.x));
  eachDepthwiseTerm(g, (xi, fi, oi) => (dx[xi] += dy.values[oi] * filter.values[fi]));
  return { shape: g.x, values: dx };
}

function depthwiseFilterGradReference(c: Case): Reference {
  const { x, dy } = c.inputs as Record<string, Input>;
  const g = depthwiseGeometry(c, x.shape, c.attrs.filterShape as number[]);
  const df = new Float64Array(size(g.filter));
  eachDepthwiseTerm(g, (xi, fi, oi) => (df[fi] += x.values[xi] * dy.values[oi]));
  return { shape: g.filter, values: df };
}

interface Conv3D {
  x: [number, number, number, number, number];
  filter: [number, number, number, number, number];
  strides: Triple;
  pad: "valid" | "same";
  dilations: Triple;
}

const CONV3D: Conv3D[] = [
  { x: [1, 4, 4, 4, 1], filter: [2, 2, 2, 1, 2], strides: 1, pad: "valid", dilations: 1 },
  { x: [2, 5, 6, 4, 2], filter: [3, 3, 3, 2, 3], strides: 1, pad: "same", dilations: 1 },
  { x: [2, 6, 5, 7, 3], filter: [3, 2, 3, 3, 2], strides: [2, 1, 2], pad: "same", dilations: 1 },
  { x: [1, 7, 7, 7, 2], filter: [3, 3, 3, 2, 2], strides: 2, pad: "valid", dilations: 1 },
  { x: [2, 4, 6, 6, 8], filter: [2, 3, 3, 8, 8], strides: 1, pad: "same", dilations: 1 },
  { x: [1, 7, 6, 6, 2], filter: [2, 2, 2, 2, 3], strides: 1, pad: "same", dilations: [2, 1, 2] },
];

const CONV3D_GRAD = CONV3D.filter((g) => g.dilations === 1);

function conv3dInfo(g: Conv3D) {
  return tf.backend_util.computeConv3DInfo(g.x, g.filter, g.strides, g.dilations, g.pad);
}

/** The 3-d convolution's terms, in float64: `visit` gets each (x index, filter index, out index) triple. */
function eachConv3dTerm(g: Conv3D, visit: (xIndex: number, fIndex: number, outIndex: number) => void): void {
  const info = conv3dInfo(g);
  const [n, dd, h, w, ch] = g.x;
  const [fd, fh, fw, , outCh] = g.filter;
  for (let b = 0; b < n; b++) {
    for (let z = 0; z < info.outDepth; z++) {
      for (let r = 0; r < info.outHeight; r++) {
        for (let c = 0; c < info.outWidth; c++) {
          const o = (((b * info.outDepth + z) * info.outHeight + r) * info.outWidth + c) * outCh;
          for (let k = 0; k < fd; k++) {
            const xz = z * info.strideDepth + k * info.dilationDepth - info.padInfo.front;
            if (xz < 0 || xz >= dd) continue;
            for (let i = 0; i < fh; i++) {
              const xr = r * info.strideHeight + i * info.dilationHeight - info.padInfo.top;
              if (xr < 0 || xr >= h) continue;
              for (let j = 0; j < fw; j++) {
                const xc = c * info.strideWidth + j * info.dilationWidth - info.padInfo.left;
                if (xc < 0 || xc >= w) continue;
                for (let d = 0; d < ch; d++) {
                  const xi = (((b * dd + xz) * h + xr) * w + xc) * ch + d;
                  const fi = (((k * fh + i) * fw + j) * ch + d) * outCh;
                  for (let q = 0; q < outCh; q++) visit(xi, fi + q, o + q);
                }
              }
            }
          }
        }
      }
    }
  }
}

function conv3dInputGradReference(c: Case): Reference {
  const { dy, filter } = c.inputs as Record<string, Input>;
  const g = { x: c.attrs.inputShape, filter: filter.shape, dilations: 1, ...c.attrs } as unknown as Conv3D;
  const dx = new Float64Array(size(g.x));
  eachConv3dTerm(g, (xi, fi, oi) => (dx[xi] += dy.values[oi] * filter.values[fi]));
  return { shape: g.x, values: dx };
}

function conv3dFilterGradReference(c: Case): Reference {
  const { x, dy } = c.inputs as Record<string, Input>;
  const g = { x: x.shape, filter: c.attrs.filterShape, dilations: 1, ...c.attrs } as unknown as Conv3D;
  const df = new Float64Array(size(g.filter));
  eachConv3dTerm(g, (xi, fi, oi) => (df[fi] += x.values[xi] * dy.values[oi]));
  return { shape: g.filter, values: df };
}

interface Resize {
  images: [number, number, number, number];
  size: [number, number];
}

const RESIZES: Resize[] = [
  { images: [1, 2, 2, 1], size: [4, 4] },
  { images: [2, 3, 4, 2], size: [6, 8] },
  { images: [2, 4, 5, 3], size: [7, 9] },
  { images: [1, 6, 7, 2], size: [3, 4] },
  { images: [1, 5, 5, 1], size: [2, 3] },
  { images: [1, 1, 1, 2], size: [3, 3] },
  { images: [2, 3, 3, 1], size: [1, 1] },
  { images: [3, 7, 5, 4], size: [14, 10] },
];

/** The resize modes the ops allow (alignCorners and halfPixelCenters are never both true). */
const RESIZE_MODES = [
  { alignCorners: false, halfPixelCenters: false },
  { alignCorners: true, halfPixelCenters: false },
  { alignCorners: false, halfPixelCenters: true },
];
/** The modes tfjs-layers uses (UpSampling2D, Resizing): halfPixelCenters is never set. */
const LAYERS_RESIZE_MODES = RESIZE_MODES.filter((m) => !m.halfPixelCenters);
const HALF_PIXEL_MODES = RESIZE_MODES.filter((m) => m.halfPixelCenters);

/**
 * ResizeNearestNeighborGrad in float64: the adjoint of the forward kernel, with the forward kernel's own source
 * index rule (cpu's ResizeNearestNeighbor) — each output pixel sends its gradient back to the pixel it copied.
 */
function resizeNearestGradReference(c: Case): Reference {
  const { images, dy } = c.inputs as Record<string, Input>;
  const { alignCorners, halfPixelCenters } = c.attrs as { alignCorners: boolean; halfPixelCenters: boolean };
  const [n, h, w, ch] = images.shape;
  const [, nh, nw] = dy.shape;
  const ratio = (from: number, to: number) =>
    (alignCorners && to > 1 ? from - 1 : from) / (alignCorners && to > 1 ? to - 1 : to);
  const source = (i: number, from: number, to: number) => {
    const frac = halfPixelCenters ? ratio(from, to) * (i + 0.5) : ratio(from, to) * i;
    const nearest = Math.min(from - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    return halfPixelCenters ? Math.max(0, nearest) : nearest;
  };
  const dx = new Float64Array(size(images.shape));
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < nh; r++) {
      const sr = source(r, h, nh);
      for (let col = 0; col < nw; col++) {
        const sc = source(col, w, nw);
        for (let d = 0; d < ch; d++) {
          dx[((b * h + sr) * w + sc) * ch + d] += dy.values[((b * nh + r) * nw + col) * ch + d];
        }
      }
    }
  }
  return { shape: images.shape, values: dx };
}

/**
 * ResizeBilinearGrad in float64: the adjoint of the forward kernel (cpu's ResizeBilinear, halfPixelCenters
 * included) — each output pixel sends its gradient to its four source pixels with its four interpolation weights.
 */
function resizeBilinearGradReference(c: Case): Reference {
  const { images, dy } = c.inputs as Record<string, Input>;
  const { alignCorners, halfPixelCenters } = c.attrs as { alignCorners: boolean; halfPixelCenters: boolean };
  const [n, h, w, ch] = images.shape;
  const [, nh, nw] = dy.shape;
  const ratio = (from: number, to: number) =>
    (alignCorners && to > 1 ? from - 1 : from) / (alignCorners && to > 1 ? to - 1 : to);
  const source = (i: number, from: number, to: number): [number, number, number] => {
    const frac = halfPixelCenters ? ratio(from, to) * (i + 0.5) - 0.5 : ratio(from, to) * i;
    const low = Math.max(0, Math.floor(frac));
    return [low, Math.min(from - 1, Math.ceil(frac)), frac - low];
  };
  const dx = new Float64Array(size(images.shape));
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < nh; r++) {
      const [top, bottom, fr] = source(r, h, nh);
      for (let col = 0; col < nw; col++) {
        const [left, right, fc] = source(col, w, nw);
        const at = (row: number, column: number) => ((b * h + row) * w + column) * ch;
        for (let d = 0; d < ch; d++) {
          const g = dy.values[((b * nh + r) * nw + col) * ch + d];
          dx[at(top, left) + d] += g * (1 - fr) * (1 - fc);
          dx[at(top, right) + d] += g * (1 - fr) * fc;
          dx[at(bottom, left) + d] += g * fr * (1 - fc);
          dx[at(bottom, right) + d] += g * fr * fc;
        }
      }
    }
  }
  return { shape: images.shape, values: dx };
}

function unsortedSegmentSumReference(c: Case): Reference {
  const { x, segmentIds } = c.inputs as Record<string, Input>;
  const numSegments = c.attrs.numSegments as number;
  const inner = size(x.shape.slice(1));
  const out = new Float64Array(numSegments * inner);
  for (let i = 0; i < segmentIds.values.length; i++) {
    const id = segmentIds.values[i];
    if (id < 0 || id >= numSegments) continue;
    for (let k = 0; k < inner; k++) out[id * inner + k] += x.values[i * inner + k];
  }
  return { shape: [numSegments, ...x.shape.slice(1)], values: out };
}

/** erf in float64: its Taylor series below 2.5, 1 − erfc by Laplace's continued fraction above (error < 1e-14). */
function erf64(x: number): number {
  const ax = Math.abs(x);
  if (Number.isNaN(x)) return NaN;
  if (ax < 2.5) {
    let term = x, sum = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) <= 1e-17 * Math.abs(sum)) break;
    }
    return (sum * 2) / Math.sqrt(Math.PI);
  }
  if (ax > 10) return Math.sign(x);
  let k = ax;
  for (let n = 80; n >= 1; n--) k = ax + n / 2 / k;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / k;
  return Math.sign(x) * (1 - erfc);
}

/** The float64 reference of an elementwise kernel `f` of `x`. */
function elementwise(f: (v: number) => number): (c: Case) => Reference {
  return (c) => {
    const { x } = c.inputs as Record<string, Input>;
    return { shape: x.shape, values: Float64Array.from(x.values, f) };
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The table

const EXACT: Tolerance = { kind: "exact" };
const ulps = (n: number): Tolerance => ({ kind: "ulps", ulps: n });
/** exp(x) − 1 and log(1 + x) in float32: see `Tolerance`. */
const CANCELS: Tolerance = { kind: "ulps", ulps: 8, atol: 2 ** -22 };
/** Float32 accumulation noise; see `Tolerance`. The 4 ulps cover a final activation or division's own rounding. */
const SUMS: Tolerance = { kind: "sum", rel: 1e-5, ulps: 4 };

const ACTIVATIONS = ["linear", "relu", "relu6", "elu", "leakyrelu", "sigmoid", "prelu"] as const;

function seedOf(...parts: unknown[]): string {
  return JSON.stringify(parts);
}

/** `x` with every 7th value NaN and every 11th −∞ (neither may take a window's gradient while a number is there). */
function withSpecials(x: Input): Input {
  const values = Float32Array.from(x.values);
  for (let i = 0; i < values.length; i++) {
    if (i % 7 === 3) values[i] = NaN;
    else if (i % 11 === 5) values[i] = -Infinity;
  }
  return { ...x, values };
}

/** `x` with the special values (NaN, ±∞, ±0, tiny, huge…) in turn at every 13th place. */
function withEverySpecial(x: Input): Input {
  const values = Float32Array.from(x.values);
  for (let i = 6, k = 0; i < values.length; i += 13, k++) values[i] = SPECIAL_VALUES[k % SPECIAL_VALUES.length];
  return { ...x, values };
}

/**
 * Whether fitstream's `MaxPool` (src/kernels/max_pool.ts) takes `g` on wasm: 2 × 2 windows, stride 2, no padding,
 * channels a multiple of 4, 2^14 values; tfjs's own (XNNPACK) lets a NaN win a window.
 */
function inPlaceMaxPool(g: Pool2D): boolean {
  return g.filterSize === 2 && g.strides === 2 && g.pad === "valid" && g.x[3] % 4 === 0 && size(g.x) >= 1 << 14;
}

function poolCases(maxGrad: boolean, forwardSpecials = false): Case[] {
  return POOL2D.flatMap((g) =>
    [
      ...poolValues(g.x, seedOf("pool", g)),
      ...(maxGrad || (forwardSpecials && inPlaceMaxPool(g))
        ? [[withSpecials(normal(g.x, seedOf("pool", g))), "NaN and -Infinity"] as [Input, string]]
        : []),
    ].map(([x, note]) => {
      const info = pool2dInfo(g);
      if (!maxGrad) return kase({ x }, pool2dAttrs(g), note);
      const dy = normal(info.outShape, seedOf("pool dy", g));
      return kase({ dy, input: x, output: maxPool2d(x, g) }, pool2dAttrs(g), note);
    })
  );
}

function pool3dCases(kind: "forward" | "maxGrad" | "avgGrad"): Case[] {
  return POOL3D.flatMap((g) =>
    poolValues(g.x, seedOf("pool3d", g)).map(([x, note]) => {
      const attrs = { filterSize: g.filterSize, strides: g.strides, pad: g.pad };
      if (kind === "forward") return kase({ x }, { ...attrs, dataFormat: "NDHWC" }, note);
      const dy = normal(pool3dInfo(g).outShape, seedOf("pool3d dy", g));
      if (kind === "avgGrad") return kase({ dy, input: x }, attrs, note);
      return kase({ dy, input: x, output: maxPool3d(x, g) }, attrs, note);
    })
  );
}

function conv2dCases(kind: "forward" | "input" | "filter", format: "NHWC" | "NCHW" = "NHWC"): Case[] {
  const geometries = kind === "forward" ? CONV2D : CONV2D_GRAD;
  // NCHW with explicit padding would need the padding reordered too; the NCHW sweep keeps the string and number pads.
  return geometries.filter((g) => format === "NHWC" || !Array.isArray(g.pad)).map((g) => {
    const info = conv2dInfo(g);
    const s = seedOf("conv2d", g);
    const layout = (t: Input) => (format === "NCHW" ? nhwcToNchw(t) : t);
    const x = layout(normal(g.x, s + "x"));
    const filter = normal(g.filter, s + "f");
    const dy = layout(normal(info.outShape, s + "dy"));
    const geometry = { strides: g.strides, pad: g.pad, dataFormat: format };
    if (kind === "forward") return kase({ x, filter }, { ...geometry, dilations: g.dilations });
    if (kind === "input") return kase({ dy, filter }, { ...geometry, inputShape: x.shape });
    return kase({ x, dy }, { ...geometry, filterShape: g.filter });
  });
}

function depthwiseCases(kind: "forward" | "input" | "filter", withDilations: boolean): Case[] {
  const geometries = kind === "forward" || withDilations ? DEPTHWISE : DEPTHWISE_GRAD;
  return geometries.map((g) => {
    const info = conv2dInfo(g, true);
    const s = seedOf("depthwise", g);
    const x = normal(g.x, s + "x");
    const filter = normal(g.filter, s + "f");
    const dy = normal(info.outShape, s + "dy");
    const geometry = { strides: g.strides, pad: g.pad, dilations: g.dilations };
    if (kind === "forward") return kase({ x, filter }, { ...geometry, dataFormat: "NHWC" });
    if (kind === "input") return kase({ dy, filter }, { ...geometry, inputShape: g.x });
    return kase({ x, dy }, { ...geometry, filterShape: g.filter });
  });
}

function conv3dCases(kind: "forward" | "input" | "filter"): Case[] {
  const geometries = kind === "forward" ? CONV3D : CONV3D_GRAD;
  return geometries.map((g) => {
    const info = conv3dInfo(g);
    const s = seedOf("conv3d", g);
    const x = normal(g.x, s + "x");
    const filter = normal(g.filter, s + "f");
    const dy = normal(info.outShape, s + "dy");
    if (kind === "forward") {
      return kase({ x, filter }, { strides: g.strides, pad: g.pad, dataFormat: "NDHWC", dilations: g.dilations });
    }
    if (kind === "input") return kase({ dy, filter }, { strides: g.strides, pad: g.pad, inputShape: g.x });
    return kase({ x, dy }, { strides: g.strides, pad: g.pad, filterShape: g.filter });
  });
}

function resizeCases(grad: boolean, modes = RESIZE_MODES): Case[] {
  return RESIZES.flatMap((g) =>
    modes.map((mode) => {
      const s = seedOf("resize", g);
      const images = normal(g.images, s + "images");
      const attrs = { ...mode, size: g.size };
      if (!grad) return kase({ images }, attrs);
      const dy = normal([g.images[0], ...g.size, g.images[3]], s + "dy");
      return kase({ images, dy }, attrs);
    })
  );
}

function fusedActivationAttrs(activation: string): { activation: string; leakyreluAlpha?: number } {
  return activation === "leakyrelu" ? { activation, leakyreluAlpha: 0.2 } : { activation };
}

/**
 * `_FusedMatMul` cases. As Dense calls it — one batch (the op reshapes a 2-d product to [1, m, k] × [1, k, n]), no
 * transposes — with and without bias, every activation; and batched or transposed products without a bias. Or, with
 * `batchedOrTransposedWithBias`, those products with a bias, which tfjs-layers never makes.
 */
function fusedMatMulCases(batchedOrTransposedWithBias: boolean): Case[] {
  const cases: Case[] = [];
  // The fused matMul op always hands the kernel 3-d operands (it reshapes them first).
  // Odd sizes too (1, 7, 13, 129; a depth of 784 spans several of fitstream's 256-deep product blocks); widths of a
  // multiple of 4 (8, 12) take a bias vector and relu in four lanes at a time in tfjs's heap, the others in JS.
  const shapes: [number[], number[]][] = [
    [[1, 5, 7], [1, 7, 6]],
    [[1, 9, 33], [1, 33, 10]],
    [[1, 9, 33], [1, 33, 8]],
    [[2, 9, 33], [1, 33, 12]],
    [[2, 5, 7], [2, 7, 6]],
    [
      [2, 9, 33],
      [1, 33, 10],
    ],
    [[1, 1, 1], [1, 1, 1]],
    [[1, 129, 784], [1, 784, 13]],
    [[3, 13, 129], [1, 129, 7]],
  ];
  const swap = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
  for (const [aShape, bShape] of shapes) {
    for (const activation of ACTIVATIONS) {
      for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]]) {
        const asDense = !transposeA && !transposeB && aShape[0] === 1 && bShape[0] === 1;
        const biases = asDense ? (batchedOrTransposedWithBias ? [] : [true, false]) : [batchedOrTransposedWithBias];
        for (const bias of biases) {
          const s = seedOf("fusedMatMul", aShape, bShape, activation, transposeA, transposeB, bias);
          const n = bShape[bShape.length - 1];
          const inputs: Record<string, Input> = {
            a: normal(transposeA ? swap(aShape) : aShape, s + "a", 1.2),
            b: normal(transposeB ? swap(bShape) : bShape, s + "b", 1.2),
          };
          if (bias) inputs.bias = normal([n], s + "bias");
          if (activation === "prelu") inputs.preluActivationWeights = normal([n], s + "alpha", 0.3);
          cases.push(kase(inputs, { transposeA, transposeB, ...fusedActivationAttrs(activation) }));
        }
      }
    }
  }
  if (batchedOrTransposedWithBias) {
    // Biases and prelu weights of other shapes that broadcast into the output (rank 1 is all tfjs-layers makes).
    // Outputs 7 and 8 wide: a bias the same for every row (shape [1, n], [1]) runs four lanes at a time at width 8.
    for (const n of [7, 8]) {
      const [aShape, bShape] = [[3, 13, 129], [1, 129, n]];
      for (const shape of [[1, n], [13, n], [3, 1, n], [3, 13, 1], [1]]) {
        for (const activation of ["relu", "linear", "prelu"]) {
          const s = seedOf("fusedMatMul broadcast", n, shape, activation);
          const inputs: Record<string, Input> = {
            a: normal(aShape, s + "a", 1.2),
            b: normal(bShape, s + "b", 1.2),
            bias: normal(shape, s + "bias"),
          };
          if (activation === "prelu") inputs.preluActivationWeights = normal(shape, s + "alpha", 0.3);
          cases.push(kase(inputs, { transposeA: false, transposeB: false, ...fusedActivationAttrs(activation) }));
        }
      }
    }
  }
  return cases;
}

function fusedConvCases(depthwise: boolean): Case[] {
  const geometries = depthwise
    ? [DEPTHWISE[2], DEPTHWISE[3], DEPTHWISE[5], DEPTHWISE[6], DEPTHWISE[9], ...DEPTHWISE.slice(-2)]
    : [CONV2D[1], CONV2D[2], CONV2D[4], CONV2D[5], CONV2D[9], ...PADDING_TRAPS];
  return geometries.flatMap((g) =>
    ACTIVATIONS.map((activation, i) => {
      const s = seedOf("fusedConv", depthwise, g, activation);
      const outChannels = depthwise ? g.filter[2] * g.filter[3] : g.filter[3];
      const inputs: Record<string, Input> = { x: normal(g.x, s + "x"), filter: normal(g.filter, s + "f", 0.7) };
      if (i !== 0) inputs.bias = normal([outChannels], s + "bias");
      if (activation === "prelu") inputs.preluActivationWeights = normal([outChannels], s + "alpha", 0.3);
      return kase(inputs, {
        strides: g.strides,
        pad: g.pad,
        dataFormat: "NHWC",
        dilations: g.dilations,
        dimRoundingMode: undefined,
        ...fusedActivationAttrs(activation),
      });
    })
  );
}

function batchMatMulCases(): Case[] {
  const shapes: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[2, 3, 4], [2, 4, 5]],
    [[1, 3, 4], [3, 4, 5]],
    [[3, 3, 4], [1, 4, 5]],
    [[2, 1, 3, 4], [1, 3, 4, 2]],
    [[2, 17, 67], [2, 67, 9]],
    [[1, 64, 128], [1, 128, 32]],
    [[4, 1, 6], [4, 6, 1]],
    // Odd sizes (1, 7, 13, 129, 257), depths past fitstream's 256-deep product blocks, broadcast batches.
    [[1, 1], [1, 1]],
    [[7, 13], [13, 1]],
    [[1, 129], [129, 7]],
    [[129, 13], [13, 257]],
    [[13, 784], [784, 129]],
    [[3, 7, 13], [13, 129]],
    [[2, 3, 7, 129], [3, 129, 13]],
    [[1, 64, 300], [5, 300, 33]],
  ];
  const swap = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
  return shapes.flatMap(([aShape, bShape]) =>
    [[false, false], [true, false], [false, true], [true, true]].map(([transposeA, transposeB]) => {
      const s = seedOf("matmul", aShape, bShape, transposeA, transposeB);
      return kase(
        {
          a: normal(transposeA ? swap(aShape) : aShape, s + "a"),
          b: normal(transposeB ? swap(bShape) : bShape, s + "b"),
        },
        { transposeA, transposeB },
      );
    })
  );
}

function reductionCases(axisKey: "axis" | "reductionIndices"): Case[] {
  const cases: Case[] = [];
  const x = normal([4, 5, 6], seedOf("reduce"), 2);
  for (const axis of [0, 1, 2, -1, [0, 2], [1, 2], [0, 1, 2]]) {
    for (const keepDims of [false, true]) cases.push(kase({ x }, { [axisKey]: axis, keepDims }));
  }
  cases.push(kase({ x: normal([3, 1000], seedOf("reduce wide")) }, { [axisKey]: 1, keepDims: false }));
  cases.push(kase({ x: normal([1000, 3], seedOf("reduce tall")) }, { [axisKey]: 0, keepDims: false }));
  cases.push(kase({ x: normal([7], seedOf("reduce 1d")) }, { [axisKey]: 0, keepDims: false }));
  cases.push(kase({ x: levels([6, 8], seedOf("reduce ties")) }, { [axisKey]: [1], keepDims: true }, "ties"));
  return cases;
}

interface UnarySpec {
  kernel: string;
  tolerance: Tolerance;
  values: (seed: string) => Input;
  attrs?: Record<string, unknown>;
  reference?: (c: Case) => Reference;
  /** What a test name says about the inputs. */
  over: string;
}

const UNARY: UnarySpec[] = [
  { kernel: "Sigmoid", tolerance: ulps(8), values: (s) => normal([2, 500], s, 6), over: "logits from −30 to 30" },
  { kernel: "Tanh", tolerance: ulps(8), values: (s) => normal([2, 500], s, 3), over: "inputs from −15 to 15" },
  { kernel: "Softplus", tolerance: ulps(8), values: (s) => normal([2, 500], s, 8), over: "inputs from −40 to 40" },
  { kernel: "Selu", tolerance: CANCELS, values: (s) => normal([2, 500], s, 3), over: "negative and positive inputs" },
  { kernel: "Elu", tolerance: CANCELS, values: (s) => normal([2, 500], s, 3), over: "negative and positive inputs" },
  {
    kernel: "Erf",
    tolerance: ulps(2),
    values: (s) => normal([2, 500], s, 1.5),
    reference: elementwise(erf64),
    over: "inputs from −6 to 6",
  },
  { kernel: "Exp", tolerance: ulps(8), values: (s) => uniform([2, 500], s, -80, 80), over: "inputs from −80 to 80" },
  { kernel: "Log", tolerance: ulps(8), values: (s) => uniform([2, 500], s, 1e-6, 50), over: "positive inputs" },
  {
    kernel: "Log1p",
    tolerance: CANCELS,
    values: (s) => uniform([2, 500], s, -0.999, 20),
    over: "inputs above −1",
  },
  { kernel: "Sqrt", tolerance: EXACT, values: (s) => uniform([2, 500], s, 0, 100), over: "non-negative inputs" },
  { kernel: "Rsqrt", tolerance: ulps(2), values: (s) => uniform([2, 500], s, 1e-4, 100), over: "positive inputs" },
  { kernel: "Square", tolerance: EXACT, values: (s) => normal([2, 500], s, 10), over: "random inputs" },
  { kernel: "Reciprocal", tolerance: EXACT, values: (s) => normal([2, 500], s, 3), over: "random inputs" },
  { kernel: "Relu", tolerance: EXACT, values: (s) => levels([2, 500], s, [-2, -0.5, 0, 0.25, 3]), over: "zeros" },
  {
    kernel: "Relu6",
    tolerance: EXACT,
    values: (s) => levels([2, 500], s, [-7, -1, 0, 0.5, 5.9, 6, 6.1, 12]),
    over: "inputs at and around 0 and 6",
  },
  // The cpu backend multiplies by alpha as a float64, wasm by alpha rounded to float32: 1 ulp apart at most.
  {
    kernel: "LeakyRelu",
    tolerance: ulps(1),
    values: (s) => normal([2, 500], s, 3),
    attrs: { alpha: 0.2 },
    over: "alpha 0.2",
  },
  {
    kernel: "LeakyRelu",
    tolerance: ulps(1),
    values: (s) => normal([2, 500], s, 3),
    attrs: { alpha: 0.01 },
    over: "alpha 0.01",
  },
  {
    kernel: "Step",
    tolerance: EXACT,
    values: (s) => levels([2, 500], s, [-2, -0.5, 0, 0.25, 3]),
    attrs: { alpha: 0 },
    over: "alpha 0 and zeros",
  },
  {
    kernel: "Step",
    tolerance: EXACT,
    values: (s) => levels([2, 500], s, [-2, -0.5, 0, 0.25, 3]),
    attrs: { alpha: 0.3 },
    over: "alpha 0.3 and zeros",
  },
  {
    kernel: "ClipByValue",
    tolerance: EXACT,
    values: (s) => normal([2, 500], s, 3),
    attrs: { clipValueMin: -1, clipValueMax: 2.5 },
    over: "a range [−1, 2.5]",
  },
  {
    kernel: "ClipByValue",
    tolerance: EXACT,
    values: (s) => normal([2, 500], s, 3),
    attrs: { clipValueMin: 1e-7, clipValueMax: 1 - 1e-7 },
    over: "the range the cross-entropy losses clip probabilities to",
  },
  { kernel: "Neg", tolerance: EXACT, values: (s) => normal([2, 500], s), over: "random inputs" },
  { kernel: "Abs", tolerance: EXACT, values: (s) => normal([2, 500], s), over: "random inputs" },
  { kernel: "Sign", tolerance: EXACT, values: (s) => levels([2, 500], s, [-2, 0, 0.5]), over: "zeros" },
  { kernel: "Floor", tolerance: EXACT, values: (s) => normal([2, 500], s, 3), over: "random inputs" },
];

interface BinarySpec {
  kernel: string;
  tolerance: Tolerance;
  a: (shape: number[], seed: string) => Input;
  b: (shape: number[], seed: string) => Input;
  over: string;
}

const BROADCASTS: [number[], number[]][] = [
  [[4, 5], [4, 5]],
  [[4, 5], [5]],
  [[4, 1], [1, 5]],
  [[2, 3, 4], []],
  [[], [2, 3, 4]],
  [[3, 1, 4], [2, 1]],
  [[2, 3, 4, 5], [3, 1, 5]],
  [[1000], [1000]],
];

const BINARY: BinarySpec[] = [
  {
    kernel: "SquaredDifference",
    tolerance: ulps(2), // cpu squares a float64 difference; wasm rounds the difference to float32 first
    a: (s, k) => normal(s, k, 3),
    b: (s, k) => normal(s, k, 3),
    over: "random inputs",
  },
  {
    kernel: "RealDiv",
    tolerance: EXACT,
    a: (s, k) => normal(s, k, 3),
    b: (s, k) => uniform(s, k, 0.1, 4),
    over: "divisors away from 0",
  },
  {
    kernel: "Pow",
    tolerance: ulps(8),
    a: (s, k) => uniform(s, k, 0.05, 4),
    b: (s, k) => uniform(s, k, -3, 3),
    over: "positive bases",
  },
  {
    kernel: "Pow",
    tolerance: ulps(8),
    a: (s, k) => normal(s, k, 2),
    b: (s, k) => levels(s, k, [0, 1, 2, 3, -1, -2]),
    over: "negative bases and integer exponents",
  },
  {
    kernel: "Maximum",
    tolerance: EXACT,
    a: (s, k) => levels(s, k, [-1, 0, 1.5]),
    b: (s, k) => levels(s, k, [-1, 0, 1.5]),
    over: "equal values",
  },
  {
    kernel: "Minimum",
    tolerance: EXACT,
    a: (s, k) => levels(s, k, [-1, 0, 1.5]),
    b: (s, k) => levels(s, k, [-1, 0, 1.5]),
    over: "equal values",
  },
  { kernel: "Add", tolerance: EXACT, a: normal, b: normal, over: "random inputs" },
  { kernel: "Sub", tolerance: EXACT, a: normal, b: normal, over: "random inputs" },
  { kernel: "Multiply", tolerance: EXACT, a: normal, b: normal, over: "random inputs" },
  { kernel: "Greater", tolerance: EXACT, a: levels, b: levels, over: "equal values" },
  { kernel: "GreaterEqual", tolerance: EXACT, a: levels, b: levels, over: "equal values" },
  { kernel: "Less", tolerance: EXACT, a: levels, b: levels, over: "equal values" },
  { kernel: "LessEqual", tolerance: EXACT, a: levels, b: levels, over: "equal values" },
  { kernel: "Equal", tolerance: EXACT, a: levels, b: levels, over: "equal values" },
  { kernel: "LogicalAnd", tolerance: EXACT, a: bools, b: bools, over: "booleans" },
];

const unarySpecs: KernelSpec[] = UNARY.map((u) => ({
  kernel: u.kernel,
  test: `${u.kernel} on wasm equals the cpu backend for ${u.over}`,
  tolerance: u.tolerance,
  cases: () => [kase({ x: u.values(seedOf(u.kernel, u.attrs)) }, u.attrs ?? {})],
  reference: u.reference,
}));

const binarySpecs: KernelSpec[] = BINARY.map((o) => ({
  kernel: o.kernel,
  test: `${o.kernel} on wasm equals the cpu backend for ${o.over}, with broadcasting`,
  tolerance: o.tolerance,
  cases: () =>
    BROADCASTS.map(([aShape, bShape]) =>
      kase({
        a: o.a(aShape, seedOf(o.kernel, o.over, aShape, "a")),
        b: o.b(bShape, seedOf(o.kernel, o.over, bShape, "b")),
      })
    ),
}));

export const SPECS: KernelSpec[] = [
  // Pooling, 2-d
  {
    kernel: "MaxPool",
    test:
      "MaxPool on wasm equals the cpu backend for strides, padding, batch sizes, negative inputs, ties, and NaN and -Infinity where fitstream's kernel pools",
    tolerance: EXACT,
    cases: () => poolCases(false, true),
  },
  {
    kernel: "MaxPoolGrad",
    test: "MaxPoolGrad on wasm equals the cpu backend for strides, padding, batch sizes and ties (first maximum wins)",
    tolerance: SUMS,
    cases: () => poolCases(true),
    magnitude: (c) => absOf(c, ["dy"]),
    reference: maxPoolGradReference,
  },
  {
    kernel: "AvgPool",
    test: "AvgPool on wasm equals the cpu backend for strides, padding and batch sizes (padding not counted)",
    tolerance: SUMS,
    cases: () => poolCases(false).filter((c) => !c.label.includes("ties")),
  },
  {
    kernel: "AvgPoolGrad",
    test: "AvgPoolGrad on wasm equals the cpu backend for strides, padding and batch sizes",
    tolerance: SUMS,
    cases: () =>
      poolCases(true).filter((c) => !c.label.includes("ties")).map((c) => {
        const { dy, input } = c.inputs as Record<string, Input>;
        return { ...c, inputs: { dy, input } };
      }),
    magnitude: (c) => absOf(c, ["dy"]),
  },
  // Pooling, 3-d
  {
    kernel: "MaxPool3D",
    test: "MaxPool3D on wasm equals the cpu backend for NDHWC strides, padding, negative inputs and ties",
    tolerance: EXACT,
    cases: () => pool3dCases("forward"),
  },
  {
    kernel: "MaxPool3DGrad",
    test: "MaxPool3DGrad on wasm equals the cpu backend for strides, padding, non-cubic windows and ties",
    tolerance: SUMS,
    cases: () => pool3dCases("maxGrad"),
    magnitude: (c) => absOf(c, ["dy"]),
    reference: maxPool3dGradReference,
  },
  {
    kernel: "AvgPool3D",
    test: "AvgPool3D on wasm equals the cpu backend for NDHWC strides and padding",
    tolerance: SUMS,
    cases: () => pool3dCases("forward").filter((c) => !c.label.includes("ties")),
  },
  {
    kernel: "AvgPool3DGrad",
    test: "AvgPool3DGrad on wasm equals the cpu backend for strides, padding and non-cubic windows",
    tolerance: SUMS,
    cases: () => pool3dCases("avgGrad").filter((c) => !c.label.includes("ties")),
    magnitude: (c) => absOf(c, ["dy"]),
  },
  // Convolutions, 2-d
  {
    kernel: "Conv2D",
    test: "Conv2D on wasm equals the cpu backend for NHWC strides, padding, dilations and batch sizes",
    tolerance: SUMS,
    cases: () => conv2dCases("forward"),
  },
  {
    kernel: "Conv2DBackpropInput",
    test: "Conv2DBackpropInput on wasm equals the cpu backend for NHWC strides, padding and batch sizes",
    tolerance: SUMS,
    cases: () => conv2dCases("input"),
  },
  {
    kernel: "Conv2DBackpropFilter",
    test: "Conv2DBackpropFilter on wasm equals the cpu backend for NHWC strides, padding and batch sizes",
    tolerance: SUMS,
    cases: () => conv2dCases("filter"),
  },
  {
    kernel: "Conv2D",
    test:
      "Conv2D on wasm accepts NCHW and equals the cpu backend (tf.conv2d reaches it; tfjs-layers transposes to NHWC)",
    tolerance: SUMS,
    cases: () => conv2dCases("forward", "NCHW"),
  },
  {
    kernel: "Conv2DBackpropInput",
    test: "Conv2DBackpropInput on wasm equals the cpu backend for NCHW",
    tolerance: SUMS,
    cases: () => conv2dCases("input", "NCHW"),
  },
  {
    kernel: "Conv2DBackpropFilter",
    test: "Conv2DBackpropFilter on wasm equals the cpu backend for NCHW",
    tolerance: SUMS,
    cases: () => conv2dCases("filter", "NCHW"),
  },
  // Convolutions, 3-d
  {
    kernel: "Conv3D",
    test: "Conv3D on wasm equals the cpu backend for NDHWC strides, padding, dilations and batch sizes",
    tolerance: SUMS,
    cases: () => conv3dCases("forward"),
  },
  {
    kernel: "Conv3DBackpropInputV2",
    test: "Conv3DBackpropInputV2 on wasm equals the cpu backend for strides, padding and batch sizes",
    tolerance: SUMS,
    cases: () => conv3dCases("input"),
    reference: conv3dInputGradReference,
  },
  {
    kernel: "Conv3DBackpropFilterV2",
    test: "Conv3DBackpropFilterV2 on wasm equals the cpu backend for strides, padding and batch sizes",
    tolerance: SUMS,
    cases: () => conv3dCases("filter"),
    reference: conv3dFilterGradReference,
  },
  // Depthwise convolutions
  {
    kernel: "DepthwiseConv2dNative",
    test:
      "DepthwiseConv2dNative on wasm equals the cpu backend for channel multipliers 1 and 2, strides, padding and dilations",
    tolerance: SUMS,
    cases: () => depthwiseCases("forward", true),
  },
  {
    kernel: "DepthwiseConv2dNativeBackpropInput",
    test:
      "DepthwiseConv2dNativeBackpropInput on wasm equals the cpu backend for channel multipliers 1 and 2, strides and padding",
    tolerance: SUMS,
    cases: () => depthwiseCases("input", false),
    reference: depthwiseInputGradReference,
  },
  {
    kernel: "DepthwiseConv2dNativeBackpropFilter",
    test:
      "DepthwiseConv2dNativeBackpropFilter on wasm equals the cpu backend for channel multipliers 1 and 2, strides and padding",
    tolerance: SUMS,
    cases: () => depthwiseCases("filter", false),
    reference: depthwiseFilterGradReference,
  },
  {
    kernel: "DepthwiseConv2dNativeBackpropInput",
    test: "DepthwiseConv2dNativeBackpropInput on wasm equals the float64 reference with dilations",
    tolerance: SUMS,
    cases: () => depthwiseCases("input", true).filter((c) => c.attrs.dilations !== 1),
    reference: depthwiseInputGradReference,
  },
  {
    kernel: "DepthwiseConv2dNativeBackpropFilter",
    test: "DepthwiseConv2dNativeBackpropFilter on wasm equals the float64 reference with dilations",
    tolerance: SUMS,
    cases: () => depthwiseCases("filter", true).filter((c) => c.attrs.dilations !== 1),
    reference: depthwiseFilterGradReference,
  },
  // Fused kernels
  {
    kernel: "_FusedMatMul",
    test:
      "_FusedMatMul on wasm equals the cpu backend as Dense calls it (one batch, no transposes) for every activation, and for batched or transposed products without bias",
    tolerance: SUMS,
    cases: () => fusedMatMulCases(false),
    magnitude: (c) => ({ ...absOf(c), attrs: { ...c.attrs, activation: "linear" } }),
  },
  {
    kernel: "_FusedMatMul",
    test:
      "_FusedMatMul on wasm equals the cpu backend for batched or transposed products with a bias (tf.fused.matMul; Dense never makes them)",
    tolerance: SUMS,
    cases: () => fusedMatMulCases(true),
    magnitude: (c) => ({ ...absOf(c), attrs: { ...c.attrs, activation: "linear" } }),
  },
  {
    kernel: "FusedConv2D",
    test: "FusedConv2D on wasm equals the cpu backend for every activation, with and without bias",
    tolerance: SUMS,
    cases: () => fusedConvCases(false),
    magnitude: (c) => ({ ...absOf(c), attrs: { ...c.attrs, activation: "linear" } }),
  },
  {
    kernel: "FusedDepthwiseConv2D",
    test: "FusedDepthwiseConv2D on wasm equals the cpu backend for every activation, with and without bias",
    tolerance: SUMS,
    cases: () => fusedConvCases(true),
    magnitude: (c) => ({ ...absOf(c), attrs: { ...c.attrs, activation: "linear" } }),
  },
  {
    kernel: "FusedBatchNorm",
    test: "FusedBatchNorm on wasm equals the cpu backend for per-channel, full-shape and missing scale and offset",
    tolerance: SUMS,
    cases: () => {
      const cases: Case[] = [];
      const stats = (shape: number[], s: string) => ({
        mean: normal(shape, s + "mean"),
        variance: uniform(shape, s + "var", 0.05, 3),
        scale: normal(shape, s + "scale"),
        offset: normal(shape, s + "offset"),
      });
      // The batchNorm op hands the kernel a 4-d x (rank 2 and 3 are padded with leading 1s).
      for (
        const [x, p] of [[[2, 3, 4, 5], [5]], [[1, 1, 6, 5], [5]], [[2, 3, 4, 5], [2, 3, 4, 5]], [[1, 1, 3, 4], [3, 4]]]
      ) {
        const s = seedOf("batchNorm", x, p);
        cases.push(kase({ x: normal(x, s + "x", 2), ...stats(p, s) }, { varianceEpsilon: 1e-3 }));
      }
      const s = seedOf("batchNorm bare");
      const { mean, variance } = stats([5], s);
      cases.push(kase({ x: normal([2, 3, 4, 5], s + "x", 2), mean, variance }, { varianceEpsilon: 1e-3 }));
      return cases;
    },
    // |offset| + (|x| + |mean|)·|scale|/√(var+ε) bounds each term of offset + (x − mean)·scale/√(var+ε).
    magnitude: (c) => {
      const inputs = { ...(absOf(c).inputs as Record<string, Input>) };
      inputs.mean = mapInput(inputs.mean, (v) => -v);
      inputs.variance = (c.inputs as Record<string, Input>).variance;
      return { ...c, inputs };
    },
  },
  // Resizing
  {
    kernel: "ResizeNearestNeighbor",
    test:
      "ResizeNearestNeighbor on wasm equals the cpu backend for up- and downsampling, alignCorners and halfPixelCenters",
    tolerance: EXACT,
    cases: () => resizeCases(false),
  },
  {
    kernel: "ResizeNearestNeighborGrad",
    test: "ResizeNearestNeighborGrad on wasm equals the cpu backend for up- and downsampling, batches and alignCorners",
    tolerance: SUMS,
    cases: () => resizeCases(true, LAYERS_RESIZE_MODES),
    magnitude: (c) => absOf(c, ["dy"]),
    reference: resizeNearestGradReference,
  },
  {
    kernel: "ResizeNearestNeighborGrad",
    test: "ResizeNearestNeighborGrad on wasm is the adjoint of ResizeNearestNeighbor with halfPixelCenters",
    tolerance: SUMS,
    cases: () => resizeCases(true, HALF_PIXEL_MODES),
    magnitude: (c) => absOf(c, ["dy"]),
    reference: resizeNearestGradReference,
  },
  {
    kernel: "ResizeBilinear",
    test: "ResizeBilinear on wasm equals the cpu backend for up- and downsampling, alignCorners and halfPixelCenters",
    tolerance: SUMS,
    cases: () => resizeCases(false),
  },
  {
    kernel: "ResizeBilinearGrad",
    test: "ResizeBilinearGrad on wasm equals the cpu backend for up- and downsampling, batches and alignCorners",
    tolerance: SUMS,
    cases: () => resizeCases(true, LAYERS_RESIZE_MODES),
    magnitude: (c) => absOf(c, ["dy"]),
    reference: resizeBilinearGradReference,
  },
  {
    kernel: "ResizeBilinearGrad",
    test: "ResizeBilinearGrad on wasm is the adjoint of ResizeBilinear with halfPixelCenters",
    tolerance: SUMS,
    cases: () => resizeCases(true, HALF_PIXEL_MODES),
    magnitude: (c) => absOf(c, ["dy"]),
    reference: resizeBilinearGradReference,
  },
  // Gathering and scattering
  {
    kernel: "UnsortedSegmentSum",
    test: "UnsortedSegmentSum on wasm equals the cpu backend for repeated ids, empty segments, 1-d, 2-d and 3-d data",
    tolerance: SUMS,
    cases: () => {
      const table: [number[], number, number][] = [
        [[10], 4, 7],
        [[9, 4], 5, 6],
        [[12, 3, 2], 5, 5],
        [[20, 8], 1, 3],
        [[6, 5], 3, 10],
        [[200, 16], 50, 50],
      ];
      return table.map(([shape, ids, numSegments]) => {
        const s = seedOf("segments", shape, ids, numSegments);
        const segmentIds = ints([shape[0]], s + "ids", 0, ids);
        if (ids === 1) segmentIds.values.fill(2);
        return kase({ x: normal(shape, s + "x"), segmentIds }, { numSegments });
      });
    },
    magnitude: (c) => absOf(c, ["x"]),
    reference: unsortedSegmentSumReference,
  },
  {
    kernel: "GatherV2",
    test: "GatherV2 on wasm equals the cpu backend for embedding lookups, repeated indices, axes and batchDims",
    tolerance: EXACT,
    cases: () => {
      const table: [number[], DType, number[], number, number, number][] = [
        [[10, 4], "float32", [6], 10, 0, 0],
        [[10, 4], "float32", [3, 5], 10, 0, 0],
        [[5, 7], "float32", [4], 7, 1, 0],
        [[50, 16], "float32", [64], 50, 0, 0],
        [[10], "float32", [4], 10, 0, 0],
        [[6, 3], "int32", [5], 6, 0, 0],
        [[3, 4, 5], "float32", [2, 2], 5, -1, 0],
      ];
      return table.map(([shape, dtype, idx, range, axis, batchDims]) => {
        const s = seedOf("gather", shape, idx, axis);
        const x = dtype === "int32" ? ints(shape, s + "x", -100, 100) : normal(shape, s + "x");
        return kase({ x, indices: ints(idx, s + "i", 0, range) }, { axis, batchDims });
      });
    },
  },
  {
    kernel: "GatherV2",
    test: "GatherV2 on wasm equals the cpu backend with batchDims 1 (tf.gather; Embedding never sets it)",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([2, 5, 3], seedOf("gather b1")), indices: ints([2, 4], seedOf("gather b1 i"), 0, 5) }, {
        axis: 1,
        batchDims: 1,
      }),
      kase({ x: normal([3, 4], seedOf("gather b2")), indices: ints([3, 2], seedOf("gather b2 i"), 0, 4) }, {
        axis: 1,
        batchDims: 1,
      }),
    ],
  },
  // Matrix products
  {
    kernel: "BatchMatMul",
    test: "BatchMatMul on wasm equals the cpu backend for every transposeA and transposeB and batch broadcasting",
    tolerance: SUMS,
    cases: batchMatMulCases,
  },
  // Activations and their gradients
  {
    kernel: "Softmax",
    test: "Softmax on wasm equals the cpu backend along the last axis, for small and large logits",
    tolerance: ulps(8),
    cases: () => [
      kase({ logits: normal([4, 7], seedOf("softmax 1"), 2) }, { dim: 1 }),
      kase({ logits: normal([2, 3, 10], seedOf("softmax 2"), 2) }, { dim: 2 }),
      kase({ logits: normal([2, 1000], seedOf("softmax 3"), 3) }, { dim: 1 }),
      kase({ logits: uniform([5, 3], seedOf("softmax 4"), -60, 60) }, { dim: 1 }),
      kase({ logits: levels([3, 6], seedOf("softmax 5")) }, { dim: 1 }, "ties"),
      kase({ logits: normal([8, 1], seedOf("softmax 6")) }, { dim: 1 }),
    ],
  },
  {
    kernel: "EluGrad",
    test: "EluGrad on wasm equals the cpu backend for negative and positive outputs",
    tolerance: ulps(1),
    cases: () => {
      const x = normal([3, 200], seedOf("eluGrad x"), 2);
      const y = mapInput(x, (v) => Math.fround(v > 0 ? v : Math.expm1(v)));
      return [kase({ dy: normal([3, 200], seedOf("eluGrad dy")), y })];
    },
  },
  {
    kernel: "Prelu",
    test: "Prelu on wasm equals the cpu backend for every alpha shape a PReLU layer makes (shared axes included)",
    tolerance: EXACT,
    cases: () => {
      const table: [number[], number[]][] = [
        [[2, 4, 5, 3], [3]],
        [[2, 4, 5, 3], [4, 5, 3]],
        [[2, 4, 5, 3], [1, 1, 3]],
        [[2, 4, 5, 3], [4, 1, 1]],
        [[2, 4, 5, 3], [4, 5, 1]],
        [[2, 4, 5, 3], [1, 5, 1]],
        [[6, 5], [5]],
        [[6, 5], [1]],
      ];
      return table.map(([x, alpha]) =>
        kase({ x: normal(x, seedOf("prelu x", x, alpha)), alpha: normal(alpha, seedOf("prelu a", x, alpha), 0.5) })
      );
    },
  },
  // Reductions
  {
    kernel: "Sum",
    test: "Sum on wasm equals the cpu backend along every axis and axis set, with and without keepDims",
    tolerance: SUMS,
    cases: () => [
      ...reductionCases("axis"),
      kase({ x: ints([4, 6], seedOf("sum int"), -50, 50) }, { axis: 1, keepDims: false }, "int32"),
    ],
  },
  {
    kernel: "Identity",
    test: "Identity on wasm gives its input's values and shape, float32 and int32",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([40, 6, 5], seedOf("identity")) }, {}),
      kase({ x: ints([7, 3], seedOf("identity int"), -50, 50) }, {}, "int32"),
    ],
  },
  {
    kernel: "Add",
    test:
      "Add of a bias along the last axis to 16,384 values and more on wasm equals the cpu backend bit for bit, either way round",
    tolerance: EXACT,
    cases: () => {
      const x = normal([40, 24, 24, 8], seedOf("bias add"), 3), wide = normal([300, 70], seedOf("bias add wide"));
      const bias = normal([8], seedOf("bias")), wideBias = normal([1, 70], seedOf("bias wide"));
      // Rows of a multiple of 4 values take simd/bias.ts's kernel in tfjs's heap; 70 the JS loop.
      const x16 = normal([64, 16, 16, 16], seedOf("bias add 16"), 3), bias16 = normal([16], seedOf("bias 16"));
      const odd = given([8], [NaN, Infinity, -Infinity, -0, 0, 1, -1, 2.5]);
      return [
        kase({ a: x, b: bias }),
        kase({ a: bias, b: x }),
        kase({ a: wide, b: wideBias }),
        kase({ a: x16, b: bias16 }),
        kase({ a: withEverySpecial(x), b: bias }, {}, "special values in x"),
        kase({ a: withEverySpecial(x), b: odd }, {}, "special values in x and the bias"),
      ];
    },
  },
  {
    kernel: "Sum",
    test:
      "Sum over leading axes of 16,384 values and more on wasm equals the cpu backend bit for bit (a conv layer's bias gradient)",
    tolerance: EXACT,
    cases: () => {
      const x = normal([40, 24, 24, 8], seedOf("sum leading"), 3);
      return [
        kase({ x }, { axis: [0, 1, 2], keepDims: false }),
        kase({ x }, { axis: [2, 0, -3], keepDims: true }),
        kase({ x }, { axis: 0, keepDims: false }),
        kase({ x: normal([5000, 7], seedOf("sum tall")) }, { axis: 0, keepDims: false }),
        // Even rows of up to 64 values take simd/bias.ts's kernel in tfjs's heap.
        kase({ x: normal([64, 8, 8, 16], seedOf("sum 16"), 3) }, { axis: [0, 1, 2], keepDims: false }),
        kase({ x: normal([300, 64], seedOf("sum 64")) }, { axis: 0, keepDims: true }),
        kase({ x: normal([9000, 2], seedOf("sum 2")) }, { axis: 0, keepDims: false }),
        kase({ x: normal([300, 66], seedOf("sum 66")) }, { axis: 0, keepDims: false }),
        kase({ x: withEverySpecial(x) }, { axis: [0, 1, 2], keepDims: false }, "special values"),
      ];
    },
  },
  {
    kernel: "Mean",
    test: "Mean on wasm equals the cpu backend along every axis and axis set, with and without keepDims",
    tolerance: SUMS,
    cases: () => reductionCases("axis"),
  },
  {
    kernel: "Max",
    test: "Max on wasm equals the cpu backend along every axis and axis set, with and without keepDims",
    tolerance: EXACT,
    cases: () => reductionCases("reductionIndices"),
  },
  {
    kernel: "Min",
    test: "Min on wasm equals the cpu backend along every axis and axis set, with and without keepDims",
    tolerance: EXACT,
    cases: () => reductionCases("axis"),
  },
  {
    kernel: "ArgMax",
    test: "ArgMax on wasm equals the cpu backend along each axis, ties to the first index",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([6, 7], seedOf("argmax")) }, { axis: 1 }),
      kase({ x: normal([6, 7], seedOf("argmax")) }, { axis: 0 }),
      kase({ x: levels([6, 7], seedOf("argmax ties")) }, { axis: 1 }, "ties"),
      kase({ x: levels([3, 4, 5], seedOf("argmax ties 3")) }, { axis: 1 }, "ties"),
    ],
  },
  {
    kernel: "Cumsum",
    test: "Cumsum on wasm equals the cpu backend along each axis, exclusive and reversed",
    tolerance: SUMS,
    cases: () => {
      const cases: Case[] = [];
      const x = normal([4, 5], seedOf("cumsum"));
      for (const axis of [0, 1]) {
        for (const exclusive of [false, true]) {
          for (const reverse of [false, true]) cases.push(kase({ x }, { axis, exclusive, reverse }));
        }
      }
      cases.push(kase({ x: normal([3, 100], seedOf("cumsum wide")) }, { axis: 1, exclusive: false, reverse: false }));
      cases.push(kase({ x: normal([2, 3, 4], seedOf("cumsum 3d")) }, { axis: 1, exclusive: false, reverse: true }));
      return cases;
    },
  },
  {
    kernel: "Cumsum",
    test: "Cumsum on wasm equals the cpu backend for a negative axis (tf.cumsum passes it through)",
    tolerance: SUMS,
    cases: () => [
      kase({ x: normal([4, 5], seedOf("cumsum")) }, { axis: -1, exclusive: false, reverse: false }),
      kase({ x: normal([2, 3, 4], seedOf("cumsum 3d")) }, { axis: -2, exclusive: true, reverse: false }),
    ],
    isolate: "tfjs-backend-wasm 4.22 transposes by the unnormalized axis and writes out of bounds",
  },
  // Data movement
  {
    kernel: "Transpose",
    test: "Transpose on wasm equals the cpu backend for 2-d to 5-d permutations",
    tolerance: EXACT,
    cases: () => {
      const table: [number[], number[]][] = [
        [[2, 3], [1, 0]],
        [[2, 3, 4], [0, 2, 1]],
        [[2, 3, 4], [2, 0, 1]],
        [[2, 3, 4], [1, 0, 2]],
        [[2, 3, 4, 5], [0, 3, 1, 2]],
        [[2, 3, 4, 5], [0, 2, 3, 1]],
        [[2, 3, 4, 5], [3, 2, 1, 0]],
        [[2, 3, 2, 3, 2], [0, 4, 1, 2, 3]],
        [[2, 3, 2, 3, 2], [0, 2, 3, 4, 1]],
      ];
      return [
        ...table.map(([shape, perm]) => kase({ x: normal(shape, seedOf("transpose", shape, perm)) }, { perm })),
        kase({ x: ints([3, 4], seedOf("transpose int"), -9, 9) }, { perm: [1, 0] }),
      ];
    },
  },
  {
    kernel: "Tile",
    test: "Tile on wasm equals the cpu backend for 1-d to 4-d repetitions",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([2, 3], seedOf("tile 1")) }, { reps: [2, 3] }),
      kase({ x: normal([1, 3, 1], seedOf("tile 2")) }, { reps: [4, 1, 5] }),
      kase({ x: normal([3], seedOf("tile 3")) }, { reps: [4] }),
      kase({ x: normal([2, 1, 2, 1], seedOf("tile 4")) }, { reps: [1, 3, 1, 2] }),
      kase({ x: ints([2, 2], seedOf("tile int"), -9, 9) }, { reps: [3, 1] }),
      // Batch normalization's gradient, and a tile that repeats nothing.
      kase({ x: normal([1, 1, 1, 256], seedOf("tile bn")) }, { reps: [1, 1, 128, 1] }),
      kase({ x: normal([2, 3], seedOf("tile none")) }, { reps: [1, 1] }),
    ],
  },
  {
    kernel: "PadV2",
    test: "PadV2 on wasm equals the cpu backend for asymmetric paddings and constant values",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([2, 3], seedOf("pad 1")) }, { paddings: [[1, 2], [0, 3]], constantValue: 0 }),
      kase({ x: normal([2, 3, 4, 5], seedOf("pad 2")) }, {
        paddings: [[0, 0], [1, 1], [2, 0], [0, 0]],
        constantValue: 0,
      }),
      kase({ x: normal([3, 4], seedOf("pad 3")) }, { paddings: [[2, 0], [1, 1]], constantValue: 1.5 }),
      kase({ x: normal([5], seedOf("pad 4")) }, { paddings: [[3, 0]], constantValue: -1 }),
      kase({ x: ints([2, 2], seedOf("pad int"), -9, 9) }, { paddings: [[1, 1], [1, 1]], constantValue: 7 }),
    ],
  },
  {
    kernel: "Slice",
    test: "Slice on wasm equals the cpu backend for 1-d to 4-d begins and sizes, -1 included",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([4, 5], seedOf("slice 1")) }, { begin: [1, 2], size: [2, 3] }),
      kase({ x: normal([3, 4, 5], seedOf("slice 2")) }, { begin: [0, 1, 2], size: [-1, 2, -1] }),
      kase({ x: normal([2, 6, 6, 3], seedOf("slice 3")) }, { begin: [0, 1, 1, 0], size: [2, 4, 4, 3] }),
      kase({ x: normal([9], seedOf("slice 4")) }, { begin: [3], size: [4] }),
      kase({ x: normal([4, 6], seedOf("slice 5")) }, { begin: [1, 0], size: [2, 6] }),
    ],
  },
  {
    kernel: "StridedSlice",
    test: "StridedSlice on wasm equals the cpu backend for strides, negative strides and every mask",
    tolerance: EXACT,
    cases: () => {
      const x2 = normal([6, 7], seedOf("strided 2"));
      const x3 = normal([4, 5, 6], seedOf("strided 3"));
      const masks = { beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 };
      return [
        kase({ x: x2 }, { begin: [1, 0], end: [5, 7], strides: [2, 1], ...masks }),
        kase({ x: x2 }, { begin: [5, 6], end: [0, 0], strides: [-1, -2], ...masks }),
        kase({ x: x2 }, { begin: [0, 2], end: [0, 5], strides: [1, 1], ...masks, beginMask: 1, endMask: 1 }),
        kase({ x: x2 }, { begin: [2, 0], end: [3, 7], strides: [1, 1], ...masks, shrinkAxisMask: 1 }),
        kase({ x: x3 }, { begin: [1], end: [3], strides: [1], ...masks, ellipsisMask: 0 }),
        kase({ x: x3 }, { begin: [0, 1], end: [0, 4], strides: [1, 2], ...masks, ellipsisMask: 1 }),
        kase({ x: x3 }, { begin: [0, 0, 1], end: [0, 0, 3], strides: [1, 1, 1], ...masks, newAxisMask: 2 }),
        kase({ x: x3 }, { begin: [-1, 0, -2], end: [-5, 5, -7], strides: [-1, 2, -1], ...masks }),
      ];
    },
  },
  {
    kernel: "Concat",
    test: "Concat on wasm equals the cpu backend along each axis, for two and three inputs",
    tolerance: EXACT,
    cases: () => [
      kase(
        [normal([2, 3], seedOf("concat a")), normal([2, 4], seedOf("concat b")), normal([2, 1], seedOf("concat c"))],
        {
          axis: 1,
        },
      ),
      kase([normal([2, 3], seedOf("concat a")), normal([4, 3], seedOf("concat d"))], { axis: 0 }),
      kase([normal([2, 3, 2], seedOf("concat e")), normal([2, 3, 5], seedOf("concat f"))], { axis: -1 }),
      kase([normal([2, 3, 2], seedOf("concat e")), normal([2, 1, 2], seedOf("concat g"))], { axis: 1 }),
      kase([ints([3, 2], seedOf("concat int a"), -9, 9), ints([3, 3], seedOf("concat int b"), -9, 9)], { axis: 1 }),
    ],
  },
  {
    kernel: "Pack",
    test: "Pack on wasm equals the cpu backend along each axis",
    tolerance: EXACT,
    cases: () => {
      const parts = [0, 1, 2].map((i) => normal([2, 3], seedOf("pack", i)));
      return [0, 1, 2].map((axis) => kase(parts, { axis }));
    },
  },
  {
    kernel: "Unpack",
    test: "Unpack on wasm equals the cpu backend along each axis",
    tolerance: EXACT,
    cases: () => [0, 1, 2].map((axis) => kase({ value: normal([3, 4, 2], seedOf("unpack")) }, { axis })),
  },
  {
    kernel: "SplitV",
    test: "SplitV on wasm equals the cpu backend for even and uneven splits along each axis",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([6, 4], seedOf("split 1")) }, { numOrSizeSplits: 3, axis: 0 }),
      kase({ x: normal([6, 4], seedOf("split 1")) }, { numOrSizeSplits: [1, 3], axis: 1 }),
      kase({ x: normal([2, 3, 7], seedOf("split 2")) }, { numOrSizeSplits: [2, -1, 1], axis: 2 }),
      kase({ x: normal([5, 2, 3], seedOf("split 3")) }, { numOrSizeSplits: [2, 3], axis: 0 }),
    ],
  },
  {
    kernel: "Reverse",
    test: "Reverse on wasm equals the cpu backend along each axis and axis set",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([4, 5], seedOf("reverse")) }, { dims: [0] }),
      kase({ x: normal([4, 5], seedOf("reverse")) }, { dims: [1] }),
      kase({ x: normal([4, 5], seedOf("reverse")) }, { dims: [0, 1] }),
      kase({ x: normal([2, 3, 4], seedOf("reverse 3")) }, { dims: [1] }),
      kase({ x: normal([2, 3, 4], seedOf("reverse 3")) }, { dims: [0, 2] }),
      kase({ x: normal([5], seedOf("reverse 1")) }, { dims: [0] }),
      kase({ x: normal([2, 3, 4, 5], seedOf("reverse 4")) }, { dims: [3] }),
    ],
  },
  {
    kernel: "Select",
    test:
      "Select on wasm equals the cpu backend for float32 and int32 branches (the where op broadcasts the condition)",
    tolerance: EXACT,
    cases: () => [
      kase({
        condition: bools([4, 5], seedOf("select c")),
        t: normal([4, 5], seedOf("select t")),
        e: normal([4, 5], seedOf("select e")),
      }),
      kase({
        condition: bools([2, 3, 4], seedOf("select c3")),
        t: ints([2, 3, 4], seedOf("select ti"), -9, 9),
        e: ints([2, 3, 4], seedOf("select ei"), -9, 9),
      }),
    ],
  },
  {
    kernel: "Cast",
    test: "Cast on wasm equals the cpu backend between float32 and int32, from bool, and to the dtype it has",
    tolerance: EXACT,
    cases: () => [
      kase({ x: normal([40], seedOf("cast same f"), 5) }, { dtype: "float32" }),
      kase({ x: ints([40], seedOf("cast same i"), -100, 100) }, { dtype: "int32" }),
      kase({ x: bools([40], seedOf("cast same b")) }, { dtype: "bool" }),
      kase({ x: normal([40], seedOf("cast f"), 5) }, { dtype: "int32" }),
      kase({ x: ints([40], seedOf("cast i"), -100, 100) }, { dtype: "float32" }),
      kase({ x: bools([40], seedOf("cast b")) }, { dtype: "float32" }),
      kase({ x: bools([40], seedOf("cast b")) }, { dtype: "int32" }),
    ],
  },
  {
    kernel: "Cast",
    test: "Cast to bool on wasm equals the cpu backend: every non-zero value is true (1)",
    tolerance: EXACT,
    cases: () => [
      kase({ x: levels([40], seedOf("cast z"), [0, -0.5, 2, 0.25]) }, { dtype: "bool" }),
      kase({ x: ints([40], seedOf("cast i2"), -2, 3) }, { dtype: "bool" }),
    ],
  },
  {
    kernel: "AddN",
    test: "AddN on wasm equals the cpu backend for two to four addends",
    tolerance: SUMS,
    cases: () => [2, 3, 4].map((n) => kase(Array.from({ length: n }, (_, i) => normal([4, 5], seedOf("addN", i))))),
  },
  {
    kernel: "OneHot",
    test: "OneHot on wasm equals the cpu backend for int32 output (the default dtype), out-of-range indices included",
    tolerance: EXACT,
    cases: () => [
      kase({ indices: ints([6], seedOf("oneHot"), 0, 5) }, { depth: 5, onValue: 1, offValue: 0, dtype: "int32" }),
      kase({ indices: given([5], [-1, 0, 4, 5, 2], "int32") }, { depth: 5, onValue: 1, offValue: 0, dtype: "int32" }),
      kase({ indices: ints([2, 3], seedOf("oneHot 2"), 0, 4) }, { depth: 4, onValue: 2, offValue: -1, dtype: "int32" }),
    ],
  },
  {
    kernel: "OneHot",
    test: "OneHot on wasm equals the cpu backend for float32 output (tf.oneHot(..., 'float32'))",
    tolerance: EXACT,
    cases: () => [
      kase({ indices: ints([6], seedOf("oneHot"), 0, 5) }, { depth: 5, onValue: 1, offValue: 0, dtype: "float32" }),
      kase({ indices: ints([2, 3], seedOf("oneHot 3"), 0, 4) }, {
        depth: 4,
        onValue: 0.9,
        offValue: 0.025,
        dtype: "float32",
      }),
    ],
  },
  ...unarySpecs,
  ...binarySpecs,
  {
    kernel: "ZerosLike",
    test: "ZerosLike on wasm equals the cpu backend",
    tolerance: EXACT,
    cases: () => [kase({ x: normal([3, 4], seedOf("zeros")) }), kase({ x: ints([3], seedOf("zeros int"), -5, 5) })],
  },
  {
    kernel: "OnesLike",
    test: "OnesLike on wasm equals the cpu backend",
    tolerance: EXACT,
    cases: () => [kase({ x: normal([3, 4], seedOf("ones")) }), kase({ x: ints([3], seedOf("ones int"), -5, 5) })],
  },
];

/**
 * The elementwise kernels fed NaN, ±Infinity, ±0, tiny, huge and subnormal values (every pair of them for binary
 * kernels), with each kernel's own tolerance and reference.
 */
export const SPECIAL_SPECS: KernelSpec[] = [
  ...UNARY.filter((u, i) => UNARY.findIndex((v) => v.kernel === u.kernel) === i).map((u): KernelSpec => ({
    kernel: u.kernel,
    test: `${u.kernel} of special values`,
    tolerance: u.tolerance,
    cases: () => [kase({ x: given([SPECIAL_VALUES.length], SPECIAL_VALUES) }, u.attrs ?? {}, "special values")],
    reference: u.reference,
  })),
  ...BINARY.filter((o, i) => BINARY.findIndex((p) => p.kernel === o.kernel) === i && o.kernel !== "LogicalAnd").map(
    (o): KernelSpec => ({
      kernel: o.kernel,
      test: `${o.kernel} of special values`,
      tolerance: o.tolerance,
      cases: () => {
        const n = SPECIAL_VALUES.length;
        return [
          kase(
            { a: given([n, 1], SPECIAL_VALUES), b: given([1, n], SPECIAL_VALUES) },
            {},
            "every pair of special values",
          ),
        ];
      },
    }),
  ),
];

// ---------------------------------------------------------------------------------------------------------------
// Running the cases

export interface Output {
  shape: number[];
  dtype: string;
  values: Float32Array | Int32Array | Uint8Array;
}

/** A kernel's outputs on one backend, or what it threw. */
export type Result = { outputs: Output[] } | { error: string };

/** One spec's cases run on the cpu backend, on wasm, and (for `sum` tolerances) their magnitudes on cpu. */
export interface Runs {
  cpu: Result[];
  wasm: Result[];
  magnitude: Result[];
}

/** The cases whose cpu results bound Σ|terms| (see `Tolerance`). */
export function magnitudeCases(spec: KernelSpec, cases: Case[]): Case[] {
  return spec.tolerance.kind === "sum" ? cases.map((c) => (spec.magnitude ?? ((k: Case) => absOf(k)))(c)) : [];
}

/** Runs `c` through `kernel` on the active backend; every tensor made here is disposed before it returns. */
function runCase(kernel: string, c: Case): Result {
  const made: tf.Tensor[] = [];
  const make = (t: Input) => made[made.push(tf.tensor(t.values, t.shape, t.dtype)) - 1];
  try {
    const inputs = Array.isArray(c.inputs)
      ? c.inputs.map(make)
      : Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, make(t)]));
    const out = tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, c.attrs as tf.NamedAttrMap);
    const outs = Array.isArray(out) ? out : [out as tf.Tensor];
    made.push(...outs);
    return {
      outputs: outs.map((t) => ({ shape: t.shape.slice(), dtype: t.dtype, values: t.dataSync().slice() as Values })),
    };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  } finally {
    tf.dispose(made);
  }
}

/** Runs every case on the named backend (as `useBackend` sets it up), restoring the previous backend afterwards. */
export async function runAll(name: "cpu" | "wasm", kernel: string, cases: Case[]): Promise<Result[]> {
  const before = tf.getBackend();
  await useBackend(name);
  try {
    return cases.map((c) => runCase(kernel, c));
  } finally {
    await tf.setBackend(before);
  }
}

export async function runSpec(spec: KernelSpec, cases: Case[]): Promise<Runs> {
  return {
    cpu: await runAll("cpu", spec.kernel, cases),
    wasm: await runAll("wasm", spec.kernel, cases),
    magnitude: spec.reference ? [] : await runAll("cpu", spec.kernel, magnitudeCases(spec, cases)),
  };
}

const ARRAYS = { Float32Array, Int32Array, Uint8Array };

/** `Runs` as one line of JSON (typed arrays as base64, so NaN and -0 survive). */
export function encodeRuns(runs: Runs): string {
  return JSON.stringify(
    runs,
    (_, v) =>
      ArrayBuffer.isView(v)
        ? { array: v.constructor.name, base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") }
        : v,
  );
}

export function decodeRuns(text: string): Runs {
  return JSON.parse(text, (_, v) => {
    if (v === null || typeof v !== "object" || typeof v.base64 !== "string") return v;
    const bytes = Buffer.from(v.base64, "base64");
    const copy = new Uint8Array(bytes).buffer;
    return new ARRAYS[v.array as keyof typeof ARRAYS](copy);
  });
}

/** The marker before a child's JSON line. */
export const RUNS_MARKER = "kernel-conformance-runs:";

// Run as a script (`deno run -A tests/kernel_cases.ts "<test name>" <case index>`, or with `bun`): runs one case of
// that spec in this process and prints its runs, for specs that must not run in the test process (`isolate`).
if (import.meta.main) {
  const [name, index] = process.argv.slice(2);
  const spec = SPECS.find((s) => s.test === name);
  if (spec === undefined) throw new Error(`no spec named ${JSON.stringify(name)}`);
  await useBackend("cpu");
  console.log(RUNS_MARKER + encodeRuns(await runSpec(spec, [spec.cases()[Number(index)]])));
}
