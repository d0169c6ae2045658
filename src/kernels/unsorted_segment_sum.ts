/**
 * `UnsortedSegmentSum`, which the wasm backend lacks: it is the gradient of
 * a gather, so without it no `embedding` layer trains on wasm. Row `i` of `x`
 * is added to segment `segmentIds[i]` (ids outside `[0, numSegments)` are
 * dropped); each segment sums its rows in float64 in row order and is stored
 * once, as the cpu backend's masked sum does. That sum also multiplies every
 * other row by 0, so a non-finite value in a column makes the column NaN in
 * every other segment: mirrored here.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf } from "./_host.ts";

type SegmentSumArgs = KernelArgs<{ x: tf.TensorInfo; segmentIds: tf.TensorInfo }, { numSegments: number }>;

/** Sums the rows of `x` into `numSegments` segments by `segmentIds`. */
export function unsortedSegmentSum({ inputs, backend, attrs }: SegmentSumArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const { numSegments } = attrs;
  const ids = valuesOf(backend, segmentIds), xs = valuesOf(backend, x);
  const inner = x.shape.slice(segmentIds.shape.length);
  const rows = ids.length, width = tf.util.sizeFromShape(inner);
  const sums = new Float64Array(numSegments * width);
  // Non-finite values per column, in all rows and in each segment's own rows.
  let strays: Int32Array | undefined, ownStrays: Int32Array | undefined;
  for (let r = 0; r < rows; r++) {
    const id = ids[r], from = r * width;
    const inRange = id >= 0 && id < numSegments;
    const to = id * width;
    for (let j = 0; j < width; j++) {
      const v = xs[from + j];
      if (!Number.isFinite(v)) {
        strays ??= new Int32Array(width);
        ownStrays ??= new Int32Array(numSegments * width);
        strays[j]++;
        if (inRange) ownStrays[to + j]++;
      }
      if (inRange) sums[to + j] += v;
    }
  }
  if (strays && ownStrays) {
    for (let s = 0; s < numSegments; s++) {
      for (let j = 0; j < width; j++) if (strays[j] > ownStrays[s * width + j]) sums[s * width + j] = NaN;
    }
  }
  // float32 whatever x holds: the cpu backend multiplies x by a float32 mask before it sums.
  return output(backend, [numSegments, ...inner], "float32", new Float32Array(sums));
}
