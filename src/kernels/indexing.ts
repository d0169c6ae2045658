/**
 * Indexing kernels where tfjs-backend-wasm 4.22 differs from the cpu backend
 * on inputs that plain tfjs ops pass (found by the conformance suite), or is
 * slow: `GatherV2` with `batchDims` 1 reads the wrong batch from the third
 * batch on (`gather([[1,2],[3,4],[5,6]], [[1],[0],[1]], 1, 1)`: 5 for 6), and
 * took 65 ms to gather an IMDB classifier's 512 × 256 embeddings of 16 values
 * (half its step; this loop: a few ms); `OneHot` with
 * a float32 output writes the on-value's int32 bits (1.4e-45 for 1); `Cumsum`
 * with a negative axis writes outside its output and corrupts the heap. Each
 * hands the inputs tfjs handles right to tfjs's own kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";

type GatherArgs = KernelArgs<{ x: tf.TensorInfo; indices: tf.TensorInfo }, { axis: number; batchDims: number }>;

/** Gathers slices of x along `axis` by `indices`, the first `batchDims` axes of both being batch axes (any dtype but strings). */
export function gatherV2(args: GatherArgs): tf.TensorInfo {
  const { inputs: { x, indices }, backend, attrs } = args;
  if (x.dtype === "string" || x.dtype === "complex64") return tfjsKernel("GatherV2", "wasm", args) as tf.TensorInfo;
  const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
  const ids = valuesOf(backend, indices), xs = valuesOf(backend, x);
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < x.shape[axis])) {
      throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${x.shape[axis] - 1}]`);
    }
  }
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
    x as tf.Tensor,
    indices as tf.Tensor,
    axis,
    attrs.batchDims,
  );
  // x as [batch, outer, dim, slice]; indices as [batch, n]; out as [batch, outer, n, slice].
  const { batchSize, outerSize, dimSize, sliceSize } = info;
  const n = ids.length / batchSize;
  const size = batchSize * outerSize * n * sliceSize;
  const out = x.dtype === "int32"
    ? new Int32Array(size)
    : x.dtype === "bool"
    ? new Uint8Array(size)
    : new Float32Array(size);
  let to = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let o = 0; o < outerSize; o++) {
      for (let j = 0; j < n; j++) {
        const from = ((b * outerSize + o) * dimSize + ids[b * n + j]) * sliceSize;
        for (let s = 0; s < sliceSize; s++) out[to++] = xs[from + s];
      }
    }
  }
  return output(backend, info.outputShape, x.dtype, out);
}

type OneHotArgs = KernelArgs<
  { indices: tf.TensorInfo },
  { depth: number; onValue: number; offValue: number; dtype: tf.DataType }
>;

/** One row of `depth` values per index: `onValue` at the index (none when out of range), `offValue` elsewhere. */
export function oneHot(args: OneHotArgs): tf.TensorInfo {
  const { inputs: { indices }, backend, attrs } = args;
  if (attrs.dtype === "int32" || attrs.dtype === undefined) return tfjsKernel("OneHot", "wasm", args) as tf.TensorInfo;
  const ids = valuesOf(backend, indices), { depth, onValue, offValue } = attrs;
  const out = new Float32Array(ids.length * depth).fill(offValue);
  for (let i = 0; i < ids.length; i++) if (ids[i] >= 0 && ids[i] < depth) out[i * depth + ids[i]] = onValue;
  return output(backend, [...indices.shape, depth], attrs.dtype, out);
}

type CumsumArgs = KernelArgs<{ x: tf.TensorInfo }, { axis: number; exclusive: boolean; reverse: boolean }>;

/** tfjs's own cumulative sum (on the backend running it), with a negative axis counted from the end first. */
export function cumsum(args: CumsumArgs): tf.TensorInfo {
  const rank = args.inputs.x.shape.length;
  const axis = args.attrs.axis < 0 ? args.attrs.axis + rank : args.attrs.axis;
  return tfjsKernel("Cumsum", tf.getBackend(), { ...args, attrs: { ...args.attrs, axis } }) as tf.TensorInfo;
}
