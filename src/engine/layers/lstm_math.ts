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
 * {@link LstmProducts}); tfjs computes every op in float32, so the two agree
 * to float32 rounding.
 *
 * Activations are the ones tfjs differentiates elementwise from what its
 * forward pass keeps, each with tfjs's formula and gradient (see
 * {@link LSTM_ACTIVATIONS}). Nothing here knows tfjs or the engine.
 *
 * @module
 */

/** The activations an LSTM's gates and cell may use here, in the order of their codes. */
export const LSTM_ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "hardSigmoid"] as const;

/** An activation this module computes. */
export type LstmActivation = typeof LSTM_ACTIVATIONS[number];

type Code = 0 | 1 | 2 | 3 | 4;

/** tfjs multiplies by the float32 nearest 0.2 in hardSigmoid (`0.5 + 0.2·x`, clipped to [0, 1]). */
const FIFTH = Math.fround(0.2);

/**
 * What the forward pass keeps of an activation: its output, except for
 * hardSigmoid, whose unclipped `0.5 + 0.2·x` it keeps (its gradient passes
 * where that lies in [0, 1], edges included, as tfjs's clipByValue gradient
 * does, so the clipped output alone cannot tell an edge from beyond it).
 * hardSigmoid rounds as tfjs does (float32 after each op) so that an input
 * landing exactly on an edge takes tfjs's side of it.
 */
function keep(code: Code, s: number): number {
  switch (code) {
    case 0:
      return s;
    case 1:
      return s > 0 ? s : 0;
    case 2:
      return 1 / (1 + Math.exp(-s));
    case 3:
      return Math.tanh(s);
    default:
      return Math.fround(0.5 + Math.fround(FIFTH * Math.fround(s)));
  }
}

/** The activation's value from what {@link keep} kept. */
function value(code: Code, k: number): number {
  return code === 4 ? (k < 0 ? 0 : k > 1 ? 1 : k) : k;
}

/** The activation's derivative from what {@link keep} kept, as tfjs's gradients compute it. */
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
      return k >= 0 && k <= 1 ? FIFTH : 0;
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
}

/**
 * The matrix products of the LSTM, all row-major: `out (m×n) = A · B` with A
 * of m×k and B of k×n, where A or B is read transposed when said. `add`
 * adds the product into `out` instead of writing it. Implementations: JS
 * float64 loops ({@link jsProducts}) and float32 SIMD kernels (elsewhere).
 */
export interface LstmProducts {
  /** `out = A · B` (or `+=` when `add`); A is m×k, B is k×n. */
  ab(
    a: ArrayLike<number>,
    b: ArrayLike<number>,
    m: number,
    k: number,
    n: number,
    out: Float64Array,
    add: boolean,
  ): void;
  /** `out = A · Bᵀ` (or `+=`); A is m×k, B is n×k. */
  abt(
    a: ArrayLike<number>,
    b: ArrayLike<number>,
    m: number,
    k: number,
    n: number,
    out: Float64Array,
    add: boolean,
  ): void;
  /** `out = Aᵀ · B` (or `+=`); A is k×m, B is k×n. */
  atb(
    a: ArrayLike<number>,
    b: ArrayLike<number>,
    m: number,
    k: number,
    n: number,
    out: Float64Array,
    add: boolean,
  ): void;
}

/**
 * float64 products in JS loops: `ab` and `atb` as rows of axpys (the inner
 * loop runs along a row of B and of `out`), `abt` as dot products of rows.
 */
export const jsProducts: LstmProducts = {
  ab(a, b, m, k, n, out, add) {
    if (!add) out.fill(0, 0, m * n);
    for (let r = 0; r < m; r++) {
      const o = r * n, ar = r * k;
      for (let p = 0; p < k; p++) {
        const s = a[ar + p], bp = p * n;
        if (s === 0) continue;
        for (let j = 0; j < n; j++) out[o + j] += s * b[bp + j];
      }
    }
  },
  abt(a, b, m, k, n, out, add) {
    for (let r = 0; r < m; r++) {
      const ar = r * k, o = r * n;
      for (let j = 0; j < n; j++) {
        const bj = j * k;
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ar + p] * b[bj + p];
        out[o + j] = add ? out[o + j] + s : s;
      }
    }
  },
  atb(a, b, m, k, n, out, add) {
    if (!add) out.fill(0, 0, m * n);
    for (let p = 0; p < k; p++) {
      const ap = p * m, bp = p * n;
      for (let r = 0; r < m; r++) {
        const s = a[ap + r];
        if (s === 0) continue;
        const o = r * n;
        for (let j = 0; j < n; j++) out[o + j] += s * b[bp + j];
      }
    }
  },
};

/** The layer's weights, as tfjs keeps them (kernel F×4u, recurrent kernel u×4u, bias 4u or none). */
export interface LstmWeights {
  kernel: ArrayLike<number>;
  recurrent: ArrayLike<number>;
  bias: ArrayLike<number> | undefined;
}

/** Where the backward pass adds its gradients (each `+=`; `dx` is written, not added, when given). */
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
 * indexed `r·T + t`, so the input projection and the weight gradients are
 * each one product over all steps.
 */
export class LstmMath {
  readonly shape: LstmShape;
  #act: Code;
  #rec: Code;
  #products: LstmProducts;
  /** x·W for every (row, step): (n·T)×4u; the backward pass reuses it for d z. */
  #zx: Float64Array;
  /** What `keep` kept of the four gates at every (row, step): (n·T)×4u. */
  #gates: Float64Array;
  /** c at every (row, step): (n·T)×u. */
  #cells: Float64Array;
  /** What `keep` kept of act(c) at every (row, step): (n·T)×u. */
  #actCells: Float64Array;
  /** h before every (row, step) — zeros at step 0: (n·T)×u. */
  #hPrev: Float64Array;
  /** The current step's h (n×u) and its recurrent product (n×4u). */
  #h: Float64Array;
  #zh: Float64Array;
  /** Backward: d h and d c flowing to the previous step (n×u each), and one step's d z (n×4u). */
  #dh: Float64Array;
  #dc: Float64Array;
  #dzStep: Float64Array;
  #rows = 0;
  /** The last forward pass's input (the kernel's gradient reads it). */
  #x: ArrayLike<number> = new Float64Array(0);

  constructor(shape: LstmShape, config: LstmConfig, products: LstmProducts = jsProducts) {
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
    const { steps, units, maxRows } = shape;
    const cells = maxRows * steps;
    this.#zx = new Float64Array(cells * 4 * units);
    this.#gates = new Float64Array(cells * 4 * units);
    this.#cells = new Float64Array(cells * units);
    this.#actCells = new Float64Array(cells * units);
    this.#hPrev = new Float64Array(cells * units);
    this.#h = new Float64Array(maxRows * units);
    this.#zh = new Float64Array(maxRows * 4 * units);
    this.#dh = new Float64Array(maxRows * units);
    this.#dc = new Float64Array(maxRows * units);
    this.#dzStep = new Float64Array(maxRows * 4 * units);
  }

  /** The last forward pass's output h (its first n×u values), valid until the next pass. */
  get output(): Float64Array {
    return this.#h;
  }

  /**
   * The forward pass over `n` rows of `x` (n×T×F): returns the last step's
   * h (n×u, the layer's output; see {@link output}) and keeps what
   * {@link backward} needs.
   */
  forward(x: ArrayLike<number>, n: number, w: LstmWeights): Float64Array {
    const { steps: T, features: F, units: u } = this.shape;
    const u4 = 4 * u, act = this.#act, rec = this.#rec, bias = w.bias;
    const zx = this.#zx, gates = this.#gates, cells = this.#cells, actCells = this.#actCells, hPrev = this.#hPrev;
    const h = this.#h, zh = this.#zh;
    this.#rows = n;
    this.#x = x;
    this.#products.ab(x, w.kernel, n * T, F, u4, zx, false);
    h.fill(0, 0, n * u);
    for (let t = 0; t < T; t++) {
      if (t > 0) this.#products.ab(h, w.recurrent, n, u, u4, zh, false);
      for (let r = 0; r < n; r++) {
        const cell = r * T + t, g = cell * u4, z = r * u4, s = cell * u, hr = r * u;
        for (let j = 0; j < u; j++) hPrev[s + j] = h[hr + j];
        for (let j = 0; j < u4; j++) {
          // tfjs: (x·W + h·U) + b, in that order.
          let v = zx[g + j];
          if (t > 0) v += zh[z + j];
          if (bias) v += bias[j];
          gates[g + j] = keep(j >= 2 * u && j < 3 * u ? act : rec, v);
        }
        for (let j = 0; j < u; j++) {
          const i = value(rec, gates[g + j]), f = value(rec, gates[g + u + j]);
          const cc = value(act, gates[g + 2 * u + j]), o = value(rec, gates[g + 3 * u + j]);
          const c = (t > 0 ? f * cells[s - u + j] : 0) + i * cc;
          cells[s + j] = c;
          const k = actCells[s + j] = keep(act, c);
          h[hr + j] = o * value(act, k);
        }
      }
    }
    return h;
  }

  /**
   * Backpropagation through time from `dOut` = d loss / d output (n×u) of
   * the last forward pass: adds the weight gradients into `grads` and writes
   * d loss / d input into `grads.input` when given.
   */
  backward(dOut: ArrayLike<number>, w: LstmWeights, grads: LstmGradients): void {
    const { steps: T, features: F, units: u } = this.shape;
    const n = this.#rows, u4 = 4 * u, act = this.#act, rec = this.#rec;
    const dz = this.#zx, gates = this.#gates, cells = this.#cells, actCells = this.#actCells;
    const dh = this.#dh, dc = this.#dc, dzStep = this.#dzStep;
    for (let i = 0; i < n * u; i++) dh[i] = dOut[i];
    dc.fill(0, 0, n * u);
    for (let t = T - 1; t >= 0; t--) {
      for (let r = 0; r < n; r++) {
        const cell = r * T + t, g = cell * u4, s = cell * u, hr = r * u, z = r * u4;
        for (let j = 0; j < u; j++) {
          const ki = gates[g + j], kf = gates[g + u + j], kc = gates[g + 2 * u + j], ko = gates[g + 3 * u + j];
          const ka = actCells[s + j], d = dh[hr + j];
          // h = o·act(c): d o = d h·act(c); d c += d h·o·act'(c).
          const dC = dc[hr + j] + d * value(rec, ko) * slope(act, ka);
          const i = value(rec, ki), cc = value(act, kc);
          const di = dC * cc * slope(rec, ki);
          const df = t > 0 ? dC * cells[s - u + j] * slope(rec, kf) : 0;
          const dcc = dC * i * slope(act, kc);
          const dO = d * value(act, ka) * slope(rec, ko);
          dc[hr + j] = dC * value(rec, kf);
          dz[g + j] = dzStep[z + j] = di;
          dz[g + u + j] = dzStep[z + u + j] = df;
          dz[g + 2 * u + j] = dzStep[z + 2 * u + j] = dcc;
          dz[g + 3 * u + j] = dzStep[z + 3 * u + j] = dO;
        }
      }
      // d h_{t−1} = d z_t · Uᵀ (nothing flows before step 0).
      if (t > 0) this.#products.abt(dzStep, w.recurrent, n, u4, u, dh, false);
    }
    this.#products.atb(this.#hPrev, dz, u, n * T, u4, grads.recurrent, true);
    this.#products.atb(this.#x, dz, F, n * T, u4, grads.kernel, true);
    if (grads.bias) {
      const db = grads.bias;
      for (let c = 0; c < n * T; c++) {
        const g = c * u4;
        for (let j = 0; j < u4; j++) db[j] += dz[g + j];
      }
    }
    if (grads.input) this.#products.abt(dz, w.kernel, n * T, u4, F, grads.input, false);
  }
}
