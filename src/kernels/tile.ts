/**
 * `Tile` by block copies. tfjs-backend-wasm 4.22's copied one value at a time
 * at ~53 ns a value here: batch normalization's gradient tiles [1,1,1,256] to
 * [1,1,128,256] twice a step, and that was 24% of a batch-norm MLP's step.
 * Each axis from the last to the first repeats what is built so far as whole
 * blocks (`TypedArray.set`), so a tile costs about one copy of its output.
 * Strings go to tfjs's own kernel.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";

type TypedValues = Float32Array | Int32Array | Uint8Array;

/** x repeated `reps[i]` times along each axis i. */
export function tile(args: KernelArgs<{ x: tf.TensorInfo }, { reps: number[] }>): tf.TensorInfo {
  const { inputs: { x }, backend, attrs: { reps } } = args;
  if (x.dtype === "string" || x.dtype === "complex64") return tfjsKernel("Tile", "wasm", args) as tf.TensorInfo;
  const source = valuesOf(backend, x) as TypedValues;
  const Kind = source.constructor as new (length: number) => TypedValues;
  let shape = [...x.shape];
  let values: TypedValues = source;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const times = reps[axis];
    if (times === 1) continue;
    // Blocks of everything from this axis on, one per index of the axes before it.
    let block = 1;
    for (let d = axis; d < shape.length; d++) block *= shape[d];
    const blocks = block === 0 ? 0 : values.length / block;
    const next = new Kind(values.length * times);
    for (let b = 0; b < blocks; b++) {
      const from = values.subarray(b * block, (b + 1) * block);
      for (let t = 0; t < times; t++) next.set(from, (b * times + t) * block);
    }
    values = next;
    shape = shape.map((s, d) => (d === axis ? s * times : s));
  }
  // A copy even where every rep is 1: the output must not share the input's memory.
  if (values === source) values = source.slice();
  return output(backend, shape, x.dtype, values);
}
