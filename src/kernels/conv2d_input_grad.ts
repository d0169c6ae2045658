/**
 * `Conv2DBackpropInput` for large convolutions: the gradient of a
 * convolution's input (every conv layer after the first, and the forward pass
 * of `conv2dTranspose`), as a product on fitstream's SIMD kernels
 * (conv2d_products.ts). tfjs-backend-wasm 4.22's own kernel took ~100–150 ms
 * a step of the MNIST CNN at batch 512 on one core; smaller convolutions and
 * NCHW stay on it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type KernelArgs, output, valuesOf, writeOutput } from "./_host.ts";
import { convolveInputGradient, directConvolutions } from "./conv2d_direct.ts";
import { tfjsKernel } from "./_originals.ts";
import { asProducts, inputGradientAsProduct } from "./conv2d_products.ts";

type InputGradArgs = KernelArgs<
  { dy: tf.TensorInfo; filter: tf.TensorInfo },
  {
    strides: number | [number, number];
    pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
    dataFormat: "NHWC" | "NCHW";
    dimRoundingMode?: "floor" | "round" | "ceil";
    inputShape: [number, number, number, number];
  }
>;

/** d loss / d input of a 2-d convolution, from its filter and its output's gradient `dy`. */
export function conv2dInputGradient(args: InputGradArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    inputs.filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
  if (asProducts(info) && directConvolutions.on) {
    let done = false;
    const dx = writeOutput(args.backend, attrs.inputShape, [inputs.dy, inputs.filter], (out, grads, w) => {
      done = convolveInputGradient(info, grads as Float32Array, w, out);
    });
    if (done) return dx;
    args.backend.disposeData!(dx.dataId);
  }
  if (asProducts(info)) {
    const grads = valuesOf(backend, inputs.dy) as Float32Array,
      weights = valuesOf(backend, inputs.filter) as Float32Array;
    const product = inputGradientAsProduct(info, grads, weights);
    if (product) return output(backend, attrs.inputShape, "float32", product);
  }
  return tfjsKernel("Conv2DBackpropInput", "wasm", args) as tf.TensorInfo;
}
