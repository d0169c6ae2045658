/**
 * The arithmetic of a tfjs LSTM layer (`tf.layers.lstm`, tfjs-layers 4.22)
 * on plain arrays: the forward pass over the steps of a batch, keeping what
 * the backward pass needs, and backpropagation through time to the kernel,
 * the recurrent kernel, the bias and (when asked) the input. It mirrors
 * tfjs's LSTMCell inside its RNN loop: gates i, f, c, o in the kernels'
 * column blocks, in that order; `z = x·W + h·U + b`; `c' = f·c + i·act(z_c)`;
 * `h' = o·act(c')`; the states start at zero; the layer's output is the last
 * `h` (returnSequences false). Values are float64 within a step, and the
 * products are float64 JS loops or float32 SIMD products (see
 * `lstm_products.ts`); tfjs computes every op in float32, so the two agree
 * to float32 rounding. For tanh and hardSigmoid (tfjs's defaults) the
 * products may take a forward time step themselves (`LstmProducts.step`:
 * the SIMD kernels' `simd/lstm_cell.ts`), bit for bit this module's loop.
 *
 * Activations are the ones tfjs differentiates elementwise from what its
 * forward pass keeps, each with tfjs's formula and gradient (see
 * {@link LSTM_ACTIVATIONS}). Nothing here knows tfjs or the engine.
 *
 * @module
 */

import type { LstmStepArrays } from "../../kernels/simd/products.ts";
import { FIFTH, LN2_64_HI, LN2_64_LO, STEPS_PER_LN2, tanhTables } from "../../kernels/simd/lstm_cell.ts";

/** The activations an LSTM's gates and cell may use here, in the order of their codes. */
export const LSTM_ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "hardSigmoid"] as const;

/** An activation this module computes. */
export type LstmActivation = typeof LSTM_ACTIVATIONS[number];

type Code = 0 | 1 | 2 | 3 | 4;

/**
 * What the forward pass keeps of each activation (by code): its output, except for
 * hardSigmoid, whose unclipped `0.5 + 0.2·x` it keeps (its gradient passes
 * where that lies in [0, 1], edges included, as tfjs's clipByValue gradient
 * does, so the clipped output alone cannot tell an edge from beyond it).
 * hardSigmoid rounds as tfjs does (float32 after each op) so that an input
 * landing exactly on an edge takes tfjs's side of it.
 */
const KEEP: readonly ((s: number) => number)[] = [
  (s) => s,
  (s) => s > 0 ? s : 0,
  (s) => 1 / (1 + Math.exp(-s)),
  (s) => tanh(s),
  (s) => Math.fround(0.5 + Math.fround(FIFTH * Math.fround(s))),
];

/** 2^(−i/64) for i < 64, and 2^(−i): the scales of `tanh`'s exponential (the SIMD kernel's tables too). */
const TABLES = tanhTables();
const FRACTIONS = TABLES.subarray(0, 64), POWERS = TABLES.subarray(64);

/**
 * tanh, within 1e-14 (relative) of `Math.tanh`, which tfjs's cpu backend
 * calls: their float32 roundings agreed at all 800,001 points tried in
 * [-20, 20]. It is `(1 − e)/(1 + e)` with `e = exp(−2|x|)` from a table of
 * 2^(−i/64) and a degree-5 polynomial on |r| ≤ ln 2/128, and a series below
 * |x| = 1/16. The forward pass takes two a unit a step, and `Math.tanh` was
 * ~80% of its gate loop: this ran in 6 ns of CPU where `Math.tanh` took 11
 * (Deno and Bun alike).
 */
export function tanh(x: number): number {
  const a = Math.abs(x);
  if (a < 0.0625) {
    const q = x * x;
    return x * (1 - q * (1 / 3 - q * (2 / 15 - q * (17 / 315 - q * (62 / 2835)))));
  }
  // e^−40 is below half an ulp of 1 (NaN goes on, and stays NaN).
  if (a > 20) return x > 0 ? 1 : -1;
  const y = 2 * a;
  const j = (y * STEPS_PER_LN2 + 0.5) | 0;
  const r = (y - j * LN2_64_HI) - j * LN2_64_LO;
  const p = 1 - r * (1 - r * (1 / 2 - r * (1 / 6 - r * (1 / 24 - r * (1 / 120)))));
  const e = POWERS[j >> 6] * FRACTIONS[j & 63] * p;
  // The sign comes in as x / |x| within the one division, not as a branch on it: a sequence's values flip sign at
  // random, and the mispredicted branch cost a quarter of the forward pass's time in tanh.
  return ((1 - e) * x) / ((1 + e) * a);
}

/** The activation's value from what {@link KEEP} kept. */
function value(code: Code, k: number): number {
  return code === 4 ? (k < 0 ? 0 : k > 1 ? 1 : k) : k;
}

/** The activation's derivative from what {@link KEEP} kept, as tfjs's gradients compute it. */
function slope(code: Code, k: number): number {
  switch (code) {
    case 0:
      return 1;
    case 1:
      return k > 0 ? 1 : 0; // tfjs: step(x), 0 at 0
    case 2:
      return k * (1 - k);
    case 3:
      return 1 - k * k;
    default:
      // Booleans multiplied, not branched on: a gate saturates at random (on Bun 2 ns a value instead of 9).
      return FIFTH * +(k >= 0) * +(k <= 1);
  }
}

/** The code of an activation name, or −1 when this module lacks it. */
export function lstmActivationCode(name: string): number {
  return (LSTM_ACTIVATIONS as readonly string[]).indexOf(name);
}

/** The sizes of one LSTM layer. */
export interface LstmShape {
  /** Time steps of an input row. */
  steps: number;
  /** Features at each step. */
  features: number;
  units: number;
  /** The most batch rows a pass takes (buffers are sized for it). */
  maxRows: number;
}

/** The layer's settings that change its arithmetic. */
export interface LstmConfig {
  /** The cell's activation (tfjs's default: tanh). */
  activation: LstmActivation;
  /** The gates' activation (tfjs's default: hardSigmoid). */
  recurrentActivation: LstmActivation;
  /** Whether the layer reads its steps last to first (tfjs's goBackwards; default false). */
  goBackwards?: boolean;
  /**
   * Whether the output is h after every step (n×T×u, in the order the steps
   * run, as tfjs stacks them: reversed time under goBackwards) rather than
   * after the last one (n×u). Default false.
   */
  returnSequences?: boolean;
}

/** A product's values: row r starts at `r · stride`. */
export interface ProductView {
  values: ArrayLike<number>;
  stride: number;
}

/**
 * Row-major matrix products `C (m×n) = A · B`, with A (m×k) or B (k×n) read
 * transposed where the name says (`abt`: B given as n×k; `atb`: A given as
 * k×m). With `out`, C is written there (m×n, dense) and the view is of
 * `out`; without, the view is valid until the next product. Arrays from
 * `float64`/`float32` are the ones products read fastest.
 */
export interface LstmProducts {
  ab(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, out?: Float64Array): ProductView;
  abt(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, out?: Float64Array): ProductView;
  atb(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, out?: Float64Array): ProductView;
  /** A float64 array of zeros, for products to read. */
  float64(length: number): Float64Array;
  /** A float32 array of zeros, for products to read. */
  float32(length: number): Float32Array;
  /** Gives back arrays from `float64` and `float32`. */
  free(arrays: ArrayBufferView[]): void;
  /**
   * Optional: one time step of the forward pass for tanh and hardSigmoid,
   * bit for bit {@link LstmMath.forward}'s loop (the SIMD kernels' lstmStep);
   * `false` where it cannot take these arrays (then the loop runs).
   */
  step?(arrays: LstmStepArrays): boolean;
}

/** The layer's weights, as tfjs keeps them (kernel F×4u, recurrent kernel u×4u, bias 4u or none). */
export interface LstmWeights {
  kernel: ArrayLike<number>;
  recurrent: ArrayLike<number>;
  bias: ArrayLike<number> | undefined;
}

/** Where the backward pass adds its gradients (each `+=`; `input` is written, not added, when given). */
export interface LstmGradients {
  kernel: Float64Array;
  recurrent: Float64Array;
  bias: Float64Array | undefined;
  /** d loss / d input, n×T×F, or `undefined` when the layer below needs none. */
  input?: Float64Array;
}

/**
 * One LSTM layer's forward and backward passes over batches of up to
 * `maxRows` rows, with buffers made once. Row r of a batch's input is its
 * T×F values (tfjs's [batch, steps, features] layout); internal rows are
 * indexed `r·T + t` ("cells"), so the input projection and the weight
 * gradients are each one product over all steps, and only the recurrent
 * products run step by step.
 */
export class LstmMath {
  readonly shape: LstmShape;
  #act: Code;
  #rec: Code;
  #products: LstmProducts;
  /**
   * Per cell, 4u values: x·W, then what `KEEP` kept of the four gates
   * (forward); the backward pass overwrites a cell's gates with its d z once
   * it has read them, and the weight gradients are products of all of d z.
   */
  #gates: Float64Array;
  /** c at every cell: (n·T)×u. */
  #cells: Float64Array;
  /** What `KEEP` kept of act(c) at every cell: (n·T)×u. */
  #actCells: Float64Array;
  /** h before every cell — zeros at step 0: (n·T)×u. */
  #hPrev: Float64Array;
  /** The current step's h (n×u). */
  #h: Float64Array;
  /** The bias as float64 (4u), for the products' `step`. */
  #bias: Float64Array;
  /** The weights in the arrays products read fastest, copied at each forward pass. */
  #kernel: Float32Array;
  #recurrent: Float32Array;
  /** Backward: d c flowing to the previous step (n×u) and one step's d z (n×4u). */
  #dc: Float64Array;
  #dzStep: Float64Array;
  #rows = 0;
  #backwards: boolean;
  #sequences: boolean;
  /** The last forward pass's input (the kernel's gradient reads it). */
  #x: ArrayLike<number> = new Float64Array(0);

  constructor(shape: LstmShape, config: LstmConfig, products: LstmProducts) {
    const act = lstmActivationCode(config.activation), rec = lstmActivationCode(config.recurrentActivation);
    if (act < 0 || rec < 0) {
      throw new RangeError(
        `LstmMath: activations must be one of ${LSTM_ACTIVATIONS.join(", ")}, got ` +
          `${config.activation} and ${config.recurrentActivation}`,
      );
    }
    this.shape = shape;
    this.#act = act as Code;
    this.#rec = rec as Code;
    this.#products = products;
    this.#backwards = config.goBackwards === true;
    this.#sequences = config.returnSequences === true;
    const { steps, features, units, maxRows } = shape;
    const cells = maxRows * steps;
    this.#gates = products.float64(cells * 4 * units);
    this.#cells = products.float64(cells * units);
    this.#actCells = products.float64(cells * units);
    this.#bias = products.float64(4 * units);
    this.#hPrev = products.float64(cells * units);
    this.#h = products.float64(maxRows * units);
    this.#kernel = products.float32(features * 4 * units);
    this.#recurrent = products.float32(units * 4 * units);
    this.#dc = new Float64Array(maxRows * units);
    this.#dzStep = products.float64(maxRows * 4 * units);
  }

  /** Gives back the arrays the products' memory holds. */
  release(): void {
    this.#products.free([
      this.#gates,
      this.#cells,
      this.#actCells,
      this.#bias,
      this.#hPrev,
      this.#h,
      this.#kernel,
      this.#recurrent,
      this.#dzStep,
    ]);
  }

  /**
   * The forward pass over `n` rows of `x` (n×T×F): returns the last step's
   * h (n×u, the layer's output, valid until the next pass) and keeps what
   * {@link backward} needs. With returnSequences, h after every step goes
   * to `sequences` (n×T×u) too.
   */
  forward(x: ArrayLike<number>, n: number, w: LstmWeights, sequences?: Float64Array): Float64Array {
    const { steps: T, features: F, units: u } = this.shape;
    const u4 = 4 * u, act = this.#act, rec = this.#rec, bias = w.bias, products = this.#products;
    // Called through these, not a switch: V8 inlines each call site's one function (a switch with tanh inlined in
    // it made the forward pass 1.6× slower on Deno).
    const keepAct = KEEP[act], keepRec = KEEP[rec];
    const gates = this.#gates, cells = this.#cells, actCells = this.#actCells, hPrev = this.#hPrev, h = this.#h;
    const kernel = this.#kernel, recurrent = this.#recurrent;
    for (let i = 0; i < kernel.length; i++) kernel[i] = w.kernel[i];
    for (let i = 0; i < recurrent.length; i++) recurrent[i] = w.recurrent[i];
    this.#rows = n;
    this.#x = x;
    products.ab(x, kernel, n * T, F, u4, gates);
    h.fill(0, 0, n * u);
    // Step t reads time τ (T − 1 − t going backwards); everything kept is at the cell of τ, next to its x.
    const back = this.#backwards, prev = back ? u : -u;
    // The products' own step for tfjs's default activations, when they have one (the SIMD kernels).
    const step = act === 3 && rec === 4 ? products.step?.bind(products) : undefined;
    const bias64 = bias && step ? this.#bias : undefined;
    if (bias64) { for (let i = 0; i < u4; i++) bias64[i] = bias![i]; }
    for (let t = 0; t < T; t++) {
      const tau = back ? T - 1 - t : t;
      // tfjs: (x·W + h·U) + b, in that order; at step 0, h·U is a product of zeros.
      const zh = t > 0 ? products.ab(h, recurrent, n, u, u4) : undefined;
      const zv = zh?.values, stride = zh?.stride ?? 0;
      const z = zh && zv instanceof Float32Array ? { values: zv, stride } : undefined;
      const first = t === 0, previous = back ? 1 : -1;
      const stepped = step !== undefined && (first || z !== undefined) &&
        step({ gates, z, bias: bias64, cells, actCells, hPrev, h, n, steps: T, units: u, cell: tau, first, previous });
      if (!stepped) {
        for (let r = 0; r < n; r++) {
          const cell = r * T + tau, g = cell * u4, s = cell * u, hr = r * u, z = r * stride;
          for (let j = 0; j < u; j++) hPrev[s + j] = h[hr + j];
          // One pass a row: the four gates of unit j, the cell and h (three passes cost ~15% more of the forward).
          for (let j = 0; j < u; j++) {
            let zi = gates[g + j], zf = gates[g + u + j], zc = gates[g + 2 * u + j], zo = gates[g + 3 * u + j];
            if (zv) {
              zi += zv[z + j];
              zf += zv[z + u + j];
              zc += zv[z + 2 * u + j];
              zo += zv[z + 3 * u + j];
            }
            if (bias) {
              zi += bias[j];
              zf += bias[u + j];
              zc += bias[2 * u + j];
              zo += bias[3 * u + j];
            }
            const ki = gates[g + j] = keepRec(zi);
            const kf = gates[g + u + j] = keepRec(zf);
            const kc = gates[g + 2 * u + j] = keepAct(zc);
            const ko = gates[g + 3 * u + j] = keepRec(zo);
            const c = (t > 0 ? value(rec, kf) * cells[s + prev + j] : 0) + value(rec, ki) * value(act, kc);
            cells[s + j] = c;
            const ka = actCells[s + j] = keepAct(c);
            h[hr + j] = value(rec, ko) * value(act, ka);
          }
        }
      }
      if (sequences) {
        for (let r = 0; r < n; r++) {
          const o = (r * T + t) * u, hr = r * u;
          for (let j = 0; j < u; j++) sequences[o + j] = h[hr + j];
        }
      }
    }
    return h;
  }

  /**
   * Backpropagation through time from `dOut` = d loss / d output (n×u, or
   * n×T×u with returnSequences) of the last forward pass: adds the weight
   * gradients into `grads` and writes d loss / d input into `grads.input`
   * when given. `x` is the forward pass's input (by default the array it was
   * given; a caller whose arrays may move passes it again).
   */
  backward(dOut: ArrayLike<number>, grads: LstmGradients, x: ArrayLike<number> = this.#x): void {
    const { steps: T, features: F, units: u } = this.shape;
    const n = this.#rows, u4 = 4 * u, act = this.#act, rec = this.#rec, products = this.#products;
    const gates = this.#gates, cells = this.#cells, actCells = this.#actCells, dc = this.#dc, dzStep = this.#dzStep;
    const seq = this.#sequences, back = this.#backwards, prev = back ? u : -u;
    // With sequences, every step's output adds its own d h to what flows back from the next step.
    let dh: ProductView = { values: dOut, stride: u };
    dc.fill(0, 0, n * u);
    for (let t = T - 1; t >= 0; t--) {
      const { values: dhv, stride: dhs } = dh;
      const tau = back ? T - 1 - t : t;
      for (let r = 0; r < n; r++) {
        const cell = r * T + tau, g = cell * u4, s = cell * u, hr = r * u, z = r * u4, d0 = r * dhs;
        const o = (r * T + t) * u;
        for (let j = 0; j < u; j++) {
          const ki = gates[g + j], kf = gates[g + u + j], kc = gates[g + 2 * u + j], ko = gates[g + 3 * u + j];
          const ka = actCells[s + j];
          const d = seq ? (t < T - 1 ? dhv[d0 + j] : 0) + dOut[o + j] : dhv[d0 + j];
          // h = o·act(c): d o = d h·act(c); d c += d h·o·act'(c); c = f·c₋₁ + i·act(z_c).
          const dC = dc[hr + j] + d * value(rec, ko) * slope(act, ka);
          const di = dC * value(act, kc) * slope(rec, ki);
          const df = t > 0 ? dC * cells[s + prev + j] * slope(rec, kf) : 0;
          const dcc = dC * value(rec, ki) * slope(act, kc);
          const dO = d * value(act, ka) * slope(rec, ko);
          dc[hr + j] = dC * value(rec, kf);
          gates[g + j] = dzStep[z + j] = di;
          gates[g + u + j] = dzStep[z + u + j] = df;
          gates[g + 2 * u + j] = dzStep[z + 2 * u + j] = dcc;
          gates[g + 3 * u + j] = dzStep[z + 3 * u + j] = dO;
        }
      }
      // d h₋₁ = d z · Uᵀ (nothing flows before step 0).
      if (t > 0) dh = products.abt(dzStep, this.#recurrent, n, u4, u);
    }
    const dz = gates, cellsN = n * T;
    addInto(grads.recurrent, products.atb(this.#hPrev, dz, u, cellsN, u4), u, u4);
    addInto(grads.kernel, products.atb(x, dz, F, cellsN, u4), F, u4);
    if (grads.bias) {
      const db = grads.bias;
      for (let c = 0; c < cellsN; c++) {
        const g = c * u4;
        for (let j = 0; j < u4; j++) db[j] += dz[g + j];
      }
    }
    if (grads.input) products.abt(dz, this.#kernel, cellsN, u4, F, grads.input);
  }
}

/** `out (rows×cols) += view`. */
function addInto(out: Float64Array, view: ProductView, rows: number, cols: number): void {
  const { values, stride } = view;
  for (let r = 0; r < rows; r++) {
    const o = r * cols, v = r * stride;
    for (let j = 0; j < cols; j++) out[o + j] += values[v + j];
  }
}
