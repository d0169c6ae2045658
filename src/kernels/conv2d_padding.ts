/**
 * The input of a 2-d convolution (NHWC) copied with its padding made zeros:
 * every row and column an output position's taps reach, so the SIMD kernels
 * (simd/filter_taps.ts, simd/convolve.ts) read any tap without a bounds check.
 *
 * @module
 */

/** The padded input's geometry: `rows` × `cols` pixels, `top` rows and `left` columns of it before the input's first. */
export interface PaddedGeometry {
  samples: number;
  inHeight: number;
  inWidth: number;
  channels: number;
  rows: number;
  cols: number;
  top: number;
  left: number;
}

/** Writes `xs` (NHWC, samples × inHeight × inWidth × channels) padded into `x` (samples × rows × cols × channels). */
export function padInput(g: PaddedGeometry, xs: Float32Array, x: Float32Array): void {
  const { samples, inHeight, inWidth, channels: ch, rows, cols, top, left } = g;
  if (top === 0 && left === 0 && rows === inHeight && cols === inWidth) {
    x.set(xs.subarray(0, samples * rows * cols * ch));
    return;
  }
  // Padded columns [c0, c1) lie inside the input.
  const c0 = Math.min(Math.max(left, 0), cols), c1 = Math.max(c0, Math.min(cols, inWidth + left));
  for (let b = 0; b < samples; b++) {
    for (let r = 0; r < rows; r++) {
      const at = (b * rows + r) * cols * ch, xr = r - top;
      if (xr < 0 || xr >= inHeight || c1 === c0) {
        x.fill(0, at, at + cols * ch);
        continue;
      }
      x.fill(0, at, at + c0 * ch);
      const from = ((b * inHeight + xr) * inWidth + c0 - left) * ch;
      x.set(xs.subarray(from, from + (c1 - c0) * ch), at + c0 * ch);
      x.fill(0, at + c1 * ch, at + cols * ch);
    }
  }
}
