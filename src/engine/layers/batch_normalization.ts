/**
 * The `BatchNormalization` kind, over the last axis (a row of shape [T, C]
 * is T rows of C channels). In training, as tfjs-layers: the batch's mean
 * and biased variance per channel (`tf.moments`), `y = γ (x - μ) / √(σ² + ε) + β`,
 * gradients through the moments too, and the moving averages updated as
 * `m - (m - v) · (1 - momentum)` in float32. tfjs-layers trains it only with
 * both γ and β (its training branch reads both), so a layer without center
 * or scale takes the tfjs path (which fails there as `model.fit` does).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { BackwardArrays, ForwardArrays, LayerKind, PlanContext, PlannedLayer } from "./kind.ts";
import { layerFields, unknownTfjs } from "../../internal/tfjs_private.ts";

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
  const eps = Math.fround(epsilon);
  // scratch: x̂ (per row), then 1/√(σ² + ε) per channel, then two per-channel sums for the backward pass.
  const forward = ({ n, training, input: x, output, params, state, scratch }: ForwardArrays) => {
    const [g, b] = params, [mm, mv] = state;
    const rows = n * per;
    const [xhat, inv, sum] = scratch;
    if (!training) {
      for (let j = 0; j < c; j++) inv[j] = 1 / Math.sqrt(mv[j] + eps);
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        for (let j = 0; j < c; j++) output[o + j] = (x[o + j] - mm[j]) * inv[j] * g[j] + b[j];
      }
      return;
    }
    sum.fill(0, 0, c);
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) sum[j] += x[o + j];
    }
    for (let j = 0; j < c; j++) sum[j] /= rows; // the mean
    inv.fill(0, 0, c);
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) {
        const d = x[o + j] - sum[j];
        inv[j] += d * d;
      }
    }
    for (let j = 0; j < c; j++) {
      const variance = inv[j] / rows;
      // The moving averages, in float32 as tfjs-layers updates them from the float32 moments.
      const mean32 = Math.fround(sum[j]), variance32 = Math.fround(variance);
      mm[j] = Math.fround(mm[j] - Math.fround(Math.fround(mm[j] - mean32) * decay));
      mv[j] = Math.fround(mv[j] - Math.fround(Math.fround(mv[j] - variance32) * decay));
      inv[j] = 1 / Math.sqrt(variance + eps);
    }
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) {
        const h = xhat[o + j] = (x[o + j] - sum[j]) * inv[j];
        output[o + j] = h * g[j] + b[j];
      }
    }
  };
  const backward = ({ n, params, scratch, gradOutput: dy, gradInput, paramGrads }: BackwardArrays) => {
    const g = params[0], [gammaGrad, betaGrad] = paramGrads;
    const rows = n * per;
    const [xhat, inv, sumDy, sumDyX] = scratch;
    sumDy.fill(0, 0, c);
    sumDyX.fill(0, 0, c);
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) {
        const d = dy[o + j];
        sumDy[j] += d;
        sumDyX[j] += d * xhat[o + j];
      }
    }
    if (gammaGrad) { for (let j = 0; j < c; j++) gammaGrad[j] += sumDyX[j]; }
    if (betaGrad) { for (let j = 0; j < c; j++) betaGrad[j] += sumDy[j]; }
    if (!gradInput) return;
    // d x = γ/√(σ² + ε) · (dy - mean(dy) - x̂ · mean(dy · x̂)), the moments' own gradients included.
    for (let j = 0; j < c; j++) {
      sumDy[j] /= rows;
      sumDyX[j] /= rows;
    }
    for (let r = 0; r < rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) {
        gradInput[o + j] = g[j] * inv[j] * (dy[o + j] - sumDy[j] - xhat[o + j] * sumDyX[j]);
      }
    }
  };
  return {
    output: input,
    params: [gamma, beta],
    penalties: [gammaPenalty, betaPenalty],
    state: [movingMean, movingVariance],
    scratch: [{ perRow: per * c }, { fixed: c }, { fixed: c }, { fixed: c }],
    forward,
    backward,
  };
}

/** BatchNormalization layers. */
export const batchNormalizationKind: LayerKind = { className: "BatchNormalization", plan };
