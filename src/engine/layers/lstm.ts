/**
 * The `LSTM` kind: tfjs's LSTM layer with its LSTMCell, as `model.fit`
 * trains it, on `lstm_math.ts` — the products on the SIMD kernels in
 * float32 where the runtime has them (`lstm_products.ts`), else in float64
 * JS loops. It takes the layer as tfjs-layers builds it by default and with
 * the options that change only the arithmetic it mirrors (units, the
 * activations in `LSTM_ACTIVATIONS`, useBias, initializers, unitForgetBias,
 * unroll and implementation, which tfjs ignores, goBackwards, and
 * returnSequences); every other option steps aside with a reason: dropout
 * and recurrentDropout in (0, 1), returnState, stateful, regularizers and
 * constraints.
 *
 * The tfjs path runs ~7,060 kernels a training step for the benchmark LSTM
 * (32 units over 50 steps of 8 features, batch 64); here a step is one input
 * projection, two weight-gradient products and one recurrent product each
 * way per time step.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import {
  type BackwardArrays,
  float64Grads,
  type ForwardArrays,
  type LayerKind,
  type PlanContext,
  type PlannedLayer,
} from "./kind.ts";
import { LSTM_ACTIVATIONS, type LstmActivation, LstmMath, type LstmProducts } from "./lstm_math.ts";
import { jsProducts, simdProducts } from "./lstm_products.ts";
import { protect, registeredClass, untouched } from "../pristine.ts";
import { layerFields, unknownTfjs } from "../../internal/tfjs_private.ts";

/** What the kind reads of tfjs-layers' LSTM and LSTMCell (4.22). */
interface LstmInternals {
  cell: CellInternals;
  returnSequences: unknown;
  returnState: unknown;
  goBackwards: unknown;
  stateful: unknown;
}

interface CellInternals {
  units: unknown;
  activation: { getClassName(): string };
  recurrentActivation: { getClassName(): string };
  useBias: unknown;
  dropout: unknown;
  recurrentDropout: unknown;
  kernel?: tf.LayerVariable;
  recurrentKernel?: tf.LayerVariable;
  bias?: tf.LayerVariable | null;
  kernelRegularizer?: unknown;
  recurrentRegularizer?: unknown;
  biasRegularizer?: unknown;
  kernelConstraint?: unknown;
  recurrentConstraint?: unknown;
  biasConstraint?: unknown;
}

// The cell and the activations run tfjs's own code on the tfjs path: mirror them only as tfjs shipped them.
protect([registeredClass("LSTMCell"), ...LSTM_ACTIVATIONS.map((a) => registeredClass(a))]);

/** The products every LSTM of this process uses: the SIMD kernels', else the JS loops. */
let products: LstmProducts | undefined;

/** A reason the cell cannot be mirrored, or `undefined`. */
function refusal(name: string, layer: LstmInternals, input: readonly number[]): string | undefined {
  const cell = layer.cell;
  const changed = untouched(cell as unknown as object, registeredClass("LSTMCell"));
  if (changed) return `layer "${name}"'s cell ${changed}`;
  if (layer.returnState) return `layer "${name}" returns its state`;
  if (layer.stateful) return `layer "${name}" is stateful`;
  for (const [which, rate] of [["dropout", cell.dropout], ["recurrentDropout", cell.recurrentDropout]] as const) {
    if (typeof rate !== "number" || (rate > 0 && rate < 1)) {
      return `layer "${name}" has ${which} ${rate} (the host engine's LSTM drops nothing)`;
    }
  }
  for (
    const [which, activation] of [["activation", cell.activation], ["recurrentActivation", cell.recurrentActivation]]
  ) {
    const id = (activation as { getClassName?: () => string })?.getClassName?.();
    if (!id || !(LSTM_ACTIVATIONS as readonly string[]).includes(id)) {
      return `layer "${name}" has the ${which} ${id ?? String(activation)} (the host engine's LSTM takes ` +
        `${LSTM_ACTIVATIONS.join(", ")})`;
    }
    const touched = untouched(activation as object, registeredClass(id));
    if (touched) return `layer "${name}"'s ${which} ${touched}`;
  }
  for (const which of ["kernel", "recurrent", "bias"] as const) {
    if (cell[`${which}Regularizer`] != null) return `layer "${name}" has a ${which} regularizer`;
    if (cell[`${which}Constraint`] != null) return `layer "${name}" has a ${which} constraint`;
  }
  if (input.length !== 2 || !input.every((d) => Number.isInteger(d) && d > 0)) {
    return `layer "${name}" does not take rows of fixed steps × features (got rows of [${input.join(", ")}])`;
  }
  return undefined;
}

function plan({ layer, input }: PlanContext): PlannedLayer | string {
  const name = layer.name;
  const internals = layerFields<LstmInternals>(layer);
  if (!internals) return unknownTfjs()!;
  const reason = refusal(name, internals, input);
  if (reason) return reason;
  const cell = internals.cell;
  const [steps, features] = input;
  const units = cell.units as number;
  const kernel = cell.kernel?.read() as tf.Variable | undefined;
  const recurrent = cell.recurrentKernel?.read() as tf.Variable | undefined;
  const bias = cell.bias?.read() as tf.Variable | undefined;
  const expected = cell.useBias ? 3 : 2;
  if (!kernel || !recurrent || (cell.useBias && !bias) || layer.weights.length !== expected) {
    return `layer "${name}" has unexpected weights`;
  }
  const same = (v: tf.Variable, shape: number[]) =>
    v.dtype === "float32" && v.shape.length === shape.length && v.shape.every((d, i) => d === shape[i]);
  if (
    !same(kernel, [features, 4 * units]) || !same(recurrent, [units, 4 * units]) || (bias && !same(bias, [4 * units]))
  ) {
    return `layer "${name}"'s weights are not float32 of the cell's shapes`;
  }
  // Truthiness, as tfjs-layers' RNN tests both options.
  const sequences = Boolean(internals.returnSequences);
  const config = {
    activation: cell.activation.getClassName() as LstmActivation,
    recurrentActivation: cell.recurrentActivation.getClassName() as LstmActivation,
    goBackwards: Boolean(internals.goBackwards),
    returnSequences: sequences,
  };
  products ??= simdProducts() ?? jsProducts();
  const held: { math: LstmMath | undefined } = { math: undefined };
  /**
   * The arithmetic, with buffers for `n` rows (remade larger when a batch has more). Its buffers live in the
   * kernels' memory and are given back by `release` when the pass ends (taken again by the next pass's forward).
   */
  const math = (n: number): LstmMath => {
    if (held.math && held.math.shape.maxRows >= n) return held.math;
    held.math?.release();
    return held.math = new LstmMath({ steps, features, units, maxRows: n }, config, products!);
  };
  // Gradients of weights the optimizer leaves alone go here, unread.
  const unused = new Map<number, Float64Array>();
  const sink = (length: number) => {
    let a = unused.get(length);
    if (!a) unused.set(length, a = new Float64Array(length));
    return a;
  };
  const forward = ({ n, input: x, output, params }: ForwardArrays) => {
    const weights = { kernel: params[0], recurrent: params[1], bias: params[2] };
    if (sequences) math(n).forward(x, n, weights, output);
    else output.set(math(n).forward(x, n, weights).subarray(0, n * units));
  };
  const backward = (arrays: BackwardArrays) => {
    const { input: x, gradOutput, gradInput } = arrays;
    const [dKernel, dRecurrent, dBias] = float64Grads(arrays);
    held.math!.backward(gradOutput, {
      kernel: dKernel ?? sink(features * 4 * units),
      recurrent: dRecurrent ?? sink(units * 4 * units),
      bias: bias ? dBias ?? sink(4 * units) : undefined,
      input: gradInput,
    }, x);
  };
  const planned: PlannedLayer = {
    output: sequences ? [steps, units] : [units],
    params: bias ? [kernel, recurrent, bias] : [kernel, recurrent],
    forward,
    backward,
    release() {
      held.math?.release();
      held.math = undefined;
    },
  };
  return planned;
}

/** LSTM layers. */
export const lstmKind: LayerKind = { className: "LSTM", plan };
