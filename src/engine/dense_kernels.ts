/**
 * The arithmetic of a stack of dense layers on plain arrays — register-blocked
 * matrix products with the bias, the activation, its derivative and the bias
 * gradient folded in — in float64, row-major, with no allocation and no branch
 * on the data. The losses are in `loss_kernels.ts`.
 *
 * @module
 */
import { ACTIVATION_LIST, ACTIVATION_NAMES, type ActivationName } from "../kernels/activations.ts";

/**
 * The activations the host engine knows, in the order of their codes: the
 * names of the registry (`src/kernels/activations.ts`), where each is one
 * entry. All but softmax (code {@link SOFTMAX}) are elementwise; the host
 * engine takes softmax only in the last layer under a loss that
 * differentiates through it (`categorical_kernels.ts`).
 */
export const DENSE_ACTIVATIONS: readonly ActivationName[] = ACTIVATION_NAMES;

/** An activation the host engine knows. */
export type DenseActivation = ActivationName;

/** An activation as a small integer: its index in {@link DENSE_ACTIVATIONS}. */
export type ActivationCode = number;

/** The code of softmax, the one activation that is not elementwise. */
export const SOFTMAX = 8 as const;
if (ACTIVATION_NAMES[SOFTMAX] !== "softmax") throw new Error("dense_kernels: softmax must keep code 8");

/** The code of an activation name. */
export function activationCode(name: DenseActivation): ActivationCode {
  return DENSE_ACTIVATIONS.indexOf(name);
}

/** Whether the derivative of activation `code` is taken from the layer's input (its pre-activation), not its output. */
export function slopeFromInput(code: ActivationCode): boolean {
  return ACTIVATION_LIST[code].from === "input";
}

/** The activations whose code is below 4: folded into the products' epilogues. */
type FusedCode = 0 | 1 | 2 | 3;

/**
 * A fused activation of a pre-activation `s`: the registry's first four
 * entries (linear, relu, sigmoid, tanh), written out (tested equal to the
 * entries). It must stay a small expression: V8 then inlines it into the
 * products and keeps their accumulators in registers (four more cases here
 * cost the tutorial's epoch 45% on Deno), so the other activations take
 * {@link activateRest} and {@link scaleBySlope}, a pass each.
 */
function fire(code: FusedCode, s: number): number {
  return code === 0 ? s : code === 1 ? (s + Math.abs(s)) * 0.5 : code === 2 ? 1 / (1 + Math.exp(-s)) : Math.tanh(s);
}

/** The fused activations' derivative, from the output `y`. */
function fusedSlope(code: FusedCode, y: number): number {
  return code === 0 ? 1 : code === 1 ? +(y > 0) : code === 2 ? y * (1 - y) : 1 - y * y;
}

/**
 * Any elementwise activation's derivative, from its output `y` — or from
 * its pre-activation where {@link slopeFromInput}. Softmax has none (its
 * Jacobian mixes a row): NaN, so a use by mistake shows in the weights.
 */
export function slopeAny(code: ActivationCode, y: number): number {
  return code < 4 ? fusedSlope(code as FusedCode, y) : ACTIVATION_LIST[code].slope(y);
}

/** Applies the activation `code` to the first n×cols values of `z` (row-major), in place (for products made elsewhere). */
export function activateInPlace(z: Float64Array, n: number, cols: number, code: ActivationCode): void {
  if (code === SOFTMAX) return softmaxRows(z, n, cols);
  if (code >= 4) return activateRest(z, n * cols, code);
  const fused = code as FusedCode;
  for (let i = 0, size = n * cols; i < size; i++) z[i] = fire(fused, z[i]);
}

/** `out[i] = act(z[i])` for the first `size` values, for an elementwise activation (`z` is left as it is). */
export function activateInto(z: Float64Array, out: Float64Array, size: number, code: ActivationCode): void {
  const forward = ACTIVATION_LIST[code].forward;
  for (let i = 0; i < size; i++) out[i] = forward(z[i]);
}

/**
 * Softmax of each row of `z` (n×cols), in place: `exp(z - max) / Σ exp(z - max)`,
 * the max subtracted as tfjs's kernels do, so a large logit cannot overflow.
 */
export function softmaxRows(z: Float64Array, n: number, cols: number): void {
  for (let r = 0; r < n; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = z[o + j] > max ? z[o + j] : max;
    let total = 0;
    for (let j = 0; j < cols; j++) total += z[o + j] = Math.exp(z[o + j] - max);
    for (let j = 0; j < cols; j++) z[o + j] /= total;
  }
}

/**
 * Applies one of the unfused activations (codes 4 and up) to `z`, in place,
 * through its registry entry. Against the ternary chain it replaced (A/B in
 * one process, 256×256 values): the same speed with one such activation in
 * the process, on Deno and Bun (elu's backward pass 1.6× faster); with four
 * different ones, Deno's forward ran 1.8× slower (the call goes megamorphic),
 * Bun's the same.
 */
function activateRest(z: Float64Array, size: number, code: ActivationCode): void {
  const forward = ACTIVATION_LIST[code].forward;
  for (let i = 0; i < size; i++) z[i] = forward(z[i]);
}

/**
 * `grad[r, j] *= act'(out[r, j])` for an unfused activation, adding the
 * column sums into `biasGrad` when given.
 */
function scaleBySlope(
  grad: Float64Array,
  out: Float64Array,
  n: number,
  cols: number,
  code: ActivationCode,
  biasGrad: Float64Array | undefined,
): void {
  const slope = ACTIVATION_LIST[code].slope;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j;
      const g = grad[i] *= slope(out[i]);
      if (biasGrad) biasGrad[j] += g;
    }
  }
}

/**
 * A dense layer forward: `out[r, j] = act(bias[j] + Σ_i a[r, i] · kernelT[j, i])`
 * for `a` of n×k and the transposed kernel `kernelT` of m×k (both read along
 * their rows). Register-blocked two rows by four columns; `bias` may be
 * `undefined`.
 *
 * {@link denseBackward} repeats this loop nest with another epilogue on
 * purpose: one function with a shared epilogue (a closure, or a helper taking
 * the mode) ran the tutorial's epoch 2.4× slower on Deno (V8 stops keeping the
 * accumulators in registers), and no slower on Bun.
 */
export function denseForward(
  a: Float64Array,
  kernelT: Float64Array,
  n: number,
  k: number,
  m: number,
  bias: Float64Array | undefined,
  activation: ActivationCode,
  out: Float64Array,
): void {
  const code = (activation < 4 ? activation : 0) as FusedCode;
  let r = 0;
  for (; r + 1 < n; r += 2) {
    const a0 = r * k, a1 = a0 + k, o0 = r * m, o1 = o0 + m;
    let j = 0;
    for (; j + 3 < m; j += 4) {
      let s00 = bias ? bias[j] : 0, s01 = bias ? bias[j + 1] : 0, s02 = bias ? bias[j + 2] : 0;
      let s03 = bias ? bias[j + 3] : 0;
      let s10 = s00, s11 = s01, s12 = s02, s13 = s03;
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      for (let i = 0; i < k; i++) {
        const x0 = a[a0 + i], x1 = a[a1 + i];
        const c0 = kernelT[b0 + i], c1 = kernelT[b1 + i], c2 = kernelT[b2 + i], c3 = kernelT[b3 + i];
        s00 += x0 * c0;
        s01 += x0 * c1;
        s02 += x0 * c2;
        s03 += x0 * c3;
        s10 += x1 * c0;
        s11 += x1 * c1;
        s12 += x1 * c2;
        s13 += x1 * c3;
      }
      out[o0 + j] = fire(code, s00);
      out[o0 + j + 1] = fire(code, s01);
      out[o0 + j + 2] = fire(code, s02);
      out[o0 + j + 3] = fire(code, s03);
      out[o1 + j] = fire(code, s10);
      out[o1 + j + 1] = fire(code, s11);
      out[o1 + j + 2] = fire(code, s12);
      out[o1 + j + 3] = fire(code, s13);
    }
    for (; j < m; j++) {
      let s0 = bias ? bias[j] : 0, s1 = s0;
      const b0 = j * k;
      for (let i = 0; i < k; i++) {
        const c = kernelT[b0 + i];
        s0 += a[a0 + i] * c;
        s1 += a[a1 + i] * c;
      }
      out[o0 + j] = fire(code, s0);
      out[o1 + j] = fire(code, s1);
    }
  }
  for (; r < n; r++) {
    const a0 = r * k, o0 = r * m;
    for (let j = 0; j < m; j++) {
      let s = bias ? bias[j] : 0;
      const b0 = j * k;
      for (let i = 0; i < k; i++) s += a[a0 + i] * kernelT[b0 + i];
      out[o0 + j] = fire(code, s);
    }
  }
  if (activation === SOFTMAX) softmaxRows(out, n, m);
  else if (activation >= 4) activateRest(out, n * m, activation);
}

/**
 * Back through a dense layer to the layer below:
 * `out[r, j] = act'(below[r, j]) · Σ_i dz[r, i] · kernel[j, i]`, for `dz`
 * (d loss / d pre-activation of the upper layer) of n×k and its kernel of
 * m×k; `below` is the lower layer's output (n×m) and `code` its activation.
 * Adds the column sums of `out` into `biasGrad` (the lower layer's bias
 * gradient) when given.
 */
export function denseBackward(
  dz: Float64Array,
  kernel: Float64Array,
  n: number,
  k: number,
  m: number,
  below: Float64Array,
  activation: ActivationCode,
  layerBiasGrad: Float64Array | undefined,
  out: Float64Array,
): void {
  const fused = activation < 4;
  const code: FusedCode = fused ? activation as FusedCode : 0;
  const biasGrad = fused ? layerBiasGrad : undefined;
  let r = 0;
  for (; r + 1 < n; r += 2) {
    const a0 = r * k, a1 = a0 + k, o0 = r * m, o1 = o0 + m;
    let j = 0;
    for (; j + 3 < m; j += 4) {
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      for (let i = 0; i < k; i++) {
        const x0 = dz[a0 + i], x1 = dz[a1 + i];
        const c0 = kernel[b0 + i], c1 = kernel[b1 + i], c2 = kernel[b2 + i], c3 = kernel[b3 + i];
        s00 += x0 * c0;
        s01 += x0 * c1;
        s02 += x0 * c2;
        s03 += x0 * c3;
        s10 += x1 * c0;
        s11 += x1 * c1;
        s12 += x1 * c2;
        s13 += x1 * c3;
      }
      s00 *= fusedSlope(code, below[o0 + j]);
      s01 *= fusedSlope(code, below[o0 + j + 1]);
      s02 *= fusedSlope(code, below[o0 + j + 2]);
      s03 *= fusedSlope(code, below[o0 + j + 3]);
      s10 *= fusedSlope(code, below[o1 + j]);
      s11 *= fusedSlope(code, below[o1 + j + 1]);
      s12 *= fusedSlope(code, below[o1 + j + 2]);
      s13 *= fusedSlope(code, below[o1 + j + 3]);
      out[o0 + j] = s00;
      out[o0 + j + 1] = s01;
      out[o0 + j + 2] = s02;
      out[o0 + j + 3] = s03;
      out[o1 + j] = s10;
      out[o1 + j + 1] = s11;
      out[o1 + j + 2] = s12;
      out[o1 + j + 3] = s13;
      if (biasGrad) {
        biasGrad[j] += s00 + s10;
        biasGrad[j + 1] += s01 + s11;
        biasGrad[j + 2] += s02 + s12;
        biasGrad[j + 3] += s03 + s13;
      }
    }
    for (; j < m; j++) {
      let s0 = 0, s1 = 0;
      const b0 = j * k;
      for (let i = 0; i < k; i++) {
        const c = kernel[b0 + i];
        s0 += dz[a0 + i] * c;
        s1 += dz[a1 + i] * c;
      }
      s0 *= fusedSlope(code, below[o0 + j]);
      s1 *= fusedSlope(code, below[o1 + j]);
      out[o0 + j] = s0;
      out[o1 + j] = s1;
      if (biasGrad) biasGrad[j] += s0 + s1;
    }
  }
  for (; r < n; r++) {
    const a0 = r * k, o0 = r * m;
    for (let j = 0; j < m; j++) {
      let s = 0;
      const b0 = j * k;
      for (let i = 0; i < k; i++) s += dz[a0 + i] * kernel[b0 + i];
      s *= fusedSlope(code, below[o0 + j]);
      out[o0 + j] = s;
      if (biasGrad) biasGrad[j] += s;
    }
  }
  if (!fused) scaleBySlope(out, below, n, m, activation, layerBiasGrad);
}

/**
 * `out[i, j] = Σ_r p[r, i] · q[r, j]` for `p` of n×pw and `q` of n×qw: a
 * dense layer's kernel gradient (`p` its input, `q` d loss / d
 * pre-activation). Register-blocked four rows by two columns.
 */
export function matmulColumns(
  p: Float64Array,
  q: Float64Array,
  n: number,
  pw: number,
  qw: number,
  out: Float64Array,
): void {
  let i = 0;
  for (; i + 3 < pw; i += 4) {
    let j = 0;
    for (; j + 1 < qw; j += 2) {
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
      for (let r = 0; r < n; r++) {
        const pr = r * pw + i, qr = r * qw + j;
        const x0 = p[pr], x1 = p[pr + 1], x2 = p[pr + 2], x3 = p[pr + 3];
        const c0 = q[qr], c1 = q[qr + 1];
        s00 += x0 * c0;
        s01 += x0 * c1;
        s10 += x1 * c0;
        s11 += x1 * c1;
        s20 += x2 * c0;
        s21 += x2 * c1;
        s30 += x3 * c0;
        s31 += x3 * c1;
      }
      out[i * qw + j] = s00;
      out[i * qw + j + 1] = s01;
      out[(i + 1) * qw + j] = s10;
      out[(i + 1) * qw + j + 1] = s11;
      out[(i + 2) * qw + j] = s20;
      out[(i + 2) * qw + j + 1] = s21;
      out[(i + 3) * qw + j] = s30;
      out[(i + 3) * qw + j + 1] = s31;
    }
    for (; j < qw; j++) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let r = 0; r < n; r++) {
        const pr = r * pw + i, c = q[r * qw + j];
        s0 += p[pr] * c;
        s1 += p[pr + 1] * c;
        s2 += p[pr + 2] * c;
        s3 += p[pr + 3] * c;
      }
      out[i * qw + j] = s0;
      out[(i + 1) * qw + j] = s1;
      out[(i + 2) * qw + j] = s2;
      out[(i + 3) * qw + j] = s3;
    }
  }
  for (; i < pw; i++) {
    for (let j = 0; j < qw; j++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += p[r * pw + i] * q[r * qw + j];
      out[i * qw + j] = s;
    }
  }
}

/** `out[j, i] = x[i, j]` for `x` of rows×cols. */
export function transpose(x: Float64Array, rows: number, cols: number, out: Float64Array): void {
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  }
}
