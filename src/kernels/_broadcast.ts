/**
 * Elementwise loops over two broadcast operands, for the host kernels that
 * compute a binary op themselves (NumPy broadcasting, as tfjs applies it).
 * Private to `src/kernels/`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * `out[i] = f(a[ia], b[ib])` over the broadcast shape of `aShape` and
 * `bShape`, in row-major order; returns the values and their shape.
 */
export function broadcastBinary(
  a: ArrayLike<number>,
  aShape: number[],
  b: ArrayLike<number>,
  bShape: number[],
  f: (x: number, y: number) => number,
): { values: Float32Array; shape: number[] } {
  const shape = tf.backend_util.assertAndGetBroadcastShape(aShape, bShape);
  const rank = shape.length, size = tf.util.sizeFromShape(shape);
  // Each operand's stride along every output axis (0 where it is broadcast).
  const strides = (s: number[]) => {
    const out = new Array<number>(rank).fill(0);
    let step = 1;
    for (let i = s.length - 1, o = rank - 1; i >= 0; i--, o--) {
      out[o] = s[i] === 1 ? 0 : step;
      step *= s[i];
    }
    return out;
  };
  const sa = strides(aShape), sb = strides(bShape);
  const values = new Float32Array(size);
  const at = new Array<number>(rank).fill(0);
  let ia = 0, ib = 0;
  for (let i = 0; i < size; i++) {
    values[i] = f(a[ia], b[ib]);
    // Step the output index like an odometer, moving each operand's index with it.
    for (let d = rank - 1; d >= 0; d--) {
      if (++at[d] < shape[d]) {
        ia += sa[d];
        ib += sb[d];
        break;
      }
      at[d] = 0;
      ia -= sa[d] * (shape[d] - 1);
      ib -= sb[d] * (shape[d] - 1);
    }
  }
  return { values, shape };
}

/** Whether `values` holds a NaN. */
export function hasNaN(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (values[i] !== values[i]) return true;
  return false;
}
