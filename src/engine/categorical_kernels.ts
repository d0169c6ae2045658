/**
 * tfjs-layers' categorical cross-entropies on a softmax output layer, on
 * plain arrays in float64: the loss and d loss / d pre-activation, computed
 * as tfjs's autograd differentiates them, step by step.
 *
 * For a row of softmax outputs `o` and targets `y` (one-hot, or the one-hot
 * of a class id), tfjs-layers computes
 *
 *     (sparse only: o ← clip(o, ε, 1 − ε))
 *     s = Σ o,   q = o / s,   c = clip(q, ε, 1 − ε),   loss = −Σ y · log c
 *
 * and `model.fit` takes the mean over rows. Its gradient, with n rows:
 *
 *     g_j  = −y_j / (n · c_j) where ε ≤ q_j ≤ 1 − ε, else 0    (the clip passes nothing outside)
 *     dq·q = Σ_j g_j q_j
 *     do_k = (g_k − dq·q) / s                                   (the division by the row sum)
 *            × [ε ≤ o_k ≤ 1 − ε] for the sparse loss's first clip
 *     dz_i = o_i · (do_i − Σ_k o_k do_k)                        (softmax's Jacobian, as tfjs writes it)
 *
 * Unclipped, with Σ y = Y and s = 1, that is (Y · o − y) / n: the familiar
 * (p − y) / n for one-hot rows. A saturated row (a probability past 1 − ε, the
 * others under ε) passes no gradient at all, in tfjs and here.
 *
 * @module
 */

/**
 * ε of tfjs-layers (`backend().epsilon()`: 1e-7 on the cpu and wasm backends,
 * the only ones the host engine runs on), and the clip's bounds as tfjs
 * compares them: in float32.
 */
export function clipBounds(epsilon: number): [lo: number, hi: number] {
  return [Math.fround(epsilon), Math.fround(1 - epsilon)];
}

/**
 * The categorical cross-entropy of softmax outputs `probs` (n×cols) against
 * `labels`: one-hot rows (n×cols), or with `sparse` class ids (n, one per
 * row; an id outside [0, cols) is a row of zeros, as `tf.oneHot` makes it).
 * Writes d loss / d pre-activation (the mean over rows) into `grad`, adds
 * its column sums into `biasGrad` when given, and returns the sum of the
 * rows' losses. `scratch` holds 2 × cols values.
 */
export function categoricalBackward(
  probs: Float64Array,
  labels: Float64Array,
  n: number,
  cols: number,
  sparse: boolean,
  epsilon: number,
  biasGrad: Float64Array | undefined,
  grad: Float64Array,
  scratch: Float64Array,
): number {
  const [lo, hi] = clipBounds(epsilon);
  const scale = 1 / n;
  const target = scratch.subarray(0, cols), q = scratch.subarray(cols, 2 * cols);
  let total = 0;
  for (let r = 0; r < n; r++) {
    const o = r * cols;
    if (sparse) {
      // tfjs-layers: oneHot(cast(floor(id), "int32")).
      target.fill(0);
      const id = Math.floor(labels[r]);
      if (id >= 0 && id < cols) target[id] = 1;
    } else {
      for (let j = 0; j < cols; j++) target[j] = labels[o + j];
    }
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const p = probs[o + j];
      s += q[j] = sparse ? (p < lo ? lo : p > hi ? hi : p) : p;
    }
    // g_j (kept in grad), and Σ g_j q_j.
    let gq = 0;
    for (let j = 0; j < cols; j++) {
      const v = q[j] /= s;
      const c = v < lo ? lo : v > hi ? hi : v;
      const y = target[j];
      total -= y * Math.log(c);
      const g = v >= lo && v <= hi ? -y * scale / c : 0;
      grad[o + j] = g;
      gq += g * v;
    }
    // d loss / d o_k, then back through softmax.
    let dot = 0;
    for (let j = 0; j < cols; j++) {
      let d = (grad[o + j] - gq) / s;
      if (sparse) {
        const p = probs[o + j];
        if (!(p >= lo && p <= hi)) d = 0;
      }
      grad[o + j] = d;
      dot += probs[o + j] * d;
    }
    for (let j = 0; j < cols; j++) {
      const g = grad[o + j] = probs[o + j] * (grad[o + j] - dot);
      if (biasGrad) biasGrad[j] += g;
    }
  }
  return total;
}
