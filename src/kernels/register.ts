/**
 * The kernels fitstream supplies to tfjs, in one table, and their
 * registration. Each fills a gap in tfjs-backend-wasm 4.22 (a layer's
 * training step fails without it) or replaces a kernel whose results are
 * wrong. Adding a kernel is its own file and one entry here.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { knowsTfjs } from "../internal/tfjs_private.ts";
import { keepOriginal, markOurs, originalKernel } from "./_originals.ts";
import { registerComparisonGradients } from "./comparison_gradients.ts";
import { conv2dFilterGradient } from "./conv2d_filter_grad.ts";
import { conv2d, depthwiseConv2d, fusedConv2d, fusedDepthwiseConv2d } from "./conv2d_forward.ts";
import { conv2dInputGradient } from "./conv2d_input_grad.ts";
import { conv3dFilterGradient, conv3dInputGradient } from "./conv3d_grads.ts";
import { depthwiseFilterGradient, depthwiseInputGradient } from "./depthwise_conv2d_grads.ts";
import { batchMatMul, fusedMatMul } from "./matmul.ts";
import { inPlacePoolGrads, maxPoolGradient, tightMaxPoolGrad } from "./max_pool_grad.ts";
import { maxPool3D, maxPool3DGradient } from "./max_pool3d.ts";
import { inPlaceMaxPools, maxPool } from "./max_pool.ts";
import { resizeNearestGradient } from "./resize_nearest_grad.ts";
import { cast } from "./cast.ts";
import { cumsum, gatherV2, oneHot } from "./indexing.ts";
import { prelu } from "./prelu.ts";
import { resizeBilinearGradient } from "./resize_bilinear_grad.ts";
import { tile } from "./tile.ts";
import { clipByValue, maximum, minimum, pow, relu6, sign } from "./special_values.ts";
import { unsortedSegmentSum } from "./unsorted_segment_sum.ts";
import { filterTaps } from "./conv2d_filter_taps.ts";
import { directConvolutions, scatterInputGradients } from "./conv2d_direct.ts";
import { leadingSums, sum } from "./sum.ts";
import { add, biasAdds, inPlaceBiases } from "./bias_add.ts";
import { identity, sharedIdentities } from "./identity.ts";

/** Switches for the CNN kernels made fast in issue 28's round, off only to measure against what came before (bench/profile_cnn.ts). */
export const cnnKernelSwitches: Record<string, { on: boolean }> = {
  filterTaps,
  tightMaxPoolGrad,
  inPlaceMaxPools,
  directConvolutions,
  leadingSums,
  biasAdds,
  sharedIdentities,
  inPlacePoolGrads,
  inPlaceBiases,
  scatterInputGradients,
};

/** One kernel fitstream supplies, where, and why. */
export interface SuppliedKernel {
  /** tfjs's kernel name. */
  name: string;
  /** The layers whose training reaches it. */
  needed: string;
  /** Per backend it is registered for: why tfjs's own will not do. */
  replaces: { wasm: string; cpu?: string };
  /**
   * Which calls it hands back to tfjs's own kernel (kept at registration,
   * with its setup, which tfjs runs when the backend is set), and why.
   */
  fallback?: string;
  run: (args: never) => tf.TensorInfo;
}

/** Every kernel fitstream registers. */
export const SUPPLIED_KERNELS: readonly SuppliedKernel[] = [
  {
    name: "BatchMatMul",
    needed: "dense (both backward products, and the forward pass while training), every matMul",
    replaces: { wasm: "XNNPACK's transposed products run 30–40× slower (every Dense kernel gradient is one)" },
    fallback: "non-float32 operands, batch shapes tfjs indexes other than as a plain repeat (no size is too small)",
    run: batchMatMul,
  },
  {
    name: "_FusedMatMul",
    needed: "dense (the forward pass, with its bias and activation), tf.fused.matMul",
    replaces: { wasm: "XNNPACK's transposed products run 30–40× slower; the same products as BatchMatMul" },
    fallback: "as BatchMatMul, and a bias or activation it does not know",
    run: fusedMatMul,
  },
  {
    name: "Conv2D",
    needed: "conv1d, conv2d (every forward pass while training), tf.conv2d with NCHW or numeric padding",
    replaces: {
      wasm:
        "zeros for 'same' at stride 2 with a 1-wide filter; numeric padding wrong or out of bounds; NCHW refused; " +
        "one core (large NHWC convolutions run on the SIMD kernels, on every core)",
    },
    fallback: "small or dilated convolutions: 'valid', and 'same' at stride 1; the rest by padding the input first",
    run: conv2d,
  },
  {
    name: "FusedConv2D",
    needed: "conv2d layers with a bias or activation (their forward pass)",
    replaces: { wasm: "as Conv2D: zeros for 'same' at stride 2 with a 1-wide filter; numeric padding wrong" },
    fallback: "'valid', and 'same' at stride 1; the rest by padding the input first",
    run: fusedConv2d,
  },
  {
    name: "DepthwiseConv2dNative",
    needed: "depthwiseConv2d, separableConv2d",
    replaces: { wasm: "as Conv2D: wrong for 'same' at stride 2 with a 1-wide filter, and for numeric padding" },
    fallback: "'valid', and 'same' at stride 1; the rest by padding the input first",
    run: depthwiseConv2d,
  },
  {
    name: "FusedDepthwiseConv2D",
    needed: "tf.fused.depthwiseConv2d",
    replaces: { wasm: "as DepthwiseConv2dNative" },
    fallback: "'valid', and 'same' at stride 1; the rest by padding the input first",
    run: fusedDepthwiseConv2d,
  },
  {
    name: "Conv2DBackpropFilter",
    needed: "conv1d, conv2d, conv2dTranspose, separableConv2d",
    replaces: { wasm: "missing" },
    run: conv2dFilterGradient,
  },
  {
    name: "Conv2DBackpropInput",
    needed: "conv1d, conv2d after another layer; conv2dTranspose (its forward pass)",
    replaces: { wasm: "slow: one core, ~100–150 ms a step of the MNIST CNN" },
    fallback: "small convolutions and NCHW (copying in costs more than the SIMD kernels save)",
    run: conv2dInputGradient,
  },
  {
    name: "Conv3DBackpropFilterV2",
    needed: "conv3d",
    replaces: { wasm: "wrong gradients (7 to 16 off at stride 2 against a float64 reference)" },
    run: conv3dFilterGradient,
  },
  {
    name: "Conv3DBackpropInputV2",
    needed: "conv3d after another layer, conv3dTranspose (its forward pass)",
    replaces: { wasm: "wrong gradients (4 to 17 off, NaN for 3×3×3 'same' at stride 1)" },
    run: conv3dInputGradient,
  },
  {
    name: "DepthwiseConv2dNativeBackpropFilter",
    needed: "depthwiseConv2d, separableConv2d",
    replaces: { wasm: "missing" },
    run: depthwiseFilterGradient,
  },
  {
    name: "DepthwiseConv2dNativeBackpropInput",
    needed: "depthwiseConv2d, separableConv2d",
    replaces: { wasm: "missing" },
    run: depthwiseInputGradient,
  },
  {
    name: "MaxPoolGrad",
    needed: "maxPooling1d, maxPooling2d",
    replaces: { wasm: "wrong gradients (0.44 off on a 2×6×6×2 input)" },
    run: maxPoolGradient,
  },
  {
    name: "MaxPool",
    needed: "maxPooling2d with 2 × 2 windows and stride 2",
    replaces: {
      wasm:
        "XNNPACK lets a NaN win a window (the cpu backend skips it), and took ~2.4× the in-place SIMD kernel's time",
    },
    fallback: "other windows, strides or padding, non-float32 inputs, channels not a multiple of 4, under 2^14 values",
    run: maxPool,
  },
  {
    name: "MaxPool3D",
    needed: "maxPooling3d",
    replaces: { wasm: "a window's maximum starts at 0 (a window of negative values pools to 0)" },
    run: maxPool3D,
  },
  {
    name: "MaxPool3DGrad",
    needed: "maxPooling3d",
    replaces: {
      wasm: "a window's maximum starts at 0 (negative windows get no gradient)",
      cpu: "numbers window positions with the filter's height for its width (wrong where they differ)",
    },
    run: maxPool3DGradient,
  },
  {
    name: "ResizeNearestNeighborGrad",
    needed: "upSampling2d",
    replaces: {
      wasm: "sums in float32 (the cpu backend's order and float64 sums, to the bit, where the cpu backend is right)",
      cpu:
        "wrong for batches of more than one image (reads the gradient at the images' batch stride; NaN when shrinking)",
    },
    run: resizeNearestGradient,
  },
  {
    name: "UnsortedSegmentSum",
    needed: "embedding (the gradient of a gather)",
    replaces: { wasm: "missing" },
    run: unsortedSegmentSum,
  },
  {
    name: "ResizeBilinearGrad",
    needed: "upSampling2d with bilinear interpolation",
    replaces: {
      wasm: "ignores halfPixelCenters",
      cpu: "returns [batch, width, height, channels]: non-square images cannot train; ignores halfPixelCenters",
    },
    run: resizeBilinearGradient,
  },
  {
    name: "Prelu",
    needed: "prelu (with sharedAxes other than the default)",
    replaces: { wasm: "steps through alpha cyclically instead of broadcasting it" },
    run: prelu,
  },
  {
    name: "Cast",
    needed: "any cast to bool; relu's gradient (a cast to the same dtype)",
    replaces: {
      wasm:
        "a cast to bool truncates (0.25 → false, -2 → 254) instead of testing for zero; a cast to the same dtype copies",
    },
    fallback: "every cast to another dtype but bool",
    run: cast,
  },
  {
    name: "GatherV2",
    needed: "embedding (its forward pass), tf.gather",
    replaces: {
      wasm: "batchDims 1 reads the wrong batch from the third on; slow (65 ms for an IMDB classifier's batch)",
    },
    fallback: "strings",
    run: gatherV2,
  },
  {
    name: "OneHot",
    needed: "tf.oneHot(indices, depth, on, off, 'float32')",
    replaces: { wasm: "a float32 output gets the on-value's int32 bits (1.4e-45 for 1)" },
    fallback: "int32 outputs",
    run: oneHot,
  },
  {
    name: "Cumsum",
    needed: "tf.cumsum with a negative axis",
    replaces: {
      wasm: "a negative axis writes outside the output and corrupts the heap",
      cpu: "a negative axis gives an empty tensor of shape [null, n]",
    },
    fallback: "all of it, with the axis counted from the start",
    run: cumsum,
  },
  {
    name: "Relu6",
    needed: "relu6 activations",
    replaces: { wasm: "Relu6(NaN) = 0 hides a diverged value" },
    fallback: "inputs without NaN",
    run: relu6,
  },
  {
    name: "ClipByValue",
    needed: "tf.clipByValue (tfjs-layers' categoricalCrossentropy clips probabilities)",
    replaces: { wasm: "ClipByValue(NaN) = the lower bound hides a diverged value (the loss stays finite)" },
    fallback: "inputs without NaN",
    run: clipByValue,
  },
  {
    name: "Maximum",
    needed: "tf.maximum (hinge losses, maximum layers)",
    replaces: { wasm: "drops a NaN operand" },
    fallback: "inputs without NaN",
    run: maximum,
  },
  {
    name: "Minimum",
    needed: "tf.minimum (minimum layers, huber loss)",
    replaces: { wasm: "drops a NaN operand" },
    fallback: "inputs without NaN",
    run: minimum,
  },
  {
    name: "Pow",
    needed: "tf.pow",
    replaces: { wasm: "Pow(±1, NaN or ±∞) = 1 where the cpu backend gives NaN" },
    fallback: "finite exponents",
    run: pow,
  },
  {
    name: "Sign",
    needed: "l1 regularizers' and absoluteDifference's gradients",
    replaces: { wasm: "Sign(x) = 0 for |x| < ~1.2e-7: an L1 penalty's gradient vanishes on small weights" },
    fallback: "int32 inputs",
    run: sign,
  },
  {
    name: "Tile",
    needed: "batchNormalization's gradient, tf.tile",
    replaces: { wasm: "slow: ~53 ns a value (24% of a batch-norm MLP's step)" },
    fallback: "strings",
    run: tile,
  },
  {
    name: "Sum",
    needed: "every bias gradient (conv layers', over batch, rows and columns), tf.sum",
    replaces: { wasm: "slow: transposes its input first (~4 ms a step of the MNIST CNN's first bias gradient)" },
    fallback: "reductions of other than leading axes, non-float32 inputs, fewer than 16,384 values",
    run: sum,
  },
  {
    name: "Add",
    needed: "every conv and dense layer's bias while training, tf.add",
    replaces: {
      wasm: "slow when broadcasting a bias: ~7 ms a step for the MNIST CNN's first bias (~1 for the same shape)",
    },
    fallback: "adds other than a float32 tensor of 16,384 values and more plus a vector along its last axis",
    run: add,
  },
  {
    name: "Identity",
    needed: "gradients (33 calls a step of the MNIST CNN), tf.clone",
    replaces: { wasm: "slow: copies its input (~2.5 ms a step of the MNIST CNN); shares it now, as Reshape does" },
    fallback: "strings",
    run: identity,
  },
];

type Backend = "wasm" | "cpu";

const registered = new Set<Backend>();
let optedOut = false;

function register(backend: Backend): void {
  for (const kernel of SUPPLIED_KERNELS) {
    if (kernel.replaces[backend] === undefined) continue;
    const own = tf.getKernel(kernel.name, backend);
    if (own !== undefined) {
      keepOriginal(own);
      tf.unregisterKernel(kernel.name, backend);
    }
    // tfjs runs the registered kernel's setupFunc when the backend is set: carried always, so a kernel that hands
    // work back to tfjs's own finds it set up (its setup only binds tfjs's functions, never runs a kernel).
    const kept = originalKernel(kernel.name, backend);
    markOurs(kernel.run as tf.KernelFunc);
    tf.registerKernel({
      kernelName: kernel.name,
      backendName: backend,
      kernelFunc: kernel.run as tf.KernelFunc,
      setupFunc: kept?.setupFunc,
      disposeFunc: kept?.disposeFunc,
    });
  }
  registered.add(backend);
}

/**
 * Registers the table's kernels (once per backend; replacing tfjs's own),
 * unless {@link useTfjsKernels} opted out or the tfjs loaded is not the one
 * they were written against (tfjs's own then run). Internal.
 */
export function registerKernels(): void {
  if (optedOut || !knowsTfjs()) return;
  registerComparisonGradients();
  if (!registered.has("cpu")) register("cpu");
  // Before tfjs-backend-wasm is imported its own kernels are not registered yet, and would replace ours.
  if (!registered.has("wasm") && tf.findBackendFactory("wasm") !== null) register("wasm");
}

/**
 * Takes fitstream's kernels out and puts tfjs's own back (and registers none
 * from then on, until {@link allowFitstreamKernels}). Internal:
 * `useBackend(name, { kernels: "tfjs" })`.
 */
export function useTfjsKernels(): void {
  optedOut = true;
  for (const backend of registered) {
    for (const kernel of SUPPLIED_KERNELS) {
      if (kernel.replaces[backend] === undefined) continue;
      tf.unregisterKernel(kernel.name, backend);
      const own = originalKernel(kernel.name, backend);
      if (own !== undefined) tf.registerKernel(own);
    }
  }
  registered.clear();
}

/** Lets {@link registerKernels} register fitstream's kernels again. Internal. */
export function allowFitstreamKernels(): void {
  optedOut = false;
}
