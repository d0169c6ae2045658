/**
 * Kernels the wasm backend lacks, so models that need them train on it:
 * `Conv2DBackpropFilter` (the gradient of a convolution's filter — without
 * it, no conv net can train on wasm). Computed in JS on the host: for each
 * filter tap and channel pair, the sum over the batch and the output
 * positions of input × output gradient, accumulated in float64 in batch,
 * row, column order and stored as float32, as the cpu backend computes it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

interface HostBackend {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
}

interface FilterGradArgs {
  inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
  backend: HostBackend;
  attrs: {
    strides: number | [number, number];
    pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
    dataFormat: "NHWC" | "NCHW";
    dimRoundingMode?: "floor" | "round" | "ceil";
    filterShape: [number, number, number, number];
  };
}

/** d loss / d filter of a 2-d convolution, from its input `x` and its output's gradient `dy`. */
function conv2dFilterGradient({ inputs, backend, attrs }: FilterGradArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const format = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    format,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight, filterWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const xs = backend.readSync(x.dataId), grads = backend.readSync(dy.dataId);
  const last = info.dataFormat === "channelsLast";
  // Flat index of x[b, r, c, ch] and dy[b, r, c, ch], in either layout.
  const xAt = last
    ? (b: number, r: number, c: number, ch: number) => ((b * inHeight + r) * inWidth + c) * inChannels + ch
    : (b: number, r: number, c: number, ch: number) => ((b * inChannels + ch) * inHeight + r) * inWidth + c;
  const dyAt = last
    ? (b: number, r: number, c: number, ch: number) => ((b * outHeight + r) * outWidth + c) * outChannels + ch
    : (b: number, r: number, c: number, ch: number) => ((b * outChannels + ch) * outHeight + r) * outWidth + c;
  const out = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let fr = 0; fr < filterHeight; fr++) {
    // The output rows whose window puts tap row `fr` inside the (unpadded) input.
    const rowFrom = Math.max(0, Math.ceil((top - fr) / sh));
    const rowTo = Math.min(outHeight, (inHeight + top - fr) / sh);
    for (let fc = 0; fc < filterWidth; fc++) {
      const colFrom = Math.max(0, Math.ceil((left - fc) / sw));
      const colTo = Math.min(outWidth, (inWidth + left - fc) / sw);
      for (let i = 0; i < inChannels; i++) {
        for (let o = 0; o < outChannels; o++) {
          let sum = 0;
          for (let b = 0; b < batchSize; b++) {
            for (let r = rowFrom; r < rowTo; r++) {
              const xr = r * sh + fr - top;
              for (let c = colFrom; c < colTo; c++) {
                sum += xs[xAt(b, xr, c * sw + fc - left, i)] * grads[dyAt(b, r, c, o)];
              }
            }
          }
          out[((fr * filterWidth + fc) * inChannels + i) * outChannels + o] = sum;
        }
      }
    }
  }
  return backend.makeOutput(attrs.filterShape, "float32", undefined, out);
}

let registered = false;

/** Registers the kernels above for the wasm backend, once. Internal. */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  const have = new Set(tf.getKernelsForBackend("wasm").map((k) => k.kernelName));
  if (!have.has("Conv2DBackpropFilter")) {
    tf.registerKernel({
      kernelName: "Conv2DBackpropFilter",
      backendName: "wasm",
      kernelFunc: conv2dFilterGradient as unknown as tf.KernelFunc,
    });
  }
}
