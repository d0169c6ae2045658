/**
 * The `Dropout` kind. In training tfjs multiplies its input by
 * `floor(u + keep) / keep` (float32), `u` drawn by
 * `tf.randomUniform(shape, 0, 1, "float32", seed)` — seeded from
 * `Math.random` when the layer has no seed, so one draw of `Math.random` a
 * layer a step. The kind draws the same numbers at the same point of the step
 * (the engine runs the layers' forward in model order, as `model.fit` does)
 * with `uniform_draws.ts`, so both paths drop the same units. Where the
 * arrays lie in the SIMD kernels' memory (a model with a wide layer), one
 * WebAssembly kernel draws, decides and masks (`simd/dropout.ts`), bit for
 * bit these loops.
 *
 * @module
 */
import { layerFields, unknownTfjs } from "../../internal/tfjs_private.ts";
import { aleaState, drawUniform } from "./uniform_draws.ts";
import { simdKernels } from "../../kernels/simd/products.ts";
import type { BackwardArrays, ForwardArrays, LayerKind, PlanContext, PlannedLayer } from "./kind.ts";

/**
 * The draws `u` (float32s in [0, 1]: a draw within 2^-25 of 1 rounds to 1)
 * that keep a unit when tfjs keeps `keep` of them: those with
 * ⌊float32(u + keep)⌋ = 1, which are exactly those with u ≥ this — or
 * `undefined` where no threshold says it, for keep above 1 − 2^-23 (a rate
 * below ~1.2e-7), where u + keep may round to 2 and tfjs doubles the unit.
 * Below that, float32(u + keep) is 1 or more exactly from u + keep ≥ 1 − 2^-25
 * on (the tie goes to 1, the even one) and below 2. A comparison instead of
 * fround and floor: the mask loop 3.2 → 2.1 ns a value on Bun, the same on
 * Deno. Internal.
 */
export function keptFrom(keep: number): number | undefined {
  return keep <= 1 - 2 ** -23 ? 1 - 2 ** -25 - keep : undefined;
}

function plan({ layer, config, input }: PlanContext): PlannedLayer | string {
  const internals = layerFields<{ rate: unknown; noiseShape: unknown; seed: unknown }>(layer);
  if (!internals) return unknownTfjs()!;
  const rate = internals.rate;
  if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) return `layer "${layer.name}" has no rate in [0, 1]`;
  if (internals.noiseShape != null || config.noiseShape != null) {
    return `layer "${layer.name}" has a noiseShape (the host engine drops single values only)`;
  }
  const seed = internals.seed;
  if (seed != null && typeof seed !== "number") return `layer "${layer.name}" has a seed that is not a number`;
  const width = input.reduce((a, b) => a * b, 1);
  let draws = new Float32Array(0);
  // tfjs-layers drops nothing at rate 0 and 1 (the layer passes its input through): so does the kind.
  const active = rate > 0 && rate < 1;
  const keep = Math.fround(1 - rate);
  const scale = Math.fround(1 / keep);
  const kept = keptFrom(keep);
  const forward = ({ n, training, input: x, output, scratch }: ForwardArrays) => {
    const size = n * width;
    if (!active || !training) {
      for (let i = 0; i < size; i++) output[i] = x[i];
      return;
    }
    const mask = scratch[0];
    // In the kernels where the arrays live there (a model with a wide layer): the same draws, masks and outputs.
    const state = () => aleaState(seed as number | undefined);
    if (kept !== undefined && simdKernels()?.dropout(x, output, mask, size, state, kept, scale)) return;
    if (draws.length < size) draws = new Float32Array(size);
    const values = draws;
    drawUniform(values, size, seed as number | undefined);
    if (kept === undefined) {
      for (let i = 0; i < size; i++) {
        // floor(u + keep) in float32 (0, 1 or 2), times 1 / keep in float32.
        const m = Math.floor(Math.fround(values[i] + keep)) * scale;
        mask[i] = m;
        output[i] = x[i] * m;
      }
      return;
    }
    for (let i = 0; i < size; i++) {
      // The same: `scale` where u ≥ `kept`, else 0.
      const m = values[i] >= kept ? scale : 0;
      mask[i] = m;
      output[i] = x[i] * m;
    }
  };
  const backward = ({ n, training, gradOutput, gradInput, scratch }: BackwardArrays) => {
    if (!gradInput) return;
    const size = n * width, mask = scratch[0];
    if (!active || !training) {
      for (let i = 0; i < size; i++) gradInput[i] = gradOutput[i];
      return;
    }
    for (let i = 0; i < size; i++) gradInput[i] = gradOutput[i] * mask[i];
  };
  return { output: input, params: [], scratch: [{ perRow: width }], forward, backward };
}

/** Dropout layers. */
export const dropoutKind: LayerKind = { className: "Dropout", plan };
