/**
 * What a *layer kind* is: the host engine's mirror of one tfjs layer class,
 * in one file under `src/engine/layers/`, registered by one line in
 * `registry.ts`. The layer engine (`layer_engine.ts`) trains a sequential
 * chain of layers when every layer's class has a kind and every kind accepts
 * its layer's configuration; otherwise the run takes the tfjs path and
 * `explainEngine` gives the first refusal.
 *
 * ## Life of a kind
 * 1. **Planning** (once a pass): the engine checks that the layer is exactly
 *    the registered tfjs class with tfjs's own methods (`untouched`), then
 *    calls {@link LayerKind.plan} with the layer, its config and the shape
 *    of one input row. The kind returns a {@link PlannedLayer}, or a reason
 *    (a string naming the layer and the option it cannot mirror exactly:
 *    `layer "d1" has a noiseShape`). Every option the kind does not mirror
 *    bit for bit must be refused here.
 * 2. **Training** (each micro-batch): the engine calls `forward` for every
 *    layer bottom-up, the loss, then `backward` top-down. Arrays are
 *    row-major; a *row* is one example's values flattened (an input of
 *    `[rows, 50, 8]` has rows of 400 values).
 * 3. **Write-back** (end of `train()`): the engine writes the `params` (after
 *    the optimizer) and the `state` (as `forward` left it) back into their
 *    tfjs variables, as fresh tensors.
 * 4. **End of the pass**: the engine calls {@link PlannedLayer.release} when
 *    each `train()` ends, fails or is cancelled (always, once a pass has
 *    begun). A kind that took memory the garbage collector does not give
 *    back (the SIMD kernels' shared memory) gives it back there; a planned
 *    layer may be trained again by a later pass, so it takes it again on
 *    its next `forward`.
 *
 * ## Numbers
 * - `params` and `state` values are `Float32Array`s holding what tfjs holds
 *   (float32 between steps); the optimizer updates `params` between steps,
 *   never within one. A kind that updates `state` writes float32 values
 *   (round with `Math.fround` as tfjs's float32 ops would).
 * - Activations and gradients within a step are `Float64Array`s (the engine
 *   computes in float64 within a step, as the Dense engine does; the
 *   faithfulness suite bounds the gap to tfjs's float32).
 * - Parameter gradients are ACCUMULATED (`+=`) into float64 arrays the
 *   engine zeroes before each micro-batch (unless the kind sets
 *   `writesGradients`); a parameter the optimizer does not update (a frozen
 *   layer) gets `undefined` instead of an array.
 *
 * ## Memory
 * Arrays may be views of the SIMD kernels' shared memory (in a model with a
 * wide Dense layer, or a large weight): never keep one past the call that
 * received it, and expect JS loops over them to run a little slower than
 * over plain arrays. A planned layer may keep its own buffers in its
 * closure: the fused embedding keeps int32 table offsets there, as float64
 * indices cost V8 a conversion per access. Buffers in the kernels' memory
 * (the LSTM's) must be given back in {@link PlannedLayer.release}, never
 * left to a FinalizationRegistry: that memory never shrinks and is capped
 * (1 GiB by default), and a stream re-plans every epoch, so buffers left to
 * the collector piled up by a plan's worth each epoch (4 MiB an epoch for a
 * 32-unit LSTM over 50 steps) until products no longer fitted.
 * The dense products of `wide_layers.ts` (SIMD, float32) and
 * `dense_kernels.ts` (float64 JS loops) are there for kinds to call.
 *
 * ## Training versus inference
 * The layer engine only trains: `forward` is always called in training mode
 * (`training: true`), as `model.fit` calls layers. Validation and
 * prediction run through tfjs itself. A kind must still honour the flag it
 * is given (tfjs's inference behaviour when `false`), so later callers can
 * use it.
 *
 * ## Randomness and tfjs calls
 * A kind may call tfjs inside `forward` (dropout draws its mask with
 * `tf.randomUniform`, exactly where and in the shape tfjs-layers draws it,
 * so a seeded `Math.random` gives both paths the same masks). It must
 * dispose every tensor it makes before returning. The engine calls the
 * layers' `forward` in model order, once a micro-batch each, as
 * `model.fit` calls `layer.call`.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ActivationCode } from "../dense_kernels.ts";
import type { Penalty } from "../penalty.ts";
import type { StepGradient } from "../host_optimizer.ts";

/** The shape of one row (an example), without the batch dimension. */
export type RowShape = readonly number[];

/** An L1L2 penalty on one weight (the host engines' {@link Penalty}). */
export type KindPenalty = Penalty;

/** What {@link LayerKind.plan} receives. */
export interface PlanContext {
  /** The tfjs layer (already checked: exactly the kind's class, methods as tfjs shipped them). */
  layer: tf.layers.Layer;
  /** `layer.getConfig()`. */
  config: Record<string, unknown>;
  /** The shape of one input row (the previous layer's output row, or the data's row for the first layer). */
  input: RowShape;
  /** Whether this is the model's first layer (its input is the data's rows). */
  first: boolean;
  /** Whether this is the model's last layer (its output is the prediction the loss reads). */
  last: boolean;
  /**
   * A weight regularizer as a penalty the engine applies (`undefined` for
   * none), or a reason when it is not an untouched `tf.regularizers.l1l2`
   * with finite factors. `which` names it in the reason ("kernel", "bias").
   */
  penalty(regularizer: unknown, which: string): KindPenalty | string | undefined;
}

/** The arrays of one layer's forward pass over a micro-batch of `n` rows. */
export interface ForwardArrays {
  /** Rows in this micro-batch (at most the batch size the scratch was sized for). */
  n: number;
  /** Always `true` in the layer engine (see the module notes). */
  training: boolean;
  /** n × inputWidth values: the layer's input. Read only. */
  input: Float64Array;
  /** n × outputWidth values: `forward` writes the layer's output here (post-activation). */
  output: Float64Array;
  /** The values of {@link PlannedLayer.params}, in its order. Read only. */
  params: Float32Array[];
  /** The values of {@link PlannedLayer.state}, in its order: `forward` may update them (in training). */
  state: Float32Array[];
  /**
   * The buffers of {@link PlannedLayer.scratch}, in its order: the kind's own,
   * kept from `forward` to the same step's `backward` (a dropout mask, a
   * batch norm's normalized input). Contents are not zeroed by the engine.
   */
  scratch: Float64Array[];
}

/** The arrays of one layer's backward pass: {@link ForwardArrays} as `forward` left them, and gradients. */
export interface BackwardArrays extends ForwardArrays {
  /**
   * n × outputWidth: d loss / d output — or, when the layer declares an
   * {@link PlannedLayer.activation}, d loss / d pre-activation (the engine
   * has already multiplied by the activation's slope, or the loss has). The
   * kind may overwrite it.
   */
  gradOutput: Float64Array;
  /**
   * n × inputWidth: `backward` WRITES (not adds) d loss / d input here;
   * `undefined` when nothing below needs it (the first layer), and then the
   * kind should skip that work.
   */
  gradInput: Float64Array | undefined;
  /**
   * One per {@link PlannedLayer.params}: d loss / d param is ADDED into it
   * (the engine zeroed it before this micro-batch); `undefined` for a
   * parameter the optimizer does not update. float64, except where the
   * kind's {@link PlannedLayer.float32Gradients} let the engine give float32.
   */
  paramGrads: (StepGradient | undefined)[];
}

/**
 * `arrays.paramGrads` of a kind that declares no
 * {@link PlannedLayer.float32Gradients}: the engine gives it float64 only.
 */
export function float64Grads(arrays: BackwardArrays): (Float64Array | undefined)[] {
  return arrays.paramGrads as (Float64Array | undefined)[];
}

/** A scratch buffer: `perRow` float64 values for each row of the largest batch, plus `fixed`. */
export interface ScratchSize {
  perRow?: number;
  fixed?: number;
}

/** A layer the kind can train exactly, as planned for one pass. */
export interface PlannedLayer {
  /** The shape of one output row. */
  output: RowShape;
  /**
   * The layer's trainable weights the kind reads, in the order `params` and
   * `paramGrads` come. Each must be one of `layer.trainableWeights`' values
   * (`w.read()`); the engine refuses the model if the optimizer updates a
   * variable that no kind lists.
   */
  params: tf.Variable[];
  /** A penalty for each of `params` (same order; `undefined` for none): added to the loss and gradient by the engine. */
  penalties?: (KindPenalty | undefined)[];
  /**
   * Non-trainable weights (a batch norm's moving mean and variance): read
   * when `train()` starts, updated by `forward` in training, written back
   * when it ends.
   */
  state?: tf.Variable[];
  /** The kind's scratch buffers (see {@link ForwardArrays.scratch}). */
  scratch?: ScratchSize[];
  /**
   * Set when `backward` WRITES every one of its `paramGrads` (overwriting
   * them) instead of adding into them: the engine then does not zero them
   * before each micro-batch (a wide layer's gradient is megabytes). Leave
   * it out to get zeroed arrays to add into.
   */
  writesGradients?: boolean;
  /**
   * Optional, one per `params`: the values to hold where `backward` may be
   * given that parameter's gradient as float32 in the SIMD kernels' memory
   * (a product writes it there, in place: no float64 copy for the optimizer
   * to read); `undefined` for float64 only. The engine gives float32 only to
   * a kind that writes its gradients, with the SIMD kernels, for a parameter
   * without a penalty, and without gradient accumulation or clipping (which
   * work in float64): otherwise float64, as to every other kind.
   */
  float32Gradients?: (number | undefined)[];
  /**
   * The activation `forward` applies last, when the kind lets the engine
   * handle its slope: `backward` then receives d loss / d pre-activation.
   * In the last layer the loss folds it in (softmax is only allowed there,
   * under the categorical losses). Leave it out for a layer without one
   * (or one that differentiates its own activation).
   */
  activation?: ActivationCode;
  /** Computes the layer's output from its input (see {@link ForwardArrays}). */
  forward(arrays: ForwardArrays): void;
  /** Computes the gradients (see {@link BackwardArrays}). */
  backward(arrays: BackwardArrays): void;
  /**
   * Optional: gives back what `forward` took for the pass (memory in the
   * SIMD kernels). Called by the engine when each pass ends, fails or is
   * cancelled, after the last `backward`; may be called with nothing held,
   * and more than once. A later `forward` may take it again.
   */
  release?(): void;
}

/** One tfjs layer class the host engine mirrors. */
export interface LayerKind {
  /** The tfjs class name (`layer.getClassName()`, as registered with tfjs serialization): "Dense", "Dropout", … */
  readonly className: string;
  /**
   * Plans `context.layer` for training on the host, or returns why it
   * cannot be mirrored exactly (then the run takes the tfjs path and
   * `explainEngine` shows the reason). Must not change the layer.
   */
  plan(context: PlanContext): PlannedLayer | string;
  /**
   * Optional: this layer and the next one planned as ONE layer, when the
   * rows between them are costly to make and keep (an embedding's [T, dim]
   * rows averaged right away). Called only after both layers were checked
   * and planned alone (so the next layer's refusals still apply); the
   * planned layer takes `context.input` and gives the next layer's output,
   * and lists the params, state and penalties of both. `undefined` plans
   * them apart.
   */
  fuseNext?(context: PlanContext, next: PlanContext): PlannedLayer | undefined;
}
