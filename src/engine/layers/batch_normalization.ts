/**
 * The `BatchNormalization` kind, over the last axis (a row of shape [T, C]
 * is T rows of C channels). In training, as tfjs-layers: the batch's mean
 * and biased variance per channel (`tf.moments`), `y = γ (x - μ) / √(σ² + ε) + β`,
 * gradients through the moments too, and the moving averages updated as
 * `m - (m - v) · (1 - momentum)` in float32. tfjs-layers trains it only with
 * both γ and β (its training branch reads both), so a layer without center
 * or scale takes the tfjs path (which fails there as `model.fit` does).
 *
 * Unlike the other kinds, it rounds to float32 where tfjs's cpu backend
 * does, op by op, forward and backward: a channel whose mean is large
 * against its spread (features of 1000 + 0.01·cos) loses most of its bits in
 * `x − μ`, and float64 moments drew the weights 1.15e-4 away from
 * `model.fit`'s in two epochs (the suite allows 2e-5). Mirrored, the kind's
 * output and gradients equal tfjs's bit for bit given the same float32 input
 * and output gradient (tests/layer_engine_test.ts). What stays: where a
 * channel's variance is 0 or nearly (a batch of one row, equal rows) and ε
 * is tiny, tfjs's gradient to the input is float32 rounding noise scaled by
 * 1/√(σ² + ε) (up to ~2^-23 · |γ · dy| / √ε a value: 3.8e-3 · |γ · dy| at
 * ε = 1e-9), and the float64 layers above this one hand it an output
 * gradient that may differ from tfjs's in its last bit, so that noise
 * differs: a final batch of one row at ε = 1e-9 left the Dense layer below
 * 9.8e-5 from `model.fit` (bounded in the same test file). At the default
 * ε = 1e-3 the same noise is 1,000 times smaller.
 *
 * Cost, measured on the batch-norm MLP of bench/tfjs_models.ts (784→256
 * relu, BN, 256 relu, BN, 10; batch 128; 4,096 rows; the float64 version
 * and this one alternating in one process): the layer's forward pass took
 * 75 → 118 µs and its backward pass 70 → 185 µs on Deno; the epoch ran
 * ~3–10% longer on Deno and 3–6% on Bun (a loaded 2-core machine).
 *
 * In training, where every array lies in the SIMD kernels' shared memory
 * (a model with a wide Dense layer), the same operations run in WebAssembly
 * SIMD instead (src/kernels/simd/batch_norm.ts), bit for bit these loops'
 * results (tests/batch_norm_kernel_test.ts); the loops stay the reference
 * and run for plain arrays, a frozen γ or β, the first layer, and a variance
 * above ~10²⁵. Measured on the same MLP (128 rows × 256 channels in the
 * kernels' memory; kernels and loops alternating in one process, medians of
 * 60 rounds; a loaded 2-core machine): forward 121 → 47 µs and backward
 * 173 → 61 µs on Deno, 110 → 41 µs and 139 → 55 µs on Bun; epochs of 6,000
 * rows 215 → 194 ms on Deno and 245 → 222 ms on Bun (−10% and −9.5%,
 * medians of 12 alternating rounds; a first run gave −9% on both).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import {
  type BackwardArrays,
  float64Grads,
  type ForwardArrays,
  type LayerKind,
  type PlanContext,
  type PlannedLayer,
} from "./kind.ts";
import { layerFields, unknownTfjs } from "../../internal/tfjs_private.ts";
import { simdKernels } from "../../kernels/simd/products.ts";

interface Internals {
  axis: unknown;
  momentum: unknown;
  epsilon: unknown;
  center: unknown;
  scale: unknown;
  gamma?: { read(): tf.Tensor };
  beta?: { read(): tf.Tensor };
  movingMean?: { read(): tf.Tensor };
  movingVariance?: { read(): tf.Tensor };
  gammaRegularizer?: unknown;
  betaRegularizer?: unknown;
  gammaConstraint?: unknown;
  betaConstraint?: unknown;
}

function plan({ layer, input, penalty }: PlanContext): PlannedLayer | string {
  const name = layer.name;
  const o = layerFields<Internals>(layer);
  if (!o) return unknownTfjs()!;
  const rank = input.length + 1;
  if (o.axis !== -1 && o.axis !== rank - 1) {
    return `layer "${name}" normalizes axis ${String(o.axis)} (the host engine normalizes the last axis only)`;
  }
  if (o.center !== true || o.scale !== true) {
    return `layer "${name}" has center or scale off (tfjs-layers reads both gamma and beta when it trains)`;
  }
  const { momentum, epsilon } = o;
  if (typeof momentum !== "number" || !Number.isFinite(momentum)) return `layer "${name}" has no finite momentum`;
  if (typeof epsilon !== "number" || !(epsilon >= 0)) return `layer "${name}" has no epsilon ≥ 0`;
  if (o.gammaConstraint != null || o.betaConstraint != null) return `layer "${name}" has a constraint`;
  const variables = [o.gamma, o.beta, o.movingMean, o.movingVariance].map((w) => w?.read() as tf.Variable | undefined);
  const channels = input[input.length - 1];
  if (
    layer.weights.length !== 4 ||
    !variables.every((v) => v && v.rank === 1 && v.dtype === "float32" && v.shape[0] === channels)
  ) {
    return `layer "${name}" has unexpected weights`;
  }
  const [gamma, beta, movingMean, movingVariance] = variables as tf.Variable[];
  const gammaPenalty = penalty(o.gammaRegularizer, "gamma");
  if (typeof gammaPenalty === "string") return gammaPenalty;
  const betaPenalty = penalty(o.betaRegularizer, "beta");
  if (typeof betaPenalty === "string") return betaPenalty;
  const per = input.slice(0, -1).reduce((a, b) => a * b, 1);
  const c = channels;
  const decay = Math.fround(1 - momentum);
  // tfjs's batchNorm kernel adds epsilon as the JS number it is given; its gradient adds it as a float32 scalar.
  const eps32 = Math.fround(epsilon);
  // scratch: x − μ in float32 (per row), then 1/√(σ² + ε) per channel (kept from the forward pass to the backward).
  // The other per-channel values live in plain arrays of the closure (each pass fills what it reads, so nothing
  // carries between calls), not in subarray views of the scratch, which lies in the SIMD kernels' shared memory when
  // a Dense layer is wide; the backward pass writes the batchNorm's direct gradient to x in its first loop (which
  // reads dy already), so the last loop only adds. Measured on 128×256 values in shared memory, old and new
  // alternating in one process (60 rounds, medians, a loaded 2-core machine): forward 0.112 → 0.107 ms and backward
  // 0.151 → 0.145 ms on Bun (0.170 → 0.155, 0.220 → 0.197 in a slower run); on Deno forward 0.170 → 0.171 ms and
  // backward 0.248 → 0.222 ms. Outputs equal bit for bit. (Also tried: the subtraction's gradient folded into the
  // last loop instead, to write gradInput once less: backward 0.155 ms on Bun, slower; the first backward loop
  // channel by channel down the rows, its four sums in locals: 0.30 ms on Bun and 0.29 on Deno, twice as slow; its
  // four sums interleaved in one array and γ, rsqrt and −½·rsqrt³ in another, to load fewer arrays a value: backward
  // 0.136 → 0.138 ms on Bun and 0.161 → 0.166 ms on Deno, two arms each alternating, 60 rounds, medians.)
  const mean = new Float64Array(c), variance = new Float64Array(c), root = new Float64Array(c);
  const k32 = new Float64Array(c), cube = new Float64Array(c), gamma32 = new Float64Array(c);
  const sumDy = new Float64Array(c), sumDyX = new Float64Array(c), dMean = new Float64Array(c);
  const dVariance = new Float64Array(c);
  const forward = ({ n, training, input: x, output, params, state, scratch }: ForwardArrays) => {
    const [g, b] = params, [mm, mv] = state;
    const rows = n * per;
    const [dev, rsqrt] = scratch;
    const fround = Math.fround;
    if (!training) {
      // The kernel's formula, in float64 from float32 operands, rounded once.
      for (let j = 0; j < c; j++) root[j] = Math.sqrt(mv[j] + epsilon);
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        for (let j = 0; j < c; j++) output[o + j] = fround(b[j] + (fround(x[o + j]) - mm[j]) * g[j] / root[j]);
      }
      return;
    }
    // The same operations in WebAssembly SIMD (src/kernels/simd/batch_norm.ts), bit for bit, where every array
    // lies in the kernels' memory (see the module notes); these loops otherwise.
    if (inShared(x)) {
      const [gamma, beta, movingMean, movingVariance] = [g, b, mm, mv], channels = c;
      const arrays = { x, output, dev, rsqrt, gamma, beta, movingMean, movingVariance, rows, channels, epsilon, decay };
      if (simdKernels()?.batchNormForward(arrays)) return;
    }
    // tf.moments as the cpu backend computes it: mean = Σ float32(x / N), each sum in a JS number rounded to
    // float32 once; then (x − mean), its square and its share / N each rounded to float32, summed the same way.
    mean.fill(0);
    variance.fill(0);
    // v / N is v · (1/N) exactly when N is a power of two (batches of 32, 64, 128…): a multiplication instead of a
    // division per value (the divisions were most of the forward pass's extra cost).
    const share = (rows & (rows - 1)) === 0 ? 1 / rows : 0;
    if (share) {
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        for (let j = 0; j < c; j++) mean[j] += fround(fround(x[o + j]) * share);
      }
    } else {
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        for (let j = 0; j < c; j++) mean[j] += fround(fround(x[o + j]) / rows);
      }
    }
    for (let j = 0; j < c; j++) mean[j] = fround(mean[j]);
    // (One loop per case rather than a test of `share` per value.)
    if (share) {
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        for (let j = 0; j < c; j++) {
          const d = dev[o + j] = fround(fround(x[o + j]) - mean[j]);
          variance[j] += fround(fround(d * d) * share);
        }
      }
    } else {
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        for (let j = 0; j < c; j++) {
          const d = dev[o + j] = fround(fround(x[o + j]) - mean[j]);
          variance[j] += fround(fround(d * d) / rows);
        }
      }
    }
    for (let j = 0; j < c; j++) {
      const v = variance[j] = fround(variance[j]);
      // The moving averages, in float32 as tfjs-layers updates them from the float32 moments.
      mm[j] = fround(mm[j] - fround(fround(mm[j] - mean[j]) * decay));
      mv[j] = fround(mv[j] - fround(fround(mv[j] - v) * decay));
      root[j] = Math.sqrt(v + epsilon);
      // What the gradient reads: rsqrt(variance + float32 epsilon), in float32.
      rsqrt[j] = fround(1 / Math.sqrt(fround(v + eps32)));
      gamma32[j] = g[j];
    }
    // The batchNorm kernel: offset + (x − mean) · scale / √(variance + ε) in float64 from float32 operands.
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) output[o + j] = fround(b[j] + (fround(x[o + j]) - mean[j]) * gamma32[j] / root[j]);
    }
  };
  const backward = (arrays: BackwardArrays) => {
    const { n, params, scratch, gradOutput: dy, gradInput } = arrays;
    const g = params[0], [gammaGrad, betaGrad] = float64Grads(arrays);
    const rows = n * per;
    const [dev, rsqrt] = scratch;
    const fround = Math.fround;
    // In WebAssembly SIMD, bit for bit, as the forward pass (with every gradient wanted: the JS loops skip some).
    if (gradInput && gammaGrad && betaGrad && inShared(dy)) {
      const arrays = { dy, dev, rsqrt, gamma: g, gradInput, gammaGrad, betaGrad, rows, channels: c };
      if (simdKernels()?.batchNormBackward(arrays)) return;
    }
    // tfjs's gradients op by op in float32: its batchNorm gradient (to x, mean, variance, γ and β), then
    // through tf.moments (the variance's mean, the square, the subtraction, the mean) back to x.
    sumDy.fill(0);
    sumDyX.fill(0);
    dMean.fill(0);
    dVariance.fill(0);
    // −½ · rsqrt³, rounded as tfjs multiplies it out.
    for (let j = 0; j < c; j++) {
      const k = k32[j] = rsqrt[j];
      cube[j] = -0.5 * fround(fround(k * k) * k);
      gamma32[j] = g[j];
    }
    const into = gradInput;
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) {
        const d = fround(dy[o + j]), k = k32[j], dyg = fround(d * gamma32[j]), e = dev[o + j];
        sumDy[j] += d;
        sumDyX[j] += fround(d * fround(e * k));
        dMean[j] += fround(k * dyg);
        dVariance[j] += fround(fround(cube[j] * e) * dyg);
        if (into) into[o + j] = fround(fround(d * k) * gamma32[j]);
      }
    }
    if (gammaGrad) { for (let j = 0; j < c; j++) gammaGrad[j] += fround(sumDyX[j]); }
    if (betaGrad) { for (let j = 0; j < c; j++) betaGrad[j] += fround(sumDy[j]); }
    if (!gradInput) return;
    // d loss / d (x − mean) through the variance: float32(dVariance / N) · 2 (x − mean); its sum goes to the mean.
    const perDev = dVariance, toMean = sumDy;
    toMean.fill(0);
    for (let j = 0; j < c; j++) perDev[j] = fround(fround(dVariance[j]) / rows);
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) {
        const t = fround(perDev[j] * 2 * dev[o + j]);
        toMean[j] += t;
        gradInput[o + j] = fround(gradInput[o + j] + t);
      }
    }
    // The mean's gradient (the batchNorm's, then the subtraction's added), shared out by the mean's gradient.
    const perRow = dMean;
    for (let j = 0; j < c; j++) perRow[j] = fround(fround(-fround(dMean[j]) - fround(toMean[j])) / rows);
    // x's gradients added in tfjs's order: the batchNorm's, the subtraction's, the mean's.
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) {
        gradInput[o + j] = fround(gradInput[o + j] + perRow[j]);
      }
    }
  };
  return {
    output: input,
    params: [gamma, beta],
    penalties: [gammaPenalty, betaPenalty],
    state: [movingMean, movingVariance],
    scratch: [{ perRow: per * c }, { fixed: c }],
    forward,
    backward,
  };
}

/** Whether `view` lies in a shared memory (the SIMD kernels' one, when they made it). */
const inShared = (view: Float64Array) =>
  typeof SharedArrayBuffer === "function" && view.buffer instanceof SharedArrayBuffer;

/** BatchNormalization layers. */
export const batchNormalizationKind: LayerKind = { className: "BatchNormalization", plan };
