/**
 * The arithmetic of a stack of dense layers on plain arrays: two
 * register-blocked matrix products, activations and their derivatives, and
 * the mean squared error — float64, row-major, no allocation.
 *
 * @module
 */

/** Activations the host engine knows the derivative of. */
export type DenseActivation = "linear" | "relu" | "sigmoid" | "tanh";

/**
 * `out[r, m] = bias[m] + Σ_k a[r, k] · b[m, k]` for `a` of n×k and `b` of
 * m×k (both read along k): a dense layer's pre-activation with `b` the
 * transposed kernel, or its input gradient with `b` the kernel itself.
 * Register-blocked two rows by four columns. `bias` may be `undefined`.
 */
export function matmulRows(
  a: Float64Array,
  b: Float64Array,
  n: number,
  k: number,
  m: number,
  bias: Float64Array | undefined,
  out: Float64Array,
): void {
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
        const c0 = b[b0 + i], c1 = b[b1 + i], c2 = b[b2 + i], c3 = b[b3 + i];
        s00 += x0 * c0;
        s01 += x0 * c1;
        s02 += x0 * c2;
        s03 += x0 * c3;
        s10 += x1 * c0;
        s11 += x1 * c1;
        s12 += x1 * c2;
        s13 += x1 * c3;
      }
      out[o0 + j] = s00;
      out[o0 + j + 1] = s01;
      out[o0 + j + 2] = s02;
      out[o0 + j + 3] = s03;
      out[o1 + j] = s10;
      out[o1 + j + 1] = s11;
      out[o1 + j + 2] = s12;
      out[o1 + j + 3] = s13;
    }
    for (; j < m; j++) {
      let s0 = bias ? bias[j] : 0, s1 = s0;
      const b0 = j * k;
      for (let i = 0; i < k; i++) {
        const c = b[b0 + i];
        s0 += a[a0 + i] * c;
        s1 += a[a1 + i] * c;
      }
      out[o0 + j] = s0;
      out[o1 + j] = s1;
    }
  }
  for (; r < n; r++) {
    const a0 = r * k, o0 = r * m;
    for (let j = 0; j < m; j++) {
      let s = bias ? bias[j] : 0;
      const b0 = j * k;
      for (let i = 0; i < k; i++) s += a[a0 + i] * b[b0 + i];
      out[o0 + j] = s;
    }
  }
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

/** `out[j] = Σ_r x[r, j]` for `x` of n×cols (a bias gradient). */
export function sumRows(x: Float64Array, n: number, cols: number, out: Float64Array): void {
  out.fill(0, 0, cols);
  for (let r = 0; r < n; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) out[j] += x[o + j];
  }
}

/** Applies `activation` to the first `size` values of `z`, in place. */
export function activate(z: Float64Array, size: number, activation: DenseActivation): void {
  switch (activation) {
    case "linear":
      return;
    case "relu":
      for (let i = 0; i < size; i++) if (!(z[i] > 0)) z[i] = z[i] !== z[i] ? z[i] : 0;
      return;
    case "sigmoid":
      for (let i = 0; i < size; i++) z[i] = 1 / (1 + Math.exp(-z[i]));
      return;
    case "tanh":
      for (let i = 0; i < size; i++) z[i] = Math.tanh(z[i]);
      return;
  }
}

/**
 * Turns `grad` (d loss / d output) into d loss / d pre-activation, in place,
 * from the layer's output `out`.
 */
export function activationBackward(
  grad: Float64Array,
  out: Float64Array,
  size: number,
  activation: DenseActivation,
): void {
  switch (activation) {
    case "linear":
      return;
    case "relu":
      for (let i = 0; i < size; i++) if (!(out[i] > 0)) grad[i] = 0;
      return;
    case "sigmoid":
      for (let i = 0; i < size; i++) grad[i] *= out[i] * (1 - out[i]);
      return;
    case "tanh":
      for (let i = 0; i < size; i++) grad[i] *= 1 - out[i] * out[i];
      return;
  }
}

/**
 * Mean squared error of `pred` against `labels` (both `size` long): writes
 * d loss / d pred into `grad` and returns the sum of squared differences.
 */
export function squaredErrorBackward(
  pred: Float64Array,
  labels: Float64Array,
  size: number,
  grad: Float64Array,
): number {
  let sum = 0;
  const scale = 2 / size;
  for (let i = 0; i < size; i++) {
    const d = pred[i] - labels[i];
    sum += d * d;
    grad[i] = scale * d;
  }
  return sum;
}
