/**
 * `Cast` to bool, where tfjs-backend-wasm 4.22 truncates instead of testing
 * for zero (`cast([0.25, -0.5, 2], "bool")` gave `[0, 0, 2]`, an int32 -2 gave
 * 254): here every non-zero value (NaN too) is true, as on the cpu backend.
 * A cast to the dtype it has shares its input's memory, as `Identity` does
 * (identity.ts): relu's gradient casts its float32 step to float32, a 9.4 MB
 * copy a step for the MNIST CNN's first layer. Other casts run tfjs's own
 * kernel.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";
import { identity } from "./identity.ts";

/** x as `dtype`. */
export function cast(args: KernelArgs<{ x: tf.TensorInfo }, { dtype: tf.DataType }>): tf.TensorInfo {
  const { inputs: { x }, backend, attrs } = args;
  if (attrs.dtype === x.dtype && x.dtype !== "string") return identity({ inputs: { x }, backend, attrs: {} });
  if (attrs.dtype !== "bool" || x.dtype === "bool" || x.dtype === "string") {
    return tfjsKernel("Cast", "wasm", args) as tf.TensorInfo;
  }
  const xs = valuesOf(backend, x);
  const out = new Uint8Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[i] !== 0 ? 1 : 0;
  return output(backend, x.shape, "bool", out);
}
