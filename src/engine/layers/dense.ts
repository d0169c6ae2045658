/**
 * The `Dense` kind: `act(x · kernel + bias)` over the last axis of each row
 * (a row of shape [T, F] is T rows of F), on the Dense engine's products —
 * float64 JS loops, or the SIMD kernels in float32 for a product of
 * `WIDE_MIN_MACS` multiply-adds or more (`wide_layers.ts`). The activation's
 * slope is the engine's (see `PlannedLayer.activation`).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import {
  activationCode,
  DENSE_ACTIVATIONS,
  type DenseActivation,
  denseBackward,
  denseForward,
  slopeFromInput,
  transpose,
} from "../dense_kernels.ts";
import {
  isWide,
  kernelGradientInLoops,
  kernelGradientRoom,
  wideBackward,
  wideForward,
  wideKernelGradient,
} from "../wide_layers.ts";
import type { BackwardArrays, ForwardArrays, LayerKind, PlanContext, PlannedLayer } from "./kind.ts";
import { layerFields, unknownTfjs } from "../../internal/tfjs_private.ts";
import { simdKernels } from "../../kernels/simd/products.ts";

interface DenseInternals {
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
}

/** A Dense layer's activation and weights as both host engines take them. */
export interface DenseWeights {
  activation: DenseActivation;
  kernel: tf.Variable;
  bias: tf.Variable | undefined;
  inputs: number;
  units: number;
}

/**
 * The activation and weights of a Dense layer (`last`: the chain's last
 * layer), or why no host engine trains it: an activation outside the
 * registry, softmax below the last layer, weights other than a float32
 * kernel matrix and the bias `useBias` asks for. Internal.
 */
export function denseWeights(layer: tf.layers.Layer, config: Readonly<Record<string, unknown>>, last: boolean):
  | DenseWeights
  | string {
  const name = layer.name;
  const activation = String(config.activation);
  if (!(DENSE_ACTIVATIONS as readonly string[]).includes(activation)) {
    return `layer "${name}" uses the ${activation} activation`;
  }
  if (activation === "softmax" && !last) {
    return `layer "${name}" has a softmax activation below the last layer (the host engine takes softmax only as ` +
      `the output of the last layer)`;
  }
  const [kernelWeight, biasWeight, ...rest] = layer.weights;
  const kernel = kernelWeight?.read() as tf.Variable | undefined;
  const bias = biasWeight?.read() as tf.Variable | undefined;
  if (rest.length > 0 || (biasWeight !== undefined) !== (config.useBias === true)) {
    return `layer "${name}" has unexpected weights`;
  }
  if (!kernel || kernel.rank !== 2 || kernel.dtype !== "float32") {
    return `layer "${name}"'s kernel is not a 2-d float32 matrix`;
  }
  const [inputs, units] = kernel.shape;
  return { activation: activation as DenseActivation, kernel, bias, inputs, units };
}

function plan({ layer, config, input, last, penalty }: PlanContext): PlannedLayer | string {
  const name = layer.name;
  const weights = denseWeights(layer, config, last);
  if (typeof weights === "string") return weights;
  const { activation, kernel, bias, inputs, units } = weights;
  if (slopeFromInput(activationCode(activation))) {
    // The layer engine's slopes read each layer's output; these activations' read its input (a chain of Dense
    // layers alone takes them: the Dense engine keeps pre-activations).
    return `layer "${name}" uses the ${activation} activation, whose slope the layer engine does not take from the ` +
      `layer's output`;
  }
  if (input.length === 0 || input[input.length - 1] !== inputs) return `layer "${name}" does not chain`;
  const internals = layerFields<DenseInternals>(layer);
  if (!internals) return unknownTfjs()!;
  const kernelPenalty = penalty(internals.kernelRegularizer, "kernel");
  if (typeof kernelPenalty === "string") return kernelPenalty;
  const biasPenalty = bias ? penalty(internals.biasRegularizer, "bias") : undefined;
  if (typeof biasPenalty === "string") return biasPenalty;
  // Leading axes of a row are more rows of the product.
  const per = input.slice(0, -1).reduce((a, b) => a * b, 1);
  const code = activationCode(activation as DenseActivation);
  const size = inputs * units;
  const forward = ({ n, input: x, output, params, scratch }: ForwardArrays) => {
    const [kernel64, kernelT, bias64] = scratch;
    const rows = n * per;
    const b = params[1] ? bias64 : undefined;
    if (b) b.set(params[1]);
    if (isWide(rows, inputs, units) && wideForward(x, rows, inputs, params[0], units, b, code, output)) return;
    // The step's kernel in float64 for the JS loops (only here: copying a wide kernel cost ~2% of an epoch).
    kernel64.set(params[0]);
    transpose(kernel64, inputs, units, kernelT);
    denseForward(x, kernelT, rows, inputs, units, b, code, output);
  };
  const backward = ({ n, input: x, params, scratch, gradOutput: dz, gradInput, paramGrads }: BackwardArrays) => {
    const rows = n * per, wide = isWide(rows, inputs, units);
    // The kernel's gradient may be float32 (see `float32Gradients`), the bias's is float64.
    const kernelGrad = paramGrads[0], biasGrad = paramGrads[1] as Float64Array | undefined;
    // The products write the kernel gradient (see `writesGradients`), and the bias gradient is written first.
    if (kernelGrad && !(wide && wideKernelGradient(x, dz, rows, inputs, units, kernelGrad))) {
      // A float32 gradient (a micro-batch too small for the kernels) takes the loops' sums through the float64
      // scratch the forward's transpose used.
      kernelGradientInLoops(x, dz, rows, inputs, units, kernelGrad, () => scratch[1]);
    }
    if (biasGrad) {
      biasGrad.fill(0);
      // The column sums in the kernels when the arrays live in their memory (linear's "slope": dz is written back as
      // it is), else in JS; the same float64 sums either way.
      if (!simdKernels()?.scaleBySlope(dz, dz, rows, units, 0, biasGrad)) {
        for (let r = 0; r < rows; r++) {
          const o = r * units;
          for (let j = 0; j < units; j++) biasGrad[j] += dz[o + j];
        }
      }
    }
    if (gradInput && !(wide && wideBackward(dz, params[0], rows, units, inputs, x, 0, undefined, gradInput))) {
      if (wide) scratch[0].set(params[0]); // a wide forward left the float64 kernel unset
      denseBackward(dz, scratch[0], rows, units, inputs, x, 0, undefined, gradInput);
    }
  };
  return {
    output: [...input.slice(0, -1), units],
    params: bias ? [kernel, bias] : [kernel],
    penalties: bias ? [kernelPenalty, biasPenalty] : [kernelPenalty],
    scratch: [{ fixed: size }, { fixed: size }, { fixed: units }],
    activation: code,
    // Zeroing a 784×512 kernel's gradient before each batch, only for the product to overwrite it, cost ~4% of the
    // dropout MLP's epoch.
    writesGradients: true,
    // A wide layer's kernel gradient is written by the products in place (wide_layers.ts).
    float32Gradients: bias ? [kernelGradientRoom(inputs, units), undefined] : [kernelGradientRoom(inputs, units)],
    forward,
    backward,
  };
}

/** Dense layers. */
export const denseKind: LayerKind = { className: "Dense", plan };
