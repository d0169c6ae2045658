/**
 * `Prelu`, replacing tfjs-backend-wasm 4.22's, which steps through alpha
 * cyclically instead of broadcasting it: a `prelu` layer with `sharedAxes`
 * other than the default gets alpha shapes such as [4, 1, 1], and wasm then
 * applies the wrong slope (`prelu(fill([1,2,1,2], -1), [[[1]],[[2]]])`:
 * `[-1,-2,-1,-2]` where the cpu backend gives `[-1,-1,-2,-2]`). Computed as
 * the cpu backend computes it: `x < 0 ? alpha · x : x`, alpha broadcast.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf } from "./_host.ts";
import { broadcastBinary } from "./_broadcast.ts";

/** x where x ≥ 0 (or NaN), alpha · x where x < 0. */
export function prelu(
  { inputs: { x, alpha }, backend }: KernelArgs<{ x: tf.TensorInfo; alpha: tf.TensorInfo }, unknown>,
): tf.TensorInfo {
  const { values, shape } = broadcastBinary(
    valuesOf(backend, x),
    x.shape,
    valuesOf(backend, alpha),
    alpha.shape,
    (v, a) => v < 0 ? a * v : v,
  );
  return output(backend, shape, "float32", values);
}
