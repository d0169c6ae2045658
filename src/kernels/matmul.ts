/**
 * `BatchMatMul` and `_FusedMatMul` on the wasm backend, on fitstream's
 * WebAssembly SIMD product kernels (`simd/products.ts`, on every core)
 * instead of XNNPACK: every tfjs-path model's products — dense layers'
 * forward and both backward products, any transpose, batch dimensions —
 * and the fused kernel's bias and activation. XNNPACK's `transposeA`
 * products (every Dense kernel gradient) ran 30–40× slower than its plain
 * ones; ours run every layout at the same speed.
 *
 * Results are float32 sums in our kernels' order (one thread's sum per
 * value, whatever the thread count), so they differ from XNNPACK's and the
 * cpu backend's by float32 accumulation noise; the fused epilogue is the
 * cpu backend's, bit for bit, on our product: `fround(c + bias)`, then the
 * activation in float64, rounded once.
 *
 * Calls the kernels cannot take go to tfjs's own kernel (kept when ours
 * was registered): non-float32 operands, a zero-sized product, batch shapes
 * that do not repeat the way tfjs indexes them, a bias or prelu weights that
 * would broadcast the output wider, an activation we do not know, or a
 * product too large for the kernels' memory (1 GiB). No product is too
 * small: see {@link planOf}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { simdKernels } from "./simd/products.ts";
import { tfjsKernel } from "./_originals.ts";
import { biasAddInHeap } from "./bias_add.ts";

/** What these kernels use of tfjs-backend-wasm's backend: outputs, and views of its heap (no copy). */
interface WasmBackend {
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

interface MatMulInputs {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
}

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

type Activation = "linear" | "relu" | "relu6" | "elu" | "leakyrelu" | "prelu" | "sigmoid";

interface FusedInputs extends MatMulInputs {
  bias?: tf.TensorInfo;
  preluActivationWeights?: tf.TensorInfo;
}

interface FusedAttrs extends MatMulAttrs {
  activation?: Activation;
  leakyreluAlpha?: number;
}

interface Args<I, A> {
  inputs: I;
  backend: WasmBackend;
  attrs: A;
}

/** One product's layout: `batch` entries of (m×k)·(k×n), entry `i` reading A's `i % batchA` and B's `i % batchB`. */
interface Plan {
  m: number;
  k: number;
  n: number;
  batch: number;
  batchA: number;
  batchB: number;
  /** The output's shape: the broadcast batch dimensions, m, n. */
  shape: number[];
}

const sizeOf = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/**
 * Whether batch dimensions `dims` broadcast into `outer` the way tfjs
 * indexes them (entry `i` of the output reads entry `i % size(dims)`): only
 * when they are ones followed by `outer`'s own last dimensions.
 */
function repeats(dims: readonly number[], outer: readonly number[]): boolean {
  const pad = outer.length - dims.length;
  let i = 0;
  while (i < dims.length && dims[i] === 1) i++;
  for (; i < dims.length; i++) if (dims[i] !== outer[pad + i]) return false;
  return true;
}

/**
 * The product's layout, or `undefined` where tfjs's own kernel takes the call
 * (see the module's comment).
 *
 * No product is too small for ours: we measured for a size threshold and
 * found none. On Deno (2-core machine, the fastest of 15 interleaved rounds,
 * B a new tensor each call, as training's updated weights are), tfjs's own
 * kernel took 2.6–3.2 µs for 4³ to 16³ products untransposed where ours took
 * 1.1–1.4 µs with the copies in and out (it reshapes both inputs into new
 * tensors and calls into C); from 4³ to 128×784×512 it took 1.0–2.4× our
 * time untransposed (1.3–2.9× with B reused: XNNPACK keeps B packed per
 * tensor), and 2× (4³) to 50× (64³ and up) transposed, either operand. A
 * batch of 512 8×8×8 products took 0.5 µs a product either way.
 */
function planOf(a: tf.TensorInfo, b: tf.TensorInfo, { transposeA, transposeB }: MatMulAttrs): Plan | undefined {
  if (a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb || m === 0 || k === 0 || n === 0) return undefined; // tfjs says what is wrong, or makes the zeros
  const dimsA = a.shape.slice(0, -2), dimsB = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(dimsA, dimsB);
  } catch {
    return undefined;
  }
  if (!repeats(dimsA, outer) || !repeats(dimsB, outer)) return undefined;
  const batchA = sizeOf(dimsA), batchB = sizeOf(dimsB);
  if (batchA === 0 || batchB === 0) return undefined; // an empty batch: tfjs's kernel says what it makes of it
  return { m, k, n, batch: Math.max(batchA, batchB), batchA, batchB, shape: [...outer, m, n] };
}

/**
 * Narrower padded rows are copied value by value: a subarray and a `set` a
 * row cost ~0.2 µs, so the tutorial's validation output (3,400 rows of 1
 * value, padded to 8) spent ~0.7 ms on Bun copying 3,400 floats.
 */
const ROW_SET_MIN = 32;

/** `m` rows of `n` values, `stride` apart in `from`, to `to` from `at` on, packed. */
function copyRows(from: Float32Array, stride: number, to: Float32Array, at: number, m: number, n: number): void {
  for (let r = 0, i = 0; r < m; r++, i += stride) for (let j = 0; j < n; j++) to[at++] = from[i + j];
}

let simdProducts = 0;

/** How many calls these kernels have run on the SIMD kernels (for tests). Internal. */
export function simdMatMulCount(): number {
  return simdProducts;
}

/**
 * The product of `plan` into a new output, or `undefined` when the SIMD
 * kernels are missing or their memory cannot hold it (nothing is left
 * allocated then).
 */
function multiply(
  backend: WasmBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  { transposeA, transposeB }: MatMulAttrs,
  plan: Plan,
): { out: tf.TensorInfo; values: Float32Array } | undefined {
  const kernels = simdKernels();
  if (!kernels || typeof backend.typedArrayFromHeap !== "function") return undefined;
  const { m, k, n, batch, batchA, batchB } = plan;
  // Views of the heap only after the output is allocated: allocating may grow the heap and detach older views.
  const out = backend.makeOutput(plan.shape, "float32");
  const values = backend.typedArrayFromHeap(out) as Float32Array;
  const as = backend.typedArrayFromHeap(a) as Float32Array, bs = backend.typedArrayFromHeap(b) as Float32Array;
  for (let i = 0; i < batch; i++) {
    const ia = (i % batchA) * m * k, ib = (i % batchB) * k * n;
    const product = kernels.multiply(
      { values: as.subarray(ia, ia + m * k), transposed: transposeA },
      { values: bs.subarray(ib, ib + k * n), transposed: transposeB },
      m,
      k,
      n,
    );
    if (!product) {
      backend.disposeData(out.dataId);
      return undefined;
    }
    const { values: c, stride } = product, at = i * m * n;
    if (stride === n) values.set(c.subarray(0, m * n), at);
    else if (n < ROW_SET_MIN) copyRows(c, stride, values, at, m, n);
    else for (let r = 0; r < m; r++) values.set(c.subarray(r * stride, r * stride + n), at + r * n);
  }
  simdProducts++;
  return { out, values };
}

/** tfjs's `BatchMatMul`, on the SIMD kernels (tfjs's own for the calls {@link planOf} leaves it). */
export function batchMatMul(args: Args<MatMulInputs, MatMulAttrs>): tf.TensorInfo {
  const { inputs: { a, b }, backend, attrs } = args;
  const plan = planOf(a, b, attrs);
  const done = plan && multiply(backend, a, b, attrs, plan);
  return done ? done.out : tfjsKernel("BatchMatMul", "wasm", args) as tf.TensorInfo;
}

const ACTIVATIONS: ReadonlySet<string> = new Set(["linear", "relu", "relu6", "elu", "leakyrelu", "prelu", "sigmoid"]);

/**
 * Where a broadcast operand's values for each row of the output start, and
 * their step along the row (0 or 1); no `starts` when every row starts at 0
 * (a bias vector, the usual case: no array of a start per row to make).
 */
interface RowStarts {
  starts?: Int32Array;
  step: number;
}

/**
 * For each row of the output (its last dimension), where a broadcast
 * operand of `shape` starts, and the step along the row (0 or 1); or
 * `undefined` when `shape` would broadcast the output wider.
 */
function rowStarts(shape: readonly number[], out: readonly number[]): RowStarts | undefined {
  if (shape.length > out.length) return undefined;
  const pad = out.length - shape.length;
  for (let d = 0; d < shape.length; d++) if (shape[d] !== 1 && shape[d] !== out[pad + d]) return undefined;
  // Strides of the operand along the output's dimensions; 0 where it broadcasts.
  const strides = new Array<number>(out.length).fill(0);
  for (let d = shape.length - 1, s = 1; d >= 0; s *= shape[d], d--) if (shape[d] !== 1) strides[pad + d] = s;
  const step = strides[out.length - 1];
  if (strides.every((s, d) => s === 0 || d === out.length - 1)) return { step };
  const rows = sizeOf(out.slice(0, -1));
  const starts = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let rest = r, at = 0;
    for (let d = out.length - 2; d >= 0; d--) {
      at += (rest % out[d]) * strides[d];
      rest = Math.floor(rest / out[d]);
    }
    starts[r] = at;
  }
  return { starts, step };
}

/**
 * tfjs's `_FusedMatMul`: the product on the SIMD kernels, then
 * as the cpu backend does it, value by value: add the bias (rounded to
 * float32), apply the activation in float64 (rounded to float32).
 */
export function fusedMatMul(args: Args<FusedInputs, FusedAttrs>): tf.TensorInfo {
  const { inputs: { a, b, bias, preluActivationWeights: alphas }, backend, attrs } = args;
  const own = () => tfjsKernel("_FusedMatMul", "wasm", args) as tf.TensorInfo;
  const activation = attrs.activation ?? "linear";
  if (!ACTIVATIONS.has(activation)) return own();
  if (activation === "leakyrelu" && typeof attrs.leakyreluAlpha !== "number") return own();
  if (activation === "prelu" && alphas?.dtype !== "float32") return own();
  if (bias && bias.dtype !== "float32") return own();
  const plan = planOf(a, b, attrs);
  if (!plan) return own();
  const biasRows = bias && rowStarts(bias.shape, plan.shape);
  const alphaRows = activation === "prelu" ? rowStarts(alphas!.shape, plan.shape) : undefined;
  if ((bias && !biasRows) || (activation === "prelu" && !alphaRows)) return own();
  const done = multiply(backend, a, b, attrs, plan);
  if (!done) return own();
  const { values } = done, n = plan.n;
  const relu = activation === "relu";
  if (bias && (relu || activation === "linear") && biasInPlace(backend, done.out, bias, biasRows!, relu)) {
    return done.out;
  }
  if (bias) addBias(values, n, backend.typedArrayFromHeap(bias) as Float32Array, biasRows!);
  if (activation === "prelu") prelu(values, n, backend.typedArrayFromHeap(alphas!) as Float32Array, alphaRows!);
  else if (activation !== "linear") activate(values, activation, attrs.leakyreluAlpha ?? 0);
  return done.out;
}

/**
 * The bias (and a relu) added in place by bias_add.ts's `biasAddInHeap` in
 * tfjs-backend-wasm's heap — the same float32 sums and relu as
 * {@link addBias} and {@link activate}, four lanes at a time — when the bias
 * is one vector along rows of a multiple of 4 values; `false` (nothing done)
 * otherwise. The tutorial's validation pass (3,400 rows × 64, relu) spent
 * ~1.1 ms of its ~2 ms in the JS loops on random-signed sums (the relu's
 * branch mispredicts half the time).
 */
function biasInPlace(
  backend: WasmBackend,
  out: tf.TensorInfo,
  bias: tf.TensorInfo,
  { starts, step }: RowStarts,
  relu: boolean,
): boolean {
  return !starts && step === 1 && biasAddInHeap(backend, out, bias, out, relu);
}

/** `values[r, j] = fround(values[r, j] + bias[at(r, j)])` (a float32 plus a float32, rounded once). */
function addBias(values: Float32Array, n: number, bias: Float32Array, { starts, step }: RowStarts): void {
  const rows = values.length / n;
  for (let r = 0, at = 0; r < rows; r++, at += n) {
    const from = starts ? starts[r] : 0;
    for (let j = 0; j < n; j++) values[at + j] += bias[from + j * step];
  }
}

/** `v < 0 ? alpha · v : v`, `alpha` from the prelu weights broadcast to the output. */
function prelu(values: Float32Array, n: number, alphas: Float32Array, { starts, step }: RowStarts): void {
  const rows = values.length / n;
  for (let r = 0, at = 0; r < rows; r++, at += n) {
    const from = starts ? starts[r] : 0;
    for (let j = 0; j < n; j++) {
      const v = values[at + j];
      if (v < 0) values[at + j] = alphas[from + j * step] * v;
    }
  }
}

/**
 * The cpu backend's activations (tfjs-backend-cpu's Relu, Relu6, Elu,
 * LeakyRelu, Sigmoid kernels), in float64 on each float32 value, stored
 * rounded: one loop per activation, so the loops hold no branch on it.
 */
function activate(values: Float32Array, activation: Activation, alpha: number): void {
  const length = values.length;
  switch (activation) {
    case "relu":
      reluBits(new Int32Array(values.buffer, values.byteOffset, length));
      return;
    case "relu6":
      for (let i = 0; i < length; i++) {
        const v = values[i];
        if (v <= 0) values[i] = 0;
        else if (v > 6) values[i] = 6;
      }
      return;
    case "elu":
      for (let i = 0; i < length; i++) {
        const v = values[i];
        values[i] = v >= 0 ? v : Math.exp(v) - 1;
      }
      return;
    case "leakyrelu":
      for (let i = 0; i < length; i++) {
        const v = values[i];
        values[i] = v < 0 ? alpha * v : v;
      }
      return;
    case "sigmoid":
      for (let i = 0; i < length; i++) values[i] = 1 / (1 + Math.exp(-values[i]));
      return;
  }
}

/**
 * relu on float32 bit patterns, without a branch: a test and a store
 * (`if (v <= 0) v = 0`) took ~5 ns a value on V8 and JavaScriptCore alike
 * on sums of random sign (its branch mispredicts half the time; Math.max ~7),
 * this ~1.1. A pattern becomes +0 where its sign bit is set and it is not a
 * NaN (−0 and every negative number; a NaN of either sign stays).
 */
function reluBits(bits: Int32Array): void {
  for (let i = 0; i < bits.length; i++) {
    const w = bits[i];
    // All ones where the sign is set and the magnitude is at most Infinity's (not a NaN).
    const negative = (w >> 31) & ~((0x7f800000 - (w & 0x7fffffff)) >> 31);
    bits[i] = w & ~negative;
  }
}
