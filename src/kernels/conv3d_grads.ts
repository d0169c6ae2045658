/**
 * `Conv3DBackpropFilterV2` and `Conv3DBackpropInputV2`, replacing
 * tfjs-backend-wasm 4.22's: against a float64 reference its input gradient
 * was off by 4 to 17 (NaN for a 3×3×3 filter, stride 1, 'same') and its
 * filter gradient by 7 to 16 at stride 2, while the cpu backend's was within
 * 9e-7. (`conv3dTranspose` runs the input gradient forward, so its
 * predictions were wrong on wasm too.) Each value sums its products in float64
 * in the cpu backend's order — batch, output depth, row, column (then output
 * channel) — and is stored as float32 once. Layout NDHWC, dilation 1 (all
 * tfjs differentiates).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { float32Output, type KernelArgs, valuesOf } from "./_host.ts";

interface Conv3DAttrs {
  strides: number | [number, number, number];
  pad: "valid" | "same";
}

function convInfo(inShape: number[], filterShape: number[], attrs: Conv3DAttrs): tf.backend_util.Conv3DInfo {
  return tf.backend_util.computeConv3DInfo(
    inShape as [number, number, number, number, number],
    filterShape as [number, number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
  );
}

/**
 * Calls `visit(xAt, yAt, tap)` for every (input, output, filter tap) triple of
 * batch row `b`, in output depth, row, column order and then filter depth,
 * row, column: `xAt` and `yAt` number pixels, `tap` a filter position.
 */
function eachProduct(
  info: tf.backend_util.Conv3DInfo,
  b: number,
  visit: (xAt: number, yAt: number, tap: number) => void,
): void {
  const { inDepth, inHeight, inWidth, outDepth, outHeight, outWidth, filterDepth, filterHeight, filterWidth } = info;
  const { strideDepth: sd, strideHeight: sh, strideWidth: sw } = info;
  const { front, top, left } = info.padInfo;
  for (let z = 0; z < outDepth; z++) {
    for (let r = 0; r < outHeight; r++) {
      for (let c = 0; c < outWidth; c++) {
        const yAt = ((b * outDepth + z) * outHeight + r) * outWidth + c;
        for (let fz = 0; fz < filterDepth; fz++) {
          const xz = z * sd + fz - front;
          if (xz < 0 || xz >= inDepth) continue;
          for (let fr = 0; fr < filterHeight; fr++) {
            const xr = r * sh + fr - top;
            if (xr < 0 || xr >= inHeight) continue;
            for (let fc = 0; fc < filterWidth; fc++) {
              const xc = c * sw + fc - left;
              if (xc < 0 || xc >= inWidth) continue;
              visit(
                ((b * inDepth + xz) * inHeight + xr) * inWidth + xc,
                yAt,
                (fz * filterHeight + fr) * filterWidth + fc,
              );
            }
          }
        }
      }
    }
  }
}

/** d loss / d filter of a 3-d convolution, from its input `x` and its output's gradient `dy`. */
export function conv3dFilterGradient(
  { inputs, backend, attrs }: KernelArgs<
    { x: tf.TensorInfo; dy: tf.TensorInfo },
    Conv3DAttrs & { filterShape: [number, number, number, number, number] }
  >,
): tf.TensorInfo {
  const { x, dy } = inputs;
  const info = convInfo(x.shape, attrs.filterShape, attrs);
  const ins = info.inChannels, outs = info.outChannels;
  const xs = valuesOf(backend, x), grads = valuesOf(backend, dy);
  // Filter [d, h, w, in, out]: entry (tap, i, o).
  const sums = new Float64Array(tf.util.sizeFromShape(attrs.filterShape));
  for (let b = 0; b < info.batchSize; b++) {
    eachProduct(info, b, (xAt, yAt, tap) => {
      const xBase = xAt * ins, yBase = yAt * outs, fBase = tap * ins * outs;
      for (let i = 0; i < ins; i++) {
        const v = xs[xBase + i], at = fBase + i * outs;
        for (let o = 0; o < outs; o++) sums[at + o] += v * grads[yBase + o];
      }
    });
  }
  return float32Output(backend, attrs.filterShape, sums);
}

/** d loss / d input of a 3-d convolution, from its filter and its output's gradient `dy`. */
export function conv3dInputGradient(
  { inputs, backend, attrs }: KernelArgs<
    { dy: tf.TensorInfo; filter: tf.TensorInfo },
    Conv3DAttrs & { inputShape: [number, number, number, number, number] }
  >,
): tf.TensorInfo {
  const { dy, filter } = inputs;
  const info = convInfo(attrs.inputShape, filter.shape, attrs);
  const ins = info.inChannels, outs = info.outChannels;
  const weights = valuesOf(backend, filter), grads = valuesOf(backend, dy);
  const sums = new Float64Array(tf.util.sizeFromShape(attrs.inputShape));
  for (let b = 0; b < info.batchSize; b++) {
    eachProduct(info, b, (xAt, yAt, tap) => {
      const xBase = xAt * ins, yBase = yAt * outs, fBase = tap * ins * outs;
      for (let i = 0; i < ins; i++) {
        let sum = sums[xBase + i];
        const at = fBase + i * outs;
        for (let o = 0; o < outs; o++) sum += grads[yBase + o] * weights[at + o];
        sums[xBase + i] = sum;
      }
    });
  }
  return float32Output(backend, attrs.inputShape, sums);
}
